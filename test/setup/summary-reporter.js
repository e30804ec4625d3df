// Prints the plain closing line CI reads ("tests: N passed, N failed, N skipped") as the very last line,
// after jest's own summary and the global teardown.
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `tests: ${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped`;
    process.on('exit', () => process.stdout.write(`${line}\n`));
  }
}

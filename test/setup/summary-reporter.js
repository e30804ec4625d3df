import { setTimeout } from 'node:timers';
// Prints the plain closing line CI reads ("tests: N passed, N failed, N skipped") as the very last line,
// after jest's own summary and the global teardown.
//
// And a guard: a test that leaves a timer or socket open keeps jest's process alive after the run
// ("Jest did not exit one second after the test run has completed"), which would hang CI until its
// timeout with no result. Ten seconds after the run, if the process is still there, it says so and
// exits with the run's outcome. The timer is unref'd: it never keeps the process alive itself.
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `tests: ${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped`;
    process.on('exit', () => process.stdout.write(`${line}\n`));
    setTimeout(() => {
      process.stderr.write(
        '[tests] jest had not exited 10 s after the run: a test left a timer or socket open ' +
          "(run with --detectOpenHandles to find it); exiting with the run's outcome\n",
      );
      process.exit(failed > 0 || !results.success ? 1 : 0);
    }, 10_000).unref();
  }
}

/** A subcommand or a benchmark: `run` returns the process exit status. */
export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

#!/usr/bin/env node
import { errorMessage, isSibylError } from '../util/errors.js';
import { commands } from './commands.js';

/** The `sibyl` command (docs/architecture.md, "Command line"). Each subcommand lives in its own module and is loaded on demand. */
const usage = () =>
  [
    'usage: sibyl <command> [flags]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`),
    '',
    'Run `sibyl <command> --help` for its flags.',
  ].join('\n');

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`sibyl: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (!cmd.load) {
    console.error(`sibyl ${name}: not built yet (${cmd.summary}); it arrives with its own issue`);
    return 3;
  }
  const mod = await cmd.load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`sibyl: ${errorMessage(e)}`);
    process.exitCode = isSibylError(e, 'ERR_CONFIG_INVALID') || isSibylError(e, 'ERR_USAGE') ? 2 : 1;
  },
);

import { SibylError } from '../util/errors.js';
import type { CommandModule } from './command.js';

/**
 * `sibyl bench <name>` (docs/architecture.md, "Command line"): each benchmark is a module with `run(argv)` in src/tools/bench,
 * registered here by name and loaded on demand.
 */
export const benches: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  sim: {
    summary: 'the simulator: every policy over scenario files (bench/scenarios)',
    load: () => import('../tools/bench/sim.js'),
  },
  proxy: {
    summary: 'the router against a direct connection and nginx grpc_pass, under ghz',
    load: () => import('../tools/bench/proxy.js'),
  },
  router: {
    summary: 'circuit breakers and hedging, each off and on, through real routers and faulty backends',
    load: () => import('../tools/bench/router.js'),
  },
  cache: {
    summary: 'cache tiers: hit ratios against LRU and Belady on a trace, latency per tier through the router',
    load: () => import('../tools/bench/cache.js'),
  },
  scale: {
    summary: 'the operator on a local control plane with K pools × M endpoints',
    load: () => import('../tools/bench/scale.js'),
  },
  all: {
    summary: 'the benchmarks make bench runs, and bench/results/README.md with the before/after table',
    load: () => import('../tools/bench/all.js'),
  },
  control: {
    summary:
      'the control stream: urgent-update delay under a flood of routine ones, pushes and bytes per router',
    load: () => import('../tools/bench/control.js'),
  },
};

const usage = () =>
  [
    'usage: sibyl bench <benchmark> [flags]',
    '',
    ...Object.entries(benches).map(([name, b]) => `  ${name.padEnd(7)} ${b.summary}`),
    '',
    'Run `sibyl bench <benchmark> --help` for its flags.',
  ].join('\n');

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const bench = benches[name];
  if (!bench) throw new SibylError('ERR_USAGE', `unknown benchmark "${name}"\n\n${usage()}`);
  return (await bench.load()).run(rest);
}

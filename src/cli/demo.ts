import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runDemo } from '../demo/run.js';

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      keep: { type: 'boolean', default: false },
      'state-dir': {
        type: 'string',
        default: join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local/state'), 'sibyl-demo'),
      },
      rps: { type: 'string', default: '200' },
      'phase-seconds': { type: 'string', default: '15' },
      policies: { type: 'string', default: 'RoundRobin,PeakEwma,Predictive' },
      'no-cache': { type: 'boolean', default: false },
    },
  });
  await runDemo({
    stateDir: v['state-dir'] as string,
    keep: v.keep as boolean,
    rps: Number(v.rps),
    phaseSeconds: Number(v['phase-seconds']),
    policies: String(v.policies).split(','),
    cache: !v['no-cache'],
    say: (l) => console.log(l),
  });
  return 0;
}

import { homedir } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '../tools/demo/run.js';
import { POLICIES } from '../api/backendpool.js';
import { SibylError } from '../util/errors.js';
import { numberFlag, parseFlags } from './flags.js';

const HELP = `usage: sibyl demo [flags]

The whole system on one machine: a local control plane, six backends, the operator and the data
planes it programs: an Envoy over xDS, a proxyless grpc-js client running sibyl's policy in process,
and two routers for a CacheTier. The same traffic goes through each (the proxyless client under each
policy), then what kubectl shows. Build first (npm run build) and have the tools (hack/k8s-tools.sh:
kube-apiserver, etcd, kubectl, Envoy); \`make demo\` does both.

  --state-dir DIR       cluster, logs and certificates (default $XDG_STATE_HOME/sibyl-demo)
  --keep                leave everything running and print how to point kubectl at it
  --rps N               calls per second of traffic (default 200)
  --phase-seconds N     length of each measured phase (default 15)
  --policies LIST       policies the proxyless client runs, one phase each (default RoundRobin,PeakEwma,Predictive)
  --no-cache            skip the routers and CacheTier phases`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(
    argv,
    {
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
    HELP,
  );
  if (!v) return 0;
  const policies = v.policies.split(',').map((p) => p.trim());
  for (const p of policies) {
    if (!(POLICIES as readonly string[]).includes(p))
      throw new SibylError('ERR_USAGE', `--policies: unknown policy "${p}" (known: ${POLICIES.join(', ')})`);
  }
  await runDemo({
    stateDir: v['state-dir'],
    keep: v.keep,
    rps: numberFlag(v.rps, 'rps', 1, 5000) as number,
    phaseSeconds: numberFlag(v['phase-seconds'], 'phase-seconds', 1, 600) as number,
    policies,
    cache: !v['no-cache'],
    say: (l) => console.log(l),
  });
  // With --keep the operator runs on, and the proxyless client's ADS stream to it would hold this
  // process open: @grpc/grpc-js-xds's shared xDS client has no close. Everything left running is
  // detached, so leave now.
  if (v.keep) process.exit(0);
  return 0;
}

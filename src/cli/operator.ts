import { parseArgs } from 'node:util';
import { loadKubeConfig } from '../kube/config.js';
import { Operator } from '../operator/operator.js';
import { parseDuration } from '../util/duration.js';
import { SibylError } from '../util/errors.js';
import { makeLogger } from '../util/log.js';

const HELP = `usage: sibyl operator [flags]
  --kubeconfig FILE        kubeconfig (default: $KUBECONFIG, ~/.kube/config, or in-cluster)
  --namespace NS           watch one namespace (default: all)
  --metrics-addr ADDR      /metrics, /healthz, /readyz (default :9090)
  --status-interval DUR    at most one status write per object per interval (default 5s)
  --concurrency N          reconciles at once per kind (default 4)
  --leader-elect BOOL      elect a leader on a Lease (default true)
  --lease-namespace NS     the Lease's namespace (default: $POD_NAMESPACE or default)
  --lease-duration DUR     (default 15s)   --renew-deadline DUR (default 10s)   --retry-period DUR (default 2s)
  --control-addr ADDR      the routers' control API (arrives with the control-stream issue)`;

export async function run(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'metrics-addr': { type: 'string', default: ':9090' },
      'status-interval': { type: 'string', default: '5s' },
      concurrency: { type: 'string', default: '4' },
      'leader-elect': { type: 'string', default: 'true' },
      'lease-namespace': { type: 'string', default: process.env.POD_NAMESPACE ?? 'default' },
      'lease-duration': { type: 'string', default: '15s' },
      'renew-deadline': { type: 'string', default: '10s' },
      'retry-period': { type: 'string', default: '2s' },
      'control-addr': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return (console.log(HELP), 0);
  const concurrency = Number(v.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new SibylError('ERR_USAGE', '--concurrency must be a whole number ≥ 1');
  const log = makeLogger('operator');
  const op = new Operator({
    kc: loadKubeConfig(v.kubeconfig),
    log,
    ...(v.namespace ? { namespace: v.namespace } : {}),
    statusIntervalMs: parseDuration(v['status-interval'] as string),
    concurrency,
    metricsAddr: v['metrics-addr'] as string,
    ...(v['leader-elect'] === 'false'
      ? {}
      : {
          leaderElection: {
            namespace: v['lease-namespace'] as string,
            leaseDurationMs: parseDuration(v['lease-duration'] as string),
            renewDeadlineMs: parseDuration(v['renew-deadline'] as string),
            retryPeriodMs: parseDuration(v['retry-period'] as string),
          },
        }),
  });
  await op.start();
  log.info({ metricsPort: op.metricsPort, namespace: v.namespace ?? '(all)' }, 'operator started');
  await new Promise<void>((resolve) => {
    const shutdown = (sig: string) => {
      log.info({ signal: sig }, 'shutting down');
      op.stop().then(resolve, (e: unknown) => (log.error({ err: String(e) }, 'shutdown failed'), resolve()));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return 0;
}

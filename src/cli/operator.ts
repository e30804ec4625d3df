import { readFileSync } from 'node:fs';
import type { ControlOptions } from '../operator/control-plane.js';
import { loadKubeConfig } from '../kube/config.js';
import { Operator } from '../operator/operator.js';
import { numberFlag, parseFlags } from './flags.js';
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
  --control-addr ADDR      serve the routers' control API here (e.g. :9443); absent = status only
  --control-cert FILE      TLS certificate for the control API (PEM)
  --control-key FILE       its key (PEM)
  --control-insecure       serve the control API without TLS (local runs only: tokens travel in clear)
  --allowed-routers LIST   router ServiceAccounts allowed to subscribe: ns/name or ns/*, comma-separated
                           (also the Envoys and proxyless gRPC clients served xDS on the control API)
  --xds-allow-unauthenticated  serve xDS clients without a token (local plaintext runs only)
  --push-interval DUR      routine routing pushes at most once per interval per router (default 1s)
  --report-interval DUR    how often routers report load (default 5s)`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const v = parseFlags(
    argv,
    {
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
      'control-cert': { type: 'string' },
      'control-key': { type: 'string' },
      'control-insecure': { type: 'boolean', default: false },
      'xds-allow-unauthenticated': { type: 'boolean', default: false },
      'allowed-routers': { type: 'string', default: '' },
      'push-interval': { type: 'string', default: '1s' },
      'report-interval': { type: 'string', default: '5s' },
    },
    HELP,
  );
  if (!v) return 0;
  const concurrency = numberFlag(v.concurrency, 'concurrency', 1, 1000, true) as number;
  const log = makeLogger('operator');
  const control = controlOptions(v);
  const op = new Operator({
    kc: loadKubeConfig(v.kubeconfig),
    log,
    ...(v.namespace ? { namespace: v.namespace } : {}),
    statusIntervalMs: parseDuration(v['status-interval'] as string),
    concurrency,
    metricsAddr: v['metrics-addr'] as string,
    ...(control ? { control } : {}),
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
  log.info(
    { metricsPort: op.metricsPort, controlPort: op.controlPort, namespace: v.namespace ?? '(all)' },
    'operator started',
  );
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

function controlOptions(v: Record<string, string | boolean | undefined>): ControlOptions | undefined {
  const addr = v['control-addr'] as string | undefined;
  if (!addr) return undefined;
  const cert = v['control-cert'] as string | undefined;
  const key = v['control-key'] as string | undefined;
  if (!!cert !== !!key) throw new SibylError('ERR_USAGE', '--control-cert and --control-key go together');
  if (!cert && !v['control-insecure']) {
    throw new SibylError(
      'ERR_USAGE',
      '--control-addr needs TLS (--control-cert and --control-key) or an explicit --control-insecure',
    );
  }
  if (v['xds-allow-unauthenticated'] && !v['control-insecure'])
    throw new SibylError(
      'ERR_USAGE',
      '--xds-allow-unauthenticated is for local plaintext runs: it needs --control-insecure',
    );
  const allowed = String(v['allowed-routers'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (allowed.length === 0)
    throw new SibylError(
      'ERR_USAGE',
      '--allowed-routers must name at least one ServiceAccount (ns/name or ns/*)',
    );
  for (const a of allowed)
    if (!/^[a-z0-9-]+\/([a-z0-9-.]+|\*)$/.test(a))
      throw new SibylError('ERR_USAGE', `--allowed-routers: "${a}" is not ns/name or ns/*`);
  return {
    addr: addr.startsWith(':') ? `0.0.0.0${addr}` : addr,
    ...(cert && key ? { tls: { cert: readFileSync(cert), key: readFileSync(key) } } : { insecure: true }),
    allowedRouters: allowed,
    pushIntervalMs: parseDuration(v['push-interval'] as string),
    reportIntervalMs: parseDuration(v['report-interval'] as string),
    xdsAllowUnauthenticated: v['xds-allow-unauthenticated'] === true,
  };
}

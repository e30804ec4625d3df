import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { linkRouter } from '../router/control-link.js';
import { tokenFromFile } from '../control/client.js';
import { SIBYL_VERSION } from '../util/version.js';
import { pino } from 'pino';
import { SibylError, errorMessage } from '../util/errors.js';
import { isDialableIp } from '../grpc/address.js';
import { numberFlag, parseFlags } from './flags.js';
import { parseDuration } from '../util/duration.js';
import { loadRouterConfig } from '../router/config.js';
import { Router } from '../router/router.js';
import { tableFromConfig } from '../router/table.js';

const HELP = `usage: sibyl router (--config routes.yaml | --control ADDR) [flags]

The gRPC proxy: routes each call by service to a pool and balances it over the pool's endpoints.
Prints {"listening":"HOST:PORT","metrics":"HOST:PORT"} on stdout once it serves; logs go to stderr.

  --config FILE             pools with static endpoints (BackendPool spec fields); SIGHUP reloads it
  --control ADDR            subscribe to the operator's control API (routing tables, breakers, model)
  --control-ca FILE         CA of the operator's certificate (PEM)
  --control-server-name N   name the operator's certificate carries, when not the address's host
  --control-insecure        plaintext control stream (local runs only)
  --token-file FILE         ServiceAccount token presented to the operator, read at each connect
                            (default /var/run/secrets/kubernetes.io/serviceaccount/token)
  --router-id ID            (default HOSTNAME-PID)   --namespace NS   pools of one namespace only
  --listen ADDR             gRPC address (default :8080; port 0 picks a free port)
  --advertise ADDR          host:port where Envoy reaches this router (e.g. $(POD_IP):8080): the
                            operator then sends Envoy a CacheTier's cacheable methods through it
  --metrics-addr ADDR       /metrics, /healthz, /readyz (default :9091; "" for none)
  --tls-cert FILE --tls-key FILE   serve TLS instead of h2c
  --max-message-bytes N     largest message either way (default 16777216)
  --retry-buffer-bytes N    request bytes kept for a retry (default 262144)
  --drain-grace DURATION    on SIGTERM, time for calls in flight to finish (default 30s)
  --log-level LEVEL         pino level (default info)`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const values = parseFlags(
    argv,
    {
      config: { type: 'string' },
      control: { type: 'string' },
      'control-ca': { type: 'string' },
      'control-server-name': { type: 'string' },
      'control-insecure': { type: 'boolean', default: false },
      'token-file': { type: 'string', default: '/var/run/secrets/kubernetes.io/serviceaccount/token' },
      'router-id': { type: 'string' },
      namespace: { type: 'string', default: process.env.POD_NAMESPACE ?? '' },
      listen: { type: 'string', default: ':8080' },
      advertise: { type: 'string' },
      'metrics-addr': { type: 'string', default: ':9091' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'retry-buffer-bytes': { type: 'string' },
      'drain-grace': { type: 'string', default: '30s' },
      'log-level': { type: 'string', default: 'info' },
    },
    HELP,
  );
  if (!values) return 0;
  if (values.control && values.config)
    throw new SibylError('ERR_USAGE', '--control and --config exclude each other');
  if (values.control && !values['control-ca'] && !values['control-insecure']) {
    throw new SibylError(
      'ERR_USAGE',
      "--control needs --control-ca (the CA of the operator's certificate) or an explicit --control-insecure",
    );
  }
  if (!values.control && !values.config)
    throw new SibylError('ERR_USAGE', `--config or --control is required\n\n${HELP}`);
  if (values.advertise !== undefined && !isDialableIp(values.advertise))
    throw new SibylError(
      'ERR_USAGE',
      `--advertise "${values.advertise}" must be an IP address and a port Envoy can dial (for example $(POD_IP):8080)`,
    );
  if (!values['tls-cert'] !== !values['tls-key'])
    throw new SibylError('ERR_USAGE', '--tls-cert and --tls-key go together');
  const config = values.config;
  const table = config ? tableFromConfig(loadRouterConfig(config)) : undefined;
  const graceMs = parseDuration(values['drain-grace']);
  const log = pino({ level: values['log-level'], base: { cmd: 'router' } }, pino.destination(2));
  const router = await Router.start({
    listen: values.listen,
    metricsAddr: values['metrics-addr'] || undefined,
    tls: values['tls-cert']
      ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key'] as string) }
      : undefined,
    maxMessageBytes: numberFlag(values['max-message-bytes'], 'max-message-bytes', 1, undefined, true),
    retryBufferBytes: numberFlag(values['retry-buffer-bytes'], 'retry-buffer-bytes', 0, undefined, true),
    log,
  });
  if (table) router.applyTable(table);
  const link = values.control
    ? linkRouter(router, {
        address: values.control,
        ...(values['control-ca'] ? { ca: readFileSync(values['control-ca']) } : {}),
        ...(values['control-server-name'] ? { serverName: values['control-server-name'] } : {}),
        token: tokenFromFile(values['token-file'] as string),
        routerId: values['router-id'] ?? `${hostname()}-${process.pid}`,
        namespace: values.namespace as string,
        version: SIBYL_VERSION,
        ...(values.advertise ? { advertise: values.advertise } : {}),
        log,
      })
    : undefined;
  console.log(JSON.stringify({ listening: router.address, metrics: router.metricsAddress }));

  process.on('SIGHUP', () => {
    if (!config) return;
    try {
      router.applyTable(tableFromConfig(loadRouterConfig(config), router.currentTable.version + 1));
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'reload refused; keeping the current table');
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, graceMs }, 'draining');
      link?.stop();
      router.drain(graceMs).then(resolve, (e: unknown) => {
        log.error({ err: errorMessage(e) }, 'drain failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { SibylError, errorMessage } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { loadRouterConfig } from '../router/config.js';
import { Router } from '../router/router.js';
import { tableFromConfig } from '../router/table.js';

const HELP = `usage: sibyl router (--config routes.yaml | --control ADDR) [flags]

The gRPC proxy: routes each call by service to a pool and balances it over the pool's endpoints.
Prints {"listening":"HOST:PORT","metrics":"HOST:PORT"} on stdout once it serves; logs go to stderr.

  --config FILE             pools with static endpoints (BackendPool spec fields); SIGHUP reloads it
  --control ADDR            the operator's control API (arrives with a later issue)
  --listen ADDR             gRPC address (default :8080; port 0 picks a free port)
  --metrics-addr ADDR       /metrics, /healthz, /readyz (default :9091; "" for none)
  --tls-cert FILE --tls-key FILE   serve TLS instead of h2c
  --max-message-bytes N     largest message either way (default 16777216)
  --retry-buffer-bytes N    request bytes kept for a retry (default 262144)
  --drain-grace DURATION    on SIGTERM, time for calls in flight to finish (default 30s)
  --log-level LEVEL         pino level (default info)`;

function int(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new SibylError('ERR_USAGE', `--${flag} "${v}" must be an integer of at least ${min}`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        control: { type: 'string' },
        listen: { type: 'string', default: ':8080' },
        'metrics-addr': { type: 'string', default: ':9091' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'max-message-bytes': { type: 'string' },
        'retry-buffer-bytes': { type: 'string' },
        'drain-grace': { type: 'string', default: '30s' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new SibylError('ERR_USAGE', `${errorMessage(e)}\n\n${HELP}`);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values.control) {
    throw new SibylError(
      'ERR_USAGE',
      '--control: the control stream is not built yet; use --config routes.yaml',
    );
  }
  if (!values.config) throw new SibylError('ERR_USAGE', `--config is required\n\n${HELP}`);
  if (!values['tls-cert'] !== !values['tls-key'])
    throw new SibylError('ERR_USAGE', '--tls-cert and --tls-key go together');
  const config = values.config;
  const table = tableFromConfig(loadRouterConfig(config));
  const graceMs = parseDuration(values['drain-grace']);
  const log = pino({ level: values['log-level'], base: { cmd: 'router' } }, pino.destination(2));
  const router = await Router.start({
    listen: values.listen,
    metricsAddr: values['metrics-addr'] || undefined,
    tls: values['tls-cert']
      ? { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key'] as string) }
      : undefined,
    maxMessageBytes: int(values['max-message-bytes'], 'max-message-bytes', 1),
    retryBufferBytes: int(values['retry-buffer-bytes'], 'retry-buffer-bytes', 0),
    log,
  });
  router.applyTable(table);
  console.log(JSON.stringify({ listening: router.address, metrics: router.metricsAddress }));

  process.on('SIGHUP', () => {
    try {
      router.applyTable(tableFromConfig(loadRouterConfig(config), router.currentTable.version + 1));
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'reload refused; keeping the current table');
    }
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal, graceMs }, 'draining');
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

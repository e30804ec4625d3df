import { pino } from 'pino';
import { numberFlag, parseFlags } from './flags.js';
import { startBackend } from '../tools/backend/server.js';

const HELP = `usage: sibyl backend [flags]

A gRPC test service (sibyl.demo.v1.Demo) with set latency, errors and ORCA load reports.
Prints {"listening":"HOST:PORT"} on stdout once it serves; logs go to stderr.

  --listen ADDR          gRPC address (default 127.0.0.1:50051; port 0 picks a free port)
  --metrics-addr ADDR    HTTP address for /metrics, /healthz and POST /control (default: none)
  --name NAME            server id in responses and the x-sibyl-backend header (default backend-PORT)
  --latency-ms MS        base service time (default 5)
  --jitter SIGMA         log-normal noise of the service time (default 0.3)
  --per-kib-ms MS        extra service time per KiB of request payload (default 0)
  --error-rate P         share of calls failing, 0..1 (default 0)
  --error-code CODE      status of those failures (default 14, UNAVAILABLE)
  --concurrency N        parallel slots; further calls queue (default 16; 0 = unlimited)
  --orca                 ORCA load reports: per call (endpoint-load-metrics-bin trailer) and out of
                         band (xds.service.orca.v3.OpenRcaService)
  --no-reflection        do not serve gRPC server reflection
  --log-level LEVEL      pino level (default info)`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const values = parseFlags(
    argv,
    {
      listen: { type: 'string', default: '127.0.0.1:50051' },
      'metrics-addr': { type: 'string' },
      name: { type: 'string' },
      'latency-ms': { type: 'string' },
      jitter: { type: 'string' },
      'per-kib-ms': { type: 'string' },
      'error-rate': { type: 'string' },
      'error-code': { type: 'string' },
      concurrency: { type: 'string' },
      orca: { type: 'boolean', default: false },
      'no-reflection': { type: 'boolean', default: false },
      'log-level': { type: 'string', default: 'info' },
    },
    HELP,
  );
  if (!values) return 0;
  const log = pino({ level: values['log-level'], base: { cmd: 'backend' } }, pino.destination(2));
  const settings = {
    latencyMs: numberFlag(values['latency-ms'], 'latency-ms', 0, 3_600_000),
    jitter: numberFlag(values['jitter'], 'jitter', 0, 5),
    perKiBMs: numberFlag(values['per-kib-ms'], 'per-kib-ms', 0, 3_600_000),
    errorRate: numberFlag(values['error-rate'], 'error-rate', 0, 1),
    errorCode: numberFlag(values['error-code'], 'error-code', 1, 16),
  };
  const backend = await startBackend({
    listen: values.listen,
    metricsAddr: values['metrics-addr'],
    name: values.name,
    settings: Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
    concurrency: numberFlag(values['concurrency'], 'concurrency', 0, 1_000_000) ?? 16,
    orca: values.orca,
    reflection: !values['no-reflection'],
    log,
  });
  console.log(
    JSON.stringify({ listening: backend.address, metrics: backend.metricsAddress, name: backend.name }),
  );
  log.info(
    { address: backend.address, metrics: backend.metricsAddress, settings: backend.state.settings },
    'serving',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      backend.stop(5000).then(resolve, (e: unknown) => {
        log.error({ err: String(e) }, 'stop failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

import { Value } from '@sinclair/typebox/value';
import { BackendPoolSpec } from '../../../src/api/backendpool.js';
import { resolvePoolSpec } from '../../../src/api/resolve.js';

describe('spec.telemetry resolved', () => {
  it("reads go-grpc-middleware's series by default, and out-of-band ORCA every interval", () => {
    const t = resolvePoolSpec({ telemetry: { interval: '5s', prometheus: { port: 9090 } } }).telemetry;
    expect(t).toEqual({
      intervalMs: 5000,
      prometheus: {
        port: 9090,
        path: '/metrics',
        cpuSeries: 'process_cpu_seconds_total',
        memorySeries: 'process_resident_memory_bytes',
        latencySeries: 'grpc_server_handling_seconds',
        handledSeries: 'grpc_server_handled_total',
        startedSeries: 'grpc_server_started_total',
      },
      orca: true,
      orcaIntervalMs: 5000,
      metricsApi: true,
    });
  });

  it('takes the series and the ORCA interval a spec names; no Prometheus section, no scrape', () => {
    const t = resolvePoolSpec({
      telemetry: {
        orcaInterval: '2s',
        prometheus: { port: 'metrics', latencySeries: 'rpc_seconds{job="x"}', handledSeries: 'rpc_total' },
      },
    }).telemetry;
    expect(t.orcaIntervalMs).toBe(2000);
    expect(t.intervalMs).toBe(10_000);
    expect(t.prometheus).toMatchObject({ latencySeries: 'rpc_seconds{job="x"}', handledSeries: 'rpc_total' });
    expect(resolvePoolSpec({}).telemetry.prometheus).toBeUndefined();
    expect(resolvePoolSpec({}).telemetry.orcaIntervalMs).toBe(10_000);
  });

  it('the schema bounds a series name and takes an ORCA interval', () => {
    const spec = (telemetry: object) => ({
      match: { services: ['a.B'] },
      endpoints: [{ address: 'a:1' }],
      telemetry,
    });
    expect(
      Value.Check(BackendPoolSpec, spec({ prometheus: { port: 1, latencySeries: 'x'.repeat(257) } })),
    ).toBe(false);
    expect(Value.Check(BackendPoolSpec, spec({ orcaInterval: '5s', prometheus: { port: 1 } }))).toBe(true);
  });
});

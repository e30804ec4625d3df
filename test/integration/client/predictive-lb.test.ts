import * as grpc from '@grpc/grpc-js';
import type { Backend } from '../../../src/tools/backend/server.js';
import type { EchoResponse } from '../../../src/tools/backend/messages.js';
import {
  PREDICTIVE_LB,
  PredictiveLbConfig,
  predictiveInterceptor,
  registerPredictiveBalancer,
} from '../../../src/client/index.js';
import { METHOD_KEY } from '../../../src/client/picker.js';
import { demoClient, startBackends, type DemoClient } from '../../support/grpc.js';

// sibyl's policy inside a grpc-js channel, against real backends on loopback: the same Picker and call
// handles as the router, fed by the channel's own calls.

const serviceConfig = (config: object) =>
  JSON.stringify({ loadBalancingConfig: [{ [PREDICTIVE_LB]: config }, { round_robin: {} }] });

function echo(client: DemoClient, md = new grpc.Metadata()): Promise<{ server: string; res: EchoResponse }> {
  return new Promise((resolve, reject) => {
    (client.Echo as (r: object, m: grpc.Metadata, cb: (e: Error | null, r: EchoResponse) => void) => void)(
      {},
      md,
      (e, r) => (e ? reject(e) : resolve({ server: r.server, res: r })),
    );
  });
}

/** `n` calls, `parallel` at a time; per server, the calls each answered (failures count as 'error'). */
async function load(client: DemoClient, n: number, parallel: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next++ < n) {
        const key = await echo(client).then(
          (r) => r.server,
          () => 'error',
        );
        counts[key] = (counts[key] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

describe('registerPredictiveBalancer: the policy in a grpc-js channel', () => {
  let backends: Backend[];
  beforeAll(async () => {
    registerPredictiveBalancer();
    registerPredictiveBalancer(); // idempotent
    backends = await startBackends(3, {}, 'in');
  });
  afterAll(async () => {
    await Promise.all(backends.map((b) => b.stop(0)));
  });

  const dial = (config: object = {}, opts: grpc.ChannelOptions = {}) =>
    demoClient(`ipv4:///${backends.map((b) => b.address).join(',')}`, {
      'grpc.service_config': serviceConfig(config),
      ...opts,
    });

  it('keeps most calls off a slow endpoint and a failing one, from its own calls alone', async () => {
    const [fast, slow, failing] = backends as [Backend, Backend, Backend];
    fast.state.update({ latencyMs: 2 });
    slow.state.update({ latencyMs: 40 });
    failing.state.update({ latencyMs: 2, errorRate: 1 });
    const client = dial({ policy: 'Predictive' });
    try {
      await load(client, 30, 2); // warm: the policy learns the endpoints
      const counts = await load(client, 300, 4);
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      // Bounds a loaded machine still meets: an even split would give each endpoint a third.
      expect((counts[fast.name] ?? 0) / total).toBeGreaterThan(0.75);
      expect((counts[slow.name] ?? 0) / total).toBeLessThan(0.15);
      expect((counts.error ?? 0) / total).toBeLessThan(0.1);
    } finally {
      client.close();
      for (const b of backends) b.state.update({ latencyMs: 0, errorRate: 0 });
    }
  });

  it('runs the sibyl policy the config names, and refuses a config it cannot use', async () => {
    expect(() => PredictiveLbConfig.createFromJson({ policy: 'Nope' })).toThrow(/sibyl.PredictiveLb config/);
    expect(() => PredictiveLbConfig.createFromJson({ exploration: 2 })).toThrow(/exploration/);
    const ok = PredictiveLbConfig.createFromJson({ policy: 'PeakEwma', pool: 'shop.demo', future: 1 });
    expect(ok.balancer.policy).toBe('PeakEwma');
    const client = dial({ policy: 'LeastRequest' });
    try {
      const counts = await load(client, 60, 3);
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(60);
      expect(counts.error).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('the interceptor gives the picker the method and never puts it on the wire', async () => {
    const client = dial({}, { interceptors: [predictiveInterceptor] });
    try {
      const md = new grpc.Metadata();
      md.set('x-test', 'kept');
      const r = await echo(client, md);
      expect(r.res.requestMetadata['x-test']).toBe('kept');
      expect(r.res.requestMetadata[METHOD_KEY]).toBeUndefined();
    } finally {
      client.close();
    }
  });
});

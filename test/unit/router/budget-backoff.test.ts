import { ManualClock, seededRandom } from '../../../src/util/clock.js';
import { Backoff } from '../../../src/util/backoff.js';
import { RetryBudget } from '../../../src/util/retry-budget.js';
import { upstreamRequestHeaders } from '../../../src/router/headers.js';

describe('RetryBudget', () => {
  it('allows retries of at most percent of requests, beyond a small reserve', () => {
    const clock = new ManualClock();
    const b = new RetryBudget(20, clock, { minPerSecond: 2, maxBalance: 100 });
    let granted = 0;
    for (let i = 0; i < 1000; i++) {
      b.onRequest();
      if (b.tryWithdraw()) granted++;
    }
    expect(granted).toBe(200 + 2);
  });

  it('refills its reserve over time and never retries at 0 %', () => {
    const clock = new ManualClock();
    const b = new RetryBudget(10, clock, { minPerSecond: 1, maxBalance: 100 });
    expect(b.tryWithdraw()).toBe(true);
    expect(b.tryWithdraw()).toBe(false);
    clock.advance(1000);
    expect(b.tryWithdraw()).toBe(true);
    const none = new RetryBudget(0, clock);
    none.onRequest();
    expect(none.tryWithdraw()).toBe(false);
  });

  it('caps the balance so a quiet past cannot fund a storm', () => {
    const b = new RetryBudget(100, new ManualClock(), { minPerSecond: 0, maxBalance: 5 });
    for (let i = 0; i < 1000; i++) b.onRequest();
    const granted = Array.from({ length: 20 }, () => b.tryWithdraw()).filter(Boolean).length;
    expect(granted).toBe(5);
  });
});

describe('Backoff', () => {
  it('grows by the multiplier to the cap, with jitter within bounds, and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, jitter: 0.2 }, seededRandom(3));
    const d = Array.from({ length: 8 }, () => b.next());
    const bases = [100, 200, 400, 800, 1000, 1000, 1000, 1000];
    d.forEach((v, i) => {
      expect(v).toBeGreaterThanOrEqual((bases[i] as number) * 0.8);
      expect(v).toBeLessThanOrEqual((bases[i] as number) * 1.2);
    });
    b.reset();
    expect(b.next()).toBeLessThanOrEqual(120);
  });
});

describe('upstream request headers', () => {
  it('drops pseudo and hop-by-hop fields, keeps metadata and encodings, rewrites grpc-timeout', () => {
    const h = upstreamRequestHeaders(
      {
        ':method': 'POST',
        ':path': '/a.B/C',
        ':authority': 'svc:8080',
        ':scheme': 'http',
        'content-type': 'application/grpc',
        te: 'trailers',
        connection: 'keep-alive',
        'grpc-timeout': '10S',
        'grpc-encoding': 'gzip',
        'grpc-accept-encoding': 'identity,gzip',
        'x-user': 'ann',
        'trace-bin': 'AAEC',
      },
      '/a.B/C',
      '9500m',
    );
    expect(h).toEqual({
      ':method': 'POST',
      ':path': '/a.B/C',
      ':scheme': 'http',
      ':authority': 'svc:8080',
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': '9500m',
      'grpc-encoding': 'gzip',
      'grpc-accept-encoding': 'identity,gzip',
      'x-user': 'ann',
      'trace-bin': 'AAEC',
    });
  });
});

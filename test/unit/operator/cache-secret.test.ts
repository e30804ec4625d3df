import {
  DeniedSecrets,
  SECRET_FORBIDDEN,
  secretForbiddenMessage,
  type RedisUrlResult,
} from '../../../src/operator/cache-secret.js';
import { seededRandom } from '../../../src/util/clock.js';

describe('secretForbiddenMessage', () => {
  it('names the missing permission (verb, resource, namespace, name) and the Helm value that grants it', () => {
    const m = secretForbiddenMessage('shop', 'redis');
    expect(m).toContain('Secret redis in shop');
    expect(m).toContain('"get" on "secrets" (namespace shop, name redis)');
    expect(m).toContain('operator.secretAccess.namespaces (add shop;');
    expect(m).toContain('operator.secretAccess.names is set, add redis');
    expect(m).not.toContain('API server');
  });

  it("carries the API server's own denial, which names the account", () => {
    const denial =
      'secrets "redis" is forbidden: User "system:serviceaccount:sibyl-system:sibyl-operator" cannot get resource "secrets" in API group "" in the namespace "shop"';
    expect(secretForbiddenMessage('shop', 'redis', denial)).toMatch(
      /\. The API server said: secrets "redis" is forbidden: User "system:serviceaccount:sibyl-system:sibyl-operator"/,
    );
  });
});

describe('DeniedSecrets', () => {
  const forbidden: RedisUrlResult = { ok: false, reason: SECRET_FORBIDDEN, message: 'no' };
  const notFound: RedisUrlResult = { ok: false, reason: 'SecretNotFound', message: 'gone' };
  const ok: RedisUrlResult = { ok: true, url: 'redis://127.0.0.1:6379' };

  /** When the Secret is read again after each of `n` refusals in a row (reads asked for every 100 ms). */
  function retryGaps(d: DeniedSecrets, n: number): number[] {
    const gaps: number[] = [];
    let t = 0;
    let last = 0;
    d.record('ns/s', forbidden, t);
    while (gaps.length < n) {
      t += 100;
      if (d.pending('ns/s', t) !== undefined) continue;
      gaps.push(t - last);
      last = t;
      d.record('ns/s', forbidden, t);
    }
    return gaps;
  }

  it('a refusal holds until its delay is out; the delay doubles (±20%) up to the cap', () => {
    const d = new DeniedSecrets({ initialMs: 5000, maxMs: 60_000 }, seededRandom(7));
    expect(d.pending('ns/s', 0)).toBeUndefined();
    expect(d.record('ns/s', forbidden, 0)).toBe(forbidden);
    expect(d.pending('ns/s', 100)).toBe(forbidden);
    expect(d.pending('ns/other', 100)).toBeUndefined();
    const gaps = retryGaps(new DeniedSecrets({ initialMs: 5000, maxMs: 60_000 }, seededRandom(7)), 8);
    const bases = [5000, 10_000, 20_000, 40_000, 60_000, 60_000, 60_000, 60_000];
    gaps.forEach((g, i) => {
      const base = bases[i] as number;
      expect({ i, g, within: g >= base * 0.8 && g <= base * 1.2 + 100 }).toEqual({ i, g, within: true });
    });
  });

  it('any other result ends the backoff: a grant, or a Secret that is now missing, is read every time', () => {
    for (const next of [ok, notFound]) {
      const d = new DeniedSecrets({ initialMs: 5000, maxMs: 60_000 }, seededRandom(1));
      d.record('ns/s', forbidden, 0);
      d.record('ns/s', forbidden, 7000);
      expect(d.record('ns/s', next, 30_000)).toBe(next);
      expect(d.pending('ns/s', 30_001)).toBeUndefined();
      // A later refusal starts again from the first delay.
      d.record('ns/s', forbidden, 40_000);
      expect(d.pending('ns/s', 40_000 + 3900)).toBe(forbidden);
      expect(d.pending('ns/s', 40_000 + 6001)).toBeUndefined();
    }
  });

  it('forgets refusals no tier asked about for longer than the cap', () => {
    const d = new DeniedSecrets({ initialMs: 5000, maxMs: 60_000 }, seededRandom(3));
    // Four refusals in a row: the next delay would be the 60 s cap.
    for (const t of [0, 7000, 20_000, 45_000]) {
      expect(d.pending('ns/old', t)).toBeUndefined();
      d.record('ns/old', forbidden, t);
    }
    d.record('ns/new', forbidden, 200_000); // prunes ns/old (retry due long ago, never re-asked)
    // ns/old starts again from the first delay rather than from where its backoff had grown to.
    d.record('ns/old', forbidden, 200_000);
    expect(d.pending('ns/old', 200_000 + 6001)).toBeUndefined();
  });
});

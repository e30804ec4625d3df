import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendPoolSpec } from '../../../src/api/backendpool.js';
import { isSibylError } from '../../../src/util/errors.js';
import { evaluatorFor, rulesIn } from '../../../src/router/config-rules.js';
import { loadRouterConfig, parseRouterConfig, routerConfigIssues } from '../../../src/router/config.js';
import { matchPool, tableFromConfig } from '../../../src/router/table.js';

const GOOD = `
pools:
  - name: catalog
    match: {services: [shop.Catalog], methods: [/shop.Search/Query]}
    endpoints: [{address: "10.0.0.5:50051"}, {address: "10.0.0.6:50051", name: b}]
    balancing: {policy: PeakEwma}
    circuitBreaker: {failureThreshold: 5, recoveryTimeout: 30s, halfOpenMaxCalls: 3, maxEjectionPercent: 50}
    concurrency: {algorithm: Gradient2, minLimit: 2, initialLimit: 10, maxLimit: 100}
    retries: {maxAttempts: 3, retryOn: [unavailable, resource-exhausted], budgetPercent: 10}
    hedging: {enabled: true, delay: 20ms, maxPercent: 5}
    idempotentMethods: [/shop.Catalog/Get]
    timeout: {default: 2s}
  - name: search
    match: {services: [shop.Search]}
    endpoints: [{address: "[::1]:7000"}]
`;

/** The issues for a one-pool file whose pool is `pool` merged over a valid pool. */
function issuesFor(pool: Record<string, unknown>): string[] {
  const base = { name: 'p', match: { services: ['a.B'] }, endpoints: [{ address: 'h:1' }] };
  return routerConfigIssues({ pools: [{ ...base, ...pool }] }).map((i) => `${i.path}: ${i.message}`);
}

describe('router config file', () => {
  it('accepts a good file and builds a table from it', () => {
    const table = tableFromConfig(parseRouterConfig(GOOD, 'routes.yaml'));
    const catalog = table.pools[0];
    expect(catalog).toMatchObject({
      name: 'catalog',
      settings: { balancing: { policy: 'PeakEwma' }, timeoutMs: 2000 },
    });
    expect([...(catalog?.retryOn ?? [])]).toEqual([14, 8]);
    expect(matchPool(table, '/shop.Catalog/Get')?.name).toBe('catalog');
    expect(matchPool(table, '/shop.Search/Query')?.name).toBe('catalog'); // method beats service
    expect(matchPool(table, '/shop.Search/Other')?.name).toBe('search');
    expect(matchPool(table, '/shop.Cart/Add')).toBeUndefined();
    expect(matchPool(table, 'nonsense')).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a bad address',
      { endpoints: [{ address: 'nope' }] },
      'pools[0].endpoints[0].address: Expected string to match',
    ],
    [
      'port 0',
      { endpoints: [{ address: 'h:0' }] },
      'pools[0].endpoints[0].address: port must be from 1 to 65535',
    ],
    [
      'an unknown policy',
      { balancing: { policy: 'Fastest' } },
      'pools[0].balancing.policy: must be one of Predictive',
    ],
    ['an empty match', { match: {} }, 'pools[0].match: match must name at least one gRPC service or method'],
    [
      'limits out of order',
      { concurrency: { minLimit: 50, initialLimit: 10 } },
      'pools[0].concurrency: minLimit must not exceed initialLimit',
    ],
    [
      'a bad duration',
      { timeout: { default: '5 seconds' } },
      'pools[0].timeout.default: must be a duration such as 500ms',
    ],
    [
      'a duration below its minimum',
      { circuitBreaker: { recoveryTimeout: '1ms' } },
      'must be at least 100ms',
    ],
    [
      'hedging without idempotent methods',
      { hedging: { enabled: true } },
      'pools[0]: hedging needs idempotentMethods',
    ],
    ['a typo', { retrys: { maxAttempts: 2 } }, 'pools[0].retrys: unknown field'],
    ['a nested typo', { retries: { maxAttemps: 2 } }, 'pools[0].retries.maxAttemps: unknown field'],
    ['a service reference', { service: { name: 'x' } }, 'pools[0].service: not supported in a routes file'],
    ['no endpoints', { endpoints: undefined }, 'pools[0].endpoints: required'],
    [
      'duplicate endpoints',
      { endpoints: [{ address: 'h:1' }, { address: 'h:1' }] },
      'duplicate of pools[0].endpoints[0]',
    ],
    [
      'too many attempts',
      { retries: { maxAttempts: 11 } },
      'pools[0].retries.maxAttempts: Expected integer to be less or equal to 10',
    ],
    ['a bad name', { name: 'Not_OK' }, 'pools[0].name: required'],
  ])('refuses %s with the field path and the reason', (_what, pool, expected) => {
    expect(issuesFor(pool).join('\n')).toContain(expected);
  });

  it('refuses two pools claiming one service, and duplicate pool names', () => {
    const p = (name: string) => ({ name, match: { services: ['a.B'] }, endpoints: [{ address: 'h:1' }] });
    expect(routerConfigIssues({ pools: [p('x'), p('y')] })).toEqual([
      { path: 'pools[1].match.services[0]', message: '"a.B" is also matched by pool "x"' },
    ]);
    expect(routerConfigIssues({ pools: [p('x'), p('x')] })[0]).toEqual({
      path: 'pools[1].name',
      message: '"x" is also the name of pools[0]',
    });
    expect(routerConfigIssues({ pools: [] })[0]?.path).toBe('pools');
    expect(routerConfigIssues({ pool: [] }).map((i) => i.path)).toEqual(['pool', 'pools']);
    expect(routerConfigIssues('x')[0]?.message).toContain('mapping');
  });

  it('throws ERR_CONFIG_INVALID naming the file, each path and each reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sibyl-config-'));
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      'pools:\n  - name: p\n    match: {services: [a.B]}\n    endpoints: [{address: "h:99999"}]\n    timeout: {default: soon}\n',
    );
    let err: unknown;
    try {
      loadRouterConfig(file);
    } catch (e) {
      err = e;
    }
    expect(isSibylError(err, 'ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toBe(
      `${file}: 2 problems:\n` +
        '  pools[0].endpoints[0].address: port must be from 1 to 65535\n' +
        '  pools[0].timeout.default: must be a duration such as 500ms, 5s or 1m30s',
    );
    expect(() => loadRouterConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
    expect(() => parseRouterConfig('pools: [', 'x.yaml')).toThrow(/x.yaml: not valid YAML/);
  });

  it('mirrors every CEL rule of BackendPoolSpec (a new rule in src/api must be added to config-rules.ts)', () => {
    const missing = rulesIn(BackendPoolSpec).filter((r) => !evaluatorFor(r));
    expect(missing).toEqual([]);
  });
});

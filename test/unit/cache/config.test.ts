import { cacheConfigIssues, cacheSettings } from '../../../src/cache/config.js';

const methods = [{ method: '/a.B/C' }];

describe('cache settings: warming', () => {
  it('no warming block means no warming; a block turns it on with the CRD defaults', () => {
    expect(cacheSettings({ methods }).warming.enabled).toBe(false);
    expect(cacheSettings({ methods, warming: {} }).warming).toEqual({
      enabled: true,
      windowMs: 60_000,
      horizonMs: 60_000,
      topK: 100,
      minFrequency: 2,
      budgetPercent: 10,
    });
    expect(cacheSettings({ methods, warming: { enabled: false } }).warming.enabled).toBe(false);
  });

  it('resolves given values, and a routes file may carry warming', () => {
    const w = { window: '5s', horizon: '2s', topK: 7, minFrequency: 0.5, budgetPercent: 30 };
    expect(cacheSettings({ methods, warming: w }).warming).toEqual({
      enabled: true,
      windowMs: 5000,
      horizonMs: 2000,
      topK: 7,
      minFrequency: 0.5,
      budgetPercent: 30,
    });
    expect(cacheConfigIssues({ methods, warming: w }, 'cache')).toEqual([]);
    expect(cacheConfigIssues({ methods, warming: { topK: 0, bogus: 1 } }, 'cache')).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'cache.warming.topK' })]),
    );
  });
});

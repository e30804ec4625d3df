import { formatRows, runPickBench } from '../../../src/tools/bench/pick.js';
import { balancerNames } from '../../../src/balancer/index.js';

it('measures every policy and prints a table', () => {
  const rows = runPickBench({ endpoints: 20, picks: 200, runs: 3 });
  expect(rows.map((r) => r.policy)).toEqual(balancerNames());
  for (const r of rows) {
    expect(r.nsPerPick).toBeGreaterThan(0);
    expect(r.nsPerCall).toBeGreaterThan(0);
  }
  expect(formatRows(rows).split('\n')).toHaveLength(rows.length + 2);
});

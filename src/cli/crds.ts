import { parseArgs } from 'node:util';
import { writeCrds } from '../api/write-crds.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', default: 'crds' } } });
  for (const p of writeCrds(values.out as string)) console.log(`wrote ${p}`);
  return 0;
}

import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { apiReference } from '../api/docs.js';
import { writeCrds } from '../api/write-crds.js';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string', default: 'crds' }, docs: { type: 'string' } },
  });
  for (const p of writeCrds(values.out as string)) console.log(`wrote ${p}`);
  if (values.docs) {
    writeFileSync(values.docs, apiReference());
    console.log(`wrote ${values.docs}`);
  }
  return 0;
}

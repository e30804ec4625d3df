import { writeFileSync } from 'node:fs';
import { apiReference } from '../api/docs.js';
import { writeCrds } from '../api/write-crds.js';
import { parseFlags } from './flags.js';

const HELP = `usage: sibyl crds [--out DIR] [--docs FILE]

Writes the CustomResourceDefinitions generated from the API's schemas (src/api).

  --out DIR      where the CRD YAML files go (default crds)
  --docs FILE    also write the API reference (markdown) there`;

// Loaded by name (src/cli/commands.ts, src/cli/bench.ts).
// ts-unused-exports:disable-next-line
export async function run(argv: string[]): Promise<number> {
  const values = parseFlags(
    argv,
    { out: { type: 'string', default: 'crds' }, docs: { type: 'string' } },
    HELP,
  );
  if (!values) return 0;
  for (const p of writeCrds(values.out)) console.log(`wrote ${p}`);
  if (values.docs) {
    writeFileSync(values.docs, apiReference());
    console.log(`wrote ${values.docs}`);
  }
  return 0;
}

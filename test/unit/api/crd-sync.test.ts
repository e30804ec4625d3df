import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { parse } from 'yaml';
import { crds } from '../../../src/api/crd.js';
import { crdFileName, crdYaml } from '../../../src/api/write-crds.js';
import { apiReference } from '../../../src/api/docs.js';
import { BackendPoolSpec } from '../../../src/api/backendpool.js';
import { CacheTierSpec } from '../../../src/api/cachetier.js';

describe('CRDs and TypeScript types share one source', () => {
  it.each(crds.map((c) => [c.metadata.name, c] as const))(
    'crds/ holds the generated %s (run `make crds`)',
    (_n, c) => {
      const committed = readFileSync(join('crds', crdFileName(c)), 'utf8');
      expect(committed).toBe(crdYaml(c));
    },
  );

  it('docs/api.md is the generated reference (run `make crds`)', () => {
    expect(readFileSync('docs/api.md', 'utf8')).toBe(apiReference());
  });

  it('every sample satisfies the schema the types come from', () => {
    const samples: Array<[string, typeof BackendPoolSpec | typeof CacheTierSpec]> = [
      ['backendpool-service.yaml', BackendPoolSpec],
      ['backendpool-static.yaml', BackendPoolSpec],
      ['cachetier.yaml', CacheTierSpec],
    ];
    for (const [file, schema] of samples) {
      const obj = parse(readFileSync(join('manifests/samples', file), 'utf8')) as { spec: unknown };
      const errors = [...Value.Errors(schema, obj.spec)].map((e) => `${e.path}: ${e.message}`);
      expect({ file, errors }).toEqual({ file, errors: [] });
    }
  });

  it('a wrong type in a sample is caught by the same schema', () => {
    expect(Value.Check(BackendPoolSpec, { match: { services: ['a.B'] }, endpoints: [{ address: 5 }] })).toBe(
      false,
    );
  });
});

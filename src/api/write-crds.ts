import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { crds } from './crd.js';

/** The YAML text of a CRD exactly as committed under crds/. */
export function crdYaml(obj: object): string {
  return `# Generated from src/api by \`make crds\`: edit the TypeBox schemas, not this file.\n${stringify(obj, { lineWidth: 0 })}`;
}

export function crdFileName(obj: { spec: { group: string; names: { plural: string } } }): string {
  return `${obj.spec.group}_${obj.spec.names.plural}.yaml`;
}

/** Writes every CRD under dir; returns the paths. */
export function writeCrds(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return crds.map((c) => {
    const path = join(dir, crdFileName(c));
    writeFileSync(path, crdYaml(c));
    return path;
  });
}

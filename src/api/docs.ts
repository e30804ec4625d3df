import { crds } from './crd.js';

interface Schema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  pattern?: string;
  format?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema;
  anyOf?: Schema[];
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: Array<{ rule: string; message: string }>;
}

function typeOf(s: Schema): string {
  if (s['x-kubernetes-int-or-string']) return 'int or string';
  if (s.type === 'array') return `[]${s.items ? typeOf(s.items) : ''}`;
  if (s.type === 'object' && s.additionalProperties) return `map[string]${typeOf(s.additionalProperties)}`;
  return s.type ?? '';
}

function constraints(s: Schema): string {
  const c: string[] = [];
  if (s.enum) c.push(`one of ${s.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  if (s.minimum !== undefined || s.maximum !== undefined) c.push(`${s.minimum ?? '…'}–${s.maximum ?? '…'}`);
  if (s.minLength) c.push(`≥ ${s.minLength} chars`);
  if (s.maxItems !== undefined) c.push(`≤ ${s.maxItems} items`);
  if (s.minItems) c.push(`≥ ${s.minItems} items`);
  if (s['x-kubernetes-list-type'] === 'set') c.push('unique');
  if (s['x-kubernetes-list-type'] === 'map')
    c.push(`unique by ${s['x-kubernetes-list-map-keys']?.join(', ')}`);
  if (s.pattern) c.push(`pattern \`${s.pattern.replace(/\|/g, '\\|')}\``);
  for (const v of s['x-kubernetes-validations'] ?? []) c.push(v.message);
  return c.join('; ');
}

function rows(s: Schema, path: string, required: boolean, out: string[]): void {
  if (path) {
    const def = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
    out.push(
      `| \`${path}\` | ${typeOf(s)}${required ? ' (required)' : ''} | ${def} | ${constraints(s)} | ${s.description ?? ''} |`,
    );
  }
  const obj = s.type === 'array' ? s.items : s;
  const prefix = s.type === 'array' ? `${path}[]` : path;
  for (const [name, child] of Object.entries(obj?.properties ?? {})) {
    rows(child, prefix ? `${prefix}.${name}` : name, obj?.required?.includes(name) ?? false, out);
  }
}

/** docs/api.md, generated from the CRDs (and so from the TypeBox schemas): `make crds` writes it. */
export function apiReference(): string {
  const out = [
    '# API reference',
    '',
    'Generated from the CRD schemas by `make crds`; do not edit by hand. Group `sibyl.dev`, version `v1alpha1`, namespaced.',
    'Rules that span fields are CEL rules the API server checks; their messages are what `kubectl apply` prints.',
  ];
  for (const c of crds) {
    const v = c.spec.versions[0];
    const root = v?.schema.openAPIV3Schema as unknown as Schema;
    out.push(
      '',
      `## ${c.spec.names.kind} (\`${c.spec.names.shortNames.join('`, `')}\`)`,
      '',
      root.description ?? '',
    );
    for (const part of ['spec', 'status'] as const) {
      const s = root.properties?.[part] as Schema;
      out.push('', `### ${part}`, '');
      for (const rule of s['x-kubernetes-validations'] ?? []) out.push(`- ${rule.message}`);
      if (s['x-kubernetes-validations']?.length) out.push('');
      out.push('| field | type | default | constraints | description |', '| --- | --- | --- | --- | --- |');
      rows(s, '', false, out);
    }
    out.push(
      '',
      '### kubectl get columns',
      '',
      v?.additionalPrinterColumns.map((p) => `\`${p.name}\` (${p.jsonPath})`).join(', ') ?? '',
    );
  }
  return `${out.join('\n')}\n`;
}

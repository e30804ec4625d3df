import { Kind, Type, TypeRegistry, type TSchema, type TUnsafe, type SchemaOptions } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../util/duration.js';

/**
 * Building blocks for Kubernetes structural schemas written once in TypeBox: the same definition gives
 * the TypeScript type (Static<>) and the CRD's openAPIV3Schema, so the two cannot drift.
 * Kubernetes accepts a subset of JSON Schema (no const, no patternProperties, anyOf only in special
 * shapes), so anything beyond plain objects, arrays and scalars is written through Type.Unsafe here.
 */

// Kinds TypeBox's Value.Check understands for the shapes written through Type.Unsafe below; they let the
// router's config file be checked by the same schemas (CEL rules are mirrored in validate.ts).
TypeRegistry.Set<{ enum: string[] }>(
  'SibylEnum',
  (schema, value) => typeof value === 'string' && schema.enum.includes(value),
);
TypeRegistry.Set('SibylIntOrString', (_s, value) => Number.isInteger(value) || typeof value === 'string');
TypeRegistry.Set(
  'SibylStringMap',
  (_s, value) =>
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string'),
);

const intOrString = {
  [Kind]: 'SibylIntOrString',
  'x-kubernetes-int-or-string': true,
  anyOf: [{ type: 'integer' }, { type: 'string' }],
};

export interface Rule {
  rule: string;
  message: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

/** A CEL string literal. */
export function cel(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** CEL: this string is a Go-style duration. */
export const IS_DURATION = `self.matches(${cel(DURATION_PATTERN)})`;

/** CEL rules (x-kubernetes-validations) on a schema. */
export function rules(...r: Rule[]): { 'x-kubernetes-validations': Rule[] } {
  return { 'x-kubernetes-validations': r };
}

export function Enum<const T extends readonly string[]>(
  values: T,
  opts: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ [Kind]: 'SibylEnum', type: 'string', enum: [...values], ...opts });
}

/** A Go-style duration, checked by CEL so the message reads like a sentence, with optional bounds. */
export function Duration(opts: SchemaOptions & { min?: string; max?: string } = {}) {
  const { min, max, ...rest } = opts;
  const checks: Rule[] = [{ rule: IS_DURATION, message: 'must be a duration such as 500ms, 5s or 1m30s' }];
  if (min)
    checks.push({
      rule: `!${IS_DURATION} || duration(self) >= duration('${min}')`,
      message: `must be at least ${min}`,
    });
  if (max)
    checks.push({
      rule: `!${IS_DURATION} || duration(self) <= duration('${max}')`,
      message: `must be at most ${max}`,
    });
  return Type.String({ maxLength: 32, ...rest, ...rules(...checks) });
}

/** A Kubernetes resource quantity of bytes ("64Mi") or a plain number of bytes. */
export function Bytes(opts: SchemaOptions = {}): TUnsafe<number | string> {
  return Type.Unsafe<number | string>({
    ...intOrString,
    ...opts,
    ...rules({
      rule: "type(self) == int ? self > 0 : (isQuantity(self) && quantity(self).isGreaterThan(quantity('0')))",
      message: 'must be a positive number of bytes or a quantity such as 64Mi or 2Gi',
    }),
  });
}

/** A port as a number (1-65535) or an IANA service name, as Services and EndpointSlices name them. */
export function Port(opts: SchemaOptions = {}): TUnsafe<number | string> {
  return Type.Unsafe<number | string>({
    ...intOrString,
    ...opts,
    ...rules({
      rule: "type(self) == int ? (self >= 1 && self <= 65535) : (size(self) <= 15 && self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$'))",
      message:
        'must be a port number from 1 to 65535 or a port name (lower-case letters, digits and dashes, at most 15)',
    }),
  });
}

/** A string → string map (Kubernetes rejects JSON Schema's patternProperties). */
export function StringMap(opts: SchemaOptions = {}): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    [Kind]: 'SibylStringMap',
    type: 'object',
    additionalProperties: { type: 'string' },
    ...opts,
  });
}

/** An array whose items are unique (x-kubernetes-list-type: set): duplicates are refused by the API server. */
export function SetOf<T extends TSchema>(item: T, maxItems: number, opts: SchemaOptions = {}) {
  return Type.Array(item, { maxItems, 'x-kubernetes-list-type': 'set', ...opts });
}

/** An array of objects keyed by some of their fields (x-kubernetes-list-type: map). */
export function MapList<T extends TSchema>(
  item: T,
  keys: string[],
  maxItems: number,
  opts: SchemaOptions = {},
) {
  return Type.Array(item, {
    maxItems,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': keys,
    ...opts,
  });
}

/** DNS-1123 label-ish object name, as most Kubernetes names are. */
export const Name = (opts: SchemaOptions = {}) =>
  Type.String({ minLength: 1, maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', ...opts });

/** A gRPC service name as written in .proto files: package.Service. */
export const GrpcService = () =>
  Type.String({
    minLength: 1,
    maxLength: 253,
    pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$',
  });

/** A gRPC full method name, /package.Service/Method. */
export const GrpcMethod = () =>
  Type.String({
    minLength: 3,
    maxLength: 512,
    pattern: '^/[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*/[A-Za-z_][A-Za-z0-9_]*$',
  });

/** metav1.Condition, listed as a map keyed by type. */
export const Condition = Type.Object({
  type: Type.String({ maxLength: 316 }),
  status: Enum(['True', 'False', 'Unknown'] as const),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  reason: Type.String({ maxLength: 1024, minLength: 1 }),
  message: Type.String({ maxLength: 32768 }),
});

export const Conditions = () => MapList(Condition, ['type'], 16);

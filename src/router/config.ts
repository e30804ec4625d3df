import { readFileSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import '../api/schema.js'; // registers the custom kinds Value.Check needs
import { BackendPoolSpec } from '../api/backendpool.js';
import { SibylError, errorMessage } from '../util/errors.js';
import { checkRules, type Issue } from './config-rules.js';
import { cacheConfigIssues, type PoolCacheSpec } from '../cache/config.js';

/**
 * The router's --config file (docs/architecture.md, "Command line"): `pools`, each a name plus BackendPool spec fields with
 * static endpoints. Checked by the CRD's own TypeBox schema (structure, bounds, enums) and by the
 * mirrored CEL rules, plus what only a file of several pools can get wrong (two pools claiming one
 * service or method). A bad file is refused whole with every problem's path and reason.
 */

/**
 * `cache` is the pool's response cache (src/cache/config.ts), a routes-file-only field until the
 * operator hands routers a CacheTier: not part of BackendPoolSpec, so checked apart from it.
 */
export type PoolSpec = Omit<BackendPoolSpec, 'service'> & { cache?: PoolCacheSpec };
export interface PoolConfig extends PoolSpec {
  name: string;
  endpoints: NonNullable<BackendPoolSpec['endpoints']>;
}
export interface RouterFileConfig {
  pools: PoolConfig[];
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Reads and validates a routes file; throws ERR_CONFIG_INVALID listing every issue. */
export function loadRouterConfig(file: string): RouterFileConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SibylError('ERR_CONFIG_INVALID', `${file}: cannot read: ${errorMessage(e)}`, { cause: e });
  }
  return parseRouterConfig(text, file);
}

export function parseRouterConfig(text: string, source = 'config'): RouterFileConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const why = doc.errors.map((e) => e.message.split('\n')[0]).join('; ');
    throw new SibylError('ERR_CONFIG_INVALID', `${source}: not valid YAML: ${why}`);
  }
  return validateRouterConfig(doc.toJS(), source);
}

export function validateRouterConfig(doc: unknown, source = 'config'): RouterFileConfig {
  const issues = routerConfigIssues(doc);
  if (issues.length) {
    const lines = issues.map((i) => `  ${i.path || '(top)'}: ${i.message}`);
    throw new SibylError(
      'ERR_CONFIG_INVALID',
      `${source}: ${issues.length} problem${issues.length > 1 ? 's' : ''}:\n${lines.join('\n')}`,
    );
  }
  return doc as RouterFileConfig;
}

/** Every problem in a parsed routes file (empty when it is valid). */
export function routerConfigIssues(doc: unknown): Issue[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return [{ path: '', message: 'must be a mapping with a `pools` list' }];
  }
  const issues: Issue[] = [];
  for (const k of Object.keys(doc))
    if (k !== 'pools') issues.push({ path: k, message: 'unknown field (known: pools)' });
  const pools = (doc as { pools?: unknown }).pools;
  if (!Array.isArray(pools) || pools.length === 0) {
    issues.push({ path: 'pools', message: 'required: a list of at least one pool' });
    return issues;
  }
  const names = new Map<string, number>();
  pools.forEach((p: unknown, i) => poolIssues(p, `pools[${i}]`, issues, names, i));
  if (issues.length === 0) issues.push(...overlapIssues(pools as PoolConfig[]));
  return issues;
}

function poolIssues(p: unknown, at: string, issues: Issue[], names: Map<string, number>, i: number): void {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) {
    issues.push({ path: at, message: 'must be a mapping (name, match, endpoints, ...)' });
    return;
  }
  const { name, service, cache, ...spec } = p as Record<string, unknown>;
  if (cache !== undefined) issues.push(...cacheConfigIssues(cache, `${at}.cache`));
  if (typeof name !== 'string' || !NAME.test(name) || name.length > 253) {
    issues.push({
      path: `${at}.name`,
      message: 'required: lower-case letters, digits, "-" and ".", at most 253',
    });
  } else if (names.has(name)) {
    issues.push({ path: `${at}.name`, message: `"${name}" is also the name of pools[${names.get(name)}]` });
  } else names.set(name, i);
  if (service !== undefined) {
    issues.push({
      path: `${at}.service`,
      message:
        'not supported in a routes file: list endpoints instead (Services are resolved by the operator)',
    });
  }
  if (spec.endpoints === undefined) {
    issues.push({ path: `${at}.endpoints`, message: 'required: a list of {address: host:port}' });
    return;
  }
  const structural = new Map<string, string>();
  for (const e of Value.Errors(BackendPoolSpec, spec)) {
    const path = at + pointerToPath(e.path);
    if (!structural.has(path)) structural.set(path, explain(e.schema as Record<string, unknown>, e.message));
  }
  for (const [path, message] of structural) issues.push({ path, message });
  // Rules too, except where the structure already failed (one reason per field is enough).
  const rules: Issue[] = [];
  checkRules(BackendPoolSpec, spec, at, rules);
  issues.push(...rules.filter((r) => !structural.has(r.path)));
}

/** "/endpoints/0/address" → ".endpoints[0].address" */
function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => (/^[0-9]+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('');
}

function explain(schema: Record<string, unknown>, message: string): string {
  if (Array.isArray(schema.enum)) return `must be one of ${(schema.enum as string[]).join(', ')}`;
  if (typeof schema.pattern === 'string' && /pattern/i.test(message)) {
    return `${message}${schema.description ? ` (${String(schema.description)})` : ''}`;
  }
  return message;
}

/** Two pools may not claim the same service or the same full method name. */
function overlapIssues(pools: PoolConfig[]): Issue[] {
  const issues: Issue[] = [];
  const owner = new Map<string, string>();
  pools.forEach((p, i) => {
    for (const [kind, list] of [
      ['services', p.match.services ?? []],
      ['methods', p.match.methods ?? []],
    ] as const) {
      list.forEach((s, j) => {
        const key = `${kind}:${s}`;
        const prev = owner.get(key);
        if (prev)
          issues.push({
            path: `pools[${i}].match.${kind}[${j}]`,
            message: `"${s}" is also matched by pool "${prev}"`,
          });
        else owner.set(key, p.name);
      });
    }
  });
  return issues;
}

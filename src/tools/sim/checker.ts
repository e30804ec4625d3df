import { SibylError } from '../../util/errors.js';

/** A parsed JSON object whose fields are being checked. */
export type Obj = Record<string, unknown>;

/**
 * Checks the fields of a parsed JSON file one by one, naming the file and the field at fault
 * (`x.json: servers[2].speed must be a number > 0, got "fast"`), and refusing unknown fields.
 */
export class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, what: string, got?: unknown): never {
    const shown = got === undefined ? '' : `, got ${JSON.stringify(got) ?? String(got)}`;
    throw new SibylError('ERR_CONFIG_INVALID', `${this.source}: ${path} ${what}${shown}`);
  }

  object(v: unknown, path: string, allowed: readonly string[]): Obj {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(path, 'must be an object', v);
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) {
        this.fail(path === '' ? k : `${path}.${k}`, `is not a known field (known: ${allowed.join(', ')})`);
      }
    }
    return v as Obj;
  }

  number(
    o: Obj,
    key: string,
    path: string,
    opts: { min?: number; max?: number; above?: number; int?: boolean; fallback?: number } = {},
  ): number {
    const p = path ? `${path}.${key}` : key;
    const v = o[key];
    if (v === undefined) {
      if (opts.fallback !== undefined) return opts.fallback;
      this.fail(p, 'is required');
    }
    const bounds = [
      opts.above !== undefined ? `> ${opts.above}` : opts.min !== undefined ? `>= ${opts.min}` : '',
      opts.max !== undefined ? `<= ${opts.max}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    const want = `must be ${opts.int ? 'an integer' : 'a number'}${bounds ? ` ${bounds}` : ''}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(p, want, v);
    if (opts.int && !Number.isInteger(v)) this.fail(p, want, v);
    if (opts.min !== undefined && v < opts.min) this.fail(p, want, v);
    if (opts.above !== undefined && !(v > opts.above)) this.fail(p, want, v);
    if (opts.max !== undefined && v > opts.max) this.fail(p, want, v);
    return v;
  }

  optionalNumber(
    o: Obj,
    key: string,
    path: string,
    opts: { min?: number; max?: number; above?: number } = {},
  ) {
    return o[key] === undefined ? undefined : this.number(o, key, path, opts);
  }

  array(v: unknown, path: string, nonEmpty: boolean): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'must be an array', v);
    if (nonEmpty && v.length === 0) this.fail(path, 'must not be empty');
    return v;
  }
}

import { execFile } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import type { Run } from '../../support/kube.js';

/** The chart's tests run the real helm (built by hack/k8s-tools.sh, on PATH after global setup). */

export const CHART = 'charts/sibyl';

/** Runs a command with the test's environment passed explicitly (jest hands tests a copy of it). */
export function run(cmd: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const opts = {
      encoding: 'utf8' as const,
      timeout: 120_000,
      env: { ...process.env },
      maxBuffer: 64 << 20,
    };
    const child = execFile(cmd, args, opts, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export async function helm(args: string[]): Promise<string> {
  const r = await run('helm', args);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export function parseObjects(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && typeof o === 'object' && 'kind' in o);
}

export function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(`no ${kind} ${name} among ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

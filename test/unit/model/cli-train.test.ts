import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import {
  readSamplesFile,
  run,
  scenarioFiles,
  simulatedSamples,
  type SimulatorApi,
} from '../../../src/cli/train.js';
import { loadModel } from '../../../src/model/artifact.js';
import type { TrainingSample } from '../../../src/model/sample.js';
import type { Scenario } from '../../../src/tools/sim/scenario.js';
import { isSibylError } from '../../../src/util/errors.js';
import { syntheticSamples } from './synthetic.js';

function jsonl(samples: TrainingSample[]): string {
  return samples.map((s) => JSON.stringify(s)).join('\n') + '\n';
}

async function usageError(p: Promise<unknown>): Promise<string> {
  const e = await p.catch((err: unknown) => err);
  if (isSibylError(e, 'ERR_USAGE')) return e.message;
  throw new Error(`expected ERR_USAGE, got ${String(e)}`);
}

describe('sibyl train', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sibyl-train-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('trains from a JSON-lines file and writes a loadable model', async () => {
    const file = path.join(dir, 'samples.jsonl');
    writeFileSync(file, jsonl(syntheticSamples(400, 4)));
    const log = jest.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const out = path.join(dir, 'model');
      const code = await run([
        '--samples',
        file,
        '--out',
        out,
        '--epochs',
        '2',
        '--backend',
        'wasm',
        '--json',
      ]);
      expect(code).toBe(0);
      const summary = JSON.parse(String(log.mock.calls[0]?.[0]));
      expect(summary).toMatchObject({
        out,
        training: { epochs: 2, source: 'file: samples.jsonl', backend: 'wasm' },
      });
      const model = await loadModel(out);
      expect(model.metrics).toEqual(summary.metrics);
    } finally {
      log.mockRestore();
    }
  });

  it('reads null as "never" or "absent" and names a bad line', async () => {
    const file = path.join(dir, 's.jsonl');
    const [a, b] = syntheticSamples(2, 1);
    writeFileSync(
      file,
      `${JSON.stringify({ ...a, telemetryAgeMs: null, cpu: null })}\n\n${JSON.stringify(b)}\n`,
    );
    const got = await readSamplesFile(file);
    expect(got).toHaveLength(2);
    expect(got[0]!.telemetryAgeMs).toBe(Infinity);
    expect('cpu' in got[0]!).toBe(false);
    writeFileSync(file, `${JSON.stringify(a)}\n${JSON.stringify({ ...b, latencyMs: 'slow' })}\n`);
    expect(await usageError(readSamplesFile(file))).toBe(`${file}:2: latencyMs must be a finite number`);
    writeFileSync(file, '{oops\n');
    expect(await usageError(readSamplesFile(file))).toMatch(/s\.jsonl:1: not JSON/);
  });

  it('refuses a missing sample source and bad flags', async () => {
    expect(await usageError(run(['--out', dir]))).toMatch(/--simulate or --samples FILE/);
    expect(await usageError(run(['--samples', 'x', '--epochs', '0']))).toMatch(
      /--epochs "0" must be a whole number from 1/,
    );
    expect(await usageError(run(['--samples', 'x', '--backend', 'gpu']))).toMatch(/--backend "gpu"/);
    expect(await usageError(run(['--bogus']))).toMatch(/Unknown option/);
  });

  it('spreads simulator samples over scenarios × policies with distinct seeds', async () => {
    for (const n of ['b.json', 'a.json', 'notes.txt']) writeFileSync(path.join(dir, n), '{}');
    const files = await scenarioFiles(dir);
    expect(files.map((f) => path.basename(f))).toEqual(['a.json', 'b.json']);
    const calls: { scenario: unknown; seed: number; policy: string; maxSamples: number }[] = [];
    const sim: SimulatorApi = {
      loadScenario: async (f) => ({ name: path.basename(f) }) as unknown as Scenario,
      collectSamples: (scenario, o) => {
        calls.push({ scenario, ...o });
        return syntheticSamples(o.maxSamples, o.seed);
      },
    };
    const r = await simulatedSamples(sim, files, ['RoundRobin', 'Predictive'], 100, 7);
    expect(r.samples).toHaveLength(100);
    expect(calls.map((c) => [c.seed, c.policy, c.maxSamples])).toEqual([
      [7, 'RoundRobin', 25],
      [8, 'Predictive', 25],
      [1007, 'RoundRobin', 25],
      [1008, 'Predictive', 25],
    ]);
    expect(r.source).toBe('simulator: a, b × RoundRobin, Predictive; seed 7');
    expect(await usageError(scenarioFiles(path.join(dir, 'none')))).toMatch(/--scenarios/);
  });
});

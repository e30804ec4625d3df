import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { SibylError, errorMessage } from '../util/errors.js';

/**
 * tfjs, with the fastest backend this machine has (docs/architecture.md, "Model"): the native TensorFlow binding
 * (`@tensorflow/tfjs-node`, an optional dependency) when it imports, else WebAssembly, else plain JS
 * (CPU). The WASM binaries ship inside @tensorflow/tfjs-backend-wasm and are loaded from its dist
 * directory on disk: no network. Only training imports this module; routers run forward.ts.
 */
export { tf };

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

let current: { choice: BackendChoice; ready: Promise<string> } | undefined;

/** The directory holding tfjs-backend-wasm's .wasm files, with the trailing separator tfjs expects. */
function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return (
    path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep
  );
}

async function tryNode(): Promise<boolean> {
  try {
    const name = '@tensorflow/tfjs-node'; // not a literal: it is optional and usually absent
    await import(name);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    setWasmPaths(wasmDir());
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

async function select(choice: BackendChoice): Promise<string> {
  const order: BackendChoice[] = choice === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [choice];
  for (const b of order) {
    const ok =
      b === 'tensorflow' ? await tryNode() : b === 'wasm' ? await tryWasm() : await tf.setBackend('cpu');
    if (ok) {
      await tf.ready();
      return tf.getBackend();
    }
  }
  throw new SibylError('ERR_MODEL', `tfjs backend ${choice} is not available here`);
}

/**
 * Selects the backend once per process (tfjs keeps one global engine) and returns its name. Asking for
 * another specific backend later switches to it.
 */
export async function initTf(choice: BackendChoice = 'auto'): Promise<string> {
  if (!current || (choice !== 'auto' && current.choice !== choice)) {
    const ready = select(choice).catch((e: unknown) => {
      current = undefined;
      throw isModelError(e) ? e : new SibylError('ERR_MODEL', `tfjs: ${errorMessage(e)}`, { cause: e });
    });
    current = { choice, ready };
  }
  return current.ready;
}

function isModelError(e: unknown): boolean {
  return e instanceof SibylError && e.code === 'ERR_MODEL';
}

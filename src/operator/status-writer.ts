import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../api/crd.js';
import { canonicalJson } from '../util/canonical.js';
import type { Clock } from '../util/clock.js';

export const FIELD_MANAGER = 'sibyl-operator';

export type WriteOutcome =
  | { written: true; object: unknown }
  | { written: false; why: 'unchanged' }
  | { written: false; why: 'deferred'; retryInMs: number };

/**
 * Writes status through the status subresource, at most once per object per interval whatever the
 * event rate, and never when nothing changed: a level-based reconcile computes the whole status each
 * time, and this decides whether it is worth a write. The first write of an object goes at once.
 * The write replaces /status whole (JSON patch), so fields that vanished from the world vanish from
 * status too, which a merge patch would not do.
 */
export class StatusWriter {
  private readonly api: CustomObjectsApi;
  private readonly lastWrite = new Map<string, number>();

  constructor(
    kc: KubeConfig,
    private readonly plural: string,
    private readonly intervalMs: number,
    private readonly clock: Clock,
  ) {
    this.api = kc.makeApiClient(CustomObjectsApi);
  }

  async write(namespace: string, name: string, current: unknown, next: unknown): Promise<WriteOutcome> {
    if (canonicalJson(current ?? {}) === canonicalJson(next)) return { written: false, why: 'unchanged' };
    const key = `${namespace}/${name}`;
    const last = this.lastWrite.get(key);
    const now = this.clock.now();
    if (last !== undefined && now - last < this.intervalMs) {
      return { written: false, why: 'deferred', retryInMs: this.intervalMs - (now - last) };
    }
    this.lastWrite.set(key, now);
    const object = await this.api.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: this.plural,
        name,
        body: [{ op: 'add', path: '/status', value: next }],
        fieldManager: FIELD_MANAGER,
      },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    );
    return { written: true, object };
  }

  forget(namespace: string, name: string): void {
    this.lastWrite.delete(`${namespace}/${name}`);
  }
}

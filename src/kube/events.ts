import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';

export interface InvolvedObject {
  apiVersion: string;
  kind: string;
  name: string;
  namespace: string;
  uid: string;
}

export type EventType = 'Normal' | 'Warning';

interface Seen {
  name: string;
  namespace: string;
  count: number;
  at: number;
}

/**
 * Records core/v1 Events so `kubectl describe` lists them (it selects by involvedObject name,
 * namespace, kind and uid). Repeats of the same reason and message on the same object within
 * `aggregateMs` raise the count of one Event instead of creating another, as Kubernetes' own
 * EventRecorder (client-go tools/record, EventCorrelator) does.
 */
export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly seen = new Map<string, Seen>();

  constructor(
    kc: KubeConfig,
    private readonly component: string,
    private readonly log: Logger,
    private readonly aggregateMs = 10 * 60_000,
    private readonly maxRemembered = 4096,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Never throws: an event that cannot be written is logged, not allowed to fail a reconcile. */
  async record(obj: InvolvedObject, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${obj.uid}\u0000${reason}\u0000${message}`;
    const now = new Date();
    const prev = this.seen.get(key);
    try {
      if (prev && now.getTime() - prev.at < this.aggregateMs) {
        prev.count++;
        prev.at = now.getTime();
        await this.core.patchNamespacedEvent(
          {
            name: prev.name,
            namespace: prev.namespace,
            body: { count: prev.count, lastTimestamp: now.toISOString() },
          },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return;
      }
      const name = `${obj.name}.${(now.getTime() * 1000 + Math.floor(performance.now() % 1000)).toString(16)}`;
      await this.core.createNamespacedEvent({
        namespace: obj.namespace,
        body: {
          metadata: { name, namespace: obj.namespace },
          involvedObject: { ...obj },
          type,
          reason,
          message,
          count: 1,
          firstTimestamp: now,
          lastTimestamp: now,
          source: { component: this.component },
          reportingComponent: this.component,
        },
      });
      this.remember(key, { name, namespace: obj.namespace, count: 1, at: now.getTime() });
    } catch (e) {
      this.seen.delete(key);
      this.log.warn(
        { err: errorMessage(e), reason, object: `${obj.namespace}/${obj.name}` },
        'could not record event',
      );
    }
  }

  private remember(key: string, s: Seen): void {
    this.seen.set(key, s);
    if (this.seen.size > this.maxRemembered) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}

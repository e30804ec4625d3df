import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Informer } from '../kube/informer.js';
import { WorkQueue, type Lane, type ReconcileResult } from '../kube/workqueue.js';
import type { Random } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import type { OperatorMetrics } from './metrics.js';

export interface Reconciler {
  reconcile(key: string): Promise<ReconcileResult>;
}

/** Where a controller's keys come from: bound once, when the controller is made. */
export interface Watch {
  bind(enqueue: (key: string, lane: Lane) => void): void;
}

/**
 * Events on one informer, mapped to the keys to reconcile (controller-runtime's Watches with
 * EnqueueRequestsFromMapFunc). Adds and deletes always count; an update counts when `changed` says so
 * (a predicate), or always without one. Its keys wait in the work queue's `event` lane: a change someone
 * waits to see.
 */
export function watch<T extends KubernetesObject>(
  informer: Informer<T>,
  keys: (obj: T) => Iterable<string>,
  changed?: (obj: T, old: T) => boolean,
): Watch {
  return {
    bind(enqueue) {
      const all = (obj: T) => {
        for (const k of keys(obj)) enqueue(k, 'event');
      };
      informer.on({
        add: all,
        update: (obj, old) => {
          if (!changed || changed(obj, old)) all(obj);
        },
        delete: all,
      });
    },
  };
}

/**
 * Keys from outside the API server (controller-runtime's source.Channel): routers' load reports, a
 * refitted model, a CacheTier's new config. Made before the parts that send on it and the controller
 * that watches it, so neither needs the other. Its keys are `routine` unless sent as events.
 */
export class KeyChannel implements Watch {
  private readonly sinks: Array<(key: string, lane: Lane) => void> = [];

  send(key: string, lane: Lane = 'routine'): void {
    for (const s of this.sinks) s(key, lane);
  }

  bind(enqueue: (key: string, lane: Lane) => void): void {
    this.sinks.push(enqueue);
  }
}

export interface ControllerOptions {
  /** The kind reconciled, for metrics and logs. */
  kind: string;
  /** Reconciles at once. */
  concurrency: number;
  random: Random;
  metrics: OperatorMetrics;
  log: Logger;
}

/**
 * One reconciler behind a work queue, fed by its watches. The queue exists only while this replica
 * leads: keys that arrive before are dropped, since leading starts with a resync of everything.
 */
export class Controller {
  private queue?: WorkQueue;
  private inFlight = 0;

  constructor(
    private readonly reconciler: Reconciler,
    watches: readonly Watch[],
    private readonly o: ControllerOptions,
  ) {
    for (const w of watches) w.bind((key, lane) => this.enqueue(key, lane));
  }

  enqueue(key: string, lane: Lane = 'routine'): void {
    this.queue?.add(key, lane);
  }

  /** Whether the queue runs (this replica leads). */
  get running(): boolean {
    return this.queue !== undefined;
  }

  /** Reconciles in flight now. */
  get reconciling(): number {
    return this.inFlight;
  }

  start(): void {
    const { kind, metrics, log } = this.o;
    this.queue = new WorkQueue(
      async (key) => {
        const end = metrics.reconcileDuration.startTimer({ kind });
        this.inFlight++;
        try {
          return await this.reconciler.reconcile(key);
        } finally {
          this.inFlight--;
          end();
        }
      },
      {
        concurrency: this.o.concurrency,
        random: this.o.random,
        onDepth: (d) => metrics.queueDepth.set({ kind }, d),
      },
      (key, e, retryInMs) => {
        metrics.reconcileErrors.inc({ kind });
        log.warn(
          { kind, object: key, err: errorMessage(e), retryInMs: Math.round(retryInMs) },
          'reconcile failed',
        );
      },
    );
  }

  stop(): void {
    this.queue?.stop();
    this.queue = undefined;
  }
}

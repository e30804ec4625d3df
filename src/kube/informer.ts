import {
  Watch,
  type KubeConfig,
  type KubernetesObject,
  type KubernetesListObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { systemRandom } from '../util/clock.js';
import { errorMessage } from '../util/errors.js';
import { backoffMs } from '../util/backoff.js';
import { objectKey, Store, type IndexFunc } from './store.js';

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(obj: T, old: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** A name for logs and metrics, e.g. "endpointslices". */
  name: string;
  /** The collection's URL path, e.g. /apis/discovery.k8s.io/v1/endpointslices. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  indexers?: Record<string, IndexFunc<T>>;
  /** Full relist this often, whatever happens (client-go's resync, and a cure for silent watches). */
  relistMs?: number;
  /** Restart a watch that has said nothing, not even a bookmark, for this long. */
  silenceMs?: number;
  onRestart?: (reason: string) => void;
  log: Logger;
}

/**
 * A list-and-watch informer (client-go's Reflector + Store) on client-node's Watch, because
 * client-node 1.4's own ListWatch stops for good on any watch error and sets no timeout (FIELD-NOTES):
 * - every failure restarts the watch with jittered exponential backoff; 410 Gone relists;
 * - the API server closes each watch after timeoutSeconds (randomised 5–10 min, as client-go does),
 *   bookmarks keep the resourceVersion fresh, and a watchdog restarts a watch silent past silenceMs;
 * - a full relist every relistMs replays the world: handlers are level-based and idempotent.
 * Handlers run after the store is updated, so they read the new state.
 */
export class Informer<T extends KubernetesObject> {
  readonly store: Store<T>;
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = '';
  private abort?: AbortController;
  private timer?: NodeJS.Timeout;
  private relistTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private lastEventAt = Date.now();
  private failures = 0;
  private stopped = true;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private generation = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: InformerOptions<T>,
  ) {
    this.store = new Store<T>(opts.indexers);
  }

  on(h: InformerHandlers<T>): void {
    this.handlers.push(h);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has filled the store. */
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0, 'start', true);
    const relist = this.opts.relistMs ?? 5 * 60_000;
    this.relistTimer = setInterval(() => this.restart('periodic relist', true), relist);
    const silence = this.opts.silenceMs ?? 11 * 60_000;
    this.watchdog = setInterval(
      () => {
        if (this.abort && Date.now() - this.lastEventAt > silence) this.restart('watch silent', false);
      },
      Math.min(silence, 30_000),
    );
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.timer);
    clearInterval(this.relistTimer);
    clearInterval(this.watchdog);
  }

  private restart(reason: string, relist: boolean): void {
    if (this.stopped) return;
    this.opts.onRestart?.(reason);
    this.opts.log.debug({ informer: this.opts.name, reason }, 'informer restart');
    this.schedule(0, reason, relist);
  }

  private schedule(delayMs: number, reason: string, relist: boolean): void {
    const gen = ++this.generation;
    this.abort?.abort();
    this.abort = undefined;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (gen === this.generation) void this.run(gen, relist, reason);
    }, delayMs);
  }

  private async run(gen: number, relist: boolean, reason: string): Promise<void> {
    try {
      if (relist || !this.resourceVersion) await this.relist();
      if (gen !== this.generation || this.stopped) return;
      await this.watch(gen);
    } catch (e) {
      this.fail(gen, e, reason);
    }
  }

  private async relist(): Promise<void> {
    const list = await this.opts.list();
    const seen = new Set<string>();
    for (const obj of list.items) {
      seen.add(objectKey(obj));
      this.apply('MODIFIED', obj);
    }
    for (const key of this.store.keys()) {
      if (!seen.has(key)) {
        const old = this.store.get(key) as T;
        this.apply('DELETED', old);
      }
    }
    this.resourceVersion = list.metadata?.resourceVersion ?? '';
    this.failures = 0;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async watch(gen: number): Promise<void> {
    const params: Record<string, string | number | boolean> = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: 300 + Math.floor(systemRandom() * 300),
    };
    if (this.opts.labelSelector) params.labelSelector = this.opts.labelSelector;
    this.lastEventAt = Date.now();
    const abort = await new Watch(this.kc).watch(
      this.opts.path,
      params,
      (phase: string, obj: T & { code?: number }) => {
        if (gen !== this.generation) return;
        this.lastEventAt = Date.now();
        this.failures = 0;
        if (phase === 'ERROR') {
          if (obj.code === 410) this.resourceVersion = '';
          return;
        }
        const rv = obj.metadata?.resourceVersion;
        if (phase !== 'BOOKMARK') this.apply(phase, obj);
        if (rv) this.resourceVersion = rv;
      },
      (err: unknown) => {
        if (gen !== this.generation || this.stopped) return;
        if (err) this.fail(gen, err, 'watch ended with an error');
        // A clean end (the server's timeoutSeconds) resumes from the last resourceVersion at once.
        else this.schedule(0, 'watch timeout', !this.resourceVersion);
      },
    );
    if (gen !== this.generation) abort.abort();
    else this.abort = abort;
  }

  private fail(gen: number, e: unknown, reason: string): void {
    if (gen !== this.generation || this.stopped) return;
    const code = (e as { statusCode?: number; code?: number }).statusCode ?? (e as { code?: number }).code;
    const gone = code === 410;
    if (gone) this.resourceVersion = '';
    const delay = gone
      ? 0
      : backoffMs(this.failures++, systemRandom, { initialMs: 200, maxMs: 10_000, multiplier: 2 });
    this.opts.log.warn(
      { informer: this.opts.name, err: errorMessage(e), retryInMs: Math.round(delay), reason },
      'informer failed; restarting',
    );
    this.opts.onRestart?.(gone ? 'gone' : 'error');
    this.schedule(delay, 'error', gone || !this.resourceVersion);
  }

  private apply(phase: string, obj: T): void {
    if (phase === 'DELETED') {
      const old = this.store.delete(objectKey(obj));
      if (old) for (const h of this.handlers) h.delete?.(old);
      return;
    }
    const old = this.store.put(obj);
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    for (const h of this.handlers) {
      if (old) h.update?.(obj, old);
      else h.add?.(obj);
    }
  }
}

import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number; // ≈15 s
  renewDeadlineMs?: number; // ≈10 s: a leader that cannot renew this long steps down
  retryPeriodMs?: number; // ≈2 s
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  log: Logger;
}

const httpCode = (e: unknown) => (e as { code?: number }).code;

/**
 * metav1.MicroTime wants six fractional digits; client-node 1.4 passes a Date through to
 * JSON.stringify, which writes three, and the API server refuses that. So the time goes as a string.
 */
function microTime(d: Date): Date {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

/**
 * Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does: acquire when
 * the lease is free or expired, renew every retry period, and write only with optimistic locking on
 * resourceVersion, so two candidates can never both succeed. A leader that cannot renew within the
 * renew deadline stops leading before the lease can expire for anyone else; release() hands the lease
 * over at once on shutdown.
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private lastRenew = 0;
  private timer?: NodeJS.Timeout;
  /** The acquire/renew round in progress, if any (release waits for it, or the two writes race). */
  private round?: Promise<void>;
  private stopped = false;
  private finished = 0;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;

  constructor(
    kc: KubeConfig,
    private readonly o: LeaderOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.leaseMs = o.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = o.renewDeadlineMs ?? 10_000;
    this.retryMs = o.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Acquire-or-renew rounds finished, won or not: a test that reads isLeader waits for one first. */
  get rounds(): number {
    return this.finished;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => {
      this.round = this.tick().catch((e: unknown) =>
        this.o.log.error({ err: errorMessage(e) }, 'leader election round failed'),
      );
    }, ms);
  }

  /** Stops campaigning and renewing without touching the Lease, which then expires. */
  abandon(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.setLeading(false);
  }

  /** Stops campaigning; a leader gives the lease up so a standby takes over without waiting. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    // A renewal in flight would write the lease after (or instead of) the release below: let it end.
    await this.round;
    if (!this.leading) return;
    this.setLeading(false);
    // Optimistic locking: a 409 means the lease changed since it was read; read it again and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
        if (lease.spec?.holderIdentity !== this.o.identity) return;
        lease.spec = {
          ...lease.spec,
          holderIdentity: undefined,
          leaseDurationSeconds: 1,
          renewTime: undefined,
        };
        await this.api.replaceNamespacedLease({
          name: this.o.name,
          namespace: this.o.namespace,
          body: lease,
        });
        this.o.log.info({ lease: this.o.name }, 'released leadership');
        return;
      } catch (e) {
        if (httpCode(e) === 409 && attempt < 3) continue;
        this.o.log.warn({ err: errorMessage(e) }, 'could not release the lease; it will expire');
        return;
      }
    }
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const ok = await this.tryAcquireOrRenew();
      if (ok) this.lastRenew = Date.now();
      if (ok && !this.leading) this.setLeading(true);
    } catch (e) {
      this.o.log.warn({ err: errorMessage(e) }, 'lease update failed');
    }
    if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) {
      this.o.log.error({ lease: this.o.name }, 'could not renew the lease in time; stepping down');
      this.setLeading(false);
    }
    this.finished++;
    if (!this.stopped) this.schedule(this.retryMs);
  }

  private setLeading(v: boolean): void {
    if (v === this.leading) return;
    this.leading = v;
    this.o.log.info(
      { lease: this.o.name, identity: this.o.identity },
      v ? 'became leader' : 'stopped leading',
    );
    if (v) this.o.onStartedLeading();
    else this.o.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.o;
    const now = new Date();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (httpCode(e) !== 404) throw e;
      return this.write(() =>
        this.api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: this.spec(now, now, 0) },
        }),
      );
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
    if (holder !== identity && !expired) return false;
    const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    const acquired = holder === identity && spec.acquireTime ? new Date(spec.acquireTime) : now;
    lease.spec = this.spec(acquired, now, transitions);
    return this.write(() => this.api.replaceNamespacedLease({ name, namespace, body: lease }));
  }

  private spec(acquireTime: Date, renewTime: Date, leaseTransitions: number) {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      acquireTime: microTime(acquireTime),
      renewTime: microTime(renewTime),
      leaseTransitions,
    };
  }

  /** A 409 means someone else wrote first: we lost this round, not an error. */
  private async write(fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      if (httpCode(e) === 409) return false;
      throw e;
    }
  }
}

import * as k8s from '@kubernetes/client-node';
import { kubeConfig } from './kube.js';
import { waitFor } from './wait.js';

/**
 * The operator's leader-election Lease as the API server holds it, so a test checks a handover by the
 * times the candidates wrote (one host clock: src/kube/leader.ts stamps renewTime and acquireTime with
 * Date) instead of by how long the test waited for it, which a loaded machine stretches.
 */
export interface LeaseView {
  holder?: string;
  acquireMs?: number;
  renewMs?: number;
  durationMs?: number;
}

const OPERATOR_LEASE = 'sibyl-operator';

const ms = (t: Date | string | undefined) => (t === undefined ? undefined : new Date(t).getTime());

export async function readLease(namespace: string, name = OPERATOR_LEASE): Promise<LeaseView> {
  const api = kubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const spec = (await api.readNamespacedLease({ name, namespace })).spec ?? {};
  return {
    holder: spec.holderIdentity,
    acquireMs: ms(spec.acquireTime),
    renewMs: ms(spec.renewTime),
    durationMs: spec.leaseDurationSeconds === undefined ? undefined : spec.leaseDurationSeconds * 1000,
  };
}

export interface Handover {
  /** The last renewal `from` wrote (0 when the Lease was never seen held by it). */
  lastRenewMs: number;
  /** The Lease once another holds it. */
  next: LeaseView;
}

/**
 * Follows the Lease from `from` to whoever takes it next: polls it (every 50 ms) until another
 * identity holds it, keeping the last renewTime `from` wrote. A candidate waits a whole lease duration
 * after that renewal, so no poll can miss it; a renewal `from` still had in flight is seen too.
 */
export async function followHandover(
  namespace: string,
  from: string,
  opts: { timeoutMs: number; name?: string },
): Promise<Handover> {
  let lastRenewMs = 0;
  const next = await waitFor(
    async () => {
      const l = await readLease(namespace, opts.name);
      if (l.holder === from) lastRenewMs = Math.max(lastRenewMs, l.renewMs ?? 0);
      return l.holder !== undefined && l.holder !== from ? l : undefined;
    },
    { timeoutMs: opts.timeoutMs, intervalMs: 50, what: `another holder of the Lease than ${from}` },
  );
  return { lastRenewMs, next };
}

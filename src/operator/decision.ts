import type { EndpointStatus } from '../api/backendpool.js';
import { formatMs } from '../util/duration.js';

const label = (e: EndpointStatus) => e.pod ?? e.address;

function listNames(names: string[], max = 3): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/**
 * The one sentence a person reads in `kubectl describe`: where traffic goes and why, e.g.
 * "PeakEwma: 7 of 8 endpoints ready; checkout-2bd excluded (breaker open)".
 */
export function decisionSentence(
  policy: string,
  endpoints: readonly EndpointStatus[],
  problem?: string,
): string {
  if (problem) return `No traffic: ${problem}.`;
  const ready = endpoints.filter((e) => e.ready);
  if (endpoints.length === 0) return 'No traffic: the pool has no endpoints.';
  if (ready.length === 0) return `No traffic: 0 of ${endpoints.length} endpoints ready.`;
  const parts = [`${policy}: ${ready.length} of ${endpoints.length} endpoints ready`];
  const excluded = new Map<string, string[]>();
  for (const e of endpoints) {
    const why = !e.ready ? 'not ready' : e.breaker === 'Open' ? 'breaker open' : undefined;
    if (why) excluded.set(why, [...(excluded.get(why) ?? []), label(e)]);
  }
  for (const [why, names] of excluded) parts.push(`${listNames(names)} excluded (${why})`);
  const predicted = ready.filter((e) => e.predictedLatencyMs !== undefined && e.breaker !== 'Open');
  if (predicted.length > 1) {
    const sorted = [...predicted].sort(
      (a, b) => (a.predictedLatencyMs as number) - (b.predictedLatencyMs as number),
    );
    const best = sorted[0] as EndpointStatus;
    const worst = sorted[sorted.length - 1] as EndpointStatus;
    parts.push(
      `most traffic to ${label(best)} (predicted ${formatMs(best.predictedLatencyMs as number)}), least to ${label(worst)} (predicted ${formatMs(worst.predictedLatencyMs as number)})`,
    );
  } else if (excluded.size === 0) {
    parts.push('traffic spread by the policy over all of them');
  }
  return parts.join('; ');
}

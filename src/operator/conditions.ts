/** metav1.Condition and the rule that lastTransitionTime moves only when status does (API conventions). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Returns the conditions with `c` set; the order of types is kept stable so unchanged lists compare equal. */
export function setCondition(
  list: readonly Condition[] | undefined,
  c: ConditionInput,
  generation: number,
  now: Date,
): Condition[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? out[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    observedGeneration: generation,
    lastTransitionTime:
      prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString().replace(/\.\d+Z$/, 'Z'),
    reason: c.reason,
    message: c.message,
  };
  if (i >= 0) out[i] = next;
  else out.push(next);
  return out;
}

export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/**
 * Warning events for conditions that turned bad (or changed reason while bad) since `prev`:
 * `bad` maps a condition type to the status that means trouble (Ready → False, Invalid → True).
 */
export function conditionWarnings(
  prev: readonly Condition[] | undefined,
  next: readonly Condition[],
  bad: Record<string, Condition['status']>,
): Array<{ type: 'Warning'; reason: string; message: string }> {
  const out: Array<{ type: 'Warning'; reason: string; message: string }> = [];
  for (const [type, badStatus] of Object.entries(bad)) {
    const was = findCondition(prev, type);
    const is = findCondition(next, type);
    if (is && is.status === badStatus && (was?.status !== is.status || was?.reason !== is.reason)) {
      out.push({ type: 'Warning', reason: is.reason, message: is.message });
    }
  }
  return out;
}

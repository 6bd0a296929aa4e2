/**
 * Status conditions with Kubernetes' conventions (apimachinery's meta.SetStatusCondition):
 * one entry per `type`; `lastTransitionTime` changes only when `status` changes, so a reason or
 * message update never looks like a transition; the list keeps a stable order (by type) so the
 * controller can tell "nothing changed" by comparing lists and skip the status write.
 */
import type { Static } from '@sinclair/typebox';
import type { Condition } from '../api/schema.js';

export type ConditionT = Static<typeof Condition>;

/** The conditions with `next` set; `now` is the RFC 3339 time of a transition. */
export function setCondition(conditions: readonly ConditionT[] | undefined, next: Omit<ConditionT, 'lastTransitionTime'>, now: string): ConditionT[] {
  const current = (conditions ?? []).find((c) => c.type === next.type);
  const lastTransitionTime = current !== undefined && current.status === next.status ? (current.lastTransitionTime ?? now) : now;
  const updated: ConditionT = { ...next, lastTransitionTime };
  return [...(conditions ?? []).filter((c) => c.type !== next.type), updated].sort((a, b) => a.type.localeCompare(b.type));
}

export function findCondition(conditions: readonly ConditionT[] | undefined, type: string): ConditionT | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Whether two condition lists say the same thing (times included). */
export function sameConditions(a: readonly ConditionT[] | undefined, b: readonly ConditionT[] | undefined): boolean {
  const key = (list: readonly ConditionT[] | undefined) =>
    JSON.stringify([...(list ?? [])].sort((x, y) => x.type.localeCompare(y.type)).map((c) => [c.type, c.status, c.reason, c.message, c.observedGeneration, c.lastTransitionTime]));
  return key(a) === key(b);
}

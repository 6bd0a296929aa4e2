/**
 * Kubernetes label selectors (metav1.LabelSelector) evaluated against a set of labels, as the API
 * defines them (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/,
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#set-based-requirement):
 *
 *  - matchLabels and matchExpressions are ANDed; a matchLabels entry is `key In [value]`;
 *  - an absent (null) selector matches nothing, an empty one (no requirement at all) matches
 *    everything;
 *  - `In`: the label is present and its value is one of `values`;
 *    `NotIn`: the label is absent, or its value is none of `values`;
 *    `Exists`: the label is present; `DoesNotExist`: it is absent.
 *    In/NotIn need at least one value, Exists/DoesNotExist none.
 *
 * A requirement this module cannot read (an unknown operator, a malformed entry) is not guessed
 * at: the result is `unknown` with the reason, and callers refuse rather than assume.
 */
import { ownValue } from './kube.js';

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly unknown[];
}

export type SelectorVerdict = { readonly selects: boolean } | { readonly unknown: string };

function has(labels: Readonly<Record<string, string>>, key: string): boolean {
  return typeof ownValue(labels, key) === 'string';
}

function requirementVerdict(requirement: unknown, labels: Readonly<Record<string, string>>, index: number): SelectorVerdict {
  const at = `matchExpressions[${index}]`;
  if (requirement === null || typeof requirement !== 'object' || Array.isArray(requirement)) return { unknown: `${at} is not an object` };
  const { key, operator, values } = requirement as { key?: unknown; operator?: unknown; values?: unknown };
  if (typeof key !== 'string') return { unknown: `${at}.key is not a string` };
  if (values !== undefined && values !== null && (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))) {
    return { unknown: `${at}.values is not a list of strings` };
  }
  const list = (values ?? []) as string[];
  switch (operator) {
    case 'In':
    case 'NotIn': {
      if (list.length === 0) return { unknown: `${at} (${operator}) has no values` };
      const inList = has(labels, key) && list.includes(ownValue(labels, key)!);
      return { selects: operator === 'In' ? inList : !inList };
    }
    case 'Exists':
    case 'DoesNotExist':
      if (list.length > 0) return { unknown: `${at} (${operator}) has values` };
      return { selects: operator === 'Exists' ? has(labels, key) : !has(labels, key) };
    default:
      return { unknown: `${at} has the operator ${JSON.stringify(operator)}; known: In, NotIn, Exists, DoesNotExist` };
  }
}

/** Whether `selector` (a Deployment's `spec.selector`) selects pods with `labels`. */
export function labelSelectorVerdict(selector: LabelSelector | null | undefined, labels: Readonly<Record<string, string>>): SelectorVerdict {
  if (selector === null || selector === undefined) return { selects: false };
  if (typeof selector !== 'object' || Array.isArray(selector)) return { unknown: 'the selector is not an object' };
  const { matchLabels, matchExpressions } = selector;
  if (matchLabels !== undefined && matchLabels !== null && (typeof matchLabels !== 'object' || Array.isArray(matchLabels))) {
    return { unknown: 'matchLabels is not a map' };
  }
  if (matchExpressions !== undefined && matchExpressions !== null && !Array.isArray(matchExpressions)) {
    return { unknown: 'matchExpressions is not a list' };
  }
  let selects = true;
  for (const [key, value] of Object.entries(matchLabels ?? {})) {
    if (typeof value !== 'string') return { unknown: `matchLabels.${key} is not a string` };
    if (ownValue(labels, key) !== value) selects = false;
  }
  // Every requirement is read, so one that cannot be read is reported even after a mismatch.
  for (const [index, requirement] of (matchExpressions ?? []).entries()) {
    const verdict = requirementVerdict(requirement, labels, index);
    if ('unknown' in verdict) return verdict;
    if (!verdict.selects) selects = false;
  }
  return { selects };
}

/**
 * Whether a Service's `spec.selector` (a plain label map) selects pods with `labels`. A Service
 * without a selector, or with an empty one, manages no endpoints: it selects no pods.
 */
export function serviceSelectorSelects(selector: Readonly<Record<string, unknown>> | null | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (selector === null || selector === undefined || typeof selector !== 'object') return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => typeof v === 'string' && ownValue(labels, k) === v);
}

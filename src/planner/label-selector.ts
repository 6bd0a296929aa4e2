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

/**
 * What a selector requires, for {@link LabelIndex}: `exact` when it selects exactly the label
 * sets holding every one of `entries` (a non-empty list), `none` when it selects nothing, `any`
 * when it must be evaluated for every label set (set-based requirements, unreadable shapes).
 */
export type SelectorRequirement = { readonly exact: ReadonlyArray<readonly [string, string]> } | 'none' | 'any';

/** A Service selector as serviceSelectorSelects reads it. */
export function serviceSelectorRequirement(selector: Readonly<Record<string, unknown>> | null | undefined): SelectorRequirement {
  if (selector === null || selector === undefined || typeof selector !== 'object') return 'none';
  const entries = Object.entries(selector);
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== 'string')) return 'none';
  return { exact: entries as Array<[string, string]> };
}

/** A Deployment selector as labelSelectorVerdict reads it: only plain matchLabels are exact. */
export function labelSelectorRequirement(selector: LabelSelector | null | undefined): SelectorRequirement {
  if (selector === null || selector === undefined) return 'none';
  if (typeof selector !== 'object' || Array.isArray(selector)) return 'any';
  const { matchLabels, matchExpressions } = selector;
  if (matchExpressions !== undefined && matchExpressions !== null && !(Array.isArray(matchExpressions) && matchExpressions.length === 0)) return 'any';
  if (matchLabels === undefined || matchLabels === null || typeof matchLabels !== 'object' || Array.isArray(matchLabels)) return 'any';
  const entries = Object.entries(matchLabels);
  if (entries.length === 0 || entries.some(([, v]) => typeof v !== 'string')) return 'any';
  return { exact: entries };
}

/** Objects with label selectors: `candidates(labels)` holds, in input order, every one that may select `labels`. */
export interface SelectorCandidates<T> {
  candidates(labels: Readonly<Record<string, string>>): T[];
}

/**
 * Objects indexed by the labels their selectors require, so that finding those that may select
 * one label set does not evaluate every selector. Each `exact` object is filed under one
 * `key=value` it requires, the one fewest objects require (so that a label most selectors share
 * does not collect them all); `any` objects are candidates for every label set; `none` objects
 * for none. `candidates(labels)` is a superset of the objects selecting `labels`, in their
 * original order; the caller still evaluates each selector.
 */
export class LabelIndex<T> implements SelectorCandidates<T> {
  readonly #items: readonly T[];
  readonly #buckets = new Map<string, number[]>();
  readonly #always: number[] = [];

  constructor(items: readonly T[], requirement: (item: T) => SelectorRequirement) {
    this.#items = items;
    const requirements = items.map(requirement);
    const entryKey = (key: string, value: string) => `${key}\u0000${value}`;
    const counts = new Map<string, number>();
    for (const r of requirements) {
      if (typeof r !== 'object') continue;
      for (const [k, v] of r.exact) counts.set(entryKey(k, v), (counts.get(entryKey(k, v)) ?? 0) + 1);
    }
    requirements.forEach((r, index) => {
      if (r === 'any') this.#always.push(index);
      if (typeof r !== 'object') return;
      let best = entryKey(...r.exact[0]!);
      for (const [k, v] of r.exact) if (counts.get(entryKey(k, v))! < counts.get(best)!) best = entryKey(k, v);
      const bucket = this.#buckets.get(best);
      if (bucket === undefined) this.#buckets.set(best, [index]);
      else bucket.push(index);
    });
  }

  candidates(labels: Readonly<Record<string, string>>): T[] {
    const found = [...this.#always];
    for (const [key, value] of Object.entries(labels)) found.push(...(this.#buckets.get(`${key}\u0000${value}`) ?? []));
    return found.sort((a, b) => a - b).map((i) => this.#items[i]!);
  }
}

/**
 * RouteGroup membership: a RouteGroup selects the Sandboxes of its own namespace whose labels
 * satisfy `spec.match` (label globs combined with `any` / `all`).
 */
import type { LabelMatchT, RouteGroupMatchT, RouteGroupObject, SandboxObject } from '../api/schema.js';
import { ownValue } from './kube.js';

/**
 * Whether `glob` matches all of `value`: `*` matches any run of characters (also none), `?`
 * exactly one, every other character itself. Greedy two-pointer matching without a RegExp:
 * on a mismatch only the most recent `*` is widened by one character, which is enough because
 * any match of the earlier stars can be kept (a later star absorbs what an earlier one would).
 * At most O(glob.length * value.length) steps, whatever the input.
 */
export function globMatches(glob: string, value: string): boolean {
  const g = [...glob];
  const v = [...value];
  let gi = 0;
  let vi = 0;
  let star = -1; // index in g of the last `*` seen
  let starValue = 0; // index in v where that `*`'s current run ends
  while (vi < v.length) {
    if (gi < g.length && (g[gi] === '?' || (g[gi] !== '*' && g[gi] === v[vi]))) {
      gi++;
      vi++;
    } else if (gi < g.length && g[gi] === '*') {
      star = gi++;
      starValue = vi;
    } else if (star >= 0) {
      gi = star + 1;
      vi = ++starValue;
    } else {
      return false;
    }
  }
  while (gi < g.length && g[gi] === '*') gi++;
  return gi === g.length;
}

interface MatchNode {
  label?: LabelMatchT;
  any?: readonly MatchNode[];
  all?: readonly MatchNode[];
}

function matches(node: MatchNode, labels: Record<string, string>): boolean {
  if (node.label !== undefined) {
    const value = ownValue(labels, node.label.key);
    return typeof value === 'string' && globMatches(node.label.value, value);
  }
  if (node.any !== undefined) return node.any.some((n) => matches(n, labels));
  if (node.all !== undefined) return node.all.every((n) => matches(n, labels));
  return false;
}

export function routeGroupSelects(match: RouteGroupMatchT, labels: Record<string, string>): boolean {
  return matches(match as MatchNode, labels);
}

/** Members of a RouteGroup among `sandboxes`, in name order. */
export function routeGroupMembers(group: RouteGroupObject, sandboxes: readonly SandboxObject[]): SandboxObject[] {
  const namespace = group.metadata.namespace ?? 'default';
  return sandboxes
    .filter((s) => (s.metadata.namespace ?? 'default') === namespace && routeGroupSelects(group.spec.match, s.metadata.labels ?? {}))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

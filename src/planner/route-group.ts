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
  return new RouteGroupIndex(sandboxes).members(group);
}

/**
 * `sandboxes` indexed by namespace, label key and label value, so that matching many RouteGroups
 * does not test every Sandbox against every group. A `label` condition can hold only for
 * Sandboxes with that label (with that exact value when the glob has no `*` or `?`); `all` only
 * for the candidates of its most selective condition; `any` for the union of its conditions'.
 * The candidates are then matched as routeGroupSelects does, so members() equals a full scan.
 */
export class RouteGroupIndex {
  readonly #sandboxes: readonly SandboxObject[];
  /** `namespace\0key` and `namespace\0key\0value` -> indexes into #sandboxes, ascending. */
  readonly #byLabel = new Map<string, number[]>();

  constructor(sandboxes: readonly SandboxObject[]) {
    this.#sandboxes = sandboxes;
    sandboxes.forEach((sandbox, index) => {
      const namespace = sandbox.metadata.namespace ?? 'default';
      for (const [key, value] of Object.entries(sandbox.metadata.labels ?? {})) {
        if (typeof value !== 'string') continue;
        for (const id of [`${namespace}\u0000${key}`, `${namespace}\u0000${key}\u0000${value}`]) {
          const list = this.#byLabel.get(id);
          if (list === undefined) this.#byLabel.set(id, [index]);
          else list.push(index);
        }
      }
    });
  }

  /** Indexes of the Sandboxes of `namespace` that `node` may select (a superset of those it does). */
  #candidates(node: MatchNode, namespace: string): readonly number[] {
    if (node.label !== undefined) {
      const exact = !/[*?]/.test(node.label.value);
      const id = exact ? `${namespace}\u0000${node.label.key}\u0000${node.label.value}` : `${namespace}\u0000${node.label.key}`;
      return this.#byLabel.get(id) ?? [];
    }
    // The same order of fields as matches().
    if (node.any !== undefined) return [...new Set(node.any.flatMap((child) => [...this.#candidates(child, namespace)]))].sort((a, b) => a - b);
    if (node.all !== undefined) {
      let best: readonly number[] | undefined;
      for (const child of node.all) {
        const candidates = this.#candidates(child, namespace);
        if (best === undefined || candidates.length < best.length) best = candidates;
      }
      return best ?? [];
    }
    return [];
  }

  /** Members of `group` among the indexed Sandboxes, in name order. */
  members(group: RouteGroupObject): SandboxObject[] {
    const namespace = group.metadata.namespace ?? 'default';
    return this.#candidates(group.spec.match as MatchNode, namespace)
      .map((i) => this.#sandboxes[i]!)
      .filter((s) => routeGroupSelects(group.spec.match, s.metadata.labels ?? {}))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
}

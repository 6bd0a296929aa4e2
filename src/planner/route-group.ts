/**
 * RouteGroup membership: a RouteGroup selects the Sandboxes of its own namespace whose labels
 * satisfy `spec.match` (label globs combined with `any` / `all`).
 */
import type { LabelMatchT, RouteGroupMatchT, RouteGroupObject, SandboxObject } from '../api/schema.js';

/** Glob to a full-match RegExp: `*` any run of characters, `?` exactly one. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

interface MatchNode {
  label?: LabelMatchT;
  any?: readonly MatchNode[];
  all?: readonly MatchNode[];
}

function matches(node: MatchNode, labels: Record<string, string>): boolean {
  if (node.label !== undefined) {
    const value = labels[node.label.key];
    return value !== undefined && globToRegExp(node.label.value).test(value);
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

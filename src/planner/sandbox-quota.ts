/**
 * Quotas on Sandboxes (`policy.maxSandboxesPerNamespace`, `policy.maxForksPerSandbox`). The CRD
 * cannot check them (a Sandbox's schema cannot see the other Sandboxes), so the planner does.
 *
 * Which Sandboxes of a namespace are over its quota is decided by age: they are served oldest
 * first (creationTimestamp, then namespace/name; objects without a creationTimestamp, as in
 * `synth`, come after those with one, by name), and every Sandbox after the first
 * `maxSandboxesPerNamespace` is over. A new Sandbox therefore never pushes out one that works;
 * deleting a served one lets the oldest waiting one in. Sandboxes being deleted do not count (their
 * finalizer is removing what they had).
 */
import type { SandboxObject } from '../api/schema.js';
import type { Problem } from '../api/problem.js';
import { namespaceOf } from './inventory.js';

type Named = { metadata: { name: string; namespace?: string } };

function createdAt(object: Named): number {
  const t = (object.metadata as { creationTimestamp?: unknown }).creationTimestamp;
  if (t instanceof Date) return t.getTime();
  return typeof t === 'string' ? Date.parse(t) : Number.POSITIVE_INFINITY;
}

/** Whether `a` was created before `b`: creationTimestamp, then namespace/name. */
export function olderThan(a: Named, b: Named): boolean {
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta < tb;
  return `${a.metadata.namespace ?? 'default'}/${a.metadata.name}` < `${b.metadata.namespace ?? 'default'}/${b.metadata.name}`;
}

function beingDeleted(sandbox: SandboxObject): boolean {
  return (sandbox.metadata as { deletionTimestamp?: unknown }).deletionTimestamp !== undefined;
}

/** A problem for a Sandbox with more forks than `max` allows. */
export function forkQuotaProblem(sandbox: SandboxObject, ref: string, max: number | undefined): Problem | undefined {
  const count = sandbox.spec.forks.length;
  if (max === undefined || count <= max) return undefined;
  return { object: ref, path: 'spec.forks', message: `has ${count} forks; a Sandbox may have at most ${max} (policy.maxForksPerSandbox); remove ${count - max}` };
}

/**
 * Problems for the Sandboxes of `sandboxes` that are over their namespace's quota `max`, by
 * `namespace/name` (see the module comment for the order). `sandboxes` must hold every Sandbox
 * of the namespaces concerned.
 */
export function namespaceQuotaProblems(sandboxes: readonly SandboxObject[], max: number | undefined, refOf: (s: SandboxObject) => string): Map<string, Problem> {
  const over = new Map<string, Problem>();
  if (max === undefined) return over;
  const byNamespace = new Map<string, SandboxObject[]>();
  for (const s of sandboxes) {
    if (beingDeleted(s)) continue;
    const ns = namespaceOf(s);
    byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), s]);
  }
  for (const [namespace, list] of byNamespace) {
    if (list.length <= max) continue;
    list.sort((a, b) => (olderThan(a, b) ? -1 : olderThan(b, a) ? 1 : 0));
    list.slice(max).forEach((s, i) => {
      over.set(`${namespace}/${s.metadata.name}`, {
        object: refOf(s),
        path: 'metadata.namespace',
        message: `namespace "${namespace}" holds ${list.length} Sandboxes and at most ${max} are served (policy.maxSandboxesPerNamespace); the oldest ${max} are, this one is number ${max + i + 1}: delete a Sandbox of the namespace or raise the quota`,
      });
    });
  }
  return over;
}

/**
 * One Sandbox planned on its own. plan() is all-or-nothing over its input, so the reconciler
 * plans every Sandbox alone (with the RouteGroups it belongs to): one invalid Sandbox then never
 * blocks the others, and its problems are exactly the planner's problems about it.
 *
 * Checks that need the other Sandboxes, done here because a lone plan cannot see them:
 *  - routing keys: a key derived from an object's identity belongs to that object (as in plan());
 *    among Sandboxes and RouteGroups that write the same key into spec.routingKey, the older
 *    (creationTimestamp, then namespace/name) keeps it;
 *  - generated names: an object the plan wants that already exists with another Sandbox's labels
 *    is a conflict for this one; it is never taken over.
 */
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { validateSandbox } from '../api/validate.js';
import type { Problem } from '../api/problem.js';
import { objectRef, plan, type PlanConfig, type PlanResult, type SandboxPlan } from '../planner/plan.js';
import { routeGroupMembers } from '../planner/route-group.js';
import { namespaceQuotaProblems } from '../planner/sandbox-quota.js';
import type { KubeObject } from '../planner/kube.js';
import { namespaceOf, serviceFqdn, type Inventory } from '../planner/inventory.js';
import { MERGED_ROUTES_ANNOTATION, isMeshforkRoute, type HttpRoute } from '../planner/virtual-service.js';
import {
  ArraysMemo,
  baselineServiceOf,
  canonicalJson,
  claimantsOfKey,
  forkNamespaces,
  gitOpsNamespaces,
  idOf,
  inventoryOfView,
  isManaged,
  olderThan,
  ownerOf,
  routingKeyOf,
  sameId,
  sandboxKindArrays,
  sandboxKindObjects,
  type ClusterView,
} from './view.js';

export interface SandboxVerdict {
  readonly sandbox: SandboxObject;
  /** Problems with this Sandbox; empty when it is valid. */
  readonly problems: readonly Problem[];
  /** Status reason of the problems when they are not the spec's: `NamespaceClaimedByGitOps` (ADR 0016). */
  readonly reason?: string;
  /** The planner's account of it (empty forks when invalid). */
  readonly plan: SandboxPlan | undefined;
  readonly routingKey: string;
  /** Objects to apply for it, in apply order (policy copies, Deployments, Services, DestinationRules, EnvoyFilters); empty when invalid. */
  readonly objects: readonly KubeObject[];
  /** Baseline Services (hosts) it forks: `{ namespace, service }`. */
  readonly hosts: ReadonlyArray<{ namespace: string; service: string }>;
  /** RouteGroups it belongs to that hold their keys. */
  readonly routeGroups: readonly RouteGroupObject[];
  /** Its lifetime: spec.ttl, else the configuration's policy.defaultTtl; undefined: none. */
  readonly ttl: SandboxObject['spec']['ttl'];
}

type Keyed = SandboxObject | RouteGroupObject;

function derivedKeyOwner(object: Keyed): boolean {
  return object.spec.routingKey === undefined;
}

/**
 * Whether `object` keeps its routing key against every other Sandbox and RouteGroup: a derived
 * key always stays its owner's; an explicit key loses to a derived one and to older explicit ones.
 */
export function keyHolder(object: Keyed, others: readonly Keyed[]): Keyed | undefined {
  const key = routingKeyOf(object);
  for (const other of others) {
    if (other === object || (other.kind === object.kind && sameId(idOf(other), idOf(object)))) continue;
    if (routingKeyOf(other) !== key) continue;
    if (derivedKeyOwner(object)) continue;
    if (derivedKeyOwner(other) || olderThan(other, object)) return other;
  }
  return undefined;
}

/** keyHolder against every Sandbox and RouteGroup of the view with the same key (claimantsOfKey). */
export function keyHolderIn(object: Keyed, view: ClusterView): Keyed | undefined {
  return keyHolder(object, claimantsOfKey(view, routingKeyOf(object)));
}

/** RouteGroups of the Sandbox's namespace that select it and keep their own keys. */
export function groupsOf(sandbox: SandboxObject, view: ClusterView): RouteGroupObject[] {
  return view.routeGroups.filter((g) => namespaceOf(g) === namespaceOf(sandbox) && routeGroupMembers(g, [sandbox]).length === 1 && keyHolderIn(g, view) === undefined);
}

/** The user's object as the schema knows it (the API server adds metadata and status). */
function asWritten(sandbox: SandboxObject): unknown {
  const { name, namespace, labels, annotations } = sandbox.metadata;
  return {
    apiVersion: sandbox.apiVersion,
    kind: sandbox.kind,
    metadata: { name, ...(namespace !== undefined ? { namespace } : {}), ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
    spec: sandbox.spec,
  };
}

const byRef = new ArraysMemo<Map<string, KubeObject>>();

/** Cached objects of the kinds a Sandbox owns (sandboxKindObjects) by `Kind ns/name`, once per version of those caches. */
function generatedByRef(view: ClusterView): Map<string, KubeObject> {
  return byRef.get(sandboxKindArrays(view), () => new Map(sandboxKindObjects(view).map((o) => [objectRef(o), o])));
}

const quotas = new ArraysMemo<Map<string, Problem>>();

/** The Sandboxes of the view over their namespace's quota (sandbox-quota.ts), once per version of the Sandboxes and quota. */
function overQuota(view: ClusterView, max: number | undefined): Map<string, Problem> {
  return quotas.get([view.sandboxes, max], () => namespaceQuotaProblems(view.sandboxes, max, objectRef));
}

const lonePlanInventories = new WeakMap<Inventory, Inventory>();

/** A user VirtualService without meshfork's routes and route count: what a lone plan reads of it. */
function withoutOurRoutes(vs: KubeObject): KubeObject {
  const http = (vs.spec as { http?: HttpRoute[] } | undefined)?.http;
  const annotations = vs.metadata.annotations;
  const counted = annotations !== undefined && Object.hasOwn(annotations, MERGED_ROUTES_ANNOTATION);
  if (!counted && (http === undefined || !http.some(isMeshforkRoute))) return vs;
  const { [MERGED_ROUTES_ANNOTATION]: _count, ...userAnnotations } = annotations ?? {};
  return {
    ...vs,
    metadata: { ...vs.metadata, ...(annotations !== undefined ? { annotations: userAnnotations } : {}) },
    ...(http !== undefined ? { spec: { ...(vs.spec as object), http: http.filter((r) => !isMeshforkRoute(r)) } } : {}),
  };
}

/**
 * The inventory a lone plan reads: the view's baseline, with meshfork's own routes (and the
 * `meshfork.dev/merged-routes` count) left out of the user VirtualServices. plan() strips those
 * routes before it merges (mergeVirtualService) and a lone plan's VirtualServices are not used, so
 * the plan is the same; without this, every lone plan cloned and scanned the routes of every
 * Sandbox forking the host, and a host reconcile (a lone plan per Sandbox) grew with the square
 * of the Sandboxes. Once per view.
 */
export function lonePlanInventory(view: ClusterView): Inventory {
  const full = inventoryOfView(view);
  let inventory = lonePlanInventories.get(full);
  if (inventory === undefined) {
    inventory = { ...full, virtualServices: full.virtualServices.map(withoutOurRoutes) };
    lonePlanInventories.set(full, inventory);
  }
  return inventory;
}

/** Status reason of a Sandbox that forks into a namespace of the GitOps path. */
export const NAMESPACE_CLAIMED_REASON = 'NamespaceClaimedByGitOps';

/**
 * A Sandbox forking into a namespace claimed by the GitOps path (it holds `meshfork synth`/cdk8s
 * output, ADR 0016) gets nothing written: one problem per such namespace, naming what claims it.
 */
export function gitOpsClaimProblems(sandbox: SandboxObject, view: ClusterView): Problem[] {
  const claimed = gitOpsNamespaces(view);
  if (claimed.size === 0) return [];
  const own = namespaceOf(sandbox);
  return forkNamespaces(sandbox).flatMap((namespace) => {
    const output = claimed.get(namespace);
    if (output === undefined) return [];
    const index = sandbox.spec.forks.findIndex((f) => (f.forkOf.namespace ?? own) === namespace);
    const names = output.slice(0, 3).map(objectRef).join(', ') + (output.length > 3 ? ` and ${output.length - 3} more` : '');
    return [
      {
        object: objectRef(sandbox),
        path: namespace === own ? 'metadata.namespace' : `spec.forks[${index}].forkOf.namespace`,
        message: `namespace "${namespace}" belongs to the GitOps path: it holds ${names}, generated by meshfork synth or cdk8s with no Sandbox in the cluster; the controller writes nothing there (docs/adr/0016)`,
      },
    ];
  });
}

/** What the API server sets on every write: left out when two versions of an object are compared. */
const SERVER_SET = ['resourceVersion', 'generation', 'managedFields'] as const;

function sameBaselineContent(a: KubeObject, b: KubeObject): boolean {
  const content = (o: KubeObject) => {
    const metadata: Record<string, unknown> = { ...o.metadata };
    for (const field of SERVER_SET) delete metadata[field];
    return canonicalJson({ ...o, metadata });
  };
  return content(a) === content(b);
}

function sameElements(a: readonly unknown[] | undefined, b: readonly unknown[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface MemoizedPlan {
  /** loneInput() of the Sandbox planned, as canonical JSON. */
  readonly input: string;
  readonly inventory: Inventory;
  readonly config: Partial<PlanConfig> | undefined;
  readonly routeGroups: readonly RouteGroupObject[];
  readonly result: PlanResult;
}

/**
 * Lone plans remembered across views, for a reconciler that plans every Sandbox again on each
 * reconcile of a host. A lone plan reads the Sandbox (loneInput: not its status), its RouteGroups,
 * the configuration and the lone-plan inventory; informer caches replace an object when it
 * changes and keep it otherwise, so the plan() result is reused while the Sandbox's input is equal
 * and each of the others is the same object as when it was computed.
 * The inventory is kept as the same object while the baseline stays the same: every object
 * identical, or (for a user VirtualService written again with other meshfork routes) equal but
 * for what the API server sets on a write. One memo per controller; pure otherwise (no I/O).
 */
export class LonePlanMemo {
  private inventory: Inventory | undefined;
  /** A user VirtualService version → what a lone plan reads of it, reused across versions that differ only in meshfork's routes. */
  private readonly userView = new WeakMap<KubeObject, KubeObject>();
  private readonly lastUserView = new Map<string, KubeObject>();
  /** By `namespace/name`: a new version of a Sandbox that changed only its status or server-set metadata reuses its plan. */
  private readonly plans = new Map<string, MemoizedPlan>();
  private readonly inputs = new WeakMap<SandboxObject, { object: SandboxObject; json: string }>();
  private readonly schema = new WeakMap<SandboxObject, Problem[]>();
  /** plan() runs and memo hits (for tests and benchmarks). */
  readonly counts = { planned: 0, reused: 0 };
  /** Per stored Sandbox version: the baseline hosts (FQDNs) its lone plan over `inventory` forks. */
  private readonly hostsByVersion = new WeakMap<SandboxObject, { inventory: Inventory; hosts: ReadonlySet<string> }>();

  /** By inventoryOfView's object (one per version of the baseline caches). */
  private readonly byInventory = new WeakMap<Inventory, Inventory>();
  private sandboxesSeen: readonly SandboxObject[] | undefined;

  /** lonePlanInventory(view), as the same object as last time when the baseline did not change. */
  inventoryOf(view: ClusterView): Inventory {
    if (this.sandboxesSeen !== view.sandboxes) {
      // Plans of Sandboxes gone from the cache are dropped.
      this.sandboxesSeen = view.sandboxes;
      const present = new Set(view.sandboxes.map((s) => `${namespaceOf(s)}/${s.metadata.name}`));
      for (const id of this.plans.keys()) if (!present.has(id)) this.plans.delete(id);
    }
    const full = inventoryOfView(view);
    let inventory = this.byInventory.get(full);
    if (inventory === undefined) {
      inventory = this.stableInventory(full);
      this.byInventory.set(full, inventory);
    }
    return inventory;
  }

  private stableInventory(full: Inventory): Inventory {
    const seen = new Set<string>();
    const virtualServices = full.virtualServices.map((vs) => {
      let stripped = this.userView.get(vs);
      const ref = objectRef(vs);
      seen.add(ref);
      if (stripped === undefined) {
        stripped = withoutOurRoutes(vs);
        const last = this.lastUserView.get(ref);
        if (last !== undefined && sameBaselineContent(last, stripped)) stripped = last;
        this.userView.set(vs, stripped);
      }
      this.lastUserView.set(ref, stripped);
      return stripped;
    });
    for (const ref of this.lastUserView.keys()) if (!seen.has(ref)) this.lastUserView.delete(ref);
    const next: Inventory = { ...full, virtualServices };
    const previous = this.inventory;
    const keys = new Set([...Object.keys(next), ...Object.keys(previous ?? {})]) as Set<keyof Inventory>;
    if (previous !== undefined && [...keys].every((k) => sameElements(previous[k] as readonly unknown[] | undefined, next[k] as readonly unknown[] | undefined))) return previous;
    this.inventory = next;
    return next;
  }

  /** plan() of one Sandbox alone (without VirtualServices), or the result computed for the same inputs before. */
  plan(sandbox: SandboxObject, routeGroups: readonly RouteGroupObject[], config: Partial<PlanConfig> | undefined, inventory: Inventory): PlanResult {
    let input = this.inputs.get(sandbox);
    if (input === undefined) {
      const object = loneInput(sandbox);
      input = { object, json: canonicalJson(object) };
      this.inputs.set(sandbox, input);
    }
    const id = `${namespaceOf(sandbox)}/${sandbox.metadata.name}`;
    const known = this.plans.get(id);
    if (known !== undefined && known.input === input.json && known.inventory === inventory && known.config === config && sameElements(known.routeGroups, routeGroups)) {
      this.counts.reused++;
      this.hostsByVersion.set(sandbox, { inventory, hosts: forkedHosts(known.result) });
      return known.result;
    }
    this.counts.planned++;
    const planned = plan({ inventory, sandboxes: [input.object], routeGroups: [...routeGroups], ...(config ? { config } : {}) });
    // A lone plan's VirtualServices are never used (Host reconciles plan routes): not kept.
    const result = { ...planned, objects: planned.objects.filter((o) => o.kind !== 'VirtualService') };
    this.plans.set(id, { input: input.json, inventory, config, routeGroups, result });
    this.hostsByVersion.set(sandbox, { inventory, hosts: forkedHosts(result) });
    return result;
  }

  /**
   * The hosts (FQDNs) the last lone plan of this stored version of the Sandbox over `inventory`
   * forks, whether or not the Sandbox is valid; undefined when it was not planned over that
   * inventory. A valid verdict's hosts are among them (they come from the same plan's fork
   * Services), so a host reconcile can pass over a Sandbox whose planned hosts miss its own.
   */
  plannedHosts(sandbox: SandboxObject, inventory: Inventory): ReadonlySet<string> | undefined {
    const known = this.hostsByVersion.get(sandbox);
    return known !== undefined && known.inventory === inventory ? known.hosts : undefined;
  }

  /** Schema problems of the stored Sandbox (validateSandbox), once per version. */
  schemaProblems(sandbox: SandboxObject): Problem[] {
    let problems = this.schema.get(sandbox);
    if (problems === undefined) {
      problems = schemaProblemsOf(sandbox);
      this.schema.set(sandbox, problems);
    }
    return problems;
  }
}

/**
 * What plan() reads of a Sandbox: kind, name, namespace, labels, uid, creation time and spec.
 * Left out: the status, what the API server sets on every write (resourceVersion, generation,
 * managedFields, finalizers) and the annotations, which the planner never reads on a Sandbox
 * (tools write them freely: kubectl's last-applied-configuration, Argo CD's tracking id), so a
 * status write or an annotation edit does not make its plan new. The schema check of the
 * annotations is per stored version (schemaProblems). sandbox-plan.test.ts checks that plan()
 * gives the same objects whatever the annotations.
 */
function loneInput(sandbox: SandboxObject): SandboxObject {
  const { name, namespace, labels, uid, creationTimestamp } = sandbox.metadata as SandboxObject['metadata'] & { uid?: string; creationTimestamp?: string };
  const metadata = { name, ...(namespace !== undefined ? { namespace } : {}), ...(labels ? { labels } : {}), ...(uid !== undefined ? { uid } : {}), ...(creationTimestamp !== undefined ? { creationTimestamp } : {}) };
  return { apiVersion: sandbox.apiVersion, kind: sandbox.kind, metadata, spec: sandbox.spec } as SandboxObject;
}

/** The baseline hosts (FQDNs) behind the fork Services of a lone plan. */
function forkedHosts(result: PlanResult): ReadonlySet<string> {
  const hosts = new Set<string>();
  for (const o of result.objects) {
    const baseline = o.kind === 'Service' ? baselineServiceOf(o) : undefined;
    if (baseline !== undefined) hosts.add(serviceFqdn(baseline.service, baseline.namespace));
  }
  return hosts;
}

function schemaProblemsOf(sandbox: SandboxObject): Problem[] {
  const ref = objectRef(sandbox);
  return validateSandbox(asWritten(sandbox)).map((p) => ({ ...p, object: p.object ?? ref }));
}

/**
 * Plans one Sandbox alone against the view. `memo` (one per controller) reuses lone plans whose
 * inputs did not change; without it every call runs plan().
 */
export function planSandbox(sandbox: SandboxObject, view: ClusterView, config: Partial<PlanConfig> | undefined, memo?: LonePlanMemo): SandboxVerdict {
  const ref = objectRef(sandbox);
  const routingKey = routingKeyOf(sandbox);
  const routeGroups = groupsOf(sandbox, view);
  const ttl = sandbox.spec.ttl ?? config?.policy?.defaultTtl;
  const invalid = (problems: Problem[], planned?: SandboxPlan): SandboxVerdict => ({ sandbox, problems, plan: planned, routingKey, objects: [], hosts: [], routeGroups, ttl });

  const schemaProblems = memo?.schemaProblems(sandbox) ?? schemaProblemsOf(sandbox);
  if (schemaProblems.length > 0) return invalid(schemaProblems);
  const claimed = gitOpsClaimProblems(sandbox, view);
  if (claimed.length > 0) return { ...invalid(claimed), reason: NAMESPACE_CLAIMED_REASON };
  const holder = keyHolderIn(sandbox, view);
  const keyProblems: Problem[] =
    holder === undefined ? [] : [{ object: ref, path: 'spec.routingKey', message: `routing key "${routingKey}" is already used by ${objectRef(holder)}` }];
  // A lone plan cannot count the namespace's Sandboxes: the quota is read from the whole view.
  const quota = overQuota(view, config?.policy?.maxSandboxesPerNamespace).get(`${namespaceOf(sandbox)}/${sandbox.metadata.name}`);
  if (quota !== undefined) keyProblems.push(quota);

  const result = memo
    ? memo.plan(sandbox, routeGroups, config, memo.inventoryOf(view))
    : plan({ inventory: lonePlanInventory(view), sandboxes: [sandbox], routeGroups, ...(config ? { config } : {}) });
  const planned = result.sandboxes[0];
  const problems = [...keyProblems, ...result.problems];
  if (problems.length > 0) return invalid(problems, planned);

  const objects = result.objects.filter((o) => o.kind !== 'VirtualService');
  const existing = generatedByRef(view);
  const conflicts: Problem[] = [];
  for (const object of objects) {
    const other = existing.get(objectRef(object));
    if (other === undefined || !isManaged(other)) continue; // unmanaged ones are refused by plan()
    const owner = ownerOf(other);
    if (owner !== undefined && sameId(owner, idOf(sandbox))) continue;
    conflicts.push({
      object: ref,
      path: 'metadata.name',
      message: `generated ${objectRef(object)} already exists for ${owner ? `Sandbox ${owner.namespace}/${owner.name}` : 'another meshfork object'}; rename this Sandbox`,
    });
  }
  if (conflicts.length > 0) return invalid(conflicts, planned);

  const hosts = objects.flatMap((o) => (o.kind === 'Service' ? (baselineServiceOf(o) ?? []) : []));
  return { sandbox, problems: [], plan: planned, routingKey, objects, hosts, routeGroups, ttl };
}

/**
 * Per-host routing decisions (pure). A host key names one baseline Service; its reconcile
 * recomputes the VirtualService(s) routing that host from every Sandbox eligible for routes.
 *
 * Make before break: a Sandbox gets routes only once it is valid, not being deleted, every fork
 * Service it needs exists and every fork Deployment has an available replica. A Sandbox already
 * routed in a current VirtualService keeps its routes while it stays valid even if its forks
 * lose their replicas (a keyed request that fails loudly beats one that silently tests the
 * baseline). A Sandbox being deleted, or invalid, loses its routes first; its forks go after.
 */
import type { Problem } from '../api/problem.js';
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { objectRef, plan, type PlanConfig } from '../planner/plan.js';
import type { KubeObject } from '../planner/kube.js';
import { namespaceOf, serviceFqdn, type Inventory } from '../planner/inventory.js';
import { ownedVirtualServiceName } from '../planner/virtual-service.js';
import type { SandboxVerdict } from './sandbox-plan.js';
import { derivedRoutesOf, isGatewayRoute, parentHosts, sendsTo } from './gateway-routes.js';
import { baselineServiceOf, canonicalJson, generatedFor, gitOpsNamespaces, idOf, inventoryOfView, isManaged, routesSandbox, serviceHostsOf, userVirtualServicesRouting, virtualServicesForHost, serverMeta, type ClusterView } from './view.js';

export interface Eligibility {
  readonly eligible: boolean;
  /** Why not (or why it keeps routes it has), for status messages. */
  readonly reason: string;
}

/**
 * A Deployment's rollout as its status reports it. Rolled out (as `kubectl rollout status` reads
 * it): the controller observed the current generation, every desired replica is updated and
 * available, and no old replica is left.
 */
export function deploymentAvailability(deployment: KubeObject): { desired: number; available: number; updated: number; total: number; current: boolean } {
  const spec = (deployment.spec ?? {}) as { replicas?: number };
  const status = (deployment['status'] ?? {}) as { availableReplicas?: number; updatedReplicas?: number; replicas?: number; observedGeneration?: number };
  const generation = serverMeta(deployment).generation;
  return {
    desired: spec.replicas ?? 1,
    available: status.availableReplicas ?? 0,
    updated: status.updatedReplicas ?? 0,
    total: status.replicas ?? 0,
    current: generation === undefined || (status.observedGeneration ?? 0) >= generation,
  };
}

/**
 * Whether a VirtualService the controller may write still routes `sandbox`, or a derived
 * HTTPRoute/GRPCRoute of it still exists (routes in a GitOps namespace are not its to remove).
 */
export function isRouted(view: ClusterView, sandbox: SandboxObject): boolean {
  return view.virtualServices.some((vs) => routesSandbox(vs, sandbox) && isWritable(view, vs)) || derivedRoutesOf(view, sandbox).some((r) => isWritable(view, r));
}

/**
 * Whether the Sandbox is routed on `host` (an FQDN) now: the host's VirtualService holds its
 * routes, or one of its derived routes sends requests to a fork Service behind the host.
 */
function routedOn(view: ClusterView, verdict: SandboxVerdict, host: string): boolean {
  if (virtualServicesForHost(view, host).some((vs) => routesSandbox(vs, verdict.sandbox))) return true;
  const forks = forksBehind(verdict, host).services;
  return forks.length > 0 && derivedRoutesOf(view, verdict.sandbox).some((r) => sendsTo(r, forks));
}

/**
 * The fork Services and fork Deployments behind one forked host (FQDN) of a valid Sandbox, or
 * behind all of its hosts when `host` is undefined; `forks` are indexes into spec.forks.
 */
export function forksBehind(verdict: SandboxVerdict, host?: string): { services: KubeObject[]; deployments: KubeObject[]; forks: number[] } {
  const services = verdict.objects.filter((o) => {
    if (o.kind !== 'Service') return false;
    const baseline = baselineServiceOf(o);
    return host === undefined || (baseline !== undefined && serviceFqdn(baseline.service, baseline.namespace) === host);
  });
  const names = new Set(services.map(objectRef));
  const forks: number[] = [];
  const deployments: KubeObject[] = [];
  (verdict.plan?.forks ?? []).forEach((f, i) => {
    const namespace = f.forkOf.split('/')[0] ?? '';
    if (host !== undefined && !f.services.some((s) => names.has(`Service ${namespace}/${s}`))) return;
    forks.push(i);
    const deployment = verdict.objects.find((o) => o.kind === 'Deployment' && objectRef(o) === `Deployment ${namespace}/${f.deployment}`);
    if (deployment !== undefined) deployments.push(deployment);
  });
  return { services, deployments, forks };
}

/**
 * Whether a Sandbox may have routes on `host` (an FQDN; every host it forks when undefined): valid,
 * not being deleted, the fork Services exist, and the forks behind them have an available
 * replica — or it is routed there already (a fork that loses its replicas keeps its routes).
 */
export function eligibility(verdict: SandboxVerdict, view: ClusterView, host?: string): Eligibility {
  const sandbox = verdict.sandbox;
  if (serverMeta(sandbox).deletionTimestamp !== undefined) return { eligible: false, reason: 'the Sandbox is being deleted' };
  if (verdict.problems.length > 0) return { eligible: false, reason: 'the Sandbox spec is invalid' };
  const existing = new Map(generatedFor(view, idOf(sandbox)).map((o) => [objectRef(o), o]));
  const behind = forksBehind(verdict, host);
  const missing = behind.services.filter((o) => !existing.has(objectRef(o)));
  if (missing.length > 0) return { eligible: false, reason: `waiting for fork ${missing.map(objectRef).join(', ')} to be created` };
  const unavailable = behind.deployments.filter((o) => {
    const stored = existing.get(objectRef(o));
    return stored === undefined || deploymentAvailability(stored).available < 1;
  });
  if (unavailable.length === 0) return { eligible: true, reason: 'every fork has an available replica' };
  const names = unavailable.map(objectRef).join(', ');
  const routed = host === undefined ? isRouted(view, sandbox) : routedOn(view, verdict, host);
  if (routed) return { eligible: true, reason: `keeps its routes although ${names} has no available replica` };
  return { eligible: false, reason: `waiting for ${names} to have an available replica` };
}

const planIds = new WeakMap<object, number>();
let lastPlanId = 0;

/**
 * What a host reconcile reads of one Sandbox, as text that changes when that does: its lone plan
 * (the memo's SandboxPlan object, new whenever the Sandbox's spec, labels, RouteGroups, the
 * baseline or the configuration change), its problems, whether it is being deleted, and whether
 * it may have routes on each host it forks (fork Services created, forks available or already
 * routed). A Sandbox reconcile enqueues its hosts only when this changed since it last did, so
 * a status write, an annotation edit or a resync reconciles the Sandbox alone, not its hosts.
 */
export function routingState(verdict: SandboxVerdict, view: ClusterView): string {
  let plan: number | null = null;
  if (verdict.plan !== undefined) {
    plan = planIds.get(verdict.plan) ?? ++lastPlanId;
    planIds.set(verdict.plan, plan);
  }
  const hosts = [...new Set(verdict.hosts.map((h) => serviceFqdn(h.service, h.namespace)))].sort();
  return JSON.stringify([
    plan,
    verdict.problems.map((p) => [p.object ?? null, p.path, p.message]),
    serverMeta(verdict.sandbox).deletionTimestamp ?? null,
    verdict.routeGroups.map(objectRef),
    hosts.map((h) => [h, eligibility(verdict, view, h).eligible]),
  ]);
}

/**
 * Whether a valid Sandbox not being deleted may now have VirtualService routes on a host whose
 * VirtualService does not hold them yet: the host reconcile it enqueues writes them.
 */
export function awaitsHostRoutes(verdict: SandboxVerdict, view: ClusterView): boolean {
  if (verdict.problems.length > 0 || serverMeta(verdict.sandbox).deletionTimestamp !== undefined) return false;
  return unroutedHosts(view, verdict).some((h) => !isGatewayHost(verdict, h) && eligibility(verdict, view, h).eligible);
}

/**
 * The hosts one host's VirtualServices tie it to: a user VirtualService naming several forked
 * hosts is merged once with the routes of all of them, so those hosts are planned together.
 */
export function hostClosure(view: ClusterView, host: { namespace: string; service: string }): Array<{ namespace: string; service: string }> {
  const seen = new Map<string, { namespace: string; service: string }>();
  const pending = [host];
  while (pending.length > 0) {
    const next = pending.pop()!;
    const fqdn = serviceFqdn(next.service, next.namespace);
    if (seen.has(fqdn)) continue;
    seen.set(fqdn, next);
    for (const vs of userVirtualServicesRouting(view, fqdn)) pending.push(...serviceHostsOf(vs));
  }
  return [...seen.values()];
}

/**
 * The GitOps namespace (ADR 0016) that leaves a host to the GitOps path: the host's own
 * namespace when it is claimed, else none. VirtualServices in other claimed namespaces are only
 * not written (isWritable): a claim is made by creating objects with meshfork's labels, which
 * anyone can do in a namespace they may write, so it must never stop the routes of a host in
 * another namespace (nor, through the finalizer's wait for routes, a Sandbox's deletion there).
 */
export function gitOpsNamespacesOfHost(view: ClusterView, host: { namespace: string; service: string }): string[] {
  return gitOpsNamespaces(view).has(host.namespace) ? [host.namespace] : [];
}

/** Whether the controller may write `object`: it is not in a namespace claimed by the GitOps path. */
export function isWritable(view: ClusterView, object: KubeObject): boolean {
  return !gitOpsNamespaces(view).has(namespaceOf(object));
}

export interface HostPlan {
  /** meshfork's own VirtualServices to server-side apply. */
  readonly apply: readonly KubeObject[];
  /** User VirtualServices whose meshfork routes change (read-modify-write with userVirtualService). */
  readonly update: readonly KubeObject[];
  /** meshfork's own VirtualServices no longer wanted. */
  readonly delete: readonly KubeObject[];
  /** Sandboxes routed on these hosts. */
  readonly routed: readonly SandboxObject[];
  /** Sandboxes and RouteGroups left out because planning them together failed, with why. */
  readonly excluded: readonly Problem[];
  /** The planner input that produced the VirtualServices (re-run against fresh user objects). */
  readonly input: { sandboxes: readonly SandboxObject[]; routeGroups: readonly RouteGroupObject[] };
}

/**
 * Plans the VirtualServices of a host (and the hosts tied to it by user VirtualServices) from
 * the eligible Sandboxes. plan() is all-or-nothing: when planning them together reports a
 * problem (a RouteGroup whose members fork one workload, a fork selected by another's Service),
 * the objects it names are left out and the rest planned again.
 */
export function planHost(
  view: ClusterView,
  host: { namespace: string; service: string },
  verdicts: ReadonlyMap<string, SandboxVerdict>,
  config: Partial<PlanConfig> | undefined,
): HostPlan {
  const closure = hostClosure(view, host);
  const fqdns = new Set(closure.map((h) => serviceFqdn(h.service, h.namespace)));
  const candidates: SandboxVerdict[] = [];
  let sandboxes: SandboxObject[] = [];
  for (const v of verdicts.values()) {
    const hosts = [...new Set(v.hosts.map((h) => serviceFqdn(h.service, h.namespace)).filter((h) => fqdns.has(h)))];
    const ineligible = hosts.filter((h) => !eligibility(v, view, h).eligible);
    if (hosts.length === 0 || ineligible.length === hosts.length) continue;
    candidates.push(v);
    if (ineligible.length === 0) {
      sandboxes.push(v.sandbox);
      continue;
    }
    // Routes only on the hosts it is eligible for: plan it without the forks behind the others.
    const dropped = new Set(ineligible.flatMap((h) => forksBehind(v, h).forks));
    const forks = v.sandbox.spec.forks.filter((_f, i) => !dropped.has(i));
    if (forks.length > 0 && (v.plan?.forks.length ?? -1) === v.sandbox.spec.forks.length) sandboxes.push({ ...v.sandbox, spec: { ...v.sandbox.spec, forks } });
  }
  let routeGroups = uniqueGroups(candidates.flatMap((v) => v.routeGroups));
  const excluded: Problem[] = [];
  const inventory = inventoryOfView(view);
  let result = plan({ inventory, sandboxes, routeGroups, ...(config ? { config } : {}) });
  while (result.problems.length > 0) {
    const named = new Set(result.problems.map((p) => p.object));
    const keepSandboxes = sandboxes.filter((s) => !named.has(objectRef(s)));
    const keepGroups = routeGroups.filter((g) => !named.has(objectRef(g)));
    if (keepSandboxes.length === sandboxes.length && keepGroups.length === routeGroups.length) {
      throw new Error(`planning host ${serviceFqdn(host.service, host.namespace)} failed: ${result.problems.map((p) => `${p.object ?? ''} ${p.path}: ${p.message}`).join('; ')}`);
    }
    excluded.push(...result.problems);
    sandboxes = keepSandboxes;
    routeGroups = keepGroups;
    result = plan({ inventory, sandboxes, routeGroups, ...(config ? { config } : {}) });
  }

  const ownedNames = new Set(closure.map((h) => `${h.namespace}/${ownedVirtualServiceName(h.service)}`));
  const isOwnedHere = (vs: KubeObject) => isManaged(vs) && ownedNames.has(`${namespaceOf(vs)}/${vs.metadata.name}`);
  const concerns = (vs: KubeObject) => serviceHostsOf(vs).some((h) => fqdns.has(serviceFqdn(h.service, h.namespace)));
  const planned = result.objects.filter((o) => o.kind === 'VirtualService' && (isOwnedHere(o) || (!isManaged(o) && concerns(o))));
  const apply = planned.filter(isManaged);
  const wanted = new Set(apply.map(objectRef));
  const current = view.virtualServices.filter(isOwnedHere);
  // Make before break across the two APIs: an owned VirtualService of a host that moved to
  // Gateway API routing stays while a valid Sandbox it routes lacks its derived routes there.
  const awaitingDerivedRoutes = (vs: KubeObject) => {
    const hosts = serviceHostsOf(vs).map((h) => serviceFqdn(h.service, h.namespace));
    return [...verdicts.values()].some(
      (v) =>
        v.problems.length === 0 &&
        serverMeta(v.sandbox).deletionTimestamp === undefined &&
        routesSandbox(vs, v.sandbox) &&
        hosts.some((h) => isGatewayHost(v, h)) &&
        unroutedHosts(view, v).some((h) => hosts.includes(h) && isGatewayHost(v, h)),
    );
  };
  return {
    apply,
    update: planned.filter((o) => !isManaged(o)),
    delete: current.filter((vs) => !wanted.has(objectRef(vs)) && !awaitingDerivedRoutes(vs)),
    routed: sandboxes,
    excluded,
    input: { sandboxes, routeGroups },
  };
}

function uniqueGroups(groups: readonly RouteGroupObject[]): RouteGroupObject[] {
  const out = new Map<string, RouteGroupObject>();
  for (const g of groups) out.set(objectRef(g), g);
  return [...out.values()];
}

/** The planner refused the re-plan of a user VirtualService (its `problems`, about that object or others). */
export class ReplanProblems extends Error {
  constructor(
    readonly object: string,
    readonly problems: readonly Problem[],
  ) {
    super(`re-planning ${object}: ${problems.map((p) => p.message).join('; ')}`);
    this.name = 'ReplanProblems';
  }
}

/**
 * A user VirtualService as it must be stored: the same plan re-run with `fresh` (the object as
 * just read from the API server) in place of the cached one, so routes a user wrote in between
 * are kept. Undefined when nothing changes (spec, labels, annotations).
 */
export function userVirtualService(view: ClusterView, input: HostPlan['input'], fresh: KubeObject, config: Partial<PlanConfig> | undefined): KubeObject | undefined {
  const inventory = inventoryOfView(view);
  const others = inventory.virtualServices.filter((vs) => objectRef(vs) !== objectRef(fresh));
  const result = plan({
    inventory: { ...inventory, virtualServices: [...others, fresh] },
    sandboxes: input.sandboxes,
    routeGroups: input.routeGroups,
    ...(config ? { config } : {}),
  });
  if (result.problems.length > 0) throw new ReplanProblems(objectRef(fresh), result.problems);
  const merged = result.objects.find((o) => objectRef(o) === objectRef(fresh));
  if (merged === undefined) return undefined;
  const same = (a: KubeObject, b: KubeObject) =>
    canonicalJson([a.spec, a.metadata.labels ?? {}, a.metadata.annotations ?? {}]) === canonicalJson([b.spec, b.metadata.labels ?? {}, b.metadata.annotations ?? {}]);
  return same(merged, fresh) ? undefined : merged;
}

/**
 * The derived routes (HTTPRoutes/GRPCRoutes of the Sandbox's lone plan) that the Sandbox
 * reconcile applies now, and its cached derived routes no longer planned (deleted before anything
 * else of the Sandbox). Make before break, as for VirtualService routes: a route is applied once
 * the forks behind every host it can send requests to are eligible (fork Service created, an
 * available replica, or already routed there); when only some hosts are, the Sandbox is planned
 * again without the forks behind the others and the routes of that plan are applied. An invalid
 * Sandbox, or one being deleted, keeps none.
 */
export function planDerivedRoutes(
  verdict: SandboxVerdict,
  view: ClusterView,
  config: Partial<PlanConfig> | undefined,
  /** The inventory to plan again with (a LonePlanMemo's, reused across reconciles). @default inventoryOfView(view) */
  inventory?: Inventory,
): { apply: KubeObject[]; stale: KubeObject[] } {
  const cached = derivedRoutesOf(view, verdict.sandbox);
  if (verdict.problems.length > 0 || serverMeta(verdict.sandbox).deletionTimestamp !== undefined) return { apply: [], stale: cached };
  // Derived routes in a namespace of the GitOps path are left to it (ADR 0016), as VirtualServices there.
  const planned = verdict.objects.filter((o) => isGatewayRoute(o) && isWritable(view, o));
  const wanted = new Set(planned.map(objectRef));
  const stale = cached.filter((o) => !wanted.has(objectRef(o)));
  if (planned.length === 0) return { apply: [], stale };
  const hosts = [...new Set(verdict.hosts.map((h) => serviceFqdn(h.service, h.namespace)))];
  const ineligible = hosts.filter((h) => !eligibility(verdict, view, h).eligible);
  if (ineligible.length === 0) return { apply: planned, stale };
  if (ineligible.length === hosts.length || (verdict.plan?.forks.length ?? -1) !== verdict.sandbox.spec.forks.length) return { apply: [], stale };
  const dropped = new Set(ineligible.flatMap((h) => forksBehind(verdict, h).forks));
  const sandbox = { ...verdict.sandbox, spec: { ...verdict.sandbox.spec, forks: verdict.sandbox.spec.forks.filter((_f, i) => !dropped.has(i)) } };
  const result = plan({ inventory: inventory ?? inventoryOfView(view), sandboxes: [sandbox], routeGroups: [...verdict.routeGroups], ...(config ? { config } : {}) });
  if (result.problems.length > 0) return { apply: [], stale };
  return { apply: result.objects.filter((o) => isGatewayRoute(o) && wanted.has(objectRef(o))), stale };
}

/**
 * Host FQDNs of a Sandbox without its routes (for RoutingReady): a host routed with Gateway API
 * (a derived route of the plan is attached to it) lacks them until every derived route attached
 * to it exists; any other host until its VirtualService holds the Sandbox's routes.
 */
export function unroutedHosts(view: ClusterView, verdict: SandboxVerdict): string[] {
  const cached = new Set(derivedRoutesOf(view, verdict.sandbox).map(objectRef));
  const derived = verdict.objects.filter(isGatewayRoute);
  return verdict.hosts
    .map((h) => serviceFqdn(h.service, h.namespace))
    .filter((fqdn) => {
      const attached = derived.filter((r) => parentHosts(r).includes(fqdn));
      if (attached.length > 0) return !attached.every((r) => cached.has(objectRef(r)));
      return !virtualServicesForHost(view, fqdn).some((vs) => routesSandbox(vs, verdict.sandbox));
    });
}

/** Whether `host` (an FQDN) is routed with Gateway API in the Sandbox's plan (a derived route is attached to it). */
export function isGatewayHost(verdict: SandboxVerdict, host: string): boolean {
  return verdict.objects.some((o) => isGatewayRoute(o) && parentHosts(o).includes(host));
}

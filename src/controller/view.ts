/**
 * What the reconciler reads: a snapshot of its informer caches, and the pure helpers that answer
 * questions about it (who owns a generated object, which sandboxes a VirtualService routes,
 * which host a fork Service stands in for). Nothing here does I/O.
 */
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { FORK_OF_SERVICE_LABEL, ROUTE_NAME_PREFIX, SANDBOX_LABEL, SANDBOX_NAMESPACE_LABEL, isManaged, ownValue, sandboxOfLabels, type KubeObject } from '../planner/kube.js';
import { CLUSTER_DOMAIN, namespaceOf, resolveHost, type Inventory } from '../planner/inventory.js';
import { appliesToMesh, routedHosts, virtualServiceHosts, type HttpRoute } from '../planner/virtual-service.js';
import { effectiveRoutingKey } from '../planner/plan.js';

export { SANDBOX_NAMESPACE_LABEL };
export { FORK_OF_SERVICE_LABEL };
/** Finalizer that keeps a Sandbox until its routes and objects are gone. */
export const FINALIZER = 'meshfork.dev/cleanup';

export interface ClusterView {
  readonly sandboxes: readonly SandboxObject[];
  readonly routeGroups: readonly RouteGroupObject[];
  /** Every cached Deployment, Service, DestinationRule, VirtualService and EnvoyFilter, meshfork's own included. */
  readonly deployments: readonly KubeObject[];
  readonly services: readonly KubeObject[];
  readonly destinationRules: readonly KubeObject[];
  readonly virtualServices: readonly KubeObject[];
  readonly envoyFilters: readonly KubeObject[];
  /**
   * Every cached object of the planner's POLICY_KINDS (AuthorizationPolicy, PeerAuthentication,
   * RequestAuthentication, Sidecar, Telemetry, WasmPlugin, NetworkPolicy): a user's are baseline
   * input, meshfork's own are the copies made for forks (policy-copy.ts).
   */
  readonly policies: readonly KubeObject[];
  /**
   * Identities (apiVersion, kind, namespace, name) of workloads of other kinds (WORKLOAD_KINDS)
   * that a Sandbox's `forkOf` names where no Deployment of that name exists: read on demand, not
   * watched, so that the planner's message says what the name is (a StatefulSet, ...).
   */
  readonly workloads?: readonly KubeObject[];
  /**
   * Every cached Gateway API HTTPRoute and GRPCRoute (`gateway.networking.k8s.io/v1`): a user's
   * decide a host's routing mode and are copied per Sandbox, meshfork's own are those derived
   * copies (generated objects of their Sandbox, ADR 0021). Absent: none (the CRDs may not be installed).
   */
  readonly gatewayRoutes?: readonly KubeObject[];
  /** Every cached Namespace, for its labels `istio.io/dataplane-mode` and `istio.io/use-waypoint`. Absent: none. */
  readonly namespaces?: readonly KubeObject[];
}

/**
 * Cached objects of the kinds the controller generates for a Sandbox (everything but
 * VirtualServices, which belong to hosts), meshfork's own and users' alike, in apply order
 * (derived Gateway API routes last).
 */
export function sandboxKindObjects(view: ClusterView): KubeObject[] {
  return [...view.policies, ...view.deployments, ...view.services, ...view.destinationRules, ...view.envoyFilters, ...(view.gatewayRoutes ?? [])];
}

/** The view's arrays sandboxKindObjects reads (the dependencies of an index of generated objects). */
export function sandboxKindArrays(view: ClusterView): ReadonlyArray<readonly KubeObject[] | undefined> {
  return [view.policies, view.deployments, view.services, view.destinationRules, view.envoyFilters, view.gatewayRoutes];
}

/**
 * A value computed from some of a view's arrays, kept while each of them is the same object.
 * Cached objects and the arrays of a snapshot are never changed in place, and the controller's
 * snapshots reuse the array of every kind without an informer event since the last one
 * (Controller.snapshot), so an index of the baseline or of generated objects outlives a batch of
 * Sandbox events. The first array keys the entry (it is held weakly).
 */
export class ArraysMemo<T> {
  private readonly entries = new WeakMap<object, { deps: ReadonlyArray<unknown>; value: T }>();

  get(deps: readonly [object, ...unknown[]] | ReadonlyArray<unknown>, compute: () => T): T {
    const key = deps[0];
    if (key === null || typeof key !== 'object') throw new Error('ArraysMemo: the first dependency must be an array or object');
    const known = this.entries.get(key);
    if (known !== undefined && known.deps.length === deps.length && known.deps.every((d, i) => d === deps[i])) return known.value;
    const value = compute();
    this.entries.set(key, { deps: [...deps], value });
    return value;
  }
}

export interface SandboxId {
  readonly namespace: string;
  readonly name: string;
}

export { isManaged };

/**
 * Whether the controller wrote `object`, one of the kinds a Sandbox owns: it labels everything it
 * applies for a Sandbox with SANDBOX_NAMESPACE_LABEL, which `meshfork synth` and the cdk8s
 * constructs never write.
 */
export function writtenByController(object: KubeObject): boolean {
  return isManaged(object) && ownValue(object.metadata.labels, SANDBOX_NAMESPACE_LABEL) !== undefined;
}

/**
 * The Sandbox a generated object belongs to (by its labels), if the controller wrote it. GitOps
 * output (gitOpsOutput) has no owner here: it is never planned, updated or deleted for a Sandbox.
 */
export function ownerOf(object: KubeObject): SandboxId | undefined {
  return writtenByController(object) ? sandboxOfLabels(object.metadata.labels) : undefined;
}

const gitOpsIndex = new ArraysMemo<{ objects: KubeObject[]; namespaces: Map<string, KubeObject[]> }>();

function gitOpsOf(view: ClusterView): { objects: KubeObject[]; namespaces: Map<string, KubeObject[]> } {
  return gitOpsIndex.get(sandboxKindArrays(view), () => {
    const objects = sandboxKindObjects(view).filter((o) => isManaged(o) && ownValue(o.metadata.labels, SANDBOX_LABEL) !== undefined && !writtenByController(o));
    const namespaces = new Map<string, KubeObject[]>();
    for (const o of objects) namespaces.set(namespaceOf(o), [...(namespaces.get(namespaceOf(o)) ?? []), o]);
    return { objects, namespaces };
  });
}

/**
 * GitOps output (ADR 0016): objects of the kinds a Sandbox owns that carry meshfork's labels
 * (managed-by and a sandbox name) but not the controller's SANDBOX_NAMESPACE_LABEL, i.e. what
 * `meshfork synth` or the cdk8s constructs generated and a GitOps tool (or kubectl) applied.
 * Every Sandbox has a fork Deployment, so every sandbox of that path leaves at least one here.
 */
export function gitOpsOutput(view: ClusterView): readonly KubeObject[] {
  return gitOpsOf(view).objects;
}

/**
 * Namespaces claimed by the GitOps path (ADR 0016), each with the GitOps output it holds: the
 * controller writes nothing in them (no fork for a Sandbox, no VirtualService routes).
 */
export function gitOpsNamespaces(view: ClusterView): ReadonlyMap<string, readonly KubeObject[]> {
  return gitOpsOf(view).namespaces;
}

export function sameId(a: SandboxId, b: SandboxId): boolean {
  return a.namespace === b.namespace && a.name === b.name;
}

export function idOf(object: { metadata: { name: string; namespace?: string } }): SandboxId {
  return { namespace: object.metadata.namespace ?? 'default', name: object.metadata.name };
}

const routingKeys = new WeakMap<SandboxObject | RouteGroupObject, string>();

/** effectiveRoutingKey, once per object version (a derived key costs a SHA-256; cached objects are immutable snapshots). */
export function routingKeyOf(object: SandboxObject | RouteGroupObject): string {
  let key = routingKeys.get(object);
  if (key === undefined) {
    key = effectiveRoutingKey(object);
    routingKeys.set(object, key);
  }
  return key;
}

const claimantIndex = new ArraysMemo<Map<string, Array<SandboxObject | RouteGroupObject>>>();

/** The Sandboxes and RouteGroups whose effective routing key is `key`, from an index built once per version of those caches. */
export function claimantsOfKey(view: ClusterView, key: string): ReadonlyArray<SandboxObject | RouteGroupObject> {
  const index = claimantIndex.get([view.sandboxes, view.routeGroups], () => {
    const built = new Map<string, Array<SandboxObject | RouteGroupObject>>();
    for (const o of [...view.sandboxes, ...view.routeGroups]) {
      const list = built.get(routingKeyOf(o));
      if (list === undefined) built.set(routingKeyOf(o), [o]);
      else list.push(o);
    }
    return built;
  });
  return index.get(key) ?? [];
}

const inventories = new ArraysMemo<Inventory>();

/**
 * The baseline inventory: cached objects, meshfork's own excluded (plan() excludes them too).
 * Computed once per version of the caches it reads (a reconcile plans many Sandboxes against one
 * snapshot, and a batch of Sandbox events leaves these arrays as they were).
 */
export function inventoryOfView(view: ClusterView): Inventory {
  const deps = [view.deployments, view.services, view.virtualServices, view.destinationRules, view.envoyFilters, view.policies, view.workloads, view.gatewayRoutes, view.namespaces];
  return inventories.get(deps, () => {
    const baseline = (list: readonly KubeObject[]) => list.filter((o) => !isManaged(o));
    return {
      deployments: baseline(view.deployments),
      services: baseline(view.services),
      virtualServices: baseline(view.virtualServices),
      destinationRules: baseline(view.destinationRules),
      envoyFilters: baseline(view.envoyFilters),
      policies: baseline(view.policies),
      workloads: view.workloads ?? [],
      gatewayRoutes: baseline(view.gatewayRoutes ?? []),
      namespaces: view.namespaces ?? [],
    };
  });
}

const generatedIndex = new ArraysMemo<Map<string, KubeObject[]>>();

/** Objects the controller generated for a Sandbox, of the kinds a Sandbox owns (not VirtualServices), policy copies first. */
export function generatedFor(view: ClusterView, id: SandboxId): KubeObject[] {
  const index = generatedIndex.get(sandboxKindArrays(view), () => {
    const built = new Map<string, KubeObject[]>();
    for (const o of sandboxKindObjects(view)) {
      const owner = ownerOf(o);
      if (owner === undefined) continue;
      const key = `${owner.namespace}/${owner.name}`;
      const list = built.get(key);
      if (list === undefined) built.set(key, [o]);
      else list.push(o);
    }
    return built;
  });
  return [...(index.get(`${id.namespace}/${id.name}`) ?? [])];
}

/** Namespaces a Sandbox's forks live in: its own and each `forkOf.namespace`. */
export function forkNamespaces(sandbox: SandboxObject): string[] {
  const own = namespaceOf(sandbox);
  return [...new Set([own, ...sandbox.spec.forks.map((f) => f.forkOf.namespace ?? own)])];
}

/** `Host/<namespace>/<service>` parts of a Kubernetes Service FQDN; undefined for other hosts. */
export function serviceOfHost(fqdn: string): { namespace: string; service: string } | undefined {
  const suffix = `.svc.${CLUSTER_DOMAIN}`;
  if (!fqdn.endsWith(suffix)) return undefined;
  const parts = fqdn.slice(0, -suffix.length).split('.');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { service: parts[0], namespace: parts[1] };
}

/** The baseline Service a fork Service stands in for. */
export function baselineServiceOf(forkService: KubeObject): { namespace: string; service: string } | undefined {
  const service = ownValue(forkService.metadata.labels, FORK_OF_SERVICE_LABEL);
  return service === undefined ? undefined : { namespace: namespaceOf(forkService), service };
}

function httpRoutes(vs: KubeObject): HttpRoute[] {
  const http = (vs.spec as { http?: unknown } | undefined)?.http;
  return Array.isArray(http) ? (http as HttpRoute[]) : [];
}

const routedIndex = new WeakMap<KubeObject, Map<string, Set<string>>>();

/**
 * The sandbox copies a VirtualService holds, once per cached version (cached objects are
 * immutable snapshots): Sandbox name (from the planner's route names `meshfork-<name>-<index>`)
 * to the namespaces of those routes' Kubernetes Service destinations.
 */
function sandboxRoutesOf(vs: KubeObject): Map<string, Set<string>> {
  let index = routedIndex.get(vs);
  if (index === undefined) {
    index = new Map();
    for (const route of httpRoutes(vs)) {
      if (typeof route.name !== 'string' || !route.name.startsWith(ROUTE_NAME_PREFIX)) continue;
      const name = /^(.+)-[0-9]+$/.exec(route.name.slice(ROUTE_NAME_PREFIX.length))?.[1];
      if (name === undefined) continue;
      let namespaces = index.get(name);
      if (namespaces === undefined) index.set(name, (namespaces = new Set()));
      for (const d of route.route ?? []) {
        const host = typeof d?.destination?.host === 'string' ? serviceOfHost(resolveHost(d.destination.host, namespaceOf(vs))) : undefined;
        if (host !== undefined) namespaces.add(host.namespace);
      }
    }
    routedIndex.set(vs, index);
  }
  return index;
}

/**
 * Whether a VirtualService holds routes of a Sandbox: a route named `meshfork-<name>-<index>`
 * (the planner's sandbox copies) with a destination in a namespace the Sandbox forks into.
 */
export function routesSandbox(vs: KubeObject, sandbox: SandboxObject): boolean {
  const namespaces = sandboxRoutesOf(vs).get(sandbox.metadata.name);
  return namespaces !== undefined && forkNamespaces(sandbox).some((ns) => namespaces.has(ns));
}

const sandboxesByName = new WeakMap<readonly SandboxObject[], Map<string, SandboxObject[]>>();

/**
 * The Sandboxes a VirtualService holds routes of (routesSandbox), found from its route names
 * through an index of the view's Sandboxes by name, instead of testing every Sandbox against
 * every route.
 */
export function sandboxesRoutedBy(vs: KubeObject, view: ClusterView): SandboxObject[] {
  let byName = sandboxesByName.get(view.sandboxes);
  if (byName === undefined) {
    byName = new Map();
    for (const s of view.sandboxes) byName.set(s.metadata.name, [...(byName.get(s.metadata.name) ?? []), s]);
    sandboxesByName.set(view.sandboxes, byName);
  }
  return [...sandboxRoutesOf(vs).keys()].flatMap((name) => byName.get(name) ?? []).filter((s) => routesSandbox(vs, s));
}

/** Mesh VirtualServices (user or meshfork's own) that name `host` (an FQDN). */
export function virtualServicesForHost(view: ClusterView, host: string): KubeObject[] {
  return view.virtualServices.filter((vs) => appliesToMesh(vs) && virtualServiceHosts(vs).includes(host));
}

/**
 * Kubernetes Service hosts whose routing a VirtualService takes part in, as `{ namespace,
 * service }`: those it names and those its HTTP routes send traffic to (the planner merges
 * sandbox copies into every VirtualService routing to a forked host: gateway-bound, facade and
 * delegate ones too, src/planner/virtual-service-placement.ts).
 */
export function serviceHostsOf(vs: KubeObject): Array<{ namespace: string; service: string }> {
  return [...new Set([...virtualServiceHosts(vs), ...routedHosts(vs)])].flatMap((h) => serviceOfHost(h) ?? []);
}

/** User VirtualServices that name `host` (an FQDN) or route to it: planned with its host. */
export function userVirtualServicesRouting(view: ClusterView, host: string): KubeObject[] {
  return view.virtualServices.filter((vs) => !isManaged(vs) && (virtualServiceHosts(vs).includes(host) || routedHosts(vs).has(host)));
}

export { olderThan } from '../planner/sandbox-quota.js';

/** Metadata the API server sets, as the caches hold it. */
export interface ServerMeta {
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly finalizers?: readonly string[];
}

export function serverMeta(object: { metadata: object }): ServerMeta {
  return object.metadata as ServerMeta;
}

/**
 * JSON with object keys sorted: the API server stores custom resources as maps and returns their
 * keys sorted, so objects built in another key order must be compared this way.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) : v,
  );
}

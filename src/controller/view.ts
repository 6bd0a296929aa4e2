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

const gitOpsIndex = new WeakMap<ClusterView, { objects: KubeObject[]; namespaces: Map<string, KubeObject[]> }>();

function gitOpsOf(view: ClusterView): { objects: KubeObject[]; namespaces: Map<string, KubeObject[]> } {
  let known = gitOpsIndex.get(view);
  if (known === undefined) {
    const objects = sandboxKindObjects(view).filter((o) => isManaged(o) && ownValue(o.metadata.labels, SANDBOX_LABEL) !== undefined && !writtenByController(o));
    const namespaces = new Map<string, KubeObject[]>();
    for (const o of objects) namespaces.set(namespaceOf(o), [...(namespaces.get(namespaceOf(o)) ?? []), o]);
    known = { objects, namespaces };
    gitOpsIndex.set(view, known);
  }
  return known;
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

const claimantIndex = new WeakMap<ClusterView, Map<string, Array<SandboxObject | RouteGroupObject>>>();

/** The Sandboxes and RouteGroups whose effective routing key is `key`, from an index built once per view. */
export function claimantsOfKey(view: ClusterView, key: string): ReadonlyArray<SandboxObject | RouteGroupObject> {
  let index = claimantIndex.get(view);
  if (index === undefined) {
    index = new Map();
    for (const o of [...view.sandboxes, ...view.routeGroups]) {
      const list = index.get(routingKeyOf(o));
      if (list === undefined) index.set(routingKeyOf(o), [o]);
      else list.push(o);
    }
    claimantIndex.set(view, index);
  }
  return index.get(key) ?? [];
}

const inventories = new WeakMap<ClusterView, Inventory>();

/**
 * The baseline inventory: cached objects, meshfork's own excluded (plan() excludes them too).
 * Computed once per view (a reconcile plans many Sandboxes against one snapshot).
 */
export function inventoryOfView(view: ClusterView): Inventory {
  const known = inventories.get(view);
  if (known !== undefined) return known;
  const baseline = (list: readonly KubeObject[]) => list.filter((o) => !isManaged(o));
  const inventory = {
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
  inventories.set(view, inventory);
  return inventory;
}

const generatedIndex = new WeakMap<ClusterView, Map<string, KubeObject[]>>();

/** Objects the controller generated for a Sandbox, of the kinds a Sandbox owns (not VirtualServices), policy copies first. */
export function generatedFor(view: ClusterView, id: SandboxId): KubeObject[] {
  let index = generatedIndex.get(view);
  if (index === undefined) {
    index = new Map();
    for (const o of sandboxKindObjects(view)) {
      const owner = ownerOf(o);
      if (owner === undefined) continue;
      const key = `${owner.namespace}/${owner.name}`;
      index.set(key, [...(index.get(key) ?? []), o]);
    }
    generatedIndex.set(view, index);
  }
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

/**
 * Whether a VirtualService holds routes of a Sandbox: a route named `meshfork-<name>-<index>`
 * (the planner's sandbox copies) with a destination in a namespace the Sandbox forks into.
 */
export function routesSandbox(vs: KubeObject, sandbox: SandboxObject): boolean {
  const namespaces = new Set(forkNamespaces(sandbox));
  const name = new RegExp(`^${ROUTE_NAME_PREFIX}${sandbox.metadata.name.replaceAll('.', '\\.')}-[0-9]+$`);
  return httpRoutes(vs).some(
    (route) =>
      typeof route.name === 'string' &&
      name.test(route.name) &&
      (route.route ?? []).some((d) => {
        const host = typeof d?.destination?.host === 'string' ? serviceOfHost(resolveHost(d.destination.host, namespaceOf(vs))) : undefined;
        return host !== undefined && namespaces.has(host.namespace);
      }),
  );
}

const sandboxesByName = new WeakMap<ClusterView, Map<string, SandboxObject[]>>();

/**
 * The Sandboxes a VirtualService holds routes of (routesSandbox), found from its route names
 * (`meshfork-<name>-<index>` names one Sandbox name) through an index of the view's Sandboxes by
 * name, instead of testing every Sandbox against every route.
 */
export function sandboxesRoutedBy(vs: KubeObject, view: ClusterView): SandboxObject[] {
  let byName = sandboxesByName.get(view);
  if (byName === undefined) {
    byName = new Map();
    for (const s of view.sandboxes) byName.set(s.metadata.name, [...(byName.get(s.metadata.name) ?? []), s]);
    sandboxesByName.set(view, byName);
  }
  const names = new Set<string>();
  for (const route of httpRoutes(vs)) {
    if (typeof route.name !== 'string' || !route.name.startsWith(ROUTE_NAME_PREFIX)) continue;
    const name = /^(.+)-[0-9]+$/.exec(route.name.slice(ROUTE_NAME_PREFIX.length))?.[1];
    if (name !== undefined) names.add(name);
  }
  return [...names].flatMap((name) => byName.get(name) ?? []).filter((s) => routesSandbox(vs, s));
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

/**
 * Work keys and the mapping from a watched object to the keys it concerns (pure).
 *
 * A key names what to reconcile, never what happened (level-based, as controller-runtime's
 * reconcile.Request):
 *  - `Sandbox/<namespace>/<name>`: its forks, fork Services, DestinationRules, EnvoyFilters,
 *    copies of label-selected policies, derived HTTPRoutes/GRPCRoutes, finalizer, TTL and status;
 *  - `Host/<namespace>/<service>`: the VirtualService(s) routing one baseline Service, holding the
 *    routes of every Sandbox forking it;
 *  - `RouteGroup/<namespace>/<name>`: its status (key, members, conflicts).
 * The mapping may over-approximate (a change enqueues every key it might concern); a reconcile of
 * a key with nothing to do writes nothing.
 */
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import type { KubeObject } from '../planner/kube.js';
import { namespaceOf, resolveHost, type PolicyKind } from '../planner/inventory.js';
import { ISTIO_ROOT_NAMESPACE } from '../planner/policy-copy.js';
import { isMeshforkRoute, type HttpRoute } from '../planner/virtual-service.js';
import { backendServices, serviceParents } from '../planner/http-route.js';
import { baselineServiceOf, claimantsOfKey, forkNamespaces, idOf, isManaged, ownerOf, routesSandbox, routingKeyOf, sameId, sandboxKindObjects, sandboxesRoutedBy, serverMeta, serviceHostsOf, serviceOfHost, type ClusterView } from './view.js';

/** The planner's label-selected policy kinds (POLICY_KINDS), each watched by its own informer. */
export type PolicyWatchedKind = PolicyKind['kind'];

export type WatchedKind = 'Sandbox' | 'RouteGroup' | 'Deployment' | 'Service' | 'DestinationRule' | 'VirtualService' | 'EnvoyFilter' | 'HTTPRoute' | 'GRPCRoute' | 'Namespace' | PolicyWatchedKind;

export type WorkKey =
  | { kind: 'Sandbox'; namespace: string; name: string }
  | { kind: 'Host'; namespace: string; service: string }
  | { kind: 'RouteGroup'; namespace: string; name: string };

export function sandboxKey(namespace: string, name: string): string {
  return `Sandbox/${namespace}/${name}`;
}

export function hostKey(namespace: string, service: string): string {
  return `Host/${namespace}/${service}`;
}

export function routeGroupKey(namespace: string, name: string): string {
  return `RouteGroup/${namespace}/${name}`;
}

export function parseKey(key: string): WorkKey {
  const [kind, namespace, name, ...rest] = key.split('/');
  if (rest.length > 0 || !namespace || !name) throw new Error(`malformed work key ${JSON.stringify(key)}`);
  if (kind === 'Sandbox' || kind === 'RouteGroup') return { kind, namespace, name };
  if (kind === 'Host') return { kind, namespace, service: name };
  throw new Error(`malformed work key ${JSON.stringify(key)}`);
}

/** Sandboxes with a fork in `namespace`. */
function forkingInto(view: ClusterView, namespace: string): SandboxObject[] {
  return view.sandboxes.filter((s) => forkNamespaces(s).includes(namespace));
}

const sandboxKeyOf = (s: SandboxObject) => sandboxKey(namespaceOf(s), s.metadata.name);

/** Host keys of the Services a Sandbox forks (its fork Services) and of the VirtualServices routing it. */
export function hostKeysOfSandbox(view: ClusterView, sandbox: SandboxObject): string[] {
  const keys: string[] = [];
  for (const service of view.services) {
    const owner = ownerOf(service);
    const baseline = baselineServiceOf(service);
    if (owner && baseline && owner.name === sandbox.metadata.name && owner.namespace === namespaceOf(sandbox)) keys.push(hostKey(baseline.namespace, baseline.service));
  }
  for (const vs of view.virtualServices) {
    if (routesSandbox(vs, sandbox)) keys.push(...serviceHostsOf(vs).map((h) => hostKey(h.namespace, h.service)));
  }
  return keys;
}

/**
 * Keys to reconcile after a change of `object` (of a watched kind). `view` is the cache after
 * the change; for a delete, `object` is the last state seen.
 */
export function keysForObject(kind: WatchedKind, object: KubeObject, view: ClusterView): string[] {
  const keys = new Set<string>();
  const add = (k: string) => keys.add(k);
  const namespace = namespaceOf(object);
  const owner = ownerOf(object);
  switch (kind) {
    case 'Sandbox': {
      const sandbox = object as unknown as SandboxObject;
      add(sandboxKeyOf(sandbox));
      // A freed or taken routing key changes whether others with the same key are valid.
      for (const other of claimantsOfKey(view, routingKeyOf(sandbox))) if (other.kind === 'Sandbox') add(sandboxKeyOf(other as SandboxObject));
      const gone = serverMeta(sandbox).deletionTimestamp !== undefined || !view.sandboxes.some((s) => sameId(idOf(s), idOf(sandbox)));
      // Its hosts lose its routes when it goes away. A Sandbox that stays has its hosts enqueued
      // by its own reconcile, when what a host reconcile reads of it changed (routingState).
      if (gone) hostKeysOfSandbox(view, sandbox).forEach(add);
      // A Sandbox going away may bring one waiting for the namespace's quota (policy.maxSandboxesPerNamespace) in.
      if (gone) for (const s of view.sandboxes) if (namespaceOf(s) === namespace) add(sandboxKeyOf(s));
      // Membership and member conflicts of the RouteGroups of its namespace.
      for (const g of view.routeGroups) if (namespaceOf(g) === namespace) add(routeGroupKey(namespace, g.metadata.name));
      break;
    }
    case 'RouteGroup': {
      // Membership before the change is unknown: every Sandbox of the namespace may be concerned.
      const group = object as unknown as RouteGroupObject;
      add(routeGroupKey(namespace, group.metadata.name));
      for (const s of view.sandboxes) if (namespaceOf(s) === namespace) add(sandboxKeyOf(s));
      for (const s of claimantsOfKey(view, routingKeyOf(group))) if (s.kind === 'Sandbox') add(sandboxKeyOf(s as SandboxObject));
      break;
    }
    case 'Deployment': {
      if (owner !== undefined) {
        add(sandboxKey(owner.namespace, owner.name));
        break;
      }
      if (isManaged(object)) break;
      for (const s of view.sandboxes) {
        if (s.spec.forks.some((f) => (f.forkOf.namespace ?? namespaceOf(s)) === namespace && f.forkOf.name === object.metadata.name)) add(sandboxKeyOf(s));
      }
      break;
    }
    case 'Service': {
      // A fork Service: its Sandbox, whose reconcile enqueues the host when the Service's coming
      // or going changes the Sandbox's routes there (routingState); a Sandbox gone, its orphan
      // collection does.
      if (owner !== undefined) {
        add(sandboxKey(owner.namespace, owner.name));
        break;
      }
      if (isManaged(object)) break;
      // Which forks a Service selects depends on its selector before and after the change.
      add(hostKey(namespace, object.metadata.name));
      forkingInto(view, namespace).map(sandboxKeyOf).forEach(add);
      break;
    }
    case 'DestinationRule': {
      if (owner !== undefined) {
        add(sandboxKey(owner.namespace, owner.name));
        break;
      }
      if (isManaged(object)) break;
      const host = (object.spec as { host?: unknown } | undefined)?.host;
      const target = typeof host === 'string' ? serviceOfHost(resolveHost(host, namespace)) : undefined;
      for (const ns of new Set([namespace, ...(target ? [target.namespace] : [])])) forkingInto(view, ns).map(sandboxKeyOf).forEach(add);
      break;
    }
    case 'VirtualService': {
      for (const h of serviceHostsOf(object)) add(hostKey(h.namespace, h.service));
      for (const s of sandboxesRoutedBy(object, view)) add(sandboxKeyOf(s));
      // RoutingReady of the Sandboxes forking these hosts reads this VirtualService.
      for (const h of serviceHostsOf(object)) {
        for (const svc of view.services) {
          const baseline = baselineServiceOf(svc);
          const o = ownerOf(svc);
          if (o && baseline && baseline.namespace === h.namespace && baseline.service === h.service) add(sandboxKey(o.namespace, o.name));
        }
      }
      break;
    }
    case 'EnvoyFilter': {
      if (owner !== undefined) add(sandboxKey(owner.namespace, owner.name));
      // A user's EnvoyFilter may hold (or free) the name of a fork's generated one.
      else if (!isManaged(object)) forkingInto(view, namespace).map(sandboxKeyOf).forEach(add);
      break;
    }
    case 'HTTPRoute':
    case 'GRPCRoute': {
      // A derived route: its Sandbox, and the hosts it is attached to (a host that moved to
      // Gateway API routing keeps its owned VirtualService until the derived routes exist).
      if (owner !== undefined) {
        add(sandboxKey(owner.namespace, owner.name));
        for (const p of serviceParents(object)) add(hostKey(p.namespace, p.name));
        break;
      }
      if (isManaged(object)) break;
      // A user's route decides the routing mode of the Services it is attached to and is copied
      // for every Sandbox forking them or its backends; its parents and backends before the
      // change are unknown, so also the owners of the derived routes of its namespace.
      const parents = serviceParents(object);
      for (const p of parents) add(hostKey(p.namespace, p.name));
      const namespaces = new Set([namespace, ...parents.map((p) => p.namespace), ...backendServices(object).map((b) => b.split('/')[0] ?? namespace)]);
      for (const ns of namespaces) forkingInto(view, ns).map(sandboxKeyOf).forEach(add);
      for (const route of view.gatewayRoutes ?? []) {
        const o = ownerOf(route);
        if (o !== undefined && namespaceOf(route) === namespace) add(sandboxKey(o.namespace, o.name));
      }
      break;
    }
    case 'Namespace': {
      // Its labels (ambient, waypoint) decide the routing mode of its hosts and the problems of
      // the Sandboxes forking into it.
      const name = object.metadata.name;
      forkingInto(view, name).map(sandboxKeyOf).forEach(add);
      for (const svc of view.services) {
        const baseline = baselineServiceOf(svc);
        if (ownerOf(svc) && baseline && baseline.namespace === name) add(hostKey(baseline.namespace, baseline.service));
      }
      break;
    }
    default: {
      // A label-selected policy (the planner's POLICY_KINDS). A copy: its Sandbox. A user's:
      // which forks it selects depends on its selector before and after the change (and it may
      // hold the name of a copy), so every Sandbox forking into its namespace; an Istio policy of
      // the root namespace selects workloads of every namespace, so every Sandbox.
      if (owner !== undefined) add(sandboxKey(owner.namespace, owner.name));
      else if (isManaged(object)) break;
      else if (kind !== 'NetworkPolicy' && namespace === ISTIO_ROOT_NAMESPACE) view.sandboxes.map(sandboxKeyOf).forEach(add);
      else forkingInto(view, namespace).map(sandboxKeyOf).forEach(add);
      break;
    }
  }
  return [...keys].sort();
}

/** Every key, for the first pass after the caches sync and for periodic resync. */
export function allKeys(view: ClusterView): string[] {
  const keys = new Set<string>();
  for (const s of view.sandboxes) keys.add(sandboxKeyOf(s));
  for (const g of view.routeGroups) keys.add(routeGroupKey(namespaceOf(g), g.metadata.name));
  for (const vs of view.virtualServices) {
    const http = (vs.spec as { http?: unknown } | undefined)?.http;
    const holdsRoutes = isManaged(vs) || (Array.isArray(http) && http.some((r) => isMeshforkRoute(r as HttpRoute)));
    if (holdsRoutes) for (const h of serviceHostsOf(vs)) keys.add(hostKey(h.namespace, h.service));
  }
  for (const svc of view.services) {
    const baseline = baselineServiceOf(svc);
    if (ownerOf(svc) && baseline) keys.add(hostKey(baseline.namespace, baseline.service));
  }
  // Owners of generated objects, existing or not (a missing one's objects are orphans to delete).
  for (const o of sandboxKindObjects(view)) {
    const owner = ownerOf(o);
    if (owner) keys.add(sandboxKey(owner.namespace, owner.name));
  }
  return [...keys].sort();
}

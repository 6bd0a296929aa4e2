/**
 * Where the sandbox routes of the forked hosts go: which user VirtualServices get sandbox copies
 * (mergeVirtualService), where meshfork writes its own VirtualService (ownedVirtualService), and
 * what it says about the VirtualServices it leaves alone (docs/adr/0008).
 *
 * Merged: every user VirtualService whose HTTP routes send traffic to a forked host, whatever its
 * `hosts` (a mesh VirtualService of the host, an in-mesh facade host, a gateway-bound one with
 * `hosts: ["*"]` or external hosts), and every delegate VirtualService (no `hosts`; istiod merges
 * its routes into each root route whose `delegate` names it, pilot/pkg/model/virtualservice.go
 * `MergeHTTPRoutes`) that does so. A VirtualService naming a forked host whose routes send nothing
 * to it is merged too (with a note) so its earlier copies are removed.
 *
 * Gateways: copies on a gateway let whoever reaches that gateway pick a sandbox, so they are made
 * only for the gateways `routing.gateways` allows (default: all when the ingress guard is on,
 * none otherwise). A VirtualService (or a delegate, through its roots) bound to allowed and other
 * proxies gets copies whose match blocks name the allowed ones (`mesh` included): istiod checks a
 * match block's `gateways` instead of the VirtualService's (route.go `sourceMatchHTTP`), so one
 * VirtualService does route keyed requests on some proxies and not on others. When no proxy of a
 * VirtualService is allowed it is left as the user wrote it and a note names its gateways.
 *
 * Visibility (`exportTo`): a sidecar of namespace N uses, for a host, the first VirtualService in
 * this order: those of N exported to N (`.` or N), those of other namespaces exported to N, then
 * the public ones (no exportTo under Istio's default, or `*`); within each group oldest first,
 * then by name and namespace (pilot/pkg/model/push_context.go `initVirtualServices` and
 * `VirtualServicesForGateway`, virtualservice.go `SelectVirtualServices`, config.go
 * `configCompareByCreationTime`; later virtual hosts for a domain are dropped, networking/core
 * httproute.go `buildVirtualHost`). Every user mesh VirtualService of a forked host is merged,
 * so whichever of them a sidecar uses holds the copies. When none of them is public, meshfork's
 * own VirtualService carries the sandbox routes for the namespaces none of them is exported to:
 * it is exported to exactly those of the namespaces the inventory and the Sandboxes name, which
 * keeps every (namespace, host) pair at one VirtualService (istioctl analyze's IST0109 counts a
 * public VirtualService as visible everywhere, analyzers/virtualservice/conflictingmeshgatewayhosts.go).
 * Mesh VirtualServices of one host are reported (IST0109) only when their scopes share a namespace.
 *
 * Forks as clients (`sourceLabels`, docs/adr/0009): a VirtualService applying to sidecars (`mesh`,
 * directly or, for a delegate, through a root) whose match blocks select a forked workload's
 * baseline pods is merged with the forks as sources, also when it routes to no forked host, so
 * the fork is routed as its baseline is (`meshfork-source-<i>` routes, mergeVirtualService).
 * Forks are sidecars, so gateway-only VirtualServices get no sources. Mirror targets count as
 * targets of a route (routedHosts), so a VirtualService mirroring to a forked host is merged.
 */
import type { Problem } from '../api/problem.js';
import { IGNORE_ANNOTATION, ROUTE_NAME_PREFIX, groupBy, isIgnored, objectRef, type KubeObject } from './kube.js';
import { namespaceOf, podTemplateLabels, serviceFqdn, serviceSelector, type Inventory } from './inventory.js';
import { serviceSelectorSelects } from './label-selector.js';
import {
  MESH_GATEWAY,
  isMeshforkRoute,
  mergeVirtualService,
  ownedVirtualService,
  ownedVirtualServiceName,
  routedHosts,
  selectsForkedSources,
  versionFamily,
  virtualServiceGateways,
  virtualServiceHosts,
  type ForkedSource,
  type HostRouting,
  type HttpRoute,
  type SandboxRoute,
} from './virtual-service.js';

/**
 * Which gateway-bound VirtualServices get sandbox copies (config `routing.gateways`): `all`,
 * `none`, or gateway names `<namespace>/<name>` (as VirtualServices name them, short names
 * resolved against the VirtualService's namespace).
 */
export type GatewayRouting = 'all' | 'none' | readonly string[];

/** The sandbox routes of one forked baseline host (FQDN) and the Service it belongs to. */
export interface HostEntry {
  readonly serviceName: string;
  readonly namespace: string;
  /** The baseline Service's port numbers, in its order (meshfork's own VirtualService names one per route when there are several). */
  readonly ports?: readonly number[];
  readonly routes: readonly SandboxRoute[];
}

export interface VirtualServicePlacementInput {
  /** Baseline inventory (meshfork's own objects already removed). */
  readonly inventory: Inventory;
  readonly hostRoutes: ReadonlyMap<string, HostEntry>;
  /** Forked workloads as clients, for `sourceLabels` blocks selecting their baselines. */
  readonly sources: readonly ForkedSource[];
  /** Gateways whose VirtualServices get copies, resolved from the configuration. */
  readonly gateways: GatewayRouting;
  /** Namespaces the inventory and the Sandboxes name: where clients may be. */
  readonly namespaces: ReadonlySet<string>;
}

const WHAT_TO_ENABLE = 'enable the ingress guard (ingressGuard.enabled) or list the gateway in routing.gateways';

function byNamespaceAndName(a: KubeObject, b: KubeObject): number {
  return namespaceOf(a).localeCompare(namespaceOf(b)) || a.metadata.name.localeCompare(b.metadata.name);
}

function httpRoutes(vs: KubeObject): HttpRoute[] {
  const http = (vs.spec as { http?: unknown } | undefined)?.http;
  return Array.isArray(http) ? (http as HttpRoute[]) : [];
}

/** A VirtualService without hosts is a delegate: istiod uses it only through a root's `delegate`. */
function isDelegate(vs: KubeObject): boolean {
  return virtualServiceHosts(vs).length === 0;
}

/** `namespace/name` of the delegates a root VirtualService's routes name (namespace defaults to the root's). */
function delegatesOf(root: KubeObject): string[] {
  return httpRoutes(root).flatMap((r) => {
    const delegate = r.delegate as { name?: unknown; namespace?: unknown } | undefined;
    if (delegate === undefined || typeof delegate.name !== 'string') return [];
    return [`${typeof delegate.namespace === 'string' && delegate.namespace !== '' ? delegate.namespace : namespaceOf(root)}/${delegate.name}`];
  });
}

/**
 * Namespaces whose sidecars see a VirtualService: `public` for every namespace (no exportTo, or
 * `*`), else the listed ones with `.` as its own; `~` makes it visible nowhere.
 */
type Scope = 'public' | ReadonlySet<string>;

function scopeOf(vs: KubeObject): Scope {
  const exportTo = (vs.spec as { exportTo?: unknown } | undefined)?.exportTo;
  if (!Array.isArray(exportTo) || exportTo.length === 0) return 'public';
  const entries = exportTo.filter((e): e is string => typeof e === 'string');
  if (entries.includes('*')) return 'public';
  if (entries.includes('~')) return new Set();
  return new Set(entries.map((e) => (e === '.' ? namespaceOf(vs) : e)));
}

/**
 * Version families of the baseline workloads behind each Service host (the Deployments of its
 * namespace whose pods it selects), computed for the hosts asked for and remembered. Deployments
 * are indexed by namespace and pod label, so a selector is evaluated only against those carrying
 * the least common of its labels.
 */
function hostFamilies(inventory: Inventory): (hosts: Iterable<string>) => ReadonlyMap<string, readonly string[]> {
  const services = new Map(inventory.services.map((s) => [serviceFqdn(s.metadata.name, namespaceOf(s)), s]));
  const withLabel = groupBy(
    inventory.deployments.flatMap((d) => Object.entries(podTemplateLabels(d)).map(([key, value]) => ({ d, at: JSON.stringify([namespaceOf(d), key, value]) }))),
    (e) => e.at,
  );
  const known = new Map<string, readonly string[]>();
  return (hosts) => {
    const out = new Map<string, readonly string[]>();
    for (const host of hosts) {
      let families = known.get(host);
      if (families === undefined) {
        const service = services.get(host);
        const namespace = service === undefined ? '' : namespaceOf(service);
        const selector = service === undefined ? undefined : serviceSelector(service);
        const candidates = Object.entries(selector ?? {})
          .map(([key, value]) => (withLabel.get(JSON.stringify([namespace, key, value])) ?? []).map((e) => e.d))
          .reduce<KubeObject[] | undefined>((fewest, list) => (fewest === undefined || list.length < fewest.length ? list : fewest), undefined);
        families = [
          ...new Set((candidates ?? []).filter((d) => serviceSelectorSelects(selector, podTemplateLabels(d))).map((d) => versionFamily(namespace, podTemplateLabels(d), d.metadata.name))),
        ];
        known.set(host, families);
      }
      out.set(host, families);
    }
    return out;
  };
}

/** Whether `gateway` (a resolved name) may get sandbox copies. */
function allowedGateway(gateways: GatewayRouting, gateway: string): boolean {
  if (gateway === MESH_GATEWAY) return true;
  if (gateways === 'all') return true;
  if (gateways === 'none') return false;
  return gateways.includes(gateway);
}

/**
 * The VirtualServices meshfork writes for the forked hosts (merged user ones, restored user ones,
 * its own) and the notes about the ones that keyed requests do not follow.
 */
export function placeVirtualServices(input: VirtualServicePlacementInput): { objects: KubeObject[]; notes: Problem[] } {
  const { inventory, hostRoutes } = input;
  const hostRoutings: HostRouting[] = [...hostRoutes].map(([host, e]) => ({ host, routes: [...e.routes].sort((a, b) => a.sandbox.localeCompare(b.sandbox)) }));
  const forkedHosts = new Set(hostRoutings.map((h) => h.host));
  const objects: KubeObject[] = [];
  const notes: Problem[] = [];
  const userVirtualServices = [...inventory.virtualServices].sort(byNamespaceAndName);

  objects.push(...ownedVirtualServices(userVirtualServices, hostRoutes, hostRoutings, input.namespaces, notes));

  // Roots of each delegate: a delegate applies to the proxies its roots apply to.
  const rootsOf = new Map<string, KubeObject[]>();
  const byId = new Map(userVirtualServices.map((vs) => [`${namespaceOf(vs)}/${vs.metadata.name}`, vs]));
  for (const root of userVirtualServices) {
    if (isDelegate(root)) continue;
    for (const id of delegatesOf(root)) rootsOf.set(id, [...(rootsOf.get(id) ?? []), root]);
  }
  // Hosts a root's delegates send traffic to: the root reaches them through its delegates.
  const delegatedHosts = (root: KubeObject) =>
    new Set(
      delegatesOf(root).flatMap((id) => {
        const target = byId.get(id);
        return target !== undefined && isDelegate(target) ? [...routedHosts(target)] : [];
      }),
    );
  const families = hostFamilies(inventory);
  for (const vs of userVirtualServices) {
    const delegate = isDelegate(vs);
    const roots = delegate ? rootsOf.get(`${namespaceOf(vs)}/${vs.metadata.name}`) ?? [] : [];
    const proxies = delegate ? [...new Set(roots.flatMap(virtualServiceGateways))].sort() : virtualServiceGateways(vs);
    const mesh = proxies.includes(MESH_GATEWAY);
    const viaDelegates = delegate ? new Set<string>() : delegatedHosts(vs);
    const named = delegate || !mesh ? [] : virtualServiceHosts(vs).filter((h) => forkedHosts.has(h) && !viaDelegates.has(h));
    const routedTo = routedHosts(vs);
    const routed = [...routedTo].filter((h) => forkedHosts.has(h));
    // Forks are sidecars: only a VirtualService applying to `mesh` can select them as clients.
    const sources = mesh && selectsForkedSources(vs, input.sources) ? input.sources : [];
    const allowed = proxies.filter((g) => allowedGateway(input.gateways, g));
    if ((named.length === 0 && routed.length === 0 && sources.length === 0) || allowed.length === 0) {
      if (routed.length > 0 && proxies.length > 0) {
        notes.push({
          object: objectRef(vs),
          path: delegate ? 'metadata.name' : 'spec.gateways',
          message: `${delegate ? `is a delegate of ${roots.map(objectRef).join(', ')}, bound` : 'is bound'} only to gateway${proxies.length === 1 ? '' : 's'} ${proxies.join(', ')}, so requests through ${proxies.length === 1 ? 'it' : 'them'} with a sandbox's key for ${routed.join(', ')} reach the baseline; ${WHAT_TO_ENABLE}`,
        });
      }
      // Merged earlier (its meshfork routes came back as input) but no sandbox routes through it
      // or is selected by it now: emit it restored, so the last sandbox's routes disappear with it.
      if (httpRoutes(vs).some(isMeshforkRoute)) objects.push(mergeVirtualService(vs, []).virtualService);
      continue;
    }
    if (isIgnored(vs)) {
      notes.push({
        object: objectRef(vs),
        path: `metadata.annotations.${IGNORE_ANNOTATION}`,
        message: `is "true", so meshfork leaves this VirtualService as it is: requests through it with a sandbox's key for ${[...new Set([...named, ...routed])].join(', ') || 'the forked hosts'} follow its routes to the baseline`,
      });
      continue;
    }
    const blocked = proxies.filter((g) => !allowed.includes(g));
    if (blocked.length > 0 && routed.length > 0) {
      notes.push({
        object: objectRef(vs),
        path: delegate ? 'metadata.name' : 'spec.gateways',
        message: `sandbox copies apply to ${allowed.join(', ')} only (match gateways), so requests through ${blocked.join(', ')} with a sandbox's key for ${routed.join(', ')} reach the baseline; ${WHAT_TO_ENABLE}`,
      });
    }
    const { virtualService, notes: routeNotes } = mergeVirtualService(
      vs,
      hostRoutings.filter((h) => routedTo.has(h.host)),
      families(routedTo),
      { ...(blocked.length > 0 ? { gateways: allowed } : {}), sources },
    );
    objects.push(virtualService);
    for (const n of routeNotes) notes.push({ object: objectRef(vs), path: `spec.http[${n.routeIndex}]`, message: n.message });
    notes.push(...unroutedSandboxNotes(vs, virtualService, hostRoutings.filter((h) => named.includes(h.host))));
  }
  return { objects, notes };
}

/**
 * For a mesh VirtualService naming forked hosts: a note per sandbox of such a host that got no
 * copy in it (no HTTP route sends traffic to the host).
 */
function unroutedSandboxNotes(vs: KubeObject, merged: KubeObject, named: readonly HostRouting[]): Problem[] {
  // Every `meshfork-<...>-` prefix of a route name, to look up `meshfork-<sandbox>-` directly.
  const routePrefixes = new Set<string>();
  for (const route of httpRoutes(merged)) {
    const name = typeof route.name === 'string' ? route.name : '';
    if (!name.startsWith(ROUTE_NAME_PREFIX)) continue;
    for (let dash = name.indexOf('-', ROUTE_NAME_PREFIX.length); dash >= 0; dash = name.indexOf('-', dash + 1)) routePrefixes.add(name.slice(0, dash + 1));
  }
  const notes: Problem[] = [];
  for (const routing of named) {
    for (const r of routing.routes) {
      if (!routePrefixes.has(`${ROUTE_NAME_PREFIX}${r.sandbox}-`)) {
        notes.push({ object: objectRef(vs), path: 'spec.http', message: `no HTTP route sends traffic to ${routing.host}, so requests with sandbox "${r.sandbox}"'s key are not routed to its fork` });
      }
    }
  }
  return notes;
}

/**
 * meshfork's own VirtualService of each forked host, for the namespaces where no user mesh
 * VirtualService of the host is visible, and the IST0109 notes for user ones that overlap.
 */
function ownedVirtualServices(
  userVirtualServices: readonly KubeObject[],
  hostRoutes: ReadonlyMap<string, HostEntry>,
  hostRoutings: readonly HostRouting[],
  namespaces: ReadonlySet<string>,
  notes: Problem[],
): KubeObject[] {
  const out: KubeObject[] = [];
  // Each user mesh VirtualService under every host it names, in namespace and name order.
  const meshByHost = groupBy(
    userVirtualServices.filter((vs) => !isDelegate(vs) && virtualServiceGateways(vs).includes(MESH_GATEWAY)).flatMap((vs) => [...new Set(virtualServiceHosts(vs))].map((host) => ({ vs, host }))),
    (e) => e.host,
  );
  for (const routing of hostRoutings) {
    const entry = hostRoutes.get(routing.host)!;
    const mesh = (meshByHost.get(routing.host) ?? []).map((e) => e.vs);
    const scoped = mesh.map((vs) => ({ vs, scope: scopeOf(vs) }));
    const publicOnes = scoped.filter((s) => s.scope === 'public');
    if (publicOnes.length > 1 && publicOnes.length === mesh.length) {
      notes.push({ object: objectRef(mesh[1]!), path: 'spec.hosts', message: `${mesh.length} VirtualServices route ${routing.host} for the mesh; Istio uses only the oldest (IST0109). meshfork adds its routes to each` });
    } else {
      const shared = sharedNamespaces(scoped, namespaces);
      if (shared.namespaces.length > 0) {
        notes.push({
          object: objectRef(shared.second),
          path: 'spec.exportTo',
          message: `${shared.count} VirtualServices route ${routing.host} for sidecars of namespace${shared.namespaces.length === 1 ? '' : 's'} ${shared.namespaces.join(', ')}; Istio uses one per namespace (namespace-local first, then exported, then public; the oldest within each) and istioctl analyze reports IST0109. meshfork adds its routes to each`,
        });
      }
    }
    if (publicOnes.length > 0) continue;
    const name = ownedVirtualServiceName(entry.serviceName);
    if (mesh.length === 0) {
      out.push(ownedVirtualService({ name, namespace: entry.namespace, host: routing, ports: entry.ports }).virtualService);
      continue;
    }
    const covered = new Set(scoped.flatMap((s) => [...(s.scope as ReadonlySet<string>)]));
    const exportTo = [...namespaces].filter((n) => !covered.has(n)).sort();
    const scopes = mesh.map((vs) => `${objectRef(vs)} to ${[...(scopeOf(vs) as ReadonlySet<string>)].sort().join(', ') || 'no namespace'}`).join('; ');
    if (exportTo.length > 0) out.push(ownedVirtualService({ name, namespace: entry.namespace, host: routing, ports: entry.ports, exportTo }).virtualService);
    notes.push({
      object: objectRef(mesh[0]!),
      path: 'spec.exportTo',
      message: `the user VirtualServices of ${routing.host} are exported only to some namespaces (${scopes}), and get the sandbox routes there; ${
        exportTo.length > 0 ? `meshfork's VirtualService ${entry.namespace}/${name} carries them for ${exportTo.join(', ')}` : 'no other namespace is known'
      }. Clients in namespaces meshfork was not shown reach the baseline with a sandbox's key until it plans again with them`,
    });
  }
  return out;
}

/** Namespaces (among those known) where more than one of the VirtualServices is visible. */
function sharedNamespaces(scoped: ReadonlyArray<{ vs: KubeObject; scope: Scope }>, namespaces: ReadonlySet<string>): { namespaces: string[]; count: number; second: KubeObject } {
  const visible = (scope: Scope, n: string) => scope === 'public' || scope.has(n);
  const candidates = new Set([...namespaces, ...scoped.flatMap((s) => (s.scope === 'public' ? [] : [...s.scope]))]);
  const shared = [...candidates].filter((n) => scoped.filter((s) => visible(s.scope, n)).length > 1).sort();
  const involved = scoped.filter((s) => shared.some((n) => visible(s.scope, n)));
  return { namespaces: shared, count: involved.length, second: (involved[1] ?? scoped[0])?.vs as KubeObject };
}

/** The gateways whose VirtualServices get copies: the setting, else all with the ingress guard on and none without. */
export function gatewayRoutingOf(setting: GatewayRouting | undefined, ingressGuardEnabled: boolean): GatewayRouting {
  return setting ?? (ingressGuardEnabled ? 'all' : 'none');
}

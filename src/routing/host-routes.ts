/**
 * The effective HTTP routes of one host as a proxy sees them, and the route a request takes:
 * what `meshfork routes` prints, from live objects or from files. Pure.
 *
 *  - The VirtualService is the one the proxy uses for the host (visibleVirtualService: exportTo,
 *    the proxy's namespace, exact host before wildcard, oldest first), its `delegate` routes
 *    replaced by the delegates' routes as istiod merges them (mergeDelegates).
 *  - Without a visible VirtualService a sidecar sends every request for a Service's host to that
 *    Service (Istio's default route); a gateway routes nothing without one.
 *  - A destination's subset is resolved through the DestinationRule the proxy uses for its host:
 *    the one in the proxy's namespace, else the host's namespace, else the root namespace
 *    (istio-system), each only if exported to the proxy's namespace (istio.io, "Traffic
 *    management best practices: cross-namespace configuration"). A subset no visible
 *    DestinationRule defines has no Envoy cluster: requests to it fail with 503 (NC).
 *  - Who each route belongs to comes from its name (routeOwner: `meshfork-<sandbox>-<i>`).
 */
import { resolveHost } from '../planner/inventory.js';
import type { KubeObject } from '../planner/kube.js';
import { COMPAT_PRESETS, DEFAULT_KEY_NAME, baggageMemberRegex, noMemberRegex, tracestateMemberRegex } from '../planner/routing-key.js';
import { routeOwner, type RouteOwner } from '../planner/virtual-service.js';
import {
  destinationShares,
  evaluateRoute,
  mergeDelegates,
  routeAction,
  visibleVirtualService,
  type RouteDestination,
  type RouteMirror,
  type RouteRequest,
} from './evaluate.js';

/** The Istio root namespace, whose DestinationRules apply mesh-wide (meshConfig.rootNamespace default). */
export const ROOT_NAMESPACE = 'istio-system';

export interface RoutingObjects {
  readonly virtualServices: readonly KubeObject[];
  readonly destinationRules: readonly KubeObject[];
  readonly services: readonly KubeObject[];
}

/** The proxy that routes: a sidecar of `namespace` (gateway `mesh`), or a gateway `<ns>/<name>`. */
export interface Viewpoint {
  readonly namespace: string;
  /** @default 'mesh' */
  readonly gateway?: string;
}

export interface ResolvedDestination extends RouteDestination {
  /** Share of the route's requests, in percent. */
  readonly share: number;
  /** `namespace/name` of the DestinationRule defining the subset. */
  readonly destinationRule?: string;
  /** Pod labels the subset selects. */
  readonly subsetLabels?: Readonly<Record<string, string>>;
  /** Why requests to this destination fail (a subset nobody defines). */
  readonly problem?: string;
}

export interface HostRoute {
  /** Index in the effective route list (after delegates are merged). */
  readonly index: number;
  readonly name?: string;
  readonly owner: RouteOwner;
  /** Each match block in words (describeMatchBlock); empty for a route matching every request. */
  readonly match: readonly string[];
  readonly action: 'route' | 'redirect' | 'directResponse';
  readonly destinations: readonly ResolvedDestination[];
  readonly mirrors: readonly RouteMirror[];
}

export interface HostRoutes {
  /** The host, as an FQDN. */
  readonly host: string;
  /** `namespace/name` of the VirtualService used; undefined: Istio's default route to the Service. */
  readonly virtualService?: string;
  /** `namespace/name` of each delegate VirtualService merged in. */
  readonly delegates: readonly string[];
  readonly routes: readonly HostRoute[];
}

export interface RouteTrace extends HostRoutes {
  /** The route taken, or undefined when none matches (Envoy answers 404, NR). */
  readonly taken?: HostRoute;
  /** Index of the match block that matched; undefined for a route without match blocks. */
  readonly matchIndex?: number;
}

/** The host is neither routed by a visible VirtualService nor a Service (nothing to show). */
export class UnknownHostError extends Error {
  override name = 'UnknownHostError';
}

const nsOf = (o: KubeObject) => o.metadata.namespace ?? 'default';
const ref = (o: KubeObject) => `${nsOf(o)}/${o.metadata.name}`;

/** The host a user names, as an FQDN: `reviews` is in `namespace`, `reviews.shop` in shop. */
export function hostFqdn(host: string, namespace: string): string {
  return resolveHost(host, namespace);
}

function exportedTo(object: KubeObject, namespace: string): boolean {
  const exportTo = (object.spec as { exportTo?: string[] } | undefined)?.exportTo;
  if (exportTo === undefined || exportTo.length === 0 || exportTo.includes('*')) return true;
  return exportTo.some((e) => (e === '.' ? nsOf(object) : e) === namespace);
}

const created = (o: KubeObject) => new Date(String((o.metadata as { creationTimestamp?: string }).creationTimestamp ?? 0)).getTime() || 0;

/** The DestinationRule a proxy of `proxyNamespace` applies to `host` (see the module comment). */
export function destinationRuleFor(destinationRules: readonly KubeObject[], host: string, proxyNamespace: string): KubeObject | undefined {
  const forHost = destinationRules.filter((dr) => {
    const drHost = (dr.spec as { host?: string } | undefined)?.host;
    if (typeof drHost !== 'string') return false;
    const h = resolveHost(drHost, nsOf(dr));
    return (h === host || (h.startsWith('*.') && host.endsWith(h.slice(1))) || h === '*') && exportedTo(dr, proxyNamespace);
  });
  const hostNamespace = host.endsWith('.svc.cluster.local') ? host.split('.')[1] : undefined;
  for (const namespace of [proxyNamespace, hostNamespace, ROOT_NAMESPACE]) {
    const found = forHost.filter((dr) => nsOf(dr) === namespace).sort((a, b) => created(a) - created(b) || a.metadata.name.localeCompare(b.metadata.name));
    if (found[0] !== undefined) return found[0];
  }
  return undefined;
}

/**
 * The destinations with their hosts as FQDNs (a short name is relative to the VirtualService's
 * namespace, `vsNamespace`), shares and subsets.
 */
function resolveDestinations(objects: RoutingObjects, destinations: readonly RouteDestination[], vsNamespace: string, proxyNamespace: string): ResolvedDestination[] {
  const shares = destinationShares(destinations);
  return destinations.map((written, i) => {
    const d = { ...written, host: resolveHost(written.host, vsNamespace) };
    const out = { ...d, share: shares[i] ?? 0 };
    if (d.subset === undefined) return out;
    const dr = destinationRuleFor(objects.destinationRules, d.host, proxyNamespace);
    if (dr === undefined) return { ...out, problem: `no DestinationRule for ${d.host} visible from namespace ${proxyNamespace} defines subset "${d.subset}": requests fail with 503 (NC)` };
    const subsets = (dr.spec as { subsets?: Array<{ name?: string; labels?: Record<string, string> }> }).subsets ?? [];
    const subset = subsets.find((s) => s.name === d.subset);
    if (subset === undefined) return { ...out, destinationRule: ref(dr), problem: `DestinationRule ${ref(dr)} has no subset "${d.subset}": requests fail with 503 (NC)` };
    return { ...out, destinationRule: ref(dr), subsetLabels: { ...(subset.labels ?? {}) } };
  });
}

/**
 * A header regex the planner writes for a routing key, in words: `baggage has K=V`,
 * `tracestate has K=V`, `baggage lacks K` (recognised by rebuilding it with the planner's own
 * functions for the key name and key it seems to name, never by a looser pattern); undefined
 * for any other regex. `keyNames` are the key names of the no-member regexes to recognise.
 */
export function describeKeyRegex(header: string, pattern: string, keyNames: readonly string[]): string | undefined {
  if (header !== 'baggage' && header !== 'tracestate') return undefined;
  const member = /^\^\(\?:\.\*,\)\?\[ \\t\]\*([a-z0-9._\\-]+?)(?:\[ \\t\]\*=\[ \\t\]\*|=)([a-z0-9]+)\[ \\t\]\*/.exec(pattern);
  const same = (build: () => string) => {
    try {
      return build() === pattern;
    } catch {
      return false; // not a key name or key the planner accepts
    }
  };
  if (member !== null) {
    const keyName = (member[1] as string).replaceAll('\\.', '.');
    const key = member[2] as string;
    if (same(() => (header === 'baggage' ? baggageMemberRegex(keyName, key) : tracestateMemberRegex(keyName, key)))) return `${header} has ${keyName}=${key}`;
  }
  const lacking = keyNames.find((keyName) => same(() => noMemberRegex(header, keyName)));
  return lacking === undefined ? undefined : `${header} lacks ${lacking}`;
}

/** Key names whose no-member regexes are recognised: the default, the presets' and those of member regexes in `routes`. */
function keyNamesOf(routes: ReadonlyArray<Record<string, unknown>>): string[] {
  const names = new Set([DEFAULT_KEY_NAME, ...Object.values(COMPAT_PRESETS).map((c) => c.keyName)]);
  for (const route of routes) {
    for (const block of Array.isArray(route.match) ? (route.match as Array<Record<string, unknown>>) : []) {
      for (const [header, m] of Object.entries((block?.headers ?? {}) as Record<string, { regex?: unknown }>)) {
        const said = typeof m?.regex === 'string' ? describeKeyRegex(header, m.regex, []) : undefined;
        const name = said === undefined ? undefined : /^\w+ has (.+)=[a-z0-9]+$/.exec(said)?.[1];
        if (name !== undefined) names.add(name);
      }
    }
  }
  return [...names];
}

function stringMatch(raw: unknown): string {
  if (raw === null || raw === undefined || typeof raw !== 'object' || Object.keys(raw).length === 0) return 'present';
  const [type, value] = Object.entries(raw)[0] as [string, unknown];
  if (type === 'regex' && value === '*') return 'present';
  return `${type} ${JSON.stringify(value)}`;
}

/**
 * One HTTPMatchRequest in words, its conditions joined by ` and ` (each kind's by name): `uri prefix "/api"`,
 * `end-user exact "jason"`, `not baggage present`, `sourceLabels app=web`, a routing-key regex
 * as `baggage has K=V` (describeKeyRegex with `keyNames`).
 */
export function describeMatchBlock(block: Record<string, unknown>, keyNames: readonly string[] = [DEFAULT_KEY_NAME]): string {
  const parts: string[] = [];
  // Conditions are AND-ed: names sorted, so a block reads the same from a file and from the API
  // server (which returns a custom resource's map keys sorted).
  const map = (field: string) => Object.entries((block[field] ?? {}) as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const field of ['uri', 'method', 'authority', 'scheme'] as const) {
    if (block[field] !== undefined && block[field] !== null) parts.push(`${field} ${stringMatch(block[field])}${field === 'uri' && block.ignoreUriCase === true ? ' (any case)' : ''}`);
  }
  for (const [name, m] of map('headers')) {
    const regex = (m as { regex?: unknown } | null)?.regex;
    parts.push((typeof regex === 'string' ? describeKeyRegex(name, regex, keyNames) : undefined) ?? `${name} ${stringMatch(m)}`);
  }
  for (const [name, m] of map('withoutHeaders')) parts.push(`not ${name} ${stringMatch(m)}`);
  for (const [name, m] of map('queryParams')) parts.push(`?${name} ${stringMatch(m)}`);
  if (typeof block.port === 'number' && block.port !== 0) parts.push(`port ${block.port}`);
  const labels = map('sourceLabels');
  if (labels.length > 0) parts.push(`sourceLabels ${labels.map(([k, v]) => `${k}=${String(v)}`).join(',')}`);
  if (typeof block.sourceNamespace === 'string' && block.sourceNamespace !== '') parts.push(`sourceNamespace ${block.sourceNamespace}`);
  if (Array.isArray(block.gateways) && block.gateways.length > 0) parts.push(`gateways ${block.gateways.join(',')}`);
  return parts.length === 0 ? '*' : parts.join(' and ');
}

function describeMatch(match: unknown, keyNames: readonly string[]): string[] {
  return Array.isArray(match) ? match.map((b) => describeMatchBlock((b ?? {}) as Record<string, unknown>, keyNames)) : [];
}

interface Effective extends HostRoutes {
  /** The merged VirtualService evaluated for requests, when there is one. */
  readonly merged?: KubeObject;
}

function effectiveRoutes(objects: RoutingObjects, host: string, viewpoint: Viewpoint): Effective {
  const gateway = viewpoint.gateway ?? 'mesh';
  const vs = visibleVirtualService(objects.virtualServices, host, viewpoint.namespace, gateway) as KubeObject | undefined;
  if (vs === undefined) {
    const service = objects.services.find((s) => resolveHost(s.metadata.name, nsOf(s)) === host);
    if (gateway !== 'mesh' || service === undefined) {
      const at = gateway === 'mesh' ? `sidecars of namespace ${viewpoint.namespace}` : `gateway ${gateway}`;
      throw new UnknownHostError(`no VirtualService for ${host} applies to ${at}${gateway === 'mesh' ? ' and no Service has that host' : ''}`);
    }
    const destinations = resolveDestinations(objects, [{ host }], viewpoint.namespace, viewpoint.namespace);
    return { host, delegates: [], routes: [{ index: 0, owner: { user: true }, match: [], action: 'route', destinations, mirrors: [] }] };
  }
  const rootRoutes = (vs.spec as { http?: Array<{ delegate?: { name?: string; namespace?: string } }> }).http ?? [];
  const delegateRefs = [...new Set(rootRoutes.flatMap((r) => (r.delegate ? [`${r.delegate.namespace || nsOf(vs)}/${r.delegate.name}`] : [])))];
  const hostless = objects.virtualServices.filter((v) => ((v.spec as { hosts?: string[] } | undefined)?.hosts ?? []).length === 0);
  const merged = delegateRefs.length > 0 ? (mergeDelegates(vs, hostless) as unknown as KubeObject) : vs;
  const http = (merged.spec as { http?: Array<Record<string, unknown>> }).http ?? [];
  const keyNames = keyNamesOf(http);
  const routes = http.map((route, index): HostRoute => {
    const { action, destinations, mirrors } = routeAction(route, `VirtualService ${ref(vs)} spec.http[${index}]`);
    const name = typeof route.name === 'string' ? route.name : undefined;
    return {
      index,
      ...(name !== undefined ? { name } : {}),
      owner: routeOwner(name),
      match: describeMatch(route.match, keyNames),
      action,
      destinations: resolveDestinations(objects, destinations, nsOf(vs), viewpoint.namespace),
      mirrors: mirrors.map((m) => ({ ...m, host: resolveHost(m.host, nsOf(vs)) })),
    };
  });
  return { host, virtualService: ref(vs), delegates: delegateRefs.filter((d) => hostless.some((v) => ref(v) === d)), routes, merged };
}

/** The routes of `host` (an FQDN) in the order the proxy at `viewpoint` tries them. */
export function hostRoutes(objects: RoutingObjects, host: string, viewpoint: Viewpoint): HostRoutes {
  const { merged: _merged, ...table } = effectiveRoutes(objects, host, viewpoint);
  return table;
}

/**
 * The routes of `host` and the one `request` takes at `viewpoint` (first match, as Envoy).
 * The request's gateway is the viewpoint's, its source namespace the viewpoint's namespace.
 */
export function traceRequest(objects: RoutingObjects, host: string, viewpoint: Viewpoint, request: RouteRequest): RouteTrace {
  const { merged, ...table } = effectiveRoutes(objects, host, viewpoint);
  if (merged === undefined) return { ...table, taken: table.routes[0] as HostRoute };
  const decision = evaluateRoute(merged, { sourceNamespace: viewpoint.namespace, ...request, gateway: viewpoint.gateway ?? 'mesh' });
  if (decision === undefined) return table;
  return { ...table, taken: table.routes[decision.routeIndex] as HostRoute, ...(decision.matchIndex !== undefined ? { matchIndex: decision.matchIndex } : {}) };
}

/**
 * Gateway API routes in the integration and e2e suites: the routing-key header match meshfork's
 * derived routes carry, and the order in which the mesh merges the rules of every route attached
 * to one Service port (to compare with istiod's RDS).
 */
import { baggageMemberRegex, DEFAULT_KEY_NAME, noMemberRegex, tracestateMemberRegex } from '../../src/planner/routing-key.js';
import type { KubeObj } from './istiod.js';

export const GATEWAY_API_V1 = 'gateway.networking.k8s.io/v1';

type Json = Record<string, unknown>;

export interface HeaderMatch {
  name: string;
  type?: 'Exact' | 'RegularExpression';
  value: string;
}

export interface RouteMatch {
  path?: { type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; value?: string };
  method?: string | { type?: string; service?: string; method?: string };
  headers?: HeaderMatch[];
  queryParams?: HeaderMatch[];
}

export interface BackendRef {
  name: string;
  namespace?: string;
  group?: string;
  kind?: string;
  port?: number;
  weight?: number;
  [k: string]: unknown;
}

export interface RouteRule {
  name?: string;
  matches?: RouteMatch[];
  backendRefs?: BackendRef[];
  [k: string]: unknown;
}

export interface RouteSpec {
  parentRefs?: Array<{ group?: string; kind?: string; name: string; namespace?: string; port?: number }>;
  rules?: RouteRule[];
  [k: string]: unknown;
}

/** The routing-key header match of `key` (the baggage member regex of the VirtualService routes). */
export function keyHeaderMatch(key: string, keyName = DEFAULT_KEY_NAME): HeaderMatch {
  return { name: 'baggage', type: 'RegularExpression', value: baggageMemberRegex(keyName, key) };
}

// ---------------------------------------------------------------------------------------------
// How the mesh merges the rules of every route attached to one Service port.

/** One rule match as the mesh ranks and routes it. */
export interface MeshRoute {
  /** `<namespace>/<route>#<rule index>.<match index>`. */
  readonly from: string;
  /** `path=/x`, `prefix=/`, `separated-prefix=/x`, `regex=...` (Envoy's path specifiers, as istiod writes Gateway API paths). */
  readonly path: string;
  /** `name = value` / `name ~ regex`, sorted. */
  readonly headers: string[];
  /** `outbound|<port>||<fqdn>` or `...*<weight>` each. */
  readonly clusters: string[];
}

const pathRank = (t: string | undefined) => (t === 'Exact' ? 3 : t === 'RegularExpression' ? 1 : 2);

/**
 * The routes a client of Service `<namespace>/<service>`:`port` gets from every HTTPRoute in
 * `routes` attached to it, in the order Gateway API's precedence puts them
 * (gateway-api v1.6.0 apis/v1/httproute_types.go, HTTPRouteRule): "Exact path match", "Prefix
 * path match with largest number of characters", "Method match", "Largest number of header
 * matches", "Largest number of query param matches"; then across routes "The oldest Route based
 * on creation timestamp", "The Route appearing first in alphabetical order by {namespace}/{name}";
 * within a route, rule and match order. Routes after the first catch-all (prefix `/`, no header,
 * method or query match) are never reached and istiod drops them. Paths as the API server defaults
 * them (a match without `path` is `PathPrefix /`; a rule without matches has one such match).
 */
export function meshRouteOrder(routes: readonly KubeObj[], namespace: string, service: string, port: number): MeshRoute[] {
  const attachedHere = (r: KubeObj) =>
    ((r['spec'] as RouteSpec).parentRefs ?? []).some(
      (p) => p.group === '' && p.kind === 'Service' && p.name === service && (p.namespace ?? r.metadata.namespace) === namespace && (p.port === undefined || p.port === port),
    );
  const age = (r: KubeObj) => String((r.metadata as { creationTimestamp?: string }).creationTimestamp ?? '');
  // istiod merges the routes of one host oldest first (creationTimestamp, one-second resolution);
  // ties go by namespace, then by the name of the VirtualService it generated from each route,
  // `<route>~<n>~<suffix>` (pilot/pkg/config/kube/gateway: sortRoutesByCreationTime in
  // conversion.go, the name in route_collections.go), compared bytewise: so `shop-alpha~…` comes
  // before `shop~…` although the route `shop` sorts first by name alone.
  const bytewise = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const ordered = routes
    .filter((r) => r.kind === 'HTTPRoute' && (r.metadata.namespace ?? 'default') === namespace && attachedHere(r))
    .sort((a, b) => bytewise(age(a), age(b)) || bytewise(a.metadata.namespace ?? '', b.metadata.namespace ?? '') || bytewise(`${a.metadata.name}~`, `${b.metadata.name}~`));
  type Ranked = MeshRoute & { readonly rank: number[]; readonly catchAll: boolean };
  const entries: Ranked[] = [];
  for (const r of ordered) {
    const ns = r.metadata.namespace ?? 'default';
    ((r['spec'] as RouteSpec).rules ?? []).forEach((rule, index) => {
      const backends = rule.backendRefs ?? [];
      const clusters = backends.map((b) => {
        const c = `outbound|${b.port ?? port}||${b.name}.${b.namespace ?? ns}.svc.cluster.local`;
        return backends.length > 1 ? `${c}*${b.weight ?? 1}` : c;
      });
      for (const [matchIndex, m] of (rule.matches && rule.matches.length > 0 ? rule.matches : [{}]).entries()) {
        const type = m.path?.type ?? 'PathPrefix';
        const value = m.path?.value ?? '/';
        const path = type === 'Exact' ? `path=${value}` : type === 'RegularExpression' ? `regex=${value}` : value === '/' ? 'prefix=/' : `separated-prefix=${value.replace(/\/$/, '')}`;
        const headers = (m.headers ?? []).map((h) => `${h.name.toLowerCase()} ${h.type === 'RegularExpression' ? '~' : '='} ${h.value}`).sort();
        // istiod compares the path value's length for every path type (conversion.go getURILength);
        // two different Exact paths never both match, so only prefixes depend on it.
        const rank = [pathRank(type), value.length, m.method ? 1 : 0, headers.length, (m.queryParams ?? []).length];
        const catchAll = type === 'PathPrefix' && value === '/' && headers.length === 0 && !m.method && (m.queryParams ?? []).length === 0;
        entries.push({ from: `${ns}/${r.metadata.name}#${index}.${matchIndex}`, path, headers, clusters, rank, catchAll });
      }
    });
  }
  // Array.prototype.sort is stable: ties keep the route age / rule / match order above.
  const sorted = entries.sort((a, b) => {
    for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return b.rank[i]! - a.rank[i]!;
    return 0;
  });
  const firstCatchAll = sorted.findIndex((e) => e.catchAll);
  return sorted.slice(0, firstCatchAll < 0 ? sorted.length : firstCatchAll + 1).map(({ rank: _rank, catchAll: _catchAll, ...e }) => e);
}

/** An Envoy route of istiod's RDS (snake_case JSON) reduced like {@link MeshRoute} (without `from`/`rule`). */
export function envoyRouteSummary(r: {
  match?: { path?: string; prefix?: string; path_separated_prefix?: string; safe_regex?: { regex: string }; headers?: Array<{ name: string; string_match?: { exact?: string; safe_regex?: { regex: string } } }> };
  route?: { cluster?: string; weighted_clusters?: { clusters: Array<{ name: string; weight?: number }> } };
}): Pick<MeshRoute, 'path' | 'headers' | 'clusters'> {
  const m = r.match ?? {};
  const path =
    m.path !== undefined ? `path=${m.path}` : m.path_separated_prefix !== undefined ? `separated-prefix=${m.path_separated_prefix}` : m.safe_regex ? `regex=${m.safe_regex.regex}` : `prefix=${m.prefix ?? ''}`;
  const headers = (m.headers ?? [])
    .map((h) => (h.string_match?.safe_regex ? `${h.name} ~ ${h.string_match.safe_regex.regex}` : `${h.name} = ${h.string_match?.exact ?? JSON.stringify(h)}`))
    .sort();
  const clusters = r.route?.cluster ? [r.route.cluster] : (r.route?.weighted_clusters?.clusters ?? []).map((c) => `${c.name}*${c.weight ?? 0}`);
  return { path, headers, clusters };
}

/**
 * One line per route, each routing-key regex shown by name: `key(<key>)` for a member regex of one
 * of `keys`, `no-member` for the regex of a list without a key-name member.
 */
export function formatMeshRoutes(routes: ReadonlyArray<Pick<MeshRoute, 'path' | 'headers' | 'clusters'>>, keys: readonly string[], keyName = DEFAULT_KEY_NAME): string {
  const names = new Map<string, string>([
    ...keys.flatMap((k) => [`baggage ~ ${baggageMemberRegex(keyName, k)}`, `tracestate ~ ${tracestateMemberRegex(keyName, k)}`].map((h) => [h, `${h.split(' ')[0]} key(${k})`] as [string, string])),
    ...(['baggage', 'tracestate'] as const).map((c) => [`${c} ~ ${noMemberRegex(c, keyName)}`, `${c} no-member`] as [string, string]),
  ]);
  return routes.map((r, i) => `  ${i}. ${r.path} [${r.headers.map((h) => names.get(h) ?? h).join(' & ')}] -> ${r.clusters.join(', ')}`).join('\n');
}

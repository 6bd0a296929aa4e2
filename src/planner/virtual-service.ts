/**
 * VirtualService routing for forked hosts.
 *
 * Istio sidecars never merge two VirtualServices for one host (the oldest wins, IST0109), so all
 * sandboxes forking a host share one VirtualService for it:
 *  - when the user has one, `mergeVirtualService` inserts before every user HTTP route that sends
 *    traffic to a forked host a copy per sandbox: the user's match blocks AND-ed with the
 *    sandbox's routing-key match blocks, every other field (retries, timeout, rewrite, headers,
 *    fault, mirror, corsPolicy) kept, and its destinations rewritten by the rule below. User
 *    routes are never changed, dropped or reordered;
 *  - otherwise `ownedVirtualService` builds one with the sandbox routes first and a catch-all
 *    baseline route last.
 * Every route meshfork writes is named `meshfork-...`; merging strips those first, so the merge
 * is idempotent and removing the last sandbox restores the user's routes exactly.
 *
 * Destinations of a sandbox copy (docs/adr/0001):
 *  - a destination *reaches a fork* when its host is a baseline host the sandbox forks and it
 *    names no subset, or a subset whose baseline pods include a workload the sandbox forks (the
 *    fork DestinationRule defines that subset for the fork pods, src/planner/destination-rule.ts).
 *    It goes to the fork host, subset and port kept: `reviews` subset v2 -> `reviews-sb` subset
 *    v2. A destination to a subset the sandbox does not fork stays on the baseline host and
 *    subset (the fork host has only fork pods);
 *  - weights: when some destination of the route reaches a fork, the copy keeps those (weight 0
 *    or unset beside others reaches nothing) and drops every other destination of the same host
 *    or version family: another subset of a forked host, or a Service whose pods have the
 *    canonical name of a forked workload (`versionFamily`). A keyed request then reaches a fork
 *    every time: 90/10 over subsets v1/v2 or over Services reviews-v1/reviews-v2, with v2
 *    forked, both become 100% fork of v2. Destinations of unrelated hosts stay. The weights
 *    left are scaled proportionally to 100, so 50/50 over forked v2/v3 stays 50/50 inside the
 *    sandbox; one destination carries no weight;
 *  - when no destination of any copy of a sandbox reaches a fork, the copies send keyed requests
 *    where the user's routes do, and a note says so.
 *
 * Mirrors (`mirror` with `mirrorPercentage`/`mirrorPercent`, or `mirrors[]` with `percentage`;
 * Istio refuses a route with both, pkg/config/validation/virtualservice.go): a route whose
 * primary destinations or mirror targets include a forked host gets sandbox copies. In a copy,
 * a mirror target that reaches a fork (the destination rule above: host forked, no subset or a
 * forked subset) is retargeted at the fork host, subset, port and percentage kept; the primary
 * follows the destination rule on its own. So a keyed request mirrored to a forked workload is
 * mirrored to its fork while the primary stays, and one whose primary is forked reaches the fork
 * while the mirror stays (istio.io "Mirroring" task; virtual_service.proto `HTTPRoute.mirror`,
 * `mirrors`, `HTTPMirrorPolicy`).
 *
 * Source workloads (`sourceLabels`): istiod applies a match block with `sourceLabels` only to
 * proxies whose labels include them, and with `sourceNamespace` only to proxies of that namespace;
 * without `sourceNamespace` the labels select clients in every namespace the VirtualService is
 * visible in; a block that names `gateways` is checked against the gateway alone and its
 * sourceLabels are ignored (route.go `sourceMatchHTTP`; virtual_service.proto
 * `HTTPMatchRequest.source_labels`: "not a runtime match, but a selector"). A fork's pods carry
 * rewritten selector labels (src/planner/forked-deployment.ts), so a block selecting a baseline
 * workload would no longer select its fork. For every such block the merge adds a *fork-source
 * block*: the block with `sourceLabels` set to the fork pods' values of the same keys plus the
 * `meshfork.dev/sandbox` label, and `sourceNamespace` set to the fork's namespace. Right before
 * the user route goes a `meshfork-source-<i>` copy matching only those blocks, the route
 * otherwise unchanged, so the fork as a client is routed as its baseline is; every sandbox and
 * split copy of the route also carries the fork-source blocks. This holds for any
 * VirtualService, also one that routes to no forked host.
 *
 * Unreachable copies: a user route that matches every request (no `match`, or a match block
 * with no condition) hides every later route from Envoy (route.go
 * BuildHTTPRoutesForVirtualService stops at a catch-all). Copies that would sit after it are not
 * written; a note names the catch-all route and the routes whose copies were left out.
 */
import { ROUTE_NAME_PREFIX, SANDBOX_LABEL, cloneData, managedLabels, ownValue, type KubeObject } from './kube.js';
import { namespaceOf, resolveHost } from './inventory.js';
import { serviceSelectorSelects } from './label-selector.js';
import { canonicalName } from './canonical-service.js';
import type { HttpMatchRequest, RoutingKeyMatch } from './routing-key.js';

/** How one sandbox reaches its fork of one baseline host. */
export interface SandboxRoute {
  readonly sandbox: string;
  /** FQDN of the fork Service. */
  readonly forkHost: string;
  /** Routing-key match of the sandbox's key and its RouteGroups' keys, and of untagged requests. */
  readonly matchBlocks: RoutingKeyMatch;
  /** Share (0-100) of untagged traffic sent to the fork, when set. */
  readonly splitWeight?: number;
  /**
   * Subsets of the baseline host (its DestinationRule) whose pods include a workload this sandbox
   * forks; the fork DestinationRule defines them with labels selecting those forks. A route
   * destination naming another subset does not reach a fork.
   */
  readonly forkedSubsets?: readonly string[];
  /** Version families (`<namespace>/<canonical name>`) of the workloads this sandbox forks behind the host. */
  readonly families?: readonly string[];
}

/** Every sandbox route for one baseline host (FQDN), sandboxes in name order. */
export interface HostRouting {
  readonly host: string;
  readonly routes: readonly SandboxRoute[];
}

interface Destination {
  host: string;
  subset?: string;
  port?: { number: number };
}
interface RouteDestination {
  destination: Destination;
  weight?: number;
  [field: string]: unknown;
}
/** `HTTPMirrorPolicy`: a mirror target and the share of requests (default 100%) copied to it. */
interface MirrorPolicy {
  destination: Destination;
  percentage?: { value: number };
  [field: string]: unknown;
}
export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route?: RouteDestination[];
  mirror?: Destination;
  mirrors?: MirrorPolicy[];
  [field: string]: unknown;
}

/**
 * A forked workload as a client: the labels of its baseline pods and of its fork's pods
 * (both in `namespace`), for `sourceLabels` matches.
 */
export interface ForkedSource {
  readonly sandbox: string;
  readonly namespace: string;
  readonly baselineLabels: Readonly<Record<string, string>>;
  readonly forkLabels: Readonly<Record<string, string>>;
}

/**
 * The version family of a workload: `<namespace>/<canonical name>`, the canonical name as Istio
 * derives it from pod labels (`service.istio.io/canonical-name`, else `app.kubernetes.io/name`,
 * else `app`, else the workload name; istio.io, "Canonical service"). Bookinfo's reviews-v1,
 * reviews-v2 and reviews-v3 are one family, `default/reviews`, whatever Services or subsets
 * select them.
 */
export function versionFamily(namespace: string, podLabels: Readonly<Record<string, string>>, workloadName: string): string {
  return `${namespace}/${canonicalName(podLabels, workloadName)}`;
}

/** Something the merge could not express; reported, never silently dropped. */
export interface RoutingNote {
  readonly routeIndex: number;
  readonly message: string;
}

/** Number of `meshfork-*` routes in a VirtualService meshfork merged its routes into. */
export const MERGED_ROUTES_ANNOTATION = 'meshfork.dev/merged-routes';

/**
 * Route names meshfork uses for routes of no sandbox: `meshfork-split-<i>` and
 * `meshfork-baseline`. A sandbox's copies are named `meshfork-<sandbox>-<i>`, so a Sandbox
 * named like one of these would produce route names that are not its own.
 */
const SPLIT_ROUTE = 'split';
const SOURCE_ROUTE = 'source';
const BASELINE_ROUTE = 'baseline';
export const RESERVED_SANDBOX_NAMES: ReadonlySet<string> = new Set([SPLIT_ROUTE, SOURCE_ROUTE, BASELINE_ROUTE]);
/** The route names the reserved sandbox names stand for, for messages. */
export const RESERVED_ROUTE_NAMES = `${ROUTE_NAME_PREFIX}${SPLIT_ROUTE}-<i>, ${ROUTE_NAME_PREFIX}${SOURCE_ROUTE}-<i>, ${ROUTE_NAME_PREFIX}${BASELINE_ROUTE}`;

/**
 * Who a VirtualService HTTP route belongs to, read from its name (the inverse of the names above):
 * a sandbox's copy `meshfork-<sandbox>-<i>`, one of meshfork's routes of no sandbox (`split`,
 * `source`, `baseline`), or the user.
 */
export type RouteOwner = { readonly sandbox: string } | { readonly meshfork: 'split' | 'source' | 'baseline' } | { readonly user: true };

export function routeOwner(name: string | undefined): RouteOwner {
  if (name === undefined || !name.startsWith(ROUTE_NAME_PREFIX)) return { user: true };
  const rest = name.slice(ROUTE_NAME_PREFIX.length);
  if (rest === BASELINE_ROUTE) return { meshfork: BASELINE_ROUTE };
  const m = /^(.+)-(0|[1-9][0-9]*)$/.exec(rest);
  if (m === null) return { user: true };
  const sandbox = m[1] as string;
  if (sandbox === SPLIT_ROUTE || sandbox === SOURCE_ROUTE) return { meshfork: sandbox };
  return { sandbox };
}

export function isMeshforkRoute(route: HttpRoute): boolean {
  return typeof route.name === 'string' && route.name.startsWith(ROUTE_NAME_PREFIX);
}

/** Whether a VirtualService applies to sidecars (`mesh` is the default gateway). */
export function appliesToMesh(vs: KubeObject): boolean {
  const gateways = (vs.spec as { gateways?: string[] } | undefined)?.gateways;
  return gateways === undefined || gateways.length === 0 || gateways.includes(MESH_GATEWAY);
}

/** The reserved gateway name of every sidecar. */
export const MESH_GATEWAY = 'mesh';

/**
 * A gateway name as istiod resolves it for a VirtualService of `vsNamespace` (istio.io/istio
 * pilot/pkg/model/config.go `resolveGatewayName`): `mesh` stays; `ns/name` stays, `./name` is
 * `<vsNamespace>/name`; a short name is `<vsNamespace>/name`; the legacy FQDN form
 * `name.ns[.svc.cluster.local]` is `ns/name`.
 */
export function resolveGatewayName(name: string, vsNamespace: string): string {
  if (name === MESH_GATEWAY) return name;
  const slash = name.indexOf('/');
  if (slash >= 0) return name.slice(0, slash) === '.' ? `${vsNamespace}/${name.slice(slash + 1)}` : name;
  const dot = name.indexOf('.');
  if (dot < 0) return `${vsNamespace}/${name}`;
  const rest = name.slice(dot + 1);
  const next = rest.indexOf('.');
  return `${next < 0 ? rest : rest.slice(0, next)}/${name.slice(0, dot)}`;
}

/** The proxies a VirtualService applies to: its `gateways`, resolved; none given means `mesh`. */
export function virtualServiceGateways(vs: KubeObject): string[] {
  const gateways = (vs.spec as { gateways?: unknown } | undefined)?.gateways;
  if (!Array.isArray(gateways) || gateways.length === 0) return [MESH_GATEWAY];
  return [...new Set(gateways.filter((g): g is string => typeof g === 'string').map((g) => resolveGatewayName(g, namespaceOf(vs))))];
}

/**
 * Hosts (FQDN) the user's HTTP routes of a VirtualService send traffic to, destinations and
 * mirror targets alike (routeTargetHosts; meshfork's own routes left out).
 */
export function routedHosts(vs: KubeObject): Set<string> {
  const http = (vs.spec as { http?: unknown } | undefined)?.http;
  const routes = Array.isArray(http) ? (http as HttpRoute[]).filter((r) => !isMeshforkRoute(r)) : [];
  return new Set(routes.flatMap((r) => routeTargetHosts(r, namespaceOf(vs))));
}

export function virtualServiceHosts(vs: KubeObject): string[] {
  const hosts = (vs.spec as { hosts?: string[] } | undefined)?.hosts ?? [];
  return hosts.map((h) => resolveHost(h, namespaceOf(vs)));
}

/**
 * AND of a user match block and a routing-key block. Istio ANDs the conditions inside one block;
 * the key block only holds `headers` and `withoutHeaders` conditions. Returns the headers that
 * clash instead when the user's block already has a condition on one of them in the same map
 * (one map cannot hold two conditions on a header).
 */
function andMatch(user: HttpMatchRequest, key: HttpMatchRequest): { match: HttpMatchRequest } | { clash: string[] } {
  const clash = (['headers', 'withoutHeaders'] as const).flatMap((field) =>
    Object.keys(key[field] ?? {}).filter((h) => Object.hasOwn(user[field] ?? {}, h)),
  );
  if (clash.length > 0) return { clash };
  const out: HttpMatchRequest = cloneData(user);
  for (const field of ['headers', 'withoutHeaders'] as const) {
    if (key[field] !== undefined) out[field] = { ...cloneData(user[field] ?? {}), ...cloneData(key[field]) };
  }
  return { match: out };
}

/**
 * Every AND of a user block (or none) and a key block: a request matches the result exactly when
 * it matches the user's route and one of the key blocks. Blocks that cannot be combined are
 * dropped (the copy then matches fewer requests, never more) and reported once per header.
 */
function andMatches(
  userBlocks: readonly HttpMatchRequest[] | undefined,
  keyBlocks: readonly HttpMatchRequest[],
  report: (headers: string[]) => void,
): HttpMatchRequest[] {
  const users = userBlocks && userBlocks.length > 0 ? userBlocks : [{}];
  const out: HttpMatchRequest[] = [];
  const clashes = new Set<string>();
  for (const user of users) {
    for (const key of keyBlocks) {
      const combined = andMatch(user, key);
      if ('clash' in combined) combined.clash.forEach((h) => clashes.add(h));
      else out.push(combined.match);
    }
  }
  if (clashes.size > 0) report([...clashes]);
  return out;
}

/** Every destination a route sends requests to: its primary destinations, then its mirror targets. */
function routeTargets(route: HttpRoute): Destination[] {
  return [...(route.route ?? []).map((d) => d.destination), ...(route.mirror ? [route.mirror] : []), ...(route.mirrors ?? []).map((m) => m.destination)];
}

/** Hosts (FQDN) a route sends requests to, primary destinations and mirror targets alike. */
export function routeTargetHosts(route: HttpRoute, vsNamespace: string): string[] {
  return routeTargets(route).map((d) => resolveHost(d.host, vsNamespace));
}

function targetsFor(route: HttpRoute, vsNamespace: string, forked: ReadonlySet<string>): boolean {
  return routeTargetHosts(route, vsNamespace).some((h) => forked.has(h));
}

/** Condition fields of an HTTPMatchRequest that do not restrict which requests it matches. */
const NON_CONDITIONS: ReadonlySet<string> = new Set(['name', 'statPrefix', 'ignoreUriCase']);

/**
 * Whether a match block matches every request: it has no condition (`name`, `statPrefix` and
 * `ignoreUriCase` are none; empty maps hold none), or only `uri: {prefix: "/"}` (every :path
 * starts with `/`). Anything else may restrict, so it is taken as restricting.
 */
function blockMatchesAll(block: HttpMatchRequest): boolean {
  return Object.entries(block).every(([field, value]) => {
    if (NON_CONDITIONS.has(field) || value === undefined || value === null) return true;
    if (field === 'uri') return JSON.stringify(value) === JSON.stringify({ prefix: '/' });
    return typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0;
  });
}

/** Whether Envoy takes this route for every request that reaches it (no later route is reachable). */
export function matchesEveryRequest(route: HttpRoute): boolean {
  if (route.delegate !== undefined) return false;
  return route.match === undefined || route.match.length === 0 || route.match.some(blockMatchesAll);
}

/**
 * The fork-source blocks of a user match block: for each forked workload whose baseline pods the
 * block's `sourceLabels` (and `sourceNamespace`) select but whose fork pods they do not, the
 * block with `sourceLabels` selecting exactly that fork's pods (the fork's values of the same
 * keys and its sandbox label) in its namespace. None for a block naming `gateways` (istiod then
 * ignores sourceLabels) or without sourceLabels (it applies to every client, forks included).
 */
function forkSourceBlocks(block: HttpMatchRequest, sources: readonly ForkedSource[]): HttpMatchRequest[] {
  const gateways = block['gateways'];
  if (Array.isArray(gateways) && gateways.length > 0) return [];
  const labels = block['sourceLabels'] as Record<string, string> | undefined;
  if (labels === undefined || labels === null || Object.keys(labels).length === 0) return [];
  const sourceNamespace = block['sourceNamespace'];
  const out: HttpMatchRequest[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    if (typeof sourceNamespace === 'string' && sourceNamespace !== '' && sourceNamespace !== source.namespace) continue;
    if (!serviceSelectorSelects(labels, source.baselineLabels) || serviceSelectorSelects(labels, source.forkLabels)) continue;
    const forkLabels: Record<string, string> = {};
    for (const key of Object.keys(labels).sort()) {
      const value = ownValue(source.forkLabels, key);
      if (value !== undefined) forkLabels[key] = value;
    }
    forkLabels[SANDBOX_LABEL] = source.sandbox;
    const variant: HttpMatchRequest = { ...structuredClone(block), sourceLabels: forkLabels, sourceNamespace: source.namespace };
    const id = JSON.stringify(variant);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(variant);
  }
  return out;
}

/**
 * Limits copy match blocks to the proxies in `gateways` (resolved names) with the match-level
 * `gateways` field, which istiod checks instead of the VirtualService's own list (route.go
 * `sourceMatchHTTP`). A block that already names gateways keeps those of them that are in
 * `gateways`, and is dropped when none is. A block with `sourceLabels` or `sourceNamespace` is
 * dropped: istiod ignores both once a block names gateways, so limiting it would widen it.
 */
function limitToGateways(
  blocks: readonly HttpMatchRequest[],
  gateways: readonly string[] | undefined,
  vsNamespace: string,
  report: (message: string) => void,
): HttpMatchRequest[] {
  if (gateways === undefined) return [...blocks];
  const out: HttpMatchRequest[] = [];
  let sourceMatch = false;
  for (const block of blocks) {
    const own = Array.isArray(block.gateways) ? (block.gateways as unknown[]).filter((g): g is string => typeof g === 'string') : [];
    if (own.length > 0) {
      const kept = own.filter((g) => gateways.includes(resolveGatewayName(g, vsNamespace)));
      if (kept.length > 0) out.push({ ...block, gateways: kept });
      continue;
    }
    if (block.sourceLabels !== undefined || block.sourceNamespace !== undefined) {
      sourceMatch = true;
      continue;
    }
    out.push({ ...block, gateways: [...gateways] });
  }
  if (sourceMatch) {
    report(`match blocks with sourceLabels or sourceNamespace get no copy: the copy must name gateways (${gateways.join(', ')}) to stay off the other gateways, and istiod then ignores sourceLabels and sourceNamespace`);
  }
  return out;
}

/** The fork-source blocks of every match block of a route, in block order. */
function routeForkSourceBlocks(route: HttpRoute, sources: readonly ForkedSource[]): HttpMatchRequest[] {
  if (sources.length === 0) return [];
  return (route.match ?? []).flatMap((block) => forkSourceBlocks(block, sources));
}

/** Whether some route of a VirtualService has a `sourceLabels` block selecting a forked workload's baseline pods. */
export function selectsForkedSources(vs: KubeObject, sources: readonly ForkedSource[]): boolean {
  const http = (vs.spec as { http?: HttpRoute[] } | undefined)?.http ?? [];
  return http.some((route) => !isMeshforkRoute(route) && routeForkSourceBlocks(route, sources).length > 0);
}

/**
 * Whether a destination of a user route reaches a workload `sr`'s sandbox forked: its host is
 * the baseline host `sr` forks and it names no subset, or a subset whose baseline pods include a
 * forked workload (`sr.forkedSubsets`). With several destinations, one of weight 0 (or unset)
 * takes no traffic (Istio drops it), so it reaches nothing.
 */
function reachesFork(d: RouteDestination, sr: SandboxRoute, single: boolean): boolean {
  if (!single && !((d.weight ?? 0) > 0)) return false;
  const subset = d.destination.subset;
  return subset === undefined || (sr.forkedSubsets ?? []).includes(subset);
}

/** The fork host with the destination's subset (defined on the fork DestinationRule) and port. */
function forkDestination(d: Destination, forkHost: string): Destination {
  const out: Destination = { host: forkHost };
  if (d.subset !== undefined) out.subset = d.subset;
  if (d.port !== undefined) out.port = { ...d.port };
  return out;
}

/**
 * Destinations of a sandbox copy. Each destination that reaches a forked workload goes to the
 * fork host (subset and port kept). When at least one does, the destinations of the same host
 * or version family that do not (another subset of the host, another Service whose pods have
 * the canonical name of a forked workload, e.g. `reviews-v1` next to a forked `reviews-v2`) are
 * dropped, so a keyed request reaches a fork every time; destinations of unrelated hosts stay.
 * Weights of what is left are scaled proportionally to 100 (one destination carries none).
 * When no destination reaches a fork, the destinations are the user's, unchanged.
 */
function copyDestinations(
  original: readonly RouteDestination[],
  vsNamespace: string,
  mine: ReadonlyMap<string, SandboxRoute>,
  families: ReadonlyMap<string, readonly string[]>,
): { destinations: RouteDestination[]; reached: boolean } {
  const single = original.length === 1;
  const forkedFamilies = new Set([...mine.values()].flatMap((sr) => sr.families ?? []));
  const kept: RouteDestination[] = [];
  const unreached: RouteDestination[] = [];
  let reached = false;
  for (const d of original) {
    const host = resolveHost(d.destination.host, vsNamespace);
    const sr = mine.get(host);
    if (sr !== undefined && reachesFork(d, sr, single)) {
      reached = true;
      kept.push({ ...cloneData(d), destination: forkDestination(d.destination, sr.forkHost) });
      continue;
    }
    const sameFamily = sr !== undefined || (families.get(host) ?? []).some((f) => forkedFamilies.has(f));
    if (sameFamily) unreached.push(d);
    else kept.push(cloneData(d));
  }
  if (!reached) return { destinations: cloneData([...original]), reached };
  const out: RouteDestination[] = [];
  for (const d of kept) {
    const same = out.find((o) => JSON.stringify(o.destination) === JSON.stringify(d.destination));
    if (same === undefined) out.push(d);
    else if (same.weight !== undefined || d.weight !== undefined) same.weight = (same.weight ?? 0) + (d.weight ?? 0);
  }
  if (out.length === 1 && out[0] !== undefined) {
    delete out[0].weight;
    return { destinations: out, reached };
  }
  const changed = unreached.length > 0 || out.length < kept.length;
  return { destinations: changed && out.some((d) => d.weight !== undefined) ? scaleWeights(out, 100) : out, reached };
}

/** Scales integer weights to sum to `total`, the remainder going to the first destinations. */
function scaleWeights(route: RouteDestination[], total: number): RouteDestination[] {
  const weights = route.map((d) => d.weight ?? Math.floor(100 / route.length));
  const sum = weights.reduce((a, b) => a + b, 0) || 1;
  const scaled = weights.map((w) => Math.floor((w * total) / sum));
  let remainder = total - scaled.reduce((a, b) => a + b, 0);
  for (let i = 0; remainder > 0; i = (i + 1) % scaled.length, remainder--) scaled[i] = (scaled[i] ?? 0) + 1;
  return route.map((d, i) => ({ ...cloneData(d), weight: scaled[i] ?? 0 }));
}

/**
 * Mirror targets of a sandbox copy: each that reaches a workload the sandbox forks goes to the
 * fork host (subset, port and percentage kept); the others stay. `reached` when one was retargeted.
 */
function copyMirrors(route: HttpRoute, vsNamespace: string, mine: ReadonlyMap<string, SandboxRoute>): { mirror?: Destination; mirrors?: MirrorPolicy[]; reached: boolean } {
  let reached = false;
  const retarget = (d: Destination): Destination => {
    const sr = mine.get(resolveHost(d.host, vsNamespace));
    if (sr === undefined || !reachesFork({ destination: d }, sr, true)) return structuredClone(d);
    reached = true;
    return forkDestination(d, sr.forkHost);
  };
  const out: { mirror?: Destination; mirrors?: MirrorPolicy[]; reached: boolean } = { reached };
  if (route.mirror !== undefined) out.mirror = retarget(route.mirror);
  if (route.mirrors !== undefined) out.mirrors = route.mirrors.map((m) => ({ ...structuredClone(m), destination: retarget(m.destination) }));
  out.reached = reached;
  return out;
}

function sandboxCopy(
  route: HttpRoute,
  userIndex: number,
  vsNamespace: string,
  hosts: readonly HostRouting[],
  families: ReadonlyMap<string, readonly string[]>,
  sandbox: string,
  notes: RoutingNote[],
  gateways: readonly string[] | undefined,
): { copy: HttpRoute; reached: boolean } | undefined {
  const original = route.route ?? [];
  const targets = new Set(routeTargetHosts(route, vsNamespace));
  const mine = new Map<string, SandboxRoute>();
  for (const h of hosts) {
    const sr = h.routes.find((r) => r.sandbox === sandbox);
    if (sr !== undefined && targets.has(h.host)) mine.set(h.host, sr);
  }
  const matchBlocks = [...mine.values()][0]?.matchBlocks;
  if (matchBlocks === undefined) return undefined;
  const { destinations, reached } = copyDestinations(original, vsNamespace, mine, families);
  const mirrors = copyMirrors(route, vsNamespace, mine);
  const keyed = andMatches(route.match, matchBlocks.keyed, (headers) =>
    notes.push({ routeIndex: userIndex, message: `route already matches header ${headers.join(', ')}; sandbox "${sandbox}" cannot add its routing key to that match block` }),
  );
  const match = limitToGateways(keyed, gateways, vsNamespace, (message) => notes.push({ routeIndex: userIndex, message: `sandbox "${sandbox}": ${message}` }));
  if (match.length === 0) return undefined;
  const { name: _userName, match: _userMatch, route: _userRoute, ...rest } = cloneData(route);
  const copy: HttpRoute = { name: `${ROUTE_NAME_PREFIX}${sandbox}-${userIndex}`, match, route: destinations, ...rest };
  if (mirrors.mirror !== undefined) copy.mirror = mirrors.mirror;
  if (mirrors.mirrors !== undefined) copy.mirrors = mirrors.mirrors;
  return { copy, reached: reached || mirrors.reached };
}

/**
 * Copy of a user route that sends each split sandbox its share of the route's UNTAGGED traffic:
 * the user's match AND-ed with the untagged blocks, so requests carrying any key-name member or
 * key header (for a sandbox that does not fork this host too, or with an invalid key) keep
 * reaching the user's route.
 */
function splitCopy(route: HttpRoute, userIndex: number, vsNamespace: string, hosts: readonly HostRouting[], notes: RoutingNote[], gateways: readonly string[] | undefined): HttpRoute | undefined {
  const original = route.route ?? [];
  const forkShares: RouteDestination[] = [];
  let untagged: readonly HttpMatchRequest[] | undefined;
  for (const h of hosts) {
    if (!original.some((d) => resolveHost(d.destination.host, vsNamespace) === h.host)) continue;
    const port = original.find((d) => resolveHost(d.destination.host, vsNamespace) === h.host)?.destination.port;
    for (const r of h.routes) {
      if (!r.splitWeight) continue;
      untagged ??= r.matchBlocks.untagged;
      forkShares.push({ destination: port ? { host: r.forkHost, port: { ...port } } : { host: r.forkHost }, weight: r.splitWeight });
    }
  }
  if (forkShares.length === 0) return undefined;
  const forkTotal = forkShares.reduce((a, d) => a + (d.weight ?? 0), 0);
  if (forkTotal > 100) {
    notes.push({ routeIndex: userIndex, message: `split weights add up to ${forkTotal}%, more than 100%` });
    return undefined;
  }
  const untaggedBlocks = andMatches(route.match, untagged ?? [], (headers) =>
    notes.push({ routeIndex: userIndex, message: `route already matches header ${headers.join(', ')}; the traffic split cannot add its untagged-request match to that match block` }),
  );
  const match = limitToGateways(untaggedBlocks, gateways, vsNamespace, (message) => notes.push({ routeIndex: userIndex, message: `traffic split: ${message}` }));
  if (match.length === 0) return undefined;
  const { name: _n, match: _m, route: _r, ...rest } = cloneData(route);
  const baseline = forkTotal === 100 ? [] : scaleWeights(cloneData(original), 100 - forkTotal);
  return { name: `${ROUTE_NAME_PREFIX}${SPLIT_ROUTE}-${userIndex}`, match, ...rest, route: [...baseline, ...forkShares] };
}

/** Sandbox names across hosts, in name order. */
function sandboxNames(hosts: readonly HostRouting[]): string[] {
  return [...new Set(hosts.flatMap((h) => h.routes.map((r) => r.sandbox)))].sort();
}

/**
 * The user's VirtualService with meshfork's routes (re)inserted: strip every `meshfork-*` route,
 * then put before each user route sending traffic to a forked host (primary or mirror) one copy
 * per sandbox (key match AND-ed in) and one split copy when a sandbox takes a share of untagged
 * traffic, and before each user route whose `sourceLabels` select a forked workload's baseline
 * pods a `meshfork-source-<i>` copy for the forks as clients (`options.sources`). Nothing is inserted
 * after a user route that matches every request. Pure and idempotent: merging the result again
 * with the same hosts gives the same object.
 *
 * `options.gateways` (resolved gateway names, `mesh` included) limits the sandbox and split
 * copies to those proxies when the VirtualService applies to more of them (limitToGateways);
 * unset, copies apply wherever the user's routes do. `meshfork-source-<i>` copies are not
 * limited: their blocks select only fork pods (sandbox label), which are sidecars.
 */
export function mergeVirtualService(
  vs: KubeObject,
  hosts: readonly HostRouting[],
  families: ReadonlyMap<string, readonly string[]> = new Map(),
  options: { readonly gateways?: readonly string[]; readonly sources?: readonly ForkedSource[] } = {},
): { virtualService: KubeObject; notes: RoutingNote[] } {
  const sources = options.sources ?? [];
  const out = cloneData(vs) as KubeObject & { spec: { http?: HttpRoute[] } };
  const userRoutes = (out.spec.http ?? []).filter((r) => !isMeshforkRoute(r));
  const vsNamespace = namespaceOf(vs);
  const forked = new Set(hosts.filter((h) => h.routes.length > 0).map((h) => h.host));
  const notes: RoutingNote[] = [];
  const http: HttpRoute[] = [];
  // Sandbox -> index of its first copy, and whether any of its copies reaches a fork.
  const copied = new Map<string, { index: number; reached: boolean }>();
  // The first user route that matches every request, and the later routes whose copies it hides.
  let catchAll: number | undefined;
  const hidden: number[] = [];
  userRoutes.forEach((route, index) => {
    const forkSources = routeForkSourceBlocks(route, sources);
    const copies: HttpRoute[] = [];
    // The route as the forks see it as clients: its match blocks and their fork-source blocks.
    const asForks: HttpRoute = forkSources.length > 0 ? { ...route, match: [...(route.match ?? []), ...forkSources] } : route;
    const results: Array<{ sandbox: string; reached: boolean }> = [];
    if (targetsFor(route, vsNamespace, forked)) {
      for (const sandbox of sandboxNames(hosts)) {
        const result = sandboxCopy(asForks, index, vsNamespace, hosts, families, sandbox, notes, options.gateways);
        if (result === undefined) continue;
        copies.push(result.copy);
        results.push({ sandbox, reached: result.reached });
      }
      const split = splitCopy(asForks, index, vsNamespace, hosts, notes, options.gateways);
      if (split !== undefined) copies.push(split);
    }
    if (forkSources.length > 0) {
      const { name: _n, match: _m, ...rest } = structuredClone(route);
      copies.push({ name: `${ROUTE_NAME_PREFIX}${SOURCE_ROUTE}-${index}`, match: forkSources, ...rest });
    }
    if (catchAll !== undefined) {
      if (copies.length > 0) hidden.push(index);
    } else {
      http.push(...copies);
      for (const { sandbox, reached } of results) {
        const seen = copied.get(sandbox);
        if (seen === undefined) copied.set(sandbox, { index, reached });
        else seen.reached ||= reached;
      }
    }
    http.push(route);
    if (catchAll === undefined && matchesEveryRequest(route)) catchAll = index;
  });
  if (catchAll !== undefined && hidden.length > 0) {
    notes.push({
      routeIndex: catchAll,
      message: `matches every request, so no later route is ever taken; meshfork writes no copies of ${hidden.map((i) => `spec.http[${i}]`).join(', ')} after it (they would never match): every request, keyed or not, takes this route`,
    });
  }
  for (const [sandbox, { index, reached }] of copied) {
    if (reached) continue;
    notes.push({
      routeIndex: index,
      message: `no route sends sandbox "${sandbox}"'s keyed requests to its forks: the routes to its forked hosts name only subsets (or weight-0 destinations) whose pods it does not fork, so those requests reach the baseline`,
    });
  }
  if (http.length > 0 || out.spec.http !== undefined) out.spec.http = http;
  markMergedRoutes(out, http.filter(isMeshforkRoute).length);
  return { virtualService: out, notes };
}

/**
 * Annotates a VirtualService that holds meshfork routes with how many, so GitOps reviewers and
 * the reconciler see it carries generated routes; the annotation goes with the last route.
 */
function markMergedRoutes(vs: KubeObject, count: number): void {
  const annotations = { ...(vs.metadata.annotations ?? {}) };
  if (count > 0) annotations[MERGED_ROUTES_ANNOTATION] = String(count);
  else delete annotations[MERGED_ROUTES_ANNOTATION];
  if (Object.keys(annotations).length > 0) vs.metadata.annotations = annotations;
  else delete vs.metadata.annotations;
}

export function ownedVirtualServiceName(serviceName: string): string {
  return `${serviceName}-meshfork`;
}

/**
 * meshfork's own VirtualService for a forked host that has no user VirtualService: sandbox routes
 * first, then the split route for untagged requests when sandboxes take a share of them, then a
 * catch-all route to the baseline host (which also takes requests keyed for other sandboxes).
 * `exportTo`, when given, limits the namespaces whose sidecars use it (unset: Istio's default,
 * every namespace unless the mesh configures otherwise).
 *
 * A Service with several `ports` gets one baseline route per port instead, matching the port and
 * naming it in the destination, so every sandbox copy does too (it keeps the route's match and
 * the destination's port): istiod sends a destination without a port to the port the request
 * came in on (pilot/pkg/networking/core/route/route.go GetDestinationCluster: listenerPort unless
 * the Service has one port), but istioctl analyze reports such a destination of a multi-port
 * Service as an error (IST0112 VirtualServiceDestinationPortSelectorRequired,
 * pkg/config/analysis/analyzers/virtualservice/destinationhosts.go). Requests route the same.
 */
export function ownedVirtualService(args: {
  name: string;
  namespace: string;
  host: HostRouting;
  ports?: readonly number[];
  exportTo?: readonly string[];
}): { virtualService: KubeObject; notes: RoutingNote[] } {
  const ports = args.ports ?? [];
  const baselineRoutes: HttpRoute[] =
    ports.length > 1
      ? ports.map((number) => ({ match: [{ port: number }], route: [{ destination: { host: args.host.host, port: { number } } }] }))
      : [{ route: [{ destination: { host: args.host.host } }] }];
  const vs: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: args.name, namespace: args.namespace, labels: managedLabels() },
    spec: { hosts: [args.host.host], ...(args.exportTo ? { exportTo: [...args.exportTo] } : {}), http: structuredClone(baselineRoutes) },
  };
  const { virtualService, notes } = mergeVirtualService(vs, [args.host]);
  // Every route of an owned VirtualService is meshfork's, the baseline routes included: they are
  // the routes mergeVirtualService did not name.
  const http = (virtualService.spec as { http: HttpRoute[] }).http;
  http.forEach((route, i) => {
    if (route.name === undefined) http[i] = { name: `${ROUTE_NAME_PREFIX}${BASELINE_ROUTE}`, ...route };
  });
  markMergedRoutes(virtualService, 0); // owned objects are marked by their managed-by label
  return { virtualService, notes };
}

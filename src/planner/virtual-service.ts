/**
 * VirtualService routing for forked hosts.
 *
 * Istio sidecars never merge two VirtualServices for one host (the oldest wins, IST0109), so all
 * sandboxes forking a host share one VirtualService for it:
 *  - when the user has one, `mergeVirtualService` inserts before every user HTTP route that sends
 *    traffic to a forked host a copy per sandbox: the user's match blocks AND-ed with the
 *    sandbox's routing-key match blocks, every other field (retries, timeout, rewrite, headers,
 *    fault, mirror, corsPolicy) kept, and the forked destinations retargeted at the fork host.
 *    User routes are never changed, dropped or reordered;
 *  - otherwise `ownedVirtualService` builds one with the sandbox routes first and a catch-all
 *    baseline route last.
 * Every route meshfork writes is named `meshfork-...`; merging strips those first, so the merge
 * is idempotent and removing the last sandbox restores the user's routes exactly.
 */
import { ROUTE_NAME_PREFIX, managedLabels, type KubeObject } from './kube.js';
import { namespaceOf, resolveHost } from './inventory.js';
import type { HttpMatchRequest } from './routing-key.js';

/** How one sandbox reaches its fork of one baseline host. */
export interface SandboxRoute {
  readonly sandbox: string;
  /** FQDN of the fork Service. */
  readonly forkHost: string;
  /** Routing-key match blocks (OR-ed): the sandbox's key and its RouteGroups' keys. */
  readonly matchBlocks: readonly HttpMatchRequest[];
  /** Share (0-100) of untagged traffic sent to the fork, when set. */
  readonly splitWeight?: number;
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
export interface HttpRoute {
  name?: string;
  match?: HttpMatchRequest[];
  route?: RouteDestination[];
  [field: string]: unknown;
}

/** Something the merge could not express; reported, never silently dropped. */
export interface RoutingNote {
  readonly routeIndex: number;
  readonly message: string;
}

/** Number of `meshfork-*` routes in a VirtualService meshfork merged its routes into. */
export const MERGED_ROUTES_ANNOTATION = 'meshfork.dev/merged-routes';

export function isMeshforkRoute(route: HttpRoute): boolean {
  return typeof route.name === 'string' && route.name.startsWith(ROUTE_NAME_PREFIX);
}

/** Whether a VirtualService applies to sidecars (`mesh` is the default gateway). */
export function appliesToMesh(vs: KubeObject): boolean {
  const gateways = (vs.spec as { gateways?: string[] } | undefined)?.gateways;
  return gateways === undefined || gateways.length === 0 || gateways.includes('mesh');
}

export function virtualServiceHosts(vs: KubeObject): string[] {
  const hosts = (vs.spec as { hosts?: string[] } | undefined)?.hosts ?? [];
  return hosts.map((h) => resolveHost(h, namespaceOf(vs)));
}

/**
 * AND of two match blocks. Istio ANDs the conditions inside one block; the key block only holds
 * header conditions. Returns undefined when the user's block already constrains the same header
 * (the two conditions cannot be combined into one block).
 */
function andMatch(user: HttpMatchRequest, key: HttpMatchRequest): HttpMatchRequest | undefined {
  const userHeaders = user.headers ?? {};
  const keyHeaders = key.headers ?? {};
  if (Object.keys(keyHeaders).some((h) => h in userHeaders)) return undefined;
  return { ...structuredClone(user), headers: { ...structuredClone(userHeaders), ...structuredClone(keyHeaders) } };
}

function destinationsFor(route: HttpRoute, vsNamespace: string, forked: ReadonlySet<string>): boolean {
  return (route.route ?? []).some((d) => forked.has(resolveHost(d.destination.host, vsNamespace)));
}

/** The route's destinations with `host` (resolved) replaced by `forkHost`, duplicates folded. */
function retarget(route: RouteDestination[], vsNamespace: string, host: string, forkHost: string): RouteDestination[] {
  const out: RouteDestination[] = [];
  for (const d of route) {
    const isForked = resolveHost(d.destination.host, vsNamespace) === host;
    const destination: Destination = isForked ? { host: forkHost } : { ...structuredClone(d.destination) };
    if (isForked && d.destination.port !== undefined) destination.port = { ...d.destination.port };
    const same = out.find((o) => JSON.stringify(o.destination) === JSON.stringify(destination));
    if (same !== undefined) {
      if (same.weight !== undefined || d.weight !== undefined) same.weight = (same.weight ?? 0) + (d.weight ?? 0);
      continue;
    }
    const copy: RouteDestination = { ...structuredClone(d), destination };
    out.push(copy);
  }
  if (out.length === 1 && out[0] !== undefined) delete out[0].weight;
  return out;
}

/** Scales integer weights to sum to `total`, the remainder going to the first destinations. */
function scaleWeights(route: RouteDestination[], total: number): RouteDestination[] {
  const weights = route.map((d) => d.weight ?? Math.floor(100 / route.length));
  const sum = weights.reduce((a, b) => a + b, 0) || 1;
  const scaled = weights.map((w) => Math.floor((w * total) / sum));
  let remainder = total - scaled.reduce((a, b) => a + b, 0);
  for (let i = 0; remainder > 0; i = (i + 1) % scaled.length, remainder--) scaled[i] = (scaled[i] ?? 0) + 1;
  return route.map((d, i) => ({ ...structuredClone(d), weight: scaled[i] ?? 0 }));
}

function sandboxCopy(
  route: HttpRoute,
  userIndex: number,
  vsNamespace: string,
  hosts: readonly HostRouting[],
  sandbox: string,
  notes: RoutingNote[],
): HttpRoute | undefined {
  let destinations = structuredClone(route.route ?? []);
  let matchBlocks: readonly HttpMatchRequest[] | undefined;
  for (const h of hosts) {
    const sr = h.routes.find((r) => r.sandbox === sandbox);
    if (sr === undefined || !destinations.some((d) => resolveHost(d.destination.host, vsNamespace) === h.host)) continue;
    destinations = retarget(destinations, vsNamespace, h.host, sr.forkHost);
    matchBlocks ??= sr.matchBlocks;
  }
  if (matchBlocks === undefined) return undefined;
  const userBlocks = route.match && route.match.length > 0 ? route.match : [{}];
  const match: HttpMatchRequest[] = [];
  for (const user of userBlocks) {
    for (const key of matchBlocks) {
      const combined = andMatch(user, key);
      if (combined === undefined) {
        notes.push({ routeIndex: userIndex, message: `route already matches header ${Object.keys(key.headers ?? {}).join(', ')}; sandbox "${sandbox}" cannot add its routing key to that match block` });
      } else {
        match.push(combined);
      }
    }
  }
  if (match.length === 0) return undefined;
  const { name: _userName, match: _userMatch, route: _userRoute, ...rest } = structuredClone(route);
  return { name: `${ROUTE_NAME_PREFIX}${sandbox}-${userIndex}`, match, route: destinations, ...rest };
}

/** Copy of a user route that sends each split sandbox its share of the route's untagged traffic. */
function splitCopy(route: HttpRoute, userIndex: number, vsNamespace: string, hosts: readonly HostRouting[], notes: RoutingNote[]): HttpRoute | undefined {
  const original = route.route ?? [];
  const forkShares: RouteDestination[] = [];
  for (const h of hosts) {
    if (!original.some((d) => resolveHost(d.destination.host, vsNamespace) === h.host)) continue;
    const port = original.find((d) => resolveHost(d.destination.host, vsNamespace) === h.host)?.destination.port;
    for (const r of h.routes) {
      if (!r.splitWeight) continue;
      forkShares.push({ destination: port ? { host: r.forkHost, port: { ...port } } : { host: r.forkHost }, weight: r.splitWeight });
    }
  }
  if (forkShares.length === 0) return undefined;
  const forkTotal = forkShares.reduce((a, d) => a + (d.weight ?? 0), 0);
  if (forkTotal > 100) {
    notes.push({ routeIndex: userIndex, message: `split weights add up to ${forkTotal}%, more than 100%` });
    return undefined;
  }
  const { name: _n, route: _r, ...rest } = structuredClone(route);
  const baseline = forkTotal === 100 ? [] : scaleWeights(structuredClone(original), 100 - forkTotal);
  return { name: `${ROUTE_NAME_PREFIX}split-${userIndex}`, ...rest, route: [...baseline, ...forkShares] };
}

/** Sandbox names across hosts, in name order. */
function sandboxNames(hosts: readonly HostRouting[]): string[] {
  return [...new Set(hosts.flatMap((h) => h.routes.map((r) => r.sandbox)))].sort();
}

/**
 * The user's VirtualService with meshfork's routes (re)inserted: strip every `meshfork-*` route,
 * then put, before each user route sending traffic to a forked host, one copy per sandbox (key
 * match AND-ed in) and one split copy when a sandbox takes a share of untagged traffic. Pure and
 * idempotent: merging the result again with the same hosts gives the same object.
 */
export function mergeVirtualService(vs: KubeObject, hosts: readonly HostRouting[]): { virtualService: KubeObject; notes: RoutingNote[] } {
  const out = structuredClone(vs) as KubeObject & { spec: { http?: HttpRoute[] } };
  const userRoutes = (out.spec.http ?? []).filter((r) => !isMeshforkRoute(r));
  const vsNamespace = namespaceOf(vs);
  const forked = new Set(hosts.filter((h) => h.routes.length > 0).map((h) => h.host));
  const notes: RoutingNote[] = [];
  const http: HttpRoute[] = [];
  userRoutes.forEach((route, index) => {
    if (destinationsFor(route, vsNamespace, forked)) {
      for (const sandbox of sandboxNames(hosts)) {
        const copy = sandboxCopy(route, index, vsNamespace, hosts, sandbox, notes);
        if (copy !== undefined) http.push(copy);
      }
      const split = splitCopy(route, index, vsNamespace, hosts, notes);
      if (split !== undefined) {
        http.push(split);
        // The copy has the user's match, so the user's route is unreachable while the split lasts.
        notes.push({ routeIndex: index, message: `while sandboxes split its untagged traffic, ${split.name} answers every request this route matches (istioctl reports IST0130 for it); removing the split restores the route` });
      }
    }
    http.push(route);
  });
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
 * first, then one catch-all route to the baseline host, which also carries the split weights when
 * sandboxes take a share of untagged traffic (so no rule is ever unreachable, IST0130).
 */
export function ownedVirtualService(args: { name: string; namespace: string; host: HostRouting }): { virtualService: KubeObject; notes: RoutingNote[] } {
  const catchAll: HttpRoute = { route: [{ destination: { host: args.host.host } }] };
  const vs: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: args.name, namespace: args.namespace, labels: managedLabels() },
    spec: { hosts: [args.host.host], http: [catchAll] },
  };
  const notes: RoutingNote[] = [];
  const keyRoutesOnly: HostRouting = { host: args.host.host, routes: args.host.routes.map(({ splitWeight: _w, ...route }) => route) };
  const { virtualService } = mergeVirtualService(vs, [keyRoutesOnly]);
  const split = splitCopy(catchAll, 0, args.namespace, [args.host], notes);
  // Every route of an owned VirtualService is meshfork's, the catch-all included.
  const http = (virtualService.spec as { http: HttpRoute[] }).http;
  http[http.length - 1] = { name: `${ROUTE_NAME_PREFIX}baseline`, route: split?.route ?? catchAll.route! };
  markMergedRoutes(virtualService, 0); // owned objects are marked by their managed-by label
  return { virtualService, notes };
}

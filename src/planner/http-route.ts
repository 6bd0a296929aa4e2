/**
 * Derived Gateway API routes (HTTPRoute / GRPCRoute, `gateway.networking.k8s.io/v1`) for the
 * `gatewayAPI` routing mode (routing-mode.ts). meshfork never changes a user's route: per sandbox
 * and per Service parent ("GAMMA": a `parentRef` with `group: ""` and `kind: Service`), it writes
 * one route of its own that holds a copy of EVERY rule of every user route of that kind attached
 * to that parent, with the routing-key header match added to each match and the backendRefs that
 * name a Service the sandbox forks retargeted to its fork Service. The mesh merges routes attached
 * to one parent by the Gateway API precedence rules, and each copy ranks just above its original
 * (docs/adr/0013-gateway-api-derived-routes.md has the argument and the spec text it rests on).
 *
 * Copies of several user routes share one derived object, ordered as the mesh orders their
 * originals (oldest creationTimestamp first, then `<namespace>/<name>`, then rule order): ties
 * across objects are broken by the creation time of the objects, which meshfork does not control,
 * while ties within one route go to the first rule in list order, which it writes.
 *
 * Gateway API limits (sigs.k8s.io/gateway-api v1.6.0 apis/v1/httproute_types.go and
 * grpcroute_types.go, kubebuilder markers): at most 16 rules per route, 64 matches per rule, 128
 * matches per route (CEL), 16 header matches per match. A copy over a limit is a problem naming the
 * user route, never a truncated copy.
 */
import { createHash } from 'node:crypto';
import { asList as list, asRecord as record, cloneData, FORK_OF_SERVICE_LABEL, managedLabels, ownValue, type KubeObject } from './kube.js';
import { namespaceOf, serviceFqdn, servicePortNumbers } from './inventory.js';
import type { HttpMatchRequest, RoutingKeyMatch, StringMatch } from './routing-key.js';
import { hasWaypoint, hostMode, isAmbient, USE_WAYPOINT_LABEL, type RoutingModeConfig } from './routing-mode.js';
import { MESH_GATEWAY, routedHosts, virtualServiceGateways, virtualServiceHosts } from './virtual-service.js';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
/** Route kinds meshfork derives copies of; HTTPRoutes and GRPCRoutes are never merged (GRPCRoute spec: "Merging MUST not be done between GRPCRoutes and HTTPRoutes"). */
export const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

/** Limits of one route object (gateway-api v1.6.0 CRD validation, see the module comment). */
export const ROUTE_LIMITS = Object.freeze({ rules: 16, matchesPerRule: 64, matchesPerRoute: 128, headersPerMatch: 16, name: 253 });

/** A Gateway API header match (HTTPHeaderMatch / GRPCHeaderMatch). */
export interface RouteHeaderMatch {
  readonly name: string;
  readonly type: 'Exact' | 'RegularExpression';
  readonly value: string;
}

/** A Service parent of a route: `parentRefs[index]` with `group: ""` and `kind: Service`. */
export interface ServiceParent {
  readonly index: number;
  readonly name: string;
  readonly namespace: string;
  readonly port?: number;
  readonly sectionName?: string;
}

/**
 * The Service parents of a route. A ParentReference's group defaults to
 * `gateway.networking.k8s.io` and its kind to `Gateway`; "To set the core API group (such as for a
 * 'Service' kind referent), Group must be explicitly set to '' (empty string)" (gateway-api v1.6.0
 * apis/v1/shared_types.go ParentReference.Group). istiod resolves the pair with
 * NormalizeReference(group, kind, KubernetesGateway) (pilot/pkg/config/kube/gateway conversion.go
 * `toInternalParentReference`), which finds the Service only for group "". An unset namespace is
 * the route's own.
 */
export function serviceParents(route: KubeObject): ServiceParent[] {
  const out: ServiceParent[] = [];
  list(record(route.spec)?.['parentRefs']).forEach((item, index) => {
    const ref = record(item);
    if (ref === undefined || ref['kind'] !== 'Service' || ref['group'] !== '' || typeof ref['name'] !== 'string') return;
    const namespace = typeof ref['namespace'] === 'string' ? ref['namespace'] : namespaceOf(route);
    out.push({
      index,
      name: ref['name'],
      namespace,
      ...(typeof ref['port'] === 'number' ? { port: ref['port'] } : {}),
      ...(typeof ref['sectionName'] === 'string' ? { sectionName: ref['sectionName'] } : {}),
    });
  });
  return out;
}

/**
 * The Services a route's backendRefs (and RequestMirror filters) name, as `<namespace>/<name>`:
 * a BackendObjectReference's group defaults to "" (core) and its kind to Service.
 */
export function backendServices(route: KubeObject): string[] {
  const out = new Set<string>();
  forEachServiceRef(route, (ref) => out.add(`${typeof ref['namespace'] === 'string' ? ref['namespace'] : namespaceOf(route)}/${String(ref['name'])}`));
  return [...out];
}

/** Calls `visit` on every Service reference of a route's rules: backendRefs and the backendRef of RequestMirror filters (rule and backendRef level). */
function forEachServiceRef(route: KubeObject, visit: (ref: Record<string, unknown>) => void): void {
  const isService = (ref: Record<string, unknown> | undefined): ref is Record<string, unknown> =>
    ref !== undefined && (ref['group'] === undefined || ref['group'] === '') && (ref['kind'] === undefined || ref['kind'] === 'Service') && typeof ref['name'] === 'string';
  const filters = (value: unknown) => {
    for (const f of list(value)) {
      const mirror = record(record(f)?.['requestMirror'])?.['backendRef'];
      if (isService(record(mirror))) visit(record(mirror)!);
    }
  };
  for (const rule of list(record(route.spec)?.['rules'])) {
    filters(record(rule)?.['filters']);
    for (const backend of list(record(rule)?.['backendRefs'])) {
      const ref = record(backend);
      if (isService(ref)) visit(ref);
      filters(ref?.['filters']);
    }
  }
}

/**
 * The routing-key matches of one sandbox as Gateway API header matches, one list (ANDed) per
 * alternative (ORed). Gateway API has only positive header matches (no absent or inverted match),
 * so of the Istio match blocks (routing-key.ts) only those without `withoutHeaders` can be written:
 * `baggage`; `tracestate` when `baggage` is present without a key-name member; the first plain
 * header when both are so present. Istio's `regex` becomes `RegularExpression` (RE2 in Istio and
 * Envoy, "implementation-specific" in Gateway API), `exact` becomes `Exact`. For one request at
 * most one alternative holds (each says which carrier holds the key, routing-key.ts).
 */
export function keyHeaderMatches(blocks: RoutingKeyMatch): RouteHeaderMatch[][] {
  return blocks.keyed
    .filter((b) => b.withoutHeaders === undefined)
    .map((b: HttpMatchRequest) => Object.entries(b.headers ?? {}).map(([name, m]) => headerMatch(name, m)));
}

function headerMatch(name: string, match: StringMatch): RouteHeaderMatch {
  if ('regex' in match) return { name, type: 'RegularExpression', value: match.regex };
  if ('exact' in match) return { name, type: 'Exact', value: match.exact };
  throw new Error(`no Gateway API header match for ${JSON.stringify(match)}`);
}

/** The order in which the mesh ranks tied rules of different routes: oldest creationTimestamp, then `<namespace>/<name>`. */
export function compareRouteAge(a: KubeObject, b: KubeObject): number {
  const ta = typeof a.metadata.creationTimestamp === 'string' ? a.metadata.creationTimestamp : '';
  const tb = typeof b.metadata.creationTimestamp === 'string' ? b.metadata.creationTimestamp : '';
  // RFC 3339 in UTC ("2024-01-02T03:04:05Z", as the API server writes it) sorts as text.
  return ta.localeCompare(tb) || `${namespaceOf(a)}/${a.metadata.name}`.localeCompare(`${namespaceOf(b)}/${b.metadata.name}`);
}

export interface DerivedRoutesInput {
  readonly sandbox: string;
  /** The Service parent: its name, namespace and ports (for the route made when no user route is attached). */
  readonly service: KubeObject;
  /** Key matches of the sandbox (keyHeaderMatches). */
  readonly keyMatches: readonly RouteHeaderMatch[][];
  /** User routes (both kinds) with a Service parentRef naming `service`. */
  readonly userRoutes: readonly KubeObject[];
  /** The fork Service name of `<namespace>/<name>` in this sandbox, if the sandbox forks it. */
  readonly forkOf: (namespace: string, name: string) => string | undefined;
}

export interface RouteProblem {
  readonly object: string;
  readonly path: string;
  readonly message: string;
}

export interface DerivedRoutes {
  readonly objects: KubeObject[];
  readonly problems: RouteProblem[];
  readonly notes: RouteProblem[];
}

function routeRef(route: KubeObject): string {
  return `${route.kind} ${namespaceOf(route)}/${route.metadata.name}`;
}

/**
 * Name of a derived route: `<service>-<sandbox>`, with the parentRef's port and section, and a
 * digest of the hostnames when the user routes have any. A route in another namespace than its
 * Service's (a consumer route) names the Service `<service>.<namespace>`: Services of one name in
 * two namespaces can have consumer routes in a third, and no Service name holds a dot.
 */
function derivedName(service: string, sandbox: string, port: number | undefined, sectionName: string | undefined, hostnames: string): string {
  const parts = [service, sandbox];
  if (port !== undefined) parts.push(String(port));
  if (sectionName !== undefined) parts.push(sectionName);
  if (hostnames !== '[]') parts.push(createHash('sha256').update(hostnames).digest('hex').slice(0, 8));
  return parts.join('-');
}

/**
 * The derived routes of one sandbox for one Service parent: one per (kind, route namespace,
 * parentRef port and section, hostnames) of the user routes attached to it, or, with no user
 * route attached, one HTTPRoute per Service port: keyed requests to the fork Service, every other
 * request to the Service itself (Gateway API: "When no rules matching a request have been
 * successfully attached to the parent a request is coming from, a HTTP 404 status code MUST be
 * returned", so the baseline rule is written rather than assumed).
 */
export function derivedRoutes(input: DerivedRoutesInput): DerivedRoutes {
  const { sandbox, service, keyMatches } = input;
  const serviceName = service.metadata.name;
  const serviceNamespace = namespaceOf(service);
  const problems: RouteProblem[] = [];
  const notes: RouteProblem[] = [];
  const labels = { ...managedLabels(sandbox), [FORK_OF_SERVICE_LABEL]: serviceName };
  const objects: KubeObject[] = [];
  const fork = input.forkOf(serviceNamespace, serviceName);

  if (input.userRoutes.length === 0) {
    if (fork === undefined) return { objects, problems, notes };
    const ports = servicePortNumbers(service);
    for (const port of ports) {
      const parentRef = { group: '', kind: 'Service', name: serviceName, port };
      objects.push({
        apiVersion: GATEWAY_API_VERSION,
        kind: 'HTTPRoute',
        metadata: { name: derivedName(serviceName, sandbox, ports.length > 1 ? port : undefined, undefined, '[]'), namespace: serviceNamespace, labels },
        spec: {
          parentRefs: [parentRef],
          rules: [
            { matches: keyMatches.map((headers) => ({ headers: headers.map((h) => ({ ...h })) })), backendRefs: [{ name: fork, port }] },
            { backendRefs: [{ name: serviceName, port }] },
          ],
        },
      });
    }
    return { objects, problems, notes };
  }

  // Group the attachments: one derived object per (kind, namespace, port, section, hostnames).
  const groups = new Map<string, { kind: string; namespace: string; port?: number; sectionName?: string; hostnames: unknown; routes: KubeObject[] }>();
  for (const route of [...input.userRoutes].sort(compareRouteAge)) {
    const hostnames = ownValue(record(route.spec) ?? {}, 'hostnames');
    const hostnamesKey = JSON.stringify(Array.isArray(hostnames) ? [...hostnames].map(String).sort() : []);
    for (const parent of serviceParents(route)) {
      if (parent.name !== serviceName || parent.namespace !== serviceNamespace) continue;
      const key = JSON.stringify([route.kind, namespaceOf(route), parent.port ?? null, parent.sectionName ?? null, hostnamesKey]);
      const group = groups.get(key) ?? {
        kind: route.kind,
        namespace: namespaceOf(route),
        ...(parent.port !== undefined ? { port: parent.port } : {}),
        ...(parent.sectionName !== undefined ? { sectionName: parent.sectionName } : {}),
        hostnames: hostnamesKey === '[]' ? undefined : hostnames,
        routes: [] as KubeObject[],
      };
      if (!group.routes.includes(route)) group.routes.push(route);
      groups.set(key, group);
    }
  }

  for (const group of groups.values()) {
    const hostnamesKey = JSON.stringify(group.hostnames === undefined ? [] : [...(group.hostnames as unknown[])].map(String).sort());
    const serviceInName = group.namespace === serviceNamespace ? serviceName : `${serviceName}.${serviceNamespace}`;
    const name = derivedName(serviceInName, sandbox, group.port, group.sectionName, hostnamesKey);
    const refs = group.routes.map(routeRef).join(', ');
    if (name.length > ROUTE_LIMITS.name) {
      problems.push({ object: routeRef(group.routes[0]!), path: 'metadata.name', message: `the derived ${group.kind} "${name}" for sandbox "${sandbox}" would be longer than ${ROUTE_LIMITS.name} characters; shorten the sandbox or Service name` });
      continue;
    }
    const rules: Record<string, unknown>[] = [];
    const ruleNames = new Set<string>();
    let failed = false;
    for (const route of group.routes) {
      list(record(route.spec)?.['rules']).forEach((item, ruleIndex) => {
        const rule = record(item) ?? {};
        const path = `spec.rules[${ruleIndex}]`;
        const userMatches = list(rule['matches']).map((m) => record(m) ?? {});
        const matches = userMatches.length > 0 ? userMatches : [{}];
        for (const [matchIndex, match] of matches.entries()) {
          const carriers = new Set(keyMatches.flat().map((h) => h.name));
          const clash = list(match['headers']).map((h) => record(h)?.['name']).find((n) => typeof n === 'string' && carriers.has(n.toLowerCase()));
          if (clash !== undefined) {
            problems.push({
              object: routeRef(route),
              path: `${path}.matches[${matchIndex}].headers`,
              message: `matches header "${String(clash)}", which carries the routing key: its copy for sandbox "${sandbox}" cannot add the key match (header names are unique within a match)`,
            });
            failed = true;
          }
          const headers = list(match['headers']).length;
          if (headers + Math.max(...keyMatches.map((k) => k.length)) > ROUTE_LIMITS.headersPerMatch) {
            problems.push({
              object: routeRef(route),
              path: userMatches.length > 0 ? `${path}.matches[${matchIndex}].headers` : `${path}.matches`,
              message: `has ${headers} header matches; its copy for sandbox "${sandbox}" adds the routing key (${Math.max(...keyMatches.map((k) => k.length))} more), over the ${ROUTE_LIMITS.headersPerMatch} a match may hold`,
            });
            failed = true;
          }
        }
        // A rule with a ReplacePrefixMatch rewrite or redirect must have exactly one match (CEL on
        // HTTPRouteRule): its copy is one rule per key alternative.
        const oneMatchPerRule = JSON.stringify(rule['filters'] ?? []).includes('"ReplacePrefixMatch"') || JSON.stringify(rule['backendRefs'] ?? []).includes('"ReplacePrefixMatch"');
        const alternatives = oneMatchPerRule ? keyMatches.map((k) => [k]) : [keyMatches];
        for (const keys of alternatives) {
          // The user's fields in their order, `matches` first when the rule had none.
          const copy: Record<string, unknown> = Object.hasOwn(rule, 'matches') ? cloneData(rule) : { matches: [], ...cloneData(rule) };
          copy['matches'] = matches.flatMap((m) => keys.map((k) => ({ ...cloneData(m), headers: [...list(m['headers']).map(cloneData), ...k.map((h) => ({ ...h }))] })));
          if ((copy['matches'] as unknown[]).length > ROUTE_LIMITS.matchesPerRule) {
            problems.push({
              object: routeRef(route),
              path: `${path}.matches`,
              message: `its copy for sandbox "${sandbox}" needs ${(copy['matches'] as unknown[]).length} matches (each of its ${matches.length} with each of the ${keys.length} routing-key alternatives), over the ${ROUTE_LIMITS.matchesPerRule} a rule may hold`,
            });
            failed = true;
          }
          retarget(copy, namespaceOf(route), input.forkOf);
          if (typeof copy['name'] === 'string') {
            let unique = copy['name'];
            for (let n = 2; ruleNames.has(unique); n++) unique = `${copy['name']}-${n}`;
            copy['name'] = unique;
            ruleNames.add(unique);
          }
          rules.push(copy);
        }
      });
    }
    const total = rules.reduce((sum, r) => sum + (r['matches'] as unknown[]).length, 0);
    if (rules.length > ROUTE_LIMITS.rules || total > ROUTE_LIMITS.matchesPerRoute) {
      problems.push({
        object: routeRef(group.routes[0]!),
        path: 'spec.rules',
        message: `the copies of ${refs} for sandbox "${sandbox}" need ${rules.length} rules and ${total} matches in one ${group.kind} attached to Service ${serviceNamespace}/${serviceName}, over the ${ROUTE_LIMITS.rules} rules and ${ROUTE_LIMITS.matchesPerRoute} matches a route may hold`,
      });
      failed = true;
    }
    if (failed) continue;
    if (group.routes.length > 1 && group.routes.some((r) => typeof r.metadata.creationTimestamp !== 'string')) {
      notes.push({
        object: routeRef(group.routes[0]!),
        path: 'metadata.creationTimestamp',
        message: `${refs} are attached to Service ${serviceNamespace}/${serviceName} and not every one has a creationTimestamp in the inventory: their copies for sandbox "${sandbox}" are ordered by namespace and name, while the mesh ranks tied rules of different routes oldest first; plan from the cluster's objects to follow their real order`,
      });
    }
    const parentRef: Record<string, unknown> = { group: '', kind: 'Service', name: serviceName };
    if (group.namespace !== serviceNamespace) parentRef['namespace'] = serviceNamespace;
    if (group.port !== undefined) parentRef['port'] = group.port;
    if (group.sectionName !== undefined) parentRef['sectionName'] = group.sectionName;
    objects.push({
      apiVersion: GATEWAY_API_VERSION,
      kind: group.kind,
      metadata: { name, namespace: group.namespace, labels },
      spec: {
        parentRefs: [parentRef],
        ...(group.hostnames !== undefined ? { hostnames: cloneData(group.hostnames) } : {}),
        rules,
      },
    });
  }
  return { objects, problems, notes };
}

/** Points a rule copy's Service references (backendRefs, RequestMirror filters) that name a forked Service at its fork Service. */
function retarget(rule: Record<string, unknown>, routeNamespace: string, forkOf: (namespace: string, name: string) => string | undefined): void {
  const pseudo = { apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', metadata: { name: 'copy', namespace: routeNamespace }, spec: { rules: [rule] } };
  forEachServiceRef(pseudo, (ref) => {
    const fork = forkOf(typeof ref['namespace'] === 'string' ? ref['namespace'] : routeNamespace, ref['name'] as string);
    if (fork !== undefined) ref['name'] = fork;
  });
}

// ---------------------------------------------------------------------------------------------
// Planning every derived route

export interface GatewayHostEntry {
  readonly serviceName: string;
  readonly namespace: string;
  readonly routes: ReadonlyArray<{ readonly sandbox: string; readonly forkHost: string; readonly matchBlocks: RoutingKeyMatch; readonly splitWeight?: number }>;
}

export interface GatewayPlanInput {
  readonly services: readonly KubeObject[];
  readonly namespaces: readonly KubeObject[];
  /** User HTTPRoutes/GRPCRoutes (meshfork's own filtered out). */
  readonly userRoutes: readonly KubeObject[];
  /** User VirtualServices (meshfork's own filtered out). */
  readonly virtualServices: readonly KubeObject[];
  /** Forked hosts (FQDN) and the sandboxes routing each, as plan.ts collects them. */
  readonly hostRoutes: ReadonlyMap<string, GatewayHostEntry>;
  /** The Sandbox (object ref and field) that forked `host` for `sandbox`. */
  readonly ownerOf: (host: string, sandbox: string) => { ref: string; path: string };
  readonly modes: RoutingModeConfig | undefined;
}

export interface OwnedProblem {
  readonly object: string;
  readonly path: string;
  readonly message: string;
}

export interface GatewayPlan {
  /** Forked hosts routed with Gateway API: no VirtualService is written for them. */
  readonly gatewayHosts: Set<string>;
  /** Derived routes with the Sandbox field that asked for each. */
  readonly objects: Array<{ object: KubeObject; owner: { ref: string; path: string } }>;
  readonly problems: OwnedProblem[];
  readonly notes: OwnedProblem[];
}

/**
 * The routing mode of every forked host, and the derived routes of every sandbox: for each Service
 * parent that is a gatewayAPI-mode host the sandbox forks, or that has a user route sending
 * requests to a Service the sandbox forks (the copies of that route then reach the fork).
 */
export function planGatewayRoutes(input: GatewayPlanInput): GatewayPlan {
  const serviceById = new Map(input.services.map((s) => [`${namespaceOf(s)}/${s.metadata.name}`, s]));
  const namespaceByName = new Map(input.namespaces.map((n) => [n.metadata.name, n]));
  const routesByParent = new Map<string, KubeObject[]>();
  for (const route of input.userRoutes) {
    for (const id of new Set(serviceParents(route).map((p) => `${p.namespace}/${p.name}`))) routesByParent.set(id, [...(routesByParent.get(id) ?? []), route]);
  }
  const meshVirtualServices = new Map<string, KubeObject[]>();
  for (const vs of input.virtualServices) {
    if (!virtualServiceGateways(vs).includes(MESH_GATEWAY)) continue;
    for (const host of new Set(virtualServiceHosts(vs))) meshVirtualServices.set(host, [...(meshVirtualServices.get(host) ?? []), vs]);
  }
  const modeOf = (id: string) => {
    const service = serviceById.get(id)!;
    const host = serviceFqdn(service.metadata.name, namespaceOf(service));
    return hostMode({
      host,
      service,
      namespace: namespaceByName.get(namespaceOf(service)),
      userRoutes: routesByParent.get(id) ?? [],
      userVirtualServices: meshVirtualServices.get(host) ?? [],
      config: input.modes,
    });
  };

  const gatewayHosts = new Set<string>();
  const problems: OwnedProblem[] = [];
  const notes: OwnedProblem[] = [];
  // Per sandbox: its key matches, the fork Service of each Service it forks, and the owner of each.
  // Keyed by the Sandbox's object ref: two Sandboxes of one name in different namespaces stay apart.
  const sandboxes = new Map<string, { name: string; blocks: RoutingKeyMatch; forks: Map<string, string>; owner: { ref: string; path: string }; parents: Set<string> }>();
  for (const [host, entry] of input.hostRoutes) {
    const id = `${entry.namespace}/${entry.serviceName}`;
    const service = serviceById.get(id);
    if (service === undefined) continue;
    const { mode, problem } = modeOf(id);
    const namespace = namespaceByName.get(entry.namespace);
    for (const route of entry.routes) {
      const owner = input.ownerOf(host, route.sandbox);
      const s = sandboxes.get(owner.ref) ?? { name: route.sandbox, blocks: route.matchBlocks, forks: new Map<string, string>(), owner, parents: new Set<string>() };
      s.forks.set(id, route.forkHost.split('.')[0]!);
      sandboxes.set(owner.ref, s);
      if (problem !== undefined) problems.push({ object: owner.ref, path: owner.path, message: problem });
      if (isAmbient(namespace) && !hasWaypoint(service, namespace)) {
        problems.push({
          object: owner.ref,
          path: owner.path,
          message: `Service ${id} is in the ambient namespace "${entry.namespace}" and has no waypoint (label ${USE_WAYPOINT_LABEL} on the Service or its Namespace): routes apply only at waypoints, so keyed requests would silently reach the baseline; enroll a waypoint for it`,
        });
      }
      if (mode === 'gatewayAPI') {
        s.parents.add(id);
        if (route.splitWeight !== undefined) {
          problems.push({ object: owner.ref, path: 'spec.split.weight', message: `Service ${id} is routed with Gateway API (routing mode gatewayAPI), where meshfork does not split untagged traffic; remove spec.split or route the host with virtualService` });
        }
      }
    }
    if (mode === 'gatewayAPI') gatewayHosts.add(host);
  }
  // Parents of user routes that send requests to a Service a sandbox forks.
  for (const route of input.userRoutes) {
    const backends = backendServices(route);
    const forkedBackends = backends.filter((b) => [...sandboxes.values()].some((s) => s.forks.has(b)));
    if (forkedBackends.length > 0 && serviceParents(route).length < list(record(route.spec)?.['parentRefs']).length) {
      notes.push({
        object: routeRef(route),
        path: 'spec.parentRefs',
        message: `sends requests to the forked Service ${forkedBackends.join(', ')} from a parent that is not a Service (a Gateway): meshfork copies only routes attached to Services, so keyed requests entering through that parent reach the baseline`,
      });
    }
    for (const s of sandboxes.values()) {
      if (!backends.some((b) => s.forks.has(b))) continue;
      for (const parent of serviceParents(route)) {
        const id = `${parent.namespace}/${parent.name}`;
        // A Service the sandbox forks had its mode decided (and its problems said) above.
        if (s.parents.has(id) || s.forks.has(id) || !serviceById.has(id)) continue;
        const { problem } = modeOf(id);
        if (problem !== undefined) problems.push({ object: s.owner.ref, path: s.owner.path, message: problem });
        s.parents.add(id);
      }
    }
  }

  // Gateway-bound user VirtualServices (ingress) get sandbox copies only for virtualService hosts.
  for (const vs of input.virtualServices) {
    if (virtualServiceGateways(vs).includes(MESH_GATEWAY)) continue;
    const hosts = [...routedHosts(vs)].filter((h) => gatewayHosts.has(h)).sort();
    if (hosts.length === 0) continue;
    notes.push({
      object: `VirtualService ${namespaceOf(vs)}/${vs.metadata.name}`,
      path: 'spec.http',
      message: `routes to ${hosts.join(', ')}, routed with Gateway API (routing mode gatewayAPI): meshfork adds no sandbox routes to this gateway-bound VirtualService, so keyed requests entering through it reach the baseline of ${hosts.length === 1 ? 'that host' : 'those hosts'}`,
    });
  }

  const objects: GatewayPlan['objects'] = [];
  let lostCarriers = false;
  for (const s of [...sandboxes.values()].sort((a, b) => a.owner.ref.localeCompare(b.owner.ref))) {
    if (s.parents.size === 0) continue;
    const keyMatches = keyHeaderMatches(s.blocks);
    if (keyMatches.length < s.blocks.keyed.length) lostCarriers = true;
    for (const id of [...s.parents].sort()) {
      const derived = derivedRoutes({
        sandbox: s.name,
        service: serviceById.get(id)!,
        keyMatches,
        userRoutes: routesByParent.get(id) ?? [],
        forkOf: (namespace, name) => s.forks.get(`${namespace}/${name}`),
      });
      objects.push(...derived.objects.map((object) => ({ object, owner: s.owner })));
      problems.push(...derived.problems);
      notes.push(...derived.notes);
    }
  }
  if (lostCarriers) {
    notes.push({
      object: 'config',
      path: 'routing',
      message:
        'Gateway API header matches are positive only (no absent or inverted match), so the derived routes match the routing key in baggage, and in a later carrier only when every earlier one is present without a routing-key member: a request carrying its key only in tracestate or a plain header, without a baggage header, reaches the baseline on hosts routed with gatewayAPI',
    });
  }
  return { gatewayHosts, objects, problems, notes };
}

/**
 * Istio HTTP routing, evaluated: given a VirtualService (a plain object, as parsed from YAML or
 * read from the API server) and a request, decide which `spec.http[]` route an Istio sidecar (or
 * gateway) takes. `meshfork routes` (src/cli) answers with it, and the routing tests use it as
 * their oracle. Pure; imports only the planner's gateway-name resolution.
 *
 * It follows what istiod generates from a VirtualService and how Envoy evaluates the result,
 * NOT what the VirtualService reference page suggests in prose. Sources (cited where used):
 *
 * [istio-route] istio/istio pilot/pkg/networking/core/route/route.go:
 *   - BuildHTTPRoutesForVirtualService: one Envoy route per (http route, match block), in VS order;
 *     a route without `match` is a catch-all. Envoy takes the FIRST matching route, so the VS
 *     route taken is the first one for which ANY of its match blocks matches (blocks are OR-ed).
 *   - translateRoute: a block whose `port` differs from the listener port, or that fails
 *     sourceMatchHTTP (gateways / sourceLabels / sourceNamespace), yields no Envoy route at all.
 *   - sourceMatchHTTP: if the block lists `gateways`, ONLY the gateway is checked (sourceLabels and
 *     sourceNamespace are then ignored); otherwise sourceLabels must be a subset of the proxy's
 *     labels and sourceNamespace (if set) must equal the proxy's namespace.
 *   - TranslateRouteMatch: `headers` -> Envoy HeaderMatcher each (all must hold: AND);
 *     `withoutHeaders` -> the same with `invert_match: true` and `treat_missing_header_as_empty:
 *     true` (except for a presence match); `uri` exact -> `path`, prefix -> `prefix`, regex ->
 *     `safe_regex`, no uri -> prefix `/`; `case_sensitive = !ignoreUriCase`; `method`,
 *     `authority`, `scheme` -> header matchers on `:method`, `:authority`, `:scheme`;
 *     `queryParams` -> QueryParameterMatcher.
 *   - canBeConvertedToPresentMatch: an empty StringMatch or `regex: "*"` is a presence match.
 *   - translateMetadataMatch: header names `@request.auth.claims...` match JWT claims (not
 *     modelled here: throws).
 *   - applyHTTPRouteDestination: a single destination takes all traffic whatever its weight;
 *     with several, destinations of weight 0 are dropped and the rest form Envoy weighted clusters.
 *     `mirror` (share from `mirrorPercentage`, else the deprecated `mirrorPercent`, else 100%)
 *     and each `mirrors[]` entry (share from `percentage`, else 100%) become Envoy
 *     request_mirror_policies in that order; an explicit 0% share writes no policy
 *     (MirrorPercent, MirrorPercentByPolicy). Istio validation refuses a route with both `mirror`
 *     and `mirrors` (pkg/config/validation/virtualservice.go).
 * [envoy-hdr] Envoy HeaderMatcher / HttpRequestHeaderMatchInput docs and the CVE-2020-25017 fix
 *   (Envoy 1.12.7 release notes): a header present several times is matched as ONE value, all
 *   values joined with ',' (no space). Header names are case-insensitive (Envoy lower-cases
 *   them; LowerCaseString).
 * [envoy-re2] Envoy RegexMatcher (google_re2): the regex must match the WHOLE value (RE2
 *   FullMatch); `abc` does not match regex `b`. Istio raises Envoy's RE2 program-size error level
 *   to 32768 (pilot bootstrap runtime flag `re2.max_program_size.error_level`), not modelled.
 * [envoy-path] Envoy RouteMatch: `path` and `safe_regex` are matched against :path with the
 *   query string removed; `prefix` against the beginning of :path; `case_sensitive: false`
 *   applies to `path` and `prefix` only (Istio docs: "The case will be ignored only in the case of
 *   exact and prefix URI matches").
 * [istio-vs] Istio VirtualService reference: `spec.gateways` omitted means `[mesh]`; a VS only
 *   applies to the proxies of the gateways it names; header keys must be lower case.
 * [grpc] Proxyless gRPC clients evaluate the same Envoy routes with their own header matchers
 *   (`RouteRequest.client`): grpc-go 1.82 (internal/xds/matcher/matcher_header.go) returns false
 *   for a missing header before applying `invert_match` (only `present_match` sees absence) and
 *   ignores `treat_missing_header_as_empty`; grpc-js-xds 1.14 (build/src/matcher.js HeaderMatcher)
 *   takes a missing header as "no match" and then inverts, and compiles a regex as `^` + re + `$`
 *   without a group (RE2 search). Both join repeated headers with ','.
 *
 * Regular expressions are RE2 (re2-wasm: Google's RE2 compiled to WebAssembly), not JavaScript's
 * RegExp, because they differ exactly where a routing decision can turn: RE2 has no lookaround
 * and no backreferences (Envoy NACKs them; JS accepts them), RE2's `$` is end of text only (JS
 * without `m` is the same, but `\Z`, `\z`, `\A` exist only in RE2), RE2's `\C`, `(?U)`, `(?s)`
 * flags and `\pN` classes differ from or are missing in JS, and JS accepts escapes (`\u0061`,
 * `\cA`) RE2 refuses. A regex JS would accept but RE2 refuses is reported, never evaluated.
 *
 * Anything this model does not understand throws a RouteEvalError instead of being ignored, so a
 * test can never pass because a condition was silently dropped, and `meshfork routes` never
 * prints a guess.
 */
import { RE2 } from 're2-wasm';
import type { KubeObject } from '../planner/kube.js';
import { resolveGatewayName, virtualServiceGateways as plannedGateways } from '../planner/virtual-service.js';

/** A request as the matching proxy sees it (after its HTTP codec). */
export interface RouteRequest {
  /** Request headers; names are case-insensitive; an array is the same header sent several times. */
  headers: Record<string, string | readonly string[]>;
  /** The `:path` pseudo-header: path plus optional `?query`. @default '/' */
  uri?: string;
  /** `:method`. Required only when a match block has `method`. */
  method?: string;
  /** `:authority` (or `host`). Required only when a match block has `authority`. */
  authority?: string;
  /** `:scheme`. Required only when a match block has `scheme`. */
  scheme?: string;
  /** Listener port the request arrived on (the service port). Required when a block has `port`. */
  port?: number;
  /** Labels of the client workload (the sidecar's pod). Required when a block has `sourceLabels`. */
  sourceLabels?: Record<string, string>;
  /** Namespace of the client workload. Required when a block has `sourceNamespace`. */
  sourceNamespace?: string;
  /** The proxy evaluating the VS: `mesh` for sidecars, else `<namespace>/<gateway>`. @default 'mesh' */
  gateway?: string;
  /** Query parameters (first value of each); alternatively put them in `uri` after `?`. */
  query?: Record<string, string>;
  /** Whose header matching decides: an Envoy proxy, or a proxyless gRPC client. [grpc] @default 'envoy' */
  client?: RouteClient;
}

export type RouteClient = 'envoy' | 'grpc-go' | 'grpc-js';

export interface RouteDestination {
  host: string;
  subset?: string;
  port?: number;
  weight?: number;
}

/** A request mirror policy of the route taken: where a copy of the request goes, and for which share. */
export interface RouteMirror {
  host: string;
  subset?: string;
  port?: number;
  /** Share of requests mirrored, in percent (0 < percentage <= 100). */
  percentage: number;
}

export interface RouteDecision {
  /** Index of the route taken in `spec.http`. */
  routeIndex: number;
  /** `spec.http[routeIndex].name`, if any. */
  routeName: string | undefined;
  /** Index of the first match block that matched; undefined for a route without `match`. */
  matchIndex: number | undefined;
  /** What the route does: forward (`route`), `redirect` or `directResponse`. */
  action: 'route' | 'redirect' | 'directResponse';
  /** The route's destinations, as written (empty for redirect/directResponse). */
  destinations: RouteDestination[];
  /** The route's mirror policies as istiod writes them (empty for redirect/directResponse). [istio-route] */
  mirrors: RouteMirror[];
  /** The raw HTTP route object. */
  route: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the evaluator cannot decide (input it does not model, or that Istio would refuse). */
export class RouteEvalError extends Error {
  override name = 'RouteEvalError';
}

function fail(message: string): never {
  throw new RouteEvalError(`route-eval: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// RE2 full match
// ---------------------------------------------------------------------------------------------

// re2-wasm runs in a fixed 16 MiB wasm heap (no memory growth) and a compiled pattern takes ~9 KiB:
// keep few, and free evicted ones, or the module aborts with OOM and every later match fails.
const RE2_CACHE_LIMIT = 512;
const re2Cache = new Map<string, RE2>();

/** Frees the wasm-side object of an RE2 (re2-wasm uses embind handles, never garbage collected). */
function disposeRe2(re: RE2): void {
  const wrapper = (re as unknown as { wrapper?: { delete?: () => void } }).wrapper;
  wrapper?.delete?.();
}

/**
 * re2-wasm rewrites a few JavaScript-only escapes (`\u1234`, `\cX`) into RE2 syntax before
 * compiling; Envoy's RE2 rejects them. Refuse them so the oracle never accepts a regex Envoy
 * would NACK.
 */
function assertNativeRe2Syntax(pattern: string): void {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '\\') {
      const next = pattern[i + 1];
      if (next === 'u' || next === 'c') fail(`regex ${JSON.stringify(pattern)} uses \\${next}, which RE2 does not support`);
      i++;
    }
  }
}

/** The compiled RE2 for `source`, from a small LRU cache. */
function compiled(source: string): RE2 {
  let re = re2Cache.get(source);
  if (re !== undefined) {
    // Refresh LRU position.
    re2Cache.delete(source);
    re2Cache.set(source, re);
    return re;
  }
  re = new RE2(source, 'u');
  re2Cache.set(source, re);
  if (re2Cache.size > RE2_CACHE_LIMIT) {
    const oldest = re2Cache.keys().next().value as string;
    const old = re2Cache.get(oldest);
    re2Cache.delete(oldest);
    if (old !== undefined) disposeRe2(old);
  }
  return re;
}

function compileFullMatch(pattern: string): RE2 {
  assertNativeRe2Syntax(pattern);
  // RE2::FullMatch == the pattern anchored at both ends of the text; in RE2 (without the `m`
  // flag) `$` only matches at the end of the text, like `\z`. [envoy-re2]
  return compiled(`^(?:${pattern})$`);
}

/** True when RE2 `pattern` matches the WHOLE of `value` (Envoy `safe_regex`, google_re2). */
export function re2FullMatch(pattern: string, value: string): boolean {
  const re = compileFullMatch(pattern);
  re.lastIndex = 0;
  return re.test(value);
}

// ---------------------------------------------------------------------------------------------
// String matches
// ---------------------------------------------------------------------------------------------

/** An Istio StringMatch as Envoy evaluates it; `present` is Istio's presence-match conversion. */
type CompiledMatch =
  | { kind: 'present' }
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'regex'; value: string };

function compileStringMatch(raw: unknown, where: string): CompiledMatch {
  // canBeConvertedToPresentMatch: nil / empty StringMatch, or regex "*". [istio-route]
  if (raw === null || raw === undefined) return { kind: 'present' };
  if (!isObj(raw)) fail(`${where}: StringMatch must be an object, got ${JSON.stringify(raw)}`);
  const keys = Object.keys(raw);
  if (keys.length === 0) return { kind: 'present' };
  if (keys.length > 1) fail(`${where}: StringMatch has several match types ${JSON.stringify(keys)}`);
  const kind = keys[0] as string;
  const value = raw[kind];
  if (typeof value !== 'string') fail(`${where}: StringMatch.${kind} must be a string`);
  switch (kind) {
    case 'exact':
      return { kind: 'exact', value };
    case 'prefix':
      return { kind: 'prefix', value };
    case 'regex':
      if (value === '*') return { kind: 'present' };
      compileFullMatch(value); // fail early on invalid RE2
      return { kind: 'regex', value };
    default:
      return fail(`${where}: unsupported StringMatch type ${JSON.stringify(kind)}`);
  }
}

function asciiLower(value: string): string {
  return value.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** grpc-js's header regex: RE2 search of `^` + re + `$`, the pattern not grouped. [grpc] */
function grpcJsRegexMatch(pattern: string, value: string): boolean {
  assertNativeRe2Syntax(pattern);
  const re = compiled(`^${pattern}$`);
  re.lastIndex = 0;
  return re.test(value);
}

/** Envoy StringMatcher on a present value (a header regex as `client` compiles it). */
function stringMatches(match: Exclude<CompiledMatch, { kind: 'present' }>, value: string, client: RouteClient = 'envoy'): boolean {
  switch (match.kind) {
    case 'exact':
      return value === match.value;
    case 'prefix':
      return value.startsWith(match.value);
    case 'regex':
      return client === 'grpc-js' ? grpcJsRegexMatch(match.value, value) : re2FullMatch(match.value, value);
  }
}

/**
 * Envoy HeaderMatcher: `value` is the header's joined value or undefined when absent.
 * `invert` + `treatMissingAsEmpty` model Istio's `withoutHeaders`. [istio-route] A proxyless gRPC
 * client treats a missing header its own way. [grpc]
 */
function headerMatcherMatches(
  match: CompiledMatch,
  value: string | undefined,
  invert: boolean,
  treatMissingAsEmpty: boolean,
  client: RouteClient = 'envoy',
): boolean {
  if (value === undefined && client === 'grpc-go' && match.kind !== 'present') return false;
  if (value === undefined && client === 'grpc-js') return invert;
  if (value === undefined && treatMissingAsEmpty && client === 'envoy') value = '';
  let result: boolean;
  if (match.kind === 'present') result = value !== undefined;
  else result = value !== undefined && stringMatches(match, value, client);
  return invert ? !result : result;
}

// ---------------------------------------------------------------------------------------------
// Request access
// ---------------------------------------------------------------------------------------------

/**
 * The value Envoy matches for header `name`: every occurrence (any name casing) joined with ','
 * in arrival order, or undefined when the header is absent. [envoy-hdr]
 */
export function joinedHeader(headers: RouteRequest['headers'], name: string): string | undefined {
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== wanted) continue;
    if (typeof value === 'string') values.push(value);
    else values.push(...value);
  }
  return values.length === 0 ? undefined : values.join(',');
}

interface NormalizedRequest {
  headers: RouteRequest['headers'];
  path: string; // :path with query, no fragment
  pathNoQuery: string;
  query: Map<string, string> | undefined; // undefined = none given and none in uri
  method: string | undefined;
  authority: string | undefined;
  scheme: string | undefined;
  port: number | undefined;
  sourceLabels: Record<string, string> | undefined;
  sourceNamespace: string | undefined;
  gateway: string;
  client: RouteClient;
}

function normalizeRequest(request: RouteRequest): NormalizedRequest {
  for (const name of Object.keys(request.headers)) {
    if (name.startsWith(':')) fail(`request header ${name}: pass pseudo-headers as uri/method/authority/scheme`);
  }
  const uri = request.uri ?? '/';
  if (!uri.startsWith('/')) fail(`request uri ${JSON.stringify(uri)} must start with '/'`);
  if (uri.includes('#')) fail(`request uri ${JSON.stringify(uri)} has a fragment; Envoy never routes on it`);
  const q = uri.indexOf('?');
  const pathNoQuery = q === -1 ? uri : uri.slice(0, q);
  let query: Map<string, string> | undefined;
  if (q !== -1) {
    if (request.query !== undefined) fail('give query parameters either in uri or in query, not both');
    query = new Map();
    // First occurrence wins; a parameter without '=' has the empty value. Values are not decoded.
    for (const part of uri.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq === -1 ? part : part.slice(0, eq);
      const value = eq === -1 ? '' : part.slice(eq + 1);
      if (!query.has(key)) query.set(key, value);
    }
  } else if (request.query !== undefined) {
    query = new Map(Object.entries(request.query));
  }
  const hostHeader = joinedHeader(request.headers, 'host');
  if (request.authority !== undefined && hostHeader !== undefined && hostHeader !== request.authority) {
    fail(`request authority ${JSON.stringify(request.authority)} and host header ${JSON.stringify(hostHeader)} differ`);
  }
  return {
    headers: request.headers,
    path: uri,
    pathNoQuery,
    query,
    method: request.method,
    authority: request.authority ?? hostHeader,
    scheme: request.scheme,
    port: request.port,
    sourceLabels: request.sourceLabels,
    sourceNamespace: request.sourceNamespace,
    gateway: request.gateway ?? 'mesh',
    client: request.client ?? 'envoy',
  };
}

// ---------------------------------------------------------------------------------------------
// Match blocks
// ---------------------------------------------------------------------------------------------

/** HTTPMatchRequest fields this model evaluates; `name` and `statPrefix` do not affect routing. */
const KNOWN_MATCH_FIELDS = new Set([
  'name',
  'statPrefix',
  'headers',
  'withoutHeaders',
  'uri',
  'ignoreUriCase',
  'method',
  'authority',
  'scheme',
  'port',
  'sourceLabels',
  'sourceNamespace',
  'gateways',
  'queryParams',
]);

const resolveGateway = resolveGatewayName;

function headerEntries(raw: unknown, where: string): Array<[string, unknown]> {
  if (raw === undefined || raw === null) return [];
  if (!isObj(raw)) fail(`${where} must be a map`);
  return Object.entries(raw).map(([name, match]) => {
    if (name.startsWith('@')) fail(`${where}.${name}: JWT claim matching is not modelled`);
    if (name.startsWith(':')) fail(`${where}.${name}: pseudo-header matching is not modelled; use uri/method/authority/scheme`);
    const lower = name.toLowerCase();
    // Envoy turns Host into :authority; a `host` header matcher is not modelled.
    if (lower === 'host') fail(`${where}.host: use authority`);
    return [lower, match] as [string, unknown];
  });
}

/**
 * True when one HTTPMatchRequest (all of its conditions, AND-ed) matches the request.
 * `vsNamespace` resolves short gateway names.
 */
function blockMatches(block: unknown, req: NormalizedRequest, vsNamespace: string, where: string): boolean {
  if (block === null || block === undefined) return true;
  if (!isObj(block)) fail(`${where} must be an object`);
  for (const field of Object.keys(block)) {
    if (!KNOWN_MATCH_FIELDS.has(field)) fail(`${where}: unsupported match field ${JSON.stringify(field)}`);
  }

  // port: a block for another listener port yields no Envoy route on this one. [istio-route]
  if (block.port !== undefined && block.port !== null && block.port !== 0) {
    if (typeof block.port !== 'number') fail(`${where}.port must be a number`);
    if (req.port === undefined) fail(`${where}.port is set: the request must give port`);
    if (block.port !== req.port) return false;
  }

  // gateways / sourceLabels / sourceNamespace: sourceMatchHTTP. [istio-route]
  const gateways = block.gateways;
  if (Array.isArray(gateways) && gateways.length > 0) {
    const resolved = gateways.map((g) => {
      if (typeof g !== 'string') fail(`${where}.gateways must be strings`);
      return resolveGateway(g, vsNamespace);
    });
    if (!resolved.includes(resolveGateway(req.gateway, vsNamespace))) return false;
    // With gateways set, istiod does not look at sourceLabels/sourceNamespace at all.
  } else {
    if (gateways !== undefined && gateways !== null && !Array.isArray(gateways)) fail(`${where}.gateways must be a list`);
    const sourceLabels = block.sourceLabels;
    if (sourceLabels !== undefined && sourceLabels !== null) {
      if (!isObj(sourceLabels)) fail(`${where}.sourceLabels must be a map`);
      const wanted = Object.entries(sourceLabels);
      if (wanted.length > 0) {
        if (req.sourceLabels === undefined) fail(`${where}.sourceLabels is set: the request must give sourceLabels`);
        for (const [k, v] of wanted) if (req.sourceLabels[k] !== v) return false;
      }
    }
    const sourceNamespace = block.sourceNamespace;
    if (sourceNamespace !== undefined && sourceNamespace !== null && sourceNamespace !== '') {
      if (typeof sourceNamespace !== 'string') fail(`${where}.sourceNamespace must be a string`);
      if (req.sourceNamespace === undefined) fail(`${where}.sourceNamespace is set: the request must give sourceNamespace`);
      if (sourceNamespace !== req.sourceNamespace) return false;
    }
  }

  // headers (AND) and withoutHeaders (each inverted; missing treated as empty). [istio-route]
  for (const [name, raw] of headerEntries(block.headers, `${where}.headers`)) {
    const m = compileStringMatch(raw, `${where}.headers.${name}`);
    if (!headerMatcherMatches(m, joinedHeader(req.headers, name), false, false, req.client)) return false;
  }
  for (const [name, raw] of headerEntries(block.withoutHeaders, `${where}.withoutHeaders`)) {
    const m = compileStringMatch(raw, `${where}.withoutHeaders.${name}`);
    if (!headerMatcherMatches(m, joinedHeader(req.headers, name), true, m.kind !== 'present', req.client)) return false;
  }

  // uri: exact -> path (query removed), prefix -> prefix of :path, regex -> safe_regex on the path
  // without query; ignoreUriCase only for exact/prefix. No uri = prefix '/'. [envoy-path]
  const ignoreCase = block.ignoreUriCase === true;
  if (block.ignoreUriCase !== undefined && typeof block.ignoreUriCase !== 'boolean') fail(`${where}.ignoreUriCase must be a boolean`);
  if (block.uri !== undefined && block.uri !== null) {
    const m = compileStringMatch(block.uri, `${where}.uri`);
    const fold = (s: string): string => (ignoreCase ? asciiLower(s) : s);
    switch (m.kind) {
      case 'present':
        fail(`${where}.uri: empty StringMatch`);
        break;
      case 'exact':
        if (fold(req.pathNoQuery) !== fold(m.value)) return false;
        break;
      case 'prefix':
        if (!fold(req.path).startsWith(fold(m.value))) return false;
        break;
      case 'regex':
        if (!re2FullMatch(m.value, req.pathNoQuery)) return false;
        break;
    }
  }

  // method / authority / scheme: header matchers on pseudo-headers. [istio-route]
  const pseudo: Array<[string, string | undefined]> = [
    ['method', req.method],
    ['authority', req.authority],
    ['scheme', req.scheme],
  ];
  for (const [field, value] of pseudo) {
    const raw = block[field];
    if (raw === undefined || raw === null) continue;
    const m = compileStringMatch(raw, `${where}.${field}`);
    if (value === undefined) fail(`${where}.${field} is set: the request must give ${field}`);
    if (!headerMatcherMatches(m, value, false, false)) return false;
  }

  // queryParams: QueryParameterMatcher, first value of the parameter. [istio-route]
  if (block.queryParams !== undefined && block.queryParams !== null) {
    if (!isObj(block.queryParams)) fail(`${where}.queryParams must be a map`);
    for (const [name, raw] of Object.entries(block.queryParams)) {
      const m = compileStringMatch(raw, `${where}.queryParams.${name}`);
      const value = req.query?.get(name);
      if (value === undefined) return false;
      if (m.kind !== 'present' && !stringMatches(m, value)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/** A VirtualService `Destination` (host, subset, port). */
function destinationOf(d: unknown, where: string): RouteDestination {
  if (!isObj(d)) fail(`${where} is missing`);
  if (typeof d.host !== 'string' || d.host === '') fail(`${where}.host is missing`);
  const out: RouteDestination = { host: d.host };
  if (typeof d.subset === 'string' && d.subset !== '') out.subset = d.subset;
  if (d.port !== undefined && d.port !== null) {
    if (!isObj(d.port) || typeof d.port.number !== 'number') fail(`${where}.port must be {number}`);
    out.port = d.port.number;
  }
  return out;
}

/** A `Percent` (`{value}`) or the deprecated integer `mirrorPercent`, in percent; undefined when absent. */
function percentOf(raw: unknown, where: string): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const value = isObj(raw) ? raw.value : raw;
  if (typeof value !== 'number' || value < 0 || value > 100) fail(`${where} must be a percentage in [0, 100]`);
  return value;
}

/** The mirror policies istiod writes for a route: `mirror`, then each of `mirrors`; 0% writes none. [istio-route] */
function mirrorsOf(route: Obj, where: string): RouteMirror[] {
  const hasMirror = route.mirror !== undefined && route.mirror !== null;
  const list = route.mirrors;
  if (list !== undefined && list !== null && !Array.isArray(list)) fail(`${where}.mirrors must be a list`);
  if (hasMirror && Array.isArray(list) && list.length > 0) fail(`${where} has both mirror and mirrors, which Istio refuses`);
  const out: RouteMirror[] = [];
  const add = (destination: RouteDestination, percentage: number | undefined) => {
    if (percentage === 0) return;
    out.push({ ...destination, percentage: percentage ?? 100 });
  };
  if (hasMirror) add(destinationOf(route.mirror, `${where}.mirror`), percentOf(route.mirrorPercentage, `${where}.mirrorPercentage`) ?? percentOf(route.mirrorPercent, `${where}.mirrorPercent`));
  for (const [i, m] of (Array.isArray(list) ? list : []).entries()) {
    if (!isObj(m)) fail(`${where}.mirrors[${i}] must be an object`);
    add(destinationOf(m.destination, `${where}.mirrors[${i}].destination`), percentOf(m.percentage, `${where}.mirrors[${i}].percentage`));
  }
  return out;
}

function destinationsOf(route: Obj, where: string): RouteDestination[] {
  const list = route.route;
  if (!Array.isArray(list) || list.length === 0) fail(`${where}.route must be a non-empty list`);
  return list.map((entry, i) => {
    if (!isObj(entry) || !isObj(entry.destination)) fail(`${where}.route[${i}].destination is missing`);
    const out = destinationOf(entry.destination, `${where}.route[${i}].destination`);
    if (entry.weight !== undefined && entry.weight !== null) {
      if (typeof entry.weight !== 'number' || entry.weight < 0) fail(`${where}.route[${i}].weight must be a non-negative number`);
      out.weight = entry.weight;
    }
    return out;
  });
}

/**
 * The `spec.gateways` of a VS resolved as istiod does (omitted/empty means `mesh`), by the
 * planner's own resolution, after checking the shape the planner tolerates. [istio-vs]
 */
export function virtualServiceGateways(vs: unknown): string[] {
  if (!isObj(vs) || !isObj(vs.spec)) fail('VirtualService has no spec');
  const gateways = vs.spec.gateways;
  if (gateways !== undefined && gateways !== null && !Array.isArray(gateways)) fail('spec.gateways must be a list');
  if (Array.isArray(gateways) && gateways.some((g) => typeof g !== 'string')) fail('spec.gateways must be strings');
  const metadata = isObj(vs.metadata) ? vs.metadata : {};
  const namespace = namespaceOf(vs);
  return plannedGateways({ ...(vs as unknown as KubeObject), metadata: { ...metadata, name: String(metadata.name ?? ''), namespace } });
}

function namespaceOf(vs: unknown): string {
  const meta = isObj(vs) && isObj(vs.metadata) ? vs.metadata : undefined;
  return typeof meta?.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default';
}

/**
 * The HTTP route of `vs` that a proxy takes for `request`, exactly as istiod+Envoy would decide,
 * or `undefined` when no route matches (Envoy answers 404 NR).
 *
 * Throws when the VS does not apply to `request.gateway` (the proxy would then use its default
 * route for the host, not this VS), when the VS has no HTTP routes, or on anything not modelled.
 */
export function evaluateRoute(vs: unknown, request: RouteRequest): RouteDecision | undefined {
  if (!isObj(vs) || !isObj(vs.spec)) fail('VirtualService has no spec');
  const ns = namespaceOf(vs);
  const req = normalizeRequest(request);
  if (!virtualServiceGateways(vs).includes(resolveGateway(req.gateway, ns))) {
    fail(`VirtualService does not apply to gateway ${req.gateway}; the proxy would use its default route`);
  }
  const http = vs.spec.http;
  if (!Array.isArray(http) || http.length === 0) {
    fail('VirtualService has no spec.http routes; istiod would not use it for HTTP');
  }
  for (const [routeIndex, route] of http.entries()) {
    const where = `spec.http[${routeIndex}]`;
    if (!isObj(route)) fail(`${where} must be an object`);
    if (route.delegate !== undefined) fail(`${where}.delegate is not modelled`);
    const match = route.match;
    let matchIndex: number | undefined;
    if (match === undefined || match === null || (Array.isArray(match) && match.length === 0)) {
      matchIndex = undefined; // catch-all
    } else {
      if (!Array.isArray(match)) fail(`${where}.match must be a list`);
      const hit = match.findIndex((block, i) => blockMatches(block, req, ns, `${where}.match[${i}]`));
      if (hit === -1) continue;
      matchIndex = hit;
    }
    const routeName = typeof route.name === 'string' ? route.name : undefined;
    return { routeIndex, routeName, matchIndex, ...routeAction(route, where), route };
  }
  return undefined;
}

/**
 * What an HTTP route does, `where` naming it in errors: forward to its destinations (with its
 * mirror policies), `redirect` or `directResponse` (no destinations, no mirrors).
 */
export function routeAction(route: Obj, where: string): Pick<RouteDecision, 'action' | 'destinations' | 'mirrors'> {
  if (route.redirect !== undefined && route.redirect !== null) return { action: 'redirect', destinations: [], mirrors: [] };
  if (route.directResponse !== undefined && route.directResponse !== null) return { action: 'directResponse', destinations: [], mirrors: [] };
  return { action: 'route', destinations: destinationsOf(route, where), mirrors: mirrorsOf(route, where) };
}

/**
 * The share of requests (percent) each destination gets, in order: one destination takes all
 * whatever its weight; with several, each gets weight / total of the weights, weight-0 (or
 * unset) destinations none. [istio-route]
 */
export function destinationShares(destinations: readonly RouteDestination[]): number[] {
  if (destinations.length === 1) return [100];
  const total = destinations.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  return destinations.map((d) => (total === 0 ? 0 : ((d.weight ?? 0) * 100) / total));
}

/**
 * The destination Envoy forwards to, given a deterministic random number.
 *
 * One destination takes everything whatever its weight; with several, weight-0 (or unset)
 * destinations are dropped [istio-route], and Envoy picks the weighted cluster whose cumulative
 * range holds `random % totalWeight` (Envoy `WeightedClusterEntry` selection).
 *
 * `random` is either Envoy's uniform random integer (any non-negative safe integer; reduced
 * modulo the total weight) or a fraction in [0, 1) (scaled to the total weight).
 */
export function pickDestination(destinations: readonly RouteDestination[], random: number): RouteDestination {
  if (destinations.length === 0) fail('no destinations to pick from');
  if (destinations.length === 1) return destinations[0] as RouteDestination;
  const weighted = destinations.filter((d) => (d.weight ?? 0) > 0);
  const total = weighted.reduce((sum, d) => sum + (d.weight ?? 0), 0);
  if (total === 0) fail('all weighted destinations have weight 0');
  let point: number;
  if (Number.isSafeInteger(random) && random >= 0) point = random % total;
  else if (random > 0 && random < 1) point = Math.floor(random * total);
  else return fail(`random must be a non-negative integer or a fraction in [0, 1), got ${random}`);
  let end = 0;
  for (const d of weighted) {
    end += d.weight ?? 0;
    if (point < end) return d;
  }
  return fail('unreachable: weights do not cover the random point');
}

// ---------------------------------------------------------------------------------------------
// Delegates and VirtualService visibility
//
// [istio-delegate] istio/istio pilot/pkg/model/virtualservice_controller.go `mergeVirtualServices`
//   and virtualservice.go `MergeHTTPRoutes`: a VirtualService without hosts is a delegate; each
//   root route with `delegate: {name, namespace (default: the root's)}` is replaced, in place, by
//   the delegate's routes, each merged with the root route (`mergeHTTPRoute`): match blocks merged
//   pairwise (`mergeHTTPMatchRequests`: every delegate block must merge with some root block, else
//   the delegate route is dropped; `hasConflict`, `stringMatchConflict`), unset fields taken from
//   the root route. A delegate that is missing or not exported to the root's namespace drops the
//   root route.
// [istio-visibility] push_context.go `initVirtualServices` / `VirtualServicesForGateway` and
//   virtualservice.go `SelectVirtualServices`: a proxy of namespace N sees the VirtualServices of
//   N exported to N, then the ones of other namespaces exported to N, then the public ones (no
//   exportTo under Istio's default, or `*`), each group ordered by creation time, name, namespace
//   (config.go `configCompareByCreationTime`); for one host the first one wins (httproute.go
//   `buildVirtualHost` drops later virtual hosts of the same name).
// ---------------------------------------------------------------------------------------------

type MatchObj = Record<string, unknown>;

function stringMatchConflict(root: unknown, leaf: unknown): boolean {
  if (root === undefined || root === null || leaf === undefined || leaf === null) return false;
  const r = root as { exact?: string; prefix?: string; regex?: string };
  const l = leaf as { exact?: string; prefix?: string; regex?: string };
  if (r.regex && (l.regex || l.prefix || l.exact)) return true;
  if (l.regex && (r.regex || r.prefix || r.exact)) return true;
  if (r.exact) return l.prefix ? true : l.exact !== r.exact;
  if (r.prefix) {
    if (l.prefix) return !l.prefix.startsWith(r.prefix);
    if (l.exact) return !l.exact.startsWith(r.prefix);
  }
  return true;
}

function matchConflict(root: MatchObj, leaf: MatchObj): boolean {
  for (const field of ['uri', 'scheme', 'method', 'authority']) if (stringMatchConflict(root[field], leaf[field])) return true;
  for (const field of ['headers', 'withoutHeaders', 'queryParams']) {
    const rootMap = (root[field] ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries((leaf[field] ?? {}) as Record<string, unknown>)) if (stringMatchConflict(rootMap[k], v)) return true;
  }
  if (Boolean(root.ignoreUriCase) !== Boolean(leaf.ignoreUriCase)) return true;
  if (typeof root.port === 'number' && typeof leaf.port === 'number' && root.port !== leaf.port) return true;
  if (typeof root.sourceNamespace === 'string' && root.sourceNamespace !== '' && leaf.sourceNamespace !== root.sourceNamespace) return true;
  const rootLabels = (root.sourceLabels ?? {}) as Record<string, string>;
  for (const [k, v] of Object.entries((leaf.sourceLabels ?? {}) as Record<string, string>)) if (k in rootLabels && rootLabels[k] !== v) return true;
  const rootGateways = (root.gateways ?? []) as string[];
  const leafGateways = (leaf.gateways ?? []) as string[];
  if (rootGateways.length > 0 && leafGateways.length > 0 && leafGateways.some((g) => !rootGateways.includes(g))) return true;
  return false;
}

function mergeMatch(root: MatchObj, leaf: MatchObj): MatchObj {
  const out: MatchObj = { ...leaf };
  for (const field of ['uri', 'scheme', 'method', 'authority', 'port', 'sourceNamespace']) if (out[field] === undefined) out[field] = root[field];
  for (const field of ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels']) {
    if (root[field] !== undefined || leaf[field] !== undefined) out[field] = { ...((root[field] ?? {}) as object), ...((leaf[field] ?? {}) as object) };
  }
  if (!Array.isArray(out.gateways) || out.gateways.length === 0) out.gateways = root.gateways;
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out;
}

/** A root route merged with one delegate route, or undefined on a match conflict. [istio-delegate] */
function mergeDelegateRoute(root: Obj, leaf: Obj): Obj | undefined {
  const rootMatch = (root.match ?? []) as MatchObj[];
  const leafMatch = (leaf.match ?? []) as MatchObj[];
  let match: MatchObj[];
  if (rootMatch.length === 0) match = leafMatch;
  else if (leafMatch.length === 0) match = rootMatch;
  else {
    match = [];
    for (const sub of leafMatch) {
      const merged = rootMatch.filter((r) => !matchConflict(r, sub)).map((r) => mergeMatch(r, sub));
      if (merged.length === 0) return undefined;
      match.push(...merged);
    }
  }
  const out: Obj = { ...structuredClone(leaf), ...(match.length > 0 ? { match } : {}) };
  if (match.length === 0) delete out.match;
  if (typeof root.name === 'string' && root.name !== '') out.name = typeof leaf.name === 'string' && leaf.name !== '' ? `${root.name}-${leaf.name}` : root.name;
  for (const field of ['rewrite', 'directResponse', 'timeout', 'retries', 'fault', 'mirror', 'mirrorPercent', 'mirrorPercentage', 'corsPolicy', 'mirrors', 'headers']) {
    if (out[field] === undefined && root[field] !== undefined) out[field] = structuredClone(root[field]);
  }
  return out;
}

function exportToOf(vs: Obj): string[] {
  const spec = vs.spec as Obj;
  return Array.isArray(spec.exportTo) && spec.exportTo.length > 0 ? (spec.exportTo as string[]).map((e) => (e === '.' ? namespaceOf(vs) : e)) : ['*'];
}

/**
 * The root VirtualService as istiod merges it with its delegates (`delegates`: every VirtualService
 * without hosts that may be named). [istio-delegate]
 */
export function mergeDelegates(root: unknown, delegates: readonly unknown[]): Obj {
  if (!isObj(root) || !isObj(root.spec)) fail('VirtualService has no spec');
  const rootNs = namespaceOf(root);
  const http: Obj[] = [];
  for (const route of (root.spec.http ?? []) as Obj[]) {
    const delegate = route.delegate as { name?: string; namespace?: string } | undefined;
    if (delegate === undefined) {
      http.push(route);
      continue;
    }
    const ns = delegate.namespace || rootNs;
    const found = delegates.find((d) => isObj(d) && isObj(d.metadata) && d.metadata.name === delegate.name && namespaceOf(d) === ns) as Obj | undefined;
    if (found === undefined) continue;
    const exportTo = exportToOf(found);
    if (!exportTo.includes('*') && !exportTo.includes(rootNs)) continue;
    const { delegate: _d, ...rootRoute } = route;
    for (const leaf of ((found.spec as Obj).http ?? []) as Obj[]) {
      const merged = mergeDelegateRoute(rootRoute, leaf);
      if (merged !== undefined) http.push(merged);
    }
  }
  return { ...root, spec: { ...root.spec, http } };
}

/** Whether a VirtualService host (FQDN, or a wildcard `*` / `*.suffix`) covers `host`. */
function hostCovers(vsHost: string, host: string): boolean {
  if (vsHost === '*') return true;
  if (vsHost.startsWith('*.')) return host.endsWith(vsHost.slice(1));
  return vsHost === host;
}

/**
 * The VirtualService a proxy of `proxyNamespace` (at `gateway`, default `mesh`) uses for `host`
 * (an FQDN), among `virtualServices` (hosts as FQDNs or short names of their namespace), or
 * undefined when none is visible. A VirtualService naming the host exactly wins over one naming
 * it by a wildcard (`*`, `*.example.com`; Envoy picks the exact virtual-host domain first).
 * Within the visibility groups the oldest wins (`metadata.creationTimestamp`; objects without
 * one, as read from files, count as equally old), then name, then namespace. [istio-visibility]
 */
export function visibleVirtualService(virtualServices: readonly unknown[], host: string, proxyNamespace: string, gateway = 'mesh'): Obj | undefined {
  const fqdn = (h: string, ns: string) => (h.includes('.') || h === '*' ? h : `${h}.${ns}.svc.cluster.local`);
  const hostsOf = (vs: Obj) => (vs.spec as { hosts: string[] }).hosts.map((h) => fqdn(h, namespaceOf(vs)));
  const applies = (vs: Obj) =>
    isObj(vs.spec) && Array.isArray(vs.spec.hosts) && virtualServiceGateways(vs).includes(gateway === 'mesh' ? 'mesh' : resolveGateway(gateway, proxyNamespace));
  const all = (virtualServices as Obj[]).filter(applies);
  const exact = all.filter((vs) => hostsOf(vs).includes(host));
  const candidates = exact.length > 0 ? exact : all.filter((vs) => hostsOf(vs).some((h) => hostCovers(h, host)));
  const created = (vs: Obj) => {
    const at = (vs.metadata as Obj | undefined)?.creationTimestamp;
    return at === undefined || at === null ? 0 : new Date(at as string).getTime();
  };
  const order = (a: Obj, b: Obj) =>
    created(a) - created(b) || String((a.metadata as Obj).name).localeCompare(String((b.metadata as Obj).name)) || namespaceOf(a).localeCompare(namespaceOf(b));
  // `*` makes a VirtualService public whatever else is listed; otherwise `~` hides it.
  const scoped = (vs: Obj) => !exportToOf(vs).includes('*') && !exportToOf(vs).includes('~') && exportToOf(vs).includes(proxyNamespace);
  const local = candidates.filter((vs) => scoped(vs) && namespaceOf(vs) === proxyNamespace).sort(order);
  const exported = candidates.filter((vs) => scoped(vs) && namespaceOf(vs) !== proxyNamespace).sort(order);
  const publicOnes = candidates.filter((vs) => exportToOf(vs).includes('*')).sort(order);
  return [...local, ...exported, ...publicOnes][0];
}

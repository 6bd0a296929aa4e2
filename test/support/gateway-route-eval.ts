/**
 * A test oracle for Gateway API mesh routing (GAMMA): given the HTTPRoutes attached to one Service
 * (plain objects, as parsed from YAML) and a request to that Service, decide which rule takes it.
 *
 * Sources (sigs.k8s.io/gateway-api v1.6.0, apis/v1/httproute_types.go):
 * [gw-prec] HTTPRouteRule.Matches: "Proxy or Load Balancer routing configuration generated from
 *   HTTPRoutes MUST prioritize matches based on the following criteria, continuing on ties. Across
 *   all rules specified on applicable Routes, precedence must be given to the match having:
 *   'Exact' path match. 'Prefix' path match with largest number of characters. Method match.
 *   Largest number of header matches. Largest number of query param matches. Note: The precedence
 *   of RegularExpression path matches are implementation-specific. If ties still exist across
 *   multiple Routes, matching precedence MUST be determined in order of the following criteria,
 *   continuing on ties: The oldest Route based on creation timestamp. The Route appearing first in
 *   alphabetical order by '{namespace}/{name}'. If ties still exist within an HTTPRoute, matching
 *   precedence MUST be granted to the FIRST matching rule (in list order) with a match meeting the
 *   above criteria." No rule matching: HTTP 404.
 * [gw-match] A rule without matches matches as PathPrefix "/" (the CRD default); a match without a
 *   path has the default PathPrefix "/". PathPrefix matches on path elements ("/abc" matches
 *   "/abc", "/abc/" and "/abc/def", not "/abcd"); header names are case-insensitive; header and
 *   query matches default to Exact; all conditions of one match are ANDed, matches are ORed.
 * [istio-sort] For the implementation-specific part istiod's order is taken
 *   (pilot/pkg/config/kube/gateway conversion.go `sortHTTPRoutes`, a stable sort of routes already
 *   ordered by creation time): Exact > Prefix > RegularExpression paths, then the longer path value,
 *   then method, header count, query count. A RegularExpression path or header value must match the
 *   whole value (RE2 FullMatch, Envoy `safe_regex`); a header sent several times is matched as its
 *   values joined with ','.
 * Anything else (filters that redirect, other parent kinds) is not evaluated: the decision returns
 * the rule, the caller compares what it does.
 */
import { joinedHeader, re2FullMatch, type RouteRequest } from '../../src/routing/evaluate.js';

type Obj = Record<string, unknown>;

export interface GatewayRequest {
  readonly path: string;
  readonly method: string;
  readonly headers: RouteRequest['headers'];
  readonly query?: Readonly<Record<string, string>>;
}

export interface GatewayDecision {
  /** `<namespace>/<name>` of the route whose rule took the request. */
  readonly route: string;
  readonly ruleIndex: number;
  readonly rule: Obj;
}

const list = (value: unknown): Obj[] => (Array.isArray(value) ? (value as Obj[]) : []);

function pathMatches(path: Obj, request: string): boolean {
  const type = (path['type'] as string | undefined) ?? 'PathPrefix';
  const value = (path['value'] as string | undefined) ?? '/';
  if (type === 'Exact') return request === value;
  if (type === 'RegularExpression') return re2FullMatch(value, request);
  if (type !== 'PathPrefix') throw new Error(`gateway-route-eval: path type ${type}`);
  const prefix = value.endsWith('/') && value !== '/' ? value.slice(0, -1) : value;
  return prefix === '/' || request === prefix || request.startsWith(`${prefix}/`);
}

function valueMatches(match: Obj, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  const type = (match['type'] as string | undefined) ?? 'Exact';
  if (type === 'Exact') return actual === match['value'];
  if (type === 'RegularExpression') return re2FullMatch(match['value'] as string, actual);
  throw new Error(`gateway-route-eval: match type ${type}`);
}

export function matchMatches(match: Obj, request: GatewayRequest): boolean {
  if (!pathMatches((match['path'] as Obj | undefined) ?? {}, request.path)) return false;
  if (match['method'] !== undefined && match['method'] !== request.method) return false;
  if (!list(match['headers']).every((h) => valueMatches(h, joinedHeader(request.headers, h['name'] as string)))) return false;
  return list(match['queryParams']).every((q) => valueMatches(q, request.query?.[q['name'] as string]));
}

/** [istio-sort] rank of a match: higher wins, compared element by element. */
function rank(match: Obj): number[] {
  const path = (match['path'] as Obj | undefined) ?? {};
  const type = (path['type'] as string | undefined) ?? 'PathPrefix';
  const value = (path['value'] as string | undefined) ?? '/';
  return [type === 'Exact' ? 3 : type === 'PathPrefix' ? 2 : 1, value.length, match['method'] !== undefined ? 1 : 0, list(match['headers']).length, list(match['queryParams']).length];
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return b[i]! - a[i]!;
  return 0;
}

/**
 * The rule that takes `request` among `routes` (all attached to the Service it is sent to), or
 * undefined (404). [gw-prec]
 */
export function evaluateGatewayRoutes(routes: readonly Obj[], request: GatewayRequest): GatewayDecision | undefined {
  type Candidate = { rank: number[]; created: string; id: string; ruleIndex: number; rule: Obj };
  let best: Candidate | undefined;
  for (const route of routes) {
    const metadata = route['metadata'] as Obj;
    const id = `${String(metadata['namespace'] ?? 'default')}/${String(metadata['name'])}`;
    const created = typeof metadata['creationTimestamp'] === 'string' ? metadata['creationTimestamp'] : '';
    list((route['spec'] as Obj)['rules']).forEach((rule, ruleIndex) => {
      const matches = list(rule['matches']);
      for (const match of matches.length > 0 ? matches : [{}]) {
        if (!matchMatches(match, request)) continue;
        const candidate = { rank: rank(match), created, id, ruleIndex, rule };
        if (best === undefined || before(candidate, best)) best = candidate;
      }
    });
  }
  return best === undefined ? undefined : { route: best.id, ruleIndex: best.ruleIndex, rule: best.rule };

  function before(a: Candidate, b: Candidate): boolean {
    return (compareRank(a.rank, b.rank) || a.created.localeCompare(b.created) || a.id.localeCompare(b.id) || a.ruleIndex - b.ruleIndex) < 0;
  }
}

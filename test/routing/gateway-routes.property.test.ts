/**
 * The routing promise in the gatewayAPI mode, through the planner's real output: for random user
 * HTTPRoutes attached to Service `web` (1-3 routes with random creation times, ties included; 1-4
 * rules each with 0-2 matches over path types, methods, header and query matches; weighted
 * backendRefs to web-v1, web-v2 and api; timeouts), plan() derives routes for sandbox `a` (forks
 * web-v2: Services web and web-v2) and sandbox `b` (forks api: its copies sit on web because the
 * user routes send to api). Evaluating every route attached to web with the Gateway API precedence
 * (test/support/gateway-route-eval.ts), for random requests:
 *  - without a key, with another sandbox's key, or with the key only in tracestate and no baggage
 *    header (Gateway API has no absent-header match: a documented limit), the request takes exactly
 *    the user rule it took without meshfork's routes (or still gets 404);
 *  - with sandbox s's key (in baggage, or in tracestate next to a baggage without a key member),
 *    it takes the copy of that user rule in s's derived route: the same rule with each backend and
 *    mirror on a Service s forks replaced by its fork Service.
 * Derived routes get random creation times too: the promise must not depend on them.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { evaluateGatewayRoutes, type GatewayRequest } from '../support/gateway-route-eval.js';

const NS = 'shop';
const KEYS = { a: 'alpha001', b: 'bravo002' } as const;
/** Fork Services of each sandbox, by baseline Service. */
const FORKS: Record<keyof typeof KEYS, Record<string, string>> = { a: { web: 'web-a', 'web-v2': 'web-v2-a' }, b: { api: 'api-b' } };
const TIMES = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z'];

function deployment(name: string, labels: Record<string, string>): KubeObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS }, spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: `${name}:1` }] } } } };
}
function service(name: string, selector: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { selector, ports: [{ name: 'http', port: 8080 }] } };
}
const BASELINE = [
  deployment('web-v1', { app: 'web', version: 'v1' }),
  deployment('web-v2', { app: 'web', version: 'v2' }),
  deployment('api', { app: 'api' }),
  service('web', { app: 'web' }),
  service('web-v1', { app: 'web', version: 'v1' }),
  service('web-v2', { app: 'web', version: 'v2' }),
  service('api', { app: 'api' }),
];
const sandbox = (name: keyof typeof KEYS, fork: string): SandboxObject => ({
  apiVersion: 'meshfork.dev/v1alpha1',
  kind: 'Sandbox',
  metadata: { name, namespace: NS },
  spec: { routingKey: KEYS[name], forks: [{ forkOf: { kind: 'Deployment', name: fork } }] },
});

const pathArb = fc.oneof(
  fc.constant(undefined),
  fc.record({ type: fc.constantFrom('Exact', 'PathPrefix'), value: fc.constantFrom('/', '/a', '/a/b', '/b') }),
  fc.constant({ type: 'RegularExpression', value: '/a.*' }),
);
const headersArb = fc
  .tuple(
    fc.constantFrom(undefined, { name: 'x-a', value: '1' }, { name: 'x-a', type: 'RegularExpression', value: '[12]' }),
    fc.constantFrom(undefined, { name: 'X-B', value: '1' }),
  )
  .map((hs) => hs.filter((h) => h !== undefined));
const matchArb = fc.record({ path: pathArb, method: fc.constantFrom(undefined, 'GET', 'POST'), headers: headersArb, queryParams: fc.constantFrom([], [{ name: 'q', value: '1' }]) }).map((m) => {
  const out: Record<string, unknown> = {};
  if (m.path !== undefined) out['path'] = m.path;
  if (m.method !== undefined) out['method'] = m.method;
  if (m.headers.length > 0) out['headers'] = m.headers;
  if (m.queryParams.length > 0) out['queryParams'] = m.queryParams;
  return out;
});
const backendsArb = fc.uniqueArray(fc.record({ name: fc.constantFrom('web-v1', 'web-v2', 'api'), weight: fc.integer({ min: 1, max: 5 }) }), { minLength: 1, maxLength: 2, selector: (b) => b.name });
const ruleArb = fc.record({
  matches: fc.array(matchArb, { maxLength: 2 }),
  backendRefs: backendsArb,
  timeout: fc.constantFrom(undefined, '3s'),
  mirror: fc.constantFrom(undefined, 'web-v2', 'api'),
}).map((r) => ({
  ...(r.matches.length > 0 ? { matches: r.matches } : {}),
  ...(r.mirror !== undefined ? { filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: r.mirror, port: 8080 } } }] } : {}),
  backendRefs: r.backendRefs.map((b) => ({ name: b.name, port: 8080, weight: b.weight })),
  ...(r.timeout !== undefined ? { timeouts: { request: r.timeout } } : {}),
}));
const routesArb = fc.uniqueArray(fc.record({ name: fc.constantFrom('r-a', 'r-b', 'r-c'), created: fc.constantFrom(...TIMES), rules: fc.array(ruleArb, { minLength: 1, maxLength: 4 }) }), { minLength: 1, maxLength: 3, selector: (r) => r.name }).map((routes) =>
  routes.map(
    (r): KubeObject => ({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: r.name, namespace: NS, creationTimestamp: r.created },
      spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 8080 }], rules: r.rules },
    }),
  ),
);

type KeyCase = 'none' | 'a' | 'b' | 'foreign' | 'a-tracestate' | 'a-tracestate-only';
const requestArb = fc.record({
  path: fc.constantFrom('/', '/a', '/a/b', '/ab', '/b', '/c'),
  method: fc.constantFrom('GET', 'POST'),
  xa: fc.constantFrom(undefined, '1', '2'),
  xb: fc.constantFrom(undefined, '1'),
  q: fc.constantFrom(undefined, '1'),
  key: fc.constantFrom<KeyCase>('none', 'a', 'b', 'foreign', 'a-tracestate', 'a-tracestate-only'),
  other: fc.constantFrom('', 'userid=7,', 'tenant=x;p=1, '),
});

function request(r: { path: string; method: string; xa?: string; xb?: string; q?: string; key: KeyCase; other: string }): GatewayRequest {
  const headers: Record<string, string> = {};
  if (r.xa !== undefined) headers['x-a'] = r.xa;
  if (r.xb !== undefined) headers['x-b'] = r.xb;
  const member = (key: string) => `meshfork-routing-key=${key}`;
  if (r.key === 'a' || r.key === 'b') headers['baggage'] = `${r.other}${member(KEYS[r.key])}`;
  if (r.key === 'foreign') headers['baggage'] = `${r.other}${member('zulu0005')}`;
  if (r.key === 'a-tracestate') {
    headers['baggage'] = `${r.other}userid=7`;
    headers['tracestate'] = `vendor=1,${member(KEYS.a)}`;
  }
  if (r.key === 'a-tracestate-only') headers['tracestate'] = member(KEYS.a);
  return { path: r.path, method: r.method, headers, ...(r.q !== undefined ? { query: { q: r.q } } : {}) };
}

/** What a rule does, with each Service reference mapped: the rule without its matches and name. */
function effect(rule: Record<string, unknown>, forks: Record<string, string>): unknown {
  const { matches: _m, name: _n, ...rest } = structuredClone(rule);
  const map = (ref: Record<string, unknown>) => ({ ...ref, name: forks[ref['name'] as string] ?? ref['name'] });
  return {
    ...rest,
    backendRefs: ((rest['backendRefs'] as Array<Record<string, unknown>>) ?? []).map(map),
    ...(rest['filters'] ? { filters: (rest['filters'] as Array<Record<string, unknown>>).map((f) => (f['requestMirror'] ? { ...f, requestMirror: { backendRef: map((f['requestMirror'] as { backendRef: Record<string, unknown> }).backendRef) } } : f)) } : {}),
  };
}

describe('derived Gateway API routes keep the routing promise', () => {
  it('unkeyed requests keep their rule; keyed ones take the copy of it with forked Services replaced', () => {
    fc.assert(
      fc.property(routesArb, fc.array(fc.constantFrom(...TIMES, '2025-12-01T00:00:00Z', '2026-04-01T00:00:00Z'), { minLength: 4, maxLength: 4 }), fc.array(requestArb, { minLength: 8, maxLength: 8 }), (userRoutes, derivedTimes, requests) => {
        const before = structuredClone(userRoutes);
        const result = plan({ inventory: inventoryOf([...BASELINE, ...userRoutes]), sandboxes: [sandbox('a', 'web-v2'), sandbox('b', 'api')] });
        expect(result.problems).toEqual([]);
        expect(userRoutes).toEqual(before);
        const derived = result.objects
          .filter((o) => o.kind === 'HTTPRoute' && (o.spec as { parentRefs: Array<{ name: string }> }).parentRefs[0]!.name === 'web')
          .map((o, i) => ({ ...o, metadata: { ...o.metadata, creationTimestamp: derivedTimes[i % derivedTimes.length] } }));
        // b's copies exist where a user route sends requests (or mirrors) to api.
        const routesToApi = JSON.stringify(userRoutes).includes('"name":"api"');
        expect(derived.map((o) => o.metadata.labels?.['meshfork.dev/sandbox'])).toEqual(routesToApi ? ['a', 'b'] : ['a']);
        const all = [...userRoutes, ...derived];
        for (const r of requests) {
          const req = request(r);
          const user = evaluateGatewayRoutes(userRoutes, req);
          const actual = evaluateGatewayRoutes(all, req);
          const keyed = r.key === 'a' || r.key === 'a-tracestate' ? 'a' : r.key === 'b' ? 'b' : undefined;
          if (keyed === undefined || user === undefined) {
            expect(actual, JSON.stringify(r)).toEqual(user);
            continue;
          }
          const own = derived.find((o) => o.metadata.labels?.['meshfork.dev/sandbox'] === keyed);
          // Without copies (no user route reaches b's fork) the user's rule already goes where it should.
          expect(actual?.route, JSON.stringify(r)).toBe(own === undefined ? user.route : `${NS}/${own.metadata.name}`);
          expect(effect(actual!.rule, {}), JSON.stringify(r)).toEqual(effect(user.rule, FORKS[keyed]));
        }
      }),
      { numRuns: 100 },
    );
  });
});

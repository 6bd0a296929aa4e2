/**
 * Requests carrying several routing keys, or keys that pick no sandbox here, against the routes
 * the planner writes (Bookinfo reviews with Istio's own `end-user: jason` VirtualService, the
 * sandboxes of test/security/inputs/precedence-routes/), evaluated with Envoy's semantics
 * (src/routing/evaluate.ts). One precedence rule (the ingress guard and the SDK apply it too):
 * the LAST baggage member with the key name, else the LAST tracestate member with it, else the
 * first key header sent; a value that is not a key leaves the request untagged, without falling
 * back. A split takes only requests holding no key-name member and no key header at all, so a
 * request keyed for a sandbox that does not fork reviews (`elsewhere`) is never split.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { DEFAULT_ROUTING_KEY_CONFIG, type RoutingKeyConfig } from '../../src/planner/routing-key.js';
import { FIXTURES } from '../support/cli.js';
import { evaluateRoute, pickDestination, type RouteRequest } from '../../src/routing/evaluate.js';
import {
  addOccurrences,
  baggageHeaderArb,
  holdsKeyName,
  plainHeadersArb,
  renderBaggage,
  renderPlain,
  renderTracestate,
  routingKeyOf,
  tracestateHeaderArb,
} from '../routing/carriers.js';

const INPUTS = new URL('./inputs/precedence-routes/', import.meta.url).pathname;
const K = DEFAULT_ROUTING_KEY_CONFIG.keyName;
const WITH_HEADERS: RoutingKeyConfig = { ...DEFAULT_ROUTING_KEY_CONFIG, headers: ['x-meshfork-routing-key'], legacyHeaders: true };
const KEYS = { alpha: 'alpha001', beta: 'bravo002', group: 'group003', abtest: 'split004', elsewhere: 'zulu0005' } as const;
const SANDBOX_OF: Record<string, string> = { alpha001: 'alpha', bravo002: 'beta', group003: 'beta', split004: 'abtest' };
/** The reviews subset whose Deployment each sandbox of inputs/precedence-routes/ forks. */
const FORKED_SUBSET: Record<string, string> = { alpha: 'v1', beta: 'v2', abtest: 'v3' };

function planned(config: RoutingKeyConfig): { reviews: KubeObject; ratings: KubeObject } {
  const input = loadInputs(
    [`${FIXTURES}bookinfo/bookinfo.yaml`, `${FIXTURES}bookinfo/destination-rule-all.yaml`, `${FIXTURES}bookinfo/virtual-service-reviews-test-v2.yaml`, `${INPUTS}sandboxes.yaml`],
    'default',
  );
  expect(input.problems).toEqual([]);
  const result = plan({ inventory: input.inventory, sandboxes: input.sandboxes, routeGroups: input.routeGroups, config: { routing: config } });
  expect(result.problems).toEqual([]);
  const vs = (name: string) => result.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === name) as KubeObject;
  return { reviews: vs('reviews'), ratings: vs('ratings-meshfork') };
}

const PLANS = new Map<RoutingKeyConfig, { reviews: KubeObject; ratings: KubeObject }>();
function vsFor(config: RoutingKeyConfig) {
  let p = PLANS.get(config);
  if (p === undefined) PLANS.set(config, (p = planned(config)));
  return p;
}

/** What reviews does with a request: a sandbox's fork, the split, or the user's own route. */
function outcome(config: RoutingKeyConfig, headers: RouteRequest['headers']): string {
  const d = evaluateRoute(vsFor(config).reviews, { headers });
  if (d === undefined) return 'no route';
  if (d.routeName === undefined) return `user ${JSON.stringify(d.destinations)}`;
  const m = /^meshfork-(.+)-(\d+)$/.exec(d.routeName);
  if (m?.[1] === 'split') return 'split';
  // Subsets survive (ADR 0001): a copy of the jason route (0, subset v2) or the default route (1,
  // subset v1) reaches the sandbox's fork only when the sandbox forks that subset's Deployment.
  const subset = m?.[2] === '0' ? 'v2' : 'v1';
  const forked = FORKED_SUBSET[m?.[1] ?? ''] === subset;
  expect(d.destinations).toEqual([forked ? { host: `reviews-${m?.[1]}.default.svc.cluster.local`, subset } : { host: 'reviews', subset }]);
  return m?.[1] ?? d.routeName;
}
const USER = `user ${JSON.stringify([{ host: 'reviews', subset: 'v1' }])}`;

describe('several routing keys in one request: one precedence rule in the routes', () => {
  const cases: Array<[string, RouteRequest['headers'], string]> = [
    ['no carrier at all', {}, 'split'],
    ['one baggage member', { baggage: `${K}=alpha001` }, 'alpha'],
    ['two members: the last wins', { baggage: `${K}=alpha001,${K}=bravo002` }, 'beta'],
    ['two members, other order', { baggage: `${K}=bravo002, ${K}=alpha001` }, 'alpha'],
    ['two baggage lines: joined in arrival order, the last wins', { baggage: [`${K}=alpha001`, `${K}=group003`] }, 'beta'],
    ['baggage before tracestate', { baggage: `${K}=alpha001`, tracestate: `${K}=bravo002` }, 'alpha'],
    ['tracestate: the last member wins', { baggage: 'foo=1', tracestate: `${K}=bravo002,${K}=alpha001` }, 'alpha'],
    ['tracestate: the last member wins (other order)', { tracestate: `${K}=alpha001,v=1,${K}=bravo002` }, 'beta'],
    ['tracestate: two lines joined in arrival order, the last member wins', { tracestate: [`${K}=bravo002`, `${K}=group003`] }, 'beta'],
    ['tracestate: an invalid last member: untagged, no fallback', { tracestate: `${K}=alpha001,${K}=NOPE` }, USER],
    ['tracestate: a foreign last member is not split', { tracestate: `${K}=alpha001,${K}=zulu0005` }, USER],
    ['tracestate: `k =v` is no member of the key', { tracestate: `${K} =bravo002,${K}=alpha001` }, 'alpha'],
    ['a property is no member', { baggage: `${K}=alpha001;${K}=bravo002` }, 'alpha'],
    ['a value holding the member is no member', { baggage: `foo=${K}=bravo002,${K}=alpha001` }, 'alpha'],
    ['OWS and properties around the deciding member', { baggage: `a=b, ${K} = split004 ;p=1` }, 'abtest'],
    ['a key of a sandbox that does not fork reviews: baseline, never the split', { baggage: `${K}=zulu0005` }, USER],
    ['... in tracestate', { tracestate: `${K}=zulu0005` }, USER],
    ['an invalid last member: untagged, no fallback to the earlier one', { baggage: `${K}=alpha001,${K}=` }, USER],
    ['an upper-case key is no key', { baggage: `${K}=ALPHA001` }, USER],
    ['a percent-encoded value is no key', { baggage: `${K}=alpha%30001` }, USER],
    ['junk after the value', { baggage: `${K}=alpha001 x` }, USER],
    ['an invalid baggage member hides a valid tracestate one', { baggage: `${K}=nope!`, tracestate: `${K}=alpha001` }, USER],
    // Keys compare as raw text: a percent-encoded key name is not the key name. The ingress
    // guard strips such members at the edge; in the mesh they are ordinary baggage.
    ['a percent-encoded key name is no member', { baggage: `meshfork%2Drouting-key=alpha001` }, 'split'],
    ['an empty baggage header holds no member', { baggage: '' }, 'split'],
  ];
  for (const [name, headers, want] of cases) {
    it(name, () => expect(outcome(DEFAULT_ROUTING_KEY_CONFIG, headers)).toBe(want));
  }

  it('the user route still decides which copy: `end-user: jason` with a key goes through the copy of route 0', () => {
    const d = evaluateRoute(vsFor(DEFAULT_ROUTING_KEY_CONFIG).reviews, { headers: { 'end-user': 'jason', baggage: `${K}=bravo002,${K}=alpha001` } });
    expect(d?.routeName).toBe('meshfork-alpha-0');
  });

  it('the split gives abtest exactly its 20% of untagged requests and the rest to the user route', () => {
    const d = evaluateRoute(vsFor(DEFAULT_ROUTING_KEY_CONFIG).reviews, { headers: {} });
    expect(d?.routeName).toBe('meshfork-split-1');
    expect(d?.destinations).toEqual([
      { host: 'reviews', subset: 'v1', weight: 80 },
      { host: 'reviews-abtest.default.svc.cluster.local', weight: 20 },
    ]);
    const hits = Array.from({ length: 100 }, (_, r) => pickDestination(d?.destinations ?? [], r).host).filter((h) => h.startsWith('reviews-abtest')).length;
    expect(hits).toBe(20);
  });

  it('ratings (forked by elsewhere only): other sandboxes\' keys reach its baseline', () => {
    const { ratings } = vsFor(DEFAULT_ROUTING_KEY_CONFIG);
    expect(evaluateRoute(ratings, { headers: { baggage: `${K}=zulu0005,${K}=alpha001` } })?.routeName).toBe('meshfork-baseline');
    expect(evaluateRoute(ratings, { headers: { baggage: `${K}=alpha001,${K}=zulu0005` } })?.routeName).toBe('meshfork-elsewhere-0');
  });

  const headerCases: Array<[string, RouteRequest['headers'], string]> = [
    ['a plain header', { 'x-meshfork-routing-key': 'alpha001' }, 'alpha'],
    ['plain headers in config order, then the legacy ones', { 'uberctx-meshfork-routing-key': 'bravo002', 'x-meshfork-routing-key': 'alpha001' }, 'alpha'],
    ['uberctx before ot-baggage', { 'ot-baggage-meshfork-routing-key': 'alpha001', 'uberctx-meshfork-routing-key': 'bravo002' }, 'beta'],
    ['an invalid first header: untagged, no fallback', { 'x-meshfork-routing-key': 'Nope', 'uberctx-meshfork-routing-key': 'bravo002' }, USER],
    ['an empty key header holds the key name: not split', { 'x-meshfork-routing-key': '' }, USER],
    ['a header sent twice is one joined value, no key', { 'x-meshfork-routing-key': ['alpha001', 'alpha001'] }, USER],
    ['tracestate before any header', { tracestate: `${K}=zulu0005`, 'x-meshfork-routing-key': 'alpha001' }, USER],
    ['baggage before any header', { baggage: `${K}=group003`, 'x-meshfork-routing-key': 'alpha001' }, 'beta'],
    ['a legacy header keyed elsewhere is never split', { 'ot-baggage-meshfork-routing-key': 'zulu0005' }, USER],
  ];
  for (const [name, headers, want] of headerCases) {
    it(`with key headers: ${name}`, () => expect(outcome(WITH_HEADERS, headers)).toBe(want));
  }
});

describe('property: the routes agree with the rule, and the split never takes a request holding the key name', () => {
  const RUNS = 1500;
  const keys = Object.values(KEYS);
  const requestArb = fc.record({
    config: fc.constantFrom(DEFAULT_ROUTING_KEY_CONFIG, WITH_HEADERS),
    key: fc.constantFrom(...keys),
    others: fc.subarray(keys, { minLength: 1, maxLength: 2 }),
    baggage: fc.oneof(baggageHeaderArb.exact, fc.constant([] as never[])),
    tracestate: fc.oneof(tracestateHeaderArb.exact, fc.constant([] as never[])),
    plain: plainHeadersArb.exact,
    casing: fc.nat(2),
  });

  it(`random requests carrying up to three of the keys (${RUNS} runs)`, () => {
    const seen = { sandbox: 0, split: 0, user: 0, elsewhere: 0 };
    fc.assert(
      fc.property(requestArb, (r) => {
        const ctx = { keyName: r.config.keyName, key: r.key, otherKeys: r.others.filter((k) => k !== r.key) };
        const headers: Record<string, string | string[]> = {};
        addOccurrences(headers, 'baggage', renderBaggage(r.baggage, ctx), r.casing);
        addOccurrences(headers, 'tracestate', renderTracestate(r.tracestate, ctx), r.casing);
        for (const [name, vals] of Object.entries(renderPlain(r.plain, r.config, ctx))) addOccurrences(headers, name, vals, r.casing);
        const got = outcome(r.config, headers);
        const key = routingKeyOf(r.config, headers);
        const sandbox = key === undefined ? undefined : SANDBOX_OF[key];
        if (got === 'split') expect(holdsKeyName(r.config, headers), JSON.stringify(headers)).toBe(false);
        expect(got, JSON.stringify(headers)).toBe(sandbox ?? (holdsKeyName(r.config, headers) ? USER : 'split'));
        if (key === KEYS.elsewhere) seen.elsewhere++;
        seen[sandbox !== undefined ? 'sandbox' : got === 'split' ? 'split' : 'user']++;
      }),
      { numRuns: RUNS },
    );
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(RUNS * 0.03);
  });
});

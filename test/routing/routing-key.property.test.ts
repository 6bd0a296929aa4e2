/**
 * Property tests: the routing-key match blocks from src/planner/routing-key.ts, placed in a
 * VirtualService and evaluated the way Envoy does (src/routing/evaluate.ts: RE2 full match,
 * repeated headers joined with ','), choose a sandbox EXACTLY when the request's routing key, by
 * the precedence rule, is its key.
 *
 * The expected answer comes from an independent reference of the rule (./carriers.ts, no regex).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { baggageMemberRegex, noMemberRegex, routingKeyMatchBlocks, tracestateMemberRegex, type RoutingKeyConfig } from '../../src/planner/routing-key.js';
import { evaluateRoute, re2FullMatch, type RouteRequest } from '../../src/routing/evaluate.js';
import {
  addOccurrences,
  anyKeyNameArb,
  baggageHeaderArb,
  baggageMembers,
  BAGGAGE_OCTETS,
  charOf,
  configArb,
  headerNameArb,
  keyNameArb,
  otherKey,
  plainHeadersArb,
  renderBaggage,
  renderPlain,
  renderTracestate,
  routingKeyArb,
  routingKeyOf,
  tracestateHeaderArb,
  tracestateMembers,
  type Ctx,
  type PlainT,
} from './carriers.js';

// ------------------------------------------------------------------------------------------
// Synthetic VirtualService
// ------------------------------------------------------------------------------------------

/** Routes 0..n-1: one per sandbox key (→ `reviews-<i>`); route n: the user's baseline route. */
function syntheticVs(config: RoutingKeyConfig, keys: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews'],
      http: [
        ...keys.map((key, i) => ({
          name: `meshfork-sb${i}`,
          match: routingKeyMatchBlocks(config, [key]).keyed,
          route: [{ destination: { host: `reviews-sb${i}` } }],
        })),
        { name: 'baseline', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    },
  };
}

const RUNS = { baggage: 2000, decoys: 1000, twoKeys: 1000, tracestate: 1000, carriers: 1000, untagged: 500, regex: 2000 };

function routeIndexFor(vs: unknown, headers: RouteRequest['headers']): number | undefined {
  return evaluateRoute(vs, { headers })?.routeIndex;
}

interface Scenario {
  config: RoutingKeyConfig;
  keys: string[];
  headers: Record<string, string | string[]>;
}

/**
 * A request for a VS with sandboxes `keys` (1 or 2 of them). Members are built around keys[0]
 * (the key under test) and may carry the other sandbox's key.
 */
function scenarioArb(opts: { sandboxes: 1 | 2; allowExact: boolean; carriers: 'baggage' | 'tracestate' | 'all' }): fc.Arbitrary<Scenario> {
  const which = opts.allowExact ? 'exact' : 'decoy';
  const none = fc.constant([] as never[]);
  return fc
    .record({
      config: configArb,
      key: routingKeyArb,
      pick: fc.nat(),
      baggage: opts.carriers === 'tracestate' ? none : fc.oneof(baggageHeaderArb[which], none),
      tracestate: opts.carriers === 'baggage' ? none : fc.oneof(tracestateHeaderArb[which], none),
      plain: opts.carriers === 'all' ? plainHeadersArb[which] : fc.constant([] as PlainT),
      casing: fc.nat(2),
    })
    .map(({ config, key, pick, baggage, tracestate, plain, casing }) => {
      const others = opts.sandboxes === 2 ? [otherKey(key, pick)] : [];
      const ctx: Ctx = { keyName: config.keyName, key, otherKeys: others };
      const headers: Record<string, string | string[]> = { 'x-request-id': 'r-1' };
      addOccurrences(headers, 'baggage', renderBaggage(baggage, ctx), casing);
      addOccurrences(headers, 'tracestate', renderTracestate(tracestate, ctx), casing);
      for (const [name, vals] of Object.entries(renderPlain(plain, config, ctx))) addOccurrences(headers, name, vals, casing);
      return { config, keys: [key, ...others], headers };
    });
}

/** The route the reference expects: the sandbox whose key is the request's routing key, else baseline. */
function expectedRoute(s: Scenario): number {
  const key = routingKeyOf(s.config, s.headers);
  const hit = key === undefined ? -1 : s.keys.indexOf(key);
  return hit === -1 ? s.keys.length : hit;
}

/**
 * Seed of the runs that also assert that both outcomes occurred often enough, a
 * property of the sample that a random seed occasionally misses (58 of 60 seen once). Fixed for
 * CI; MESHFORK_FC_SEED explores others.
 */
const SCENARIO_SEED = Number(process.env['MESHFORK_FC_SEED'] ?? 20261130);

/** Runs a scenario property and checks that both outcomes actually occurred often enough. */
function checkScenarios(arb: fc.Arbitrary<Scenario>, numRuns: number, minShare: { sandbox: number; baseline: number }): void {
  let sandbox = 0;
  let baseline = 0;
  fc.assert(
    fc.property(arb, (s) => {
      const vs = syntheticVs(s.config, s.keys);
      const want = expectedRoute(s);
      const got = evaluateRoute(vs, { headers: s.headers });
      expect(got?.routeIndex).toBe(want);
      expect(got?.destinations).toEqual(
        want === s.keys.length ? [{ host: 'reviews', subset: 'v1' }] : [{ host: `reviews-sb${want}` }],
      );
      if (want === s.keys.length) baseline++;
      else sandbox++;
    }),
    { numRuns, seed: SCENARIO_SEED },
  );
  // Guard against a generator that never (or always) produces the key: the property would be vacuous.
  expect(sandbox).toBeGreaterThanOrEqual(Math.floor(numRuns * minShare.sandbox));
  expect(baseline).toBeGreaterThanOrEqual(Math.floor(numRuns * minShare.baseline));
}

describe('routing-key member regexes under RE2 full match', () => {
  it(`baggageMemberRegex matches the joined header exactly when the LAST member with the key name has the key (${RUNS.regex} runs)`, () => {
    const arb = fc
      .tuple(keyNameArb, routingKeyArb, baggageHeaderArb.exact, fc.nat())
      .map(([keyName, key, t, pick]) => ({ keyName, key, values: renderBaggage(t, { keyName, key, otherKeys: [otherKey(key, pick)] }) }));
    let last = 0;
    let notLast = 0;
    fc.assert(
      fc.property(arb, ({ keyName, key, values }) => {
        const members = baggageMembers(values.join(',')).filter(([k]) => k === keyName);
        const expected = members.length > 0 && members[members.length - 1]?.[1] === key;
        expect(re2FullMatch(baggageMemberRegex(keyName, key), values.join(','))).toBe(expected);
        expect(re2FullMatch(noMemberRegex('baggage', keyName), values.join(','))).toBe(members.length === 0);
        if (expected) last++;
        else if (members.some(([, v]) => v === key)) notLast++;
      }),
      { numRuns: RUNS.regex, seed: SCENARIO_SEED },
    );
    // Both outcomes for a request that does hold the key somewhere occurred often enough.
    expect(last).toBeGreaterThan(RUNS.regex * 0.1);
    expect(notLast).toBeGreaterThan(RUNS.regex * 0.05);
  });

  it(`tracestateMemberRegex matches the joined header exactly when the LAST member with the key name has the key (${RUNS.regex} runs)`, () => {
    const arb = fc
      .tuple(keyNameArb, routingKeyArb, tracestateHeaderArb.exact, fc.nat())
      .map(([keyName, key, t, pick]) => ({ keyName, key, values: renderTracestate(t, { keyName, key, otherKeys: [otherKey(key, pick)] }) }));
    let last = 0;
    let notLast = 0;
    fc.assert(
      fc.property(arb, ({ keyName, key, values }) => {
        const members = tracestateMembers(values.join(',')).filter(([k]) => k === keyName);
        const expected = members.at(-1)?.[1] === key;
        expect(re2FullMatch(tracestateMemberRegex(keyName, key), values.join(','))).toBe(expected);
        expect(re2FullMatch(noMemberRegex('tracestate', keyName), values.join(','))).toBe(members.length === 0);
        if (expected) last++;
        else if (members.some(([, v]) => v === key)) notLast++;
      }),
      { numRuns: RUNS.regex, seed: SCENARIO_SEED },
    );
    expect(last).toBeGreaterThan(RUNS.regex * 0.1);
    expect(notLast).toBeGreaterThan(RUNS.regex * 0.05);
  });

  it('the regexes have no top-level alternation and are anchored', () => {
    fc.assert(
      fc.property(keyNameArb, routingKeyArb, (keyName, key) => {
        for (const re of [baggageMemberRegex(keyName, key), tracestateMemberRegex(keyName, key), noMemberRegex('baggage', keyName), noMemberRegex('tracestate', keyName)]) {
          expect(re.startsWith('^') && re.endsWith('$')).toBe(true);
          let depth = 0;
          for (let i = 0; i < re.length; i++) {
            const c = re[i];
            if (c === '\\') i++;
            else if (c === '(') depth++;
            else if (c === ')') depth--;
            else if (c === '|') expect(depth).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('routing-key match blocks in a VirtualService, evaluated as an Istio sidecar does', () => {
  it(`baggage: the sandbox route is taken exactly when the last baggage member with the key name has its key (${RUNS.baggage} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: true, carriers: 'baggage' }), RUNS.baggage, { sandbox: 0.15, baseline: 0.2 });
  });

  it(`baggage/tracestate decoys (prefix, suffix, property, value, near key names) never match (${RUNS.decoys} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: false, carriers: 'all' }), RUNS.decoys, { sandbox: 0, baseline: 1 });
  });

  it(`two sandboxes: key A never routes on baggage for key B, even when B is a prefix/suffix of A (${RUNS.twoKeys} runs)`, () => {
    // keys[0] is the key under test (B's members are generated around it), keys[1] is A.
    // The VS lists A's route FIRST so a regex that confused them would send B's traffic to A.
    const arb = scenarioArb({ sandboxes: 2, allowExact: true, carriers: 'all' }).map((s) => ({ ...s, keys: [s.keys[1] as string, s.keys[0] as string] }));
    let keyB = 0;
    fc.assert(
      fc.property(arb, (s) => {
        const [a, b] = s.keys as [string, string];
        const got = routeIndexFor(syntheticVs(s.config, s.keys), s.headers);
        expect(got).toBe(expectedRoute(s));
        const key = routingKeyOf(s.config, s.headers);
        if (key !== a) expect(got).not.toBe(0);
        if (key === b) keyB++;
      }),
      { numRuns: RUNS.twoKeys, seed: SCENARIO_SEED },
    );
    expect(keyB).toBeGreaterThan(RUNS.twoKeys * 0.1);
  });

  it(`tracestate: the sandbox route is taken exactly when the last tracestate member with the key name has its key and the config accepts it (${RUNS.tracestate} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: true, carriers: 'tracestate' }), RUNS.tracestate, { sandbox: 0.06, baseline: 0.2 });
  });

  it(`all carriers together (baggage, tracestate, plain and legacy headers) (${RUNS.carriers} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 2, allowExact: true, carriers: 'all' }), RUNS.carriers, { sandbox: 0.2, baseline: 0.05 });
  });

  it(`untagged requests always reach the baseline route (${RUNS.untagged} runs)`, () => {
    const untagged = fc.record({
      config: configArb,
      key: routingKeyArb,
      headers: fc.dictionary(
        headerNameArb.filter((h) => !['baggage', 'tracestate'].includes(h) && !h.startsWith('x-')),
        fc.string({ unit: charOf(`${BAGGAGE_OCTETS} ,;`), maxLength: 20 }),
        { maxKeys: 4 },
      ),
      baggage: fc.array(fc.tuple(fc.oneof(anyKeyNameArb, keyNameArb), fc.string({ unit: charOf(BAGGAGE_OCTETS), maxLength: 8 })), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(untagged, ({ config, key, headers, baggage }) => {
        const members = baggage.filter(([k]) => k !== config.keyName).map(([k, v]) => `${k}=${v}`);
        const h: Record<string, string | string[]> = { ...headers };
        if (members.length > 0) h.baggage = members.join(',');
        const got = evaluateRoute(syntheticVs(config, [key]), { headers: h });
        expect(routingKeyOf(config, h)).toBeUndefined();
        expect(got).toMatchObject({ routeIndex: 1, routeName: 'baseline', destinations: [{ host: 'reviews', subset: 'v1' }] });
        expect(evaluateRoute(syntheticVs(config, [key]), { headers: {} })?.routeIndex).toBe(1);
      }),
      { numRuns: RUNS.untagged },
    );
  });
});

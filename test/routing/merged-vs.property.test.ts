/**
 * Property tests over a MERGED VirtualService: Istio's Bookinfo `reviews` VirtualService
 * (shared/fixtures/bookinfo/virtual-service-reviews-test-v2.yaml, used unmodified: `end-user:
 * jason` -> subset v2, everything else -> v1) planned together with one or two sandboxes that fork
 * reviews. Random requests (end-user present/absent/near-miss, baggage/tracestate/plain carriers
 * with or without a key) are evaluated against the ORIGINAL and the MERGED VirtualService with
 * the Envoy-semantics evaluator (src/routing/evaluate.ts):
 *
 *  - the request's routing key (by the precedence rule, ./carriers.ts) is a sandbox's key -> the
 *    merged VS takes the sandbox copy of exactly the user route the original VS picks (so
 *    `end-user: jason` still decides between the copies), which sends it to the sandbox's fork
 *    host and the same subset when the sandbox forks that subset's Deployment (subsets as in
 *    destination-rule-all.yaml), else where the original sends it;
 *  - otherwise -> the merged VS takes the very route the original takes, with the same
 *    destinations, except that a request holding no key-name member or key header at all is
 *    split when sandboxes take a share of untagged traffic.
 *
 * A mirror variant of the fixture (derived here, the file itself untouched) mirrors half of the
 * catch-all route's requests to subset v3: a keyed request is then mirrored to the sandbox's fork
 * of v3 when it forks reviews-v3, else to the baseline v3, and the primary follows the rule above.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { RouteGroupObject, SandboxObject } from '../../src/api/schema.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import { SANDBOX_LABEL, type KubeObject } from '../../src/planner/kube.js';
import { plan, type PlanResult } from '../../src/planner/plan.js';
import { COMPAT_PRESETS, DEFAULT_ROUTING_KEY_CONFIG, type RoutingKeyConfig } from '../../src/planner/routing-key.js';
import { evaluateRoute, pickDestination, type RouteDecision } from '../../src/routing/evaluate.js';
import {
  addOccurrences,
  BAGGAGE_OCTETS,
  baggageHeaderArb,
  charOf,
  holdsKeyName,
  configArb,
  occurrences,
  otherKey,
  plainHeadersArb,
  renderBaggage,
  renderPlain,
  renderTracestate,
  routingKeyArb,
  routingKeyOf,
  tracestateHeaderArb,
  type Ctx,
} from './carriers.js';

const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;

function load(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(FIXTURES + file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && 'kind' in o);
}

const BOOKINFO = [...load('bookinfo/bookinfo.yaml'), ...load('bookinfo/destination-rule-all.yaml')];
const USER_VS_DOCS = load('bookinfo/virtual-service-reviews-test-v2.yaml');
const USER_VS = USER_VS_DOCS[0] as KubeObject;
const USER_VS_TEXT = JSON.stringify(USER_VS);
/** The fixture with its last route also mirroring 50% of its requests to subset v3. */
const MIRRORED_VS: KubeObject = (() => {
  const vs = structuredClone(USER_VS);
  const http = (vs.spec as { http: Array<Record<string, unknown>> }).http;
  http[http.length - 1] = { ...http[http.length - 1], mirror: { host: 'reviews', subset: 'v3' }, mirrorPercentage: { value: 50 } };
  return vs;
})();

const SANDBOX_NAMES = ['alpha', 'pr-42', 's1', 'zeta'] as const;
const REVIEWS = ['reviews-v1', 'reviews-v2', 'reviews-v3'] as const;

interface SandboxSetup {
  name: string;
  forks: string[];
  /** spec.routingKey; derived by the planner when absent. */
  key: string | null;
  /** spec.split.weight; no split when null. */
  split?: number | null;
}
interface Setup {
  config: RoutingKeyConfig;
  sandboxes: SandboxSetup[];
  /** Plan with the user's VirtualService (merge) or without one (meshfork's own VS). @default true */
  userVs?: boolean;
  /** Plan with MIRRORED_VS instead of the fixture. @default false */
  mirror?: boolean;
  /**
   * A RouteGroup (own key or derived) selecting the sandboxes at `members` (indexes) by label;
   * each member's fork then also answers to the group key.
   */
  group?: { key: string | null; members: number[] } | null;
}

const setupArb: fc.Arbitrary<Setup> = fc
  .record({
    config: fc.oneof(fc.constant(DEFAULT_ROUTING_KEY_CONFIG), fc.constant(COMPAT_PRESETS.signadot as RoutingKeyConfig), configArb),
    sandboxes: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom(...SANDBOX_NAMES),
        forks: fc.subarray([...REVIEWS], { minLength: 1 }),
        key: fc.option(routingKeyArb, { freq: 4 }),
      }),
      { minLength: 1, maxLength: 2, selector: (s) => s.name },
    ),
    group: fc.option(fc.record({ key: fc.option(routingKeyArb, { freq: 4 }), members: fc.subarray([0, 1], { minLength: 1 }) }), { freq: 2 }),
    mirror: fc.boolean(),
  })
  .map((s) => ({ ...s, group: s.group === null ? null : { ...s.group, members: s.group.members.filter((i) => i < s.sandboxes.length) } }))
  .filter((s) => {
    // Spec keys must be unique (the planner rejects duplicates), and two members of one group may
    // not fork the same Deployment.
    const keys = [...s.sandboxes.map((x) => x.key), s.group?.key ?? null].filter((k) => k !== null);
    if (new Set(keys).size !== keys.length) return false;
    const memberForks = (s.group?.members ?? []).flatMap((i) => s.sandboxes[i]?.forks ?? []);
    return new Set(memberForks).size === memberForks.length;
  });

interface Planned {
  result: PlanResult;
  merged: KubeObject;
  /** Per sandbox: the routing keys it answers to (its own, then its group's) and its fork host of reviews. */
  sandboxes: Array<{ name: string; keys: string[]; forkHost: string }>;
}

const planCache = new Map<string, Planned>();

function planned(setup: Setup): Planned {
  const cacheKey = JSON.stringify(setup);
  const hit = planCache.get(cacheKey);
  if (hit !== undefined) return hit;
  const sandboxes: SandboxObject[] = setup.sandboxes.map((s, i) => ({
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: s.name, namespace: 'default', ...(setup.group?.members.includes(i) ? { labels: { 'team.example/group': 'g1' } } : {}) },
    spec: {
      forks: s.forks.map((name) => ({ forkOf: { kind: 'Deployment' as const, name } })),
      ...(s.key === null ? {} : { routingKey: s.key }),
      ...(s.split === null || s.split === undefined ? {} : { split: { weight: s.split } }),
    },
  }));
  const inventory = inventoryOf(setup.userVs === false ? BOOKINFO : [...BOOKINFO, setup.mirror === true ? MIRRORED_VS : USER_VS]);
  const routeGroups: RouteGroupObject[] =
    setup.group === null || setup.group === undefined
      ? []
      : [
          {
            apiVersion: 'meshfork.dev/v1alpha1',
            kind: 'RouteGroup',
            metadata: { name: 'g1', namespace: 'default' },
            spec: { match: { label: { key: 'team.example/group', value: 'g1' } }, ...(setup.group.key === null ? {} : { routingKey: setup.group.key }) },
          },
        ];
  const result = plan({ inventory, sandboxes, routeGroups, config: { routing: setup.config } });
  expect(result.problems).toEqual([]);
  const virtualServices = result.objects.filter((o) => o.kind === 'VirtualService');
  expect(virtualServices).toHaveLength(1);
  const merged = virtualServices[0];
  if (merged === undefined) throw new Error(`no VirtualService in ${JSON.stringify(result.objects.map((o) => o.metadata.name))}`);
  expect(merged.metadata.name).toBe(setup.userVs === false ? 'reviews-meshfork' : 'reviews');
  const out: Planned = {
    result,
    merged,
    sandboxes: result.sandboxes.map((s) => {
      const forkService = result.objects.find(
        (o) => o.kind === 'Service' && o.metadata.labels?.[SANDBOX_LABEL] === s.name && o.metadata.labels?.['meshfork.dev/fork-of-service'] === 'reviews',
      );
      if (forkService === undefined) throw new Error(`no fork Service of reviews for sandbox ${s.name}`);
      const groupKeys = result.routeGroupKeys.filter((g) => g.members.includes(s.name)).map((g) => g.routingKey);
      if (setup.group && setup.group.members.some((i) => setup.sandboxes[i]?.name === s.name)) expect(groupKeys).toHaveLength(1);
      return { name: s.name, keys: [s.routingKey, ...groupKeys], forkHost: `${forkService.metadata.name}.${forkService.metadata.namespace ?? 'default'}.svc.cluster.local` };
    }),
  };
  planCache.set(cacheKey, out);
  return out;
}

const none = fc.constant([] as never[]);
const requestArb = fc.record({
  endUser: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.constant('jason' as string | string[]) },
    { weight: 2, arbitrary: fc.constantFrom('Jason', 'jason ', ' jason', 'jasonx', 'jaso', '', 'JASON', 'jason,jason') },
    { weight: 1, arbitrary: fc.constantFrom(['jason', 'jason'], ['jason'], ['', 'jason'], ['jason', '']).map((v): string[] => [...v]) },
    { weight: 1, arbitrary: fc.string({ unit: charOf(BAGGAGE_OCTETS), maxLength: 8 }) },
  ),
  endUserName: fc.constantFrom('end-user', 'End-User', 'END-USER'),
  /** Whose key the carriers are built around: a sandbox's or the group's, or (last) a foreign one. */
  target: fc.nat(),
  pick: fc.nat(),
  baggage: fc.oneof({ weight: 3, arbitrary: baggageHeaderArb.exact }, { weight: 1, arbitrary: none }),
  tracestate: fc.oneof(tracestateHeaderArb.exact, none),
  plain: plainHeadersArb.exact,
  casing: fc.nat(2),
});
type RequestT = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function renderRequest(p: Planned, config: RoutingKeyConfig, r: RequestT): Record<string, string | string[]> {
  const keys = [...new Set(p.sandboxes.flatMap((s) => s.keys))];
  const t = r.target % (keys.length + 1);
  const key = t < keys.length ? (keys[t] as string) : otherKey(keys[0] as string, r.pick);
  const ctx: Ctx = { keyName: config.keyName, key, otherKeys: keys.filter((k) => k !== key) };
  const headers: Record<string, string | string[]> = {};
  if (r.endUser !== undefined) headers[r.endUserName] = r.endUser;
  addOccurrences(headers, 'baggage', renderBaggage(r.baggage, ctx), r.casing);
  addOccurrences(headers, 'tracestate', renderTracestate(r.tracestate, ctx), r.casing);
  for (const [name, vals] of Object.entries(renderPlain(r.plain, config, ctx))) addOccurrences(headers, name, vals, r.casing);
  return headers;
}

const ROUTE_COPY = /^meshfork-(.+)-(\d+)$/;
/** Setups planned per property, and requests tried against each (plan() is the slow part). */
const SETUPS = 250;
const REQUESTS_PER_SETUP = 6;
const RUNS = SETUPS * REQUESTS_PER_SETUP;
const requestsArb = fc.array(requestArb, { minLength: REQUESTS_PER_SETUP, maxLength: REQUESTS_PER_SETUP });

const BASELINE_HOST = 'reviews.default.svc.cluster.local';

type Seen = Record<'keyJason' | 'keyOther' | 'noKeyJason' | 'noKeyOther' | 'twoSandboxes' | 'groupKey' | 'keyNameNoSandbox', number>;
const newSeen = (): Seen => ({ keyJason: 0, keyOther: 0, noKeyJason: 0, noKeyOther: 0, twoSandboxes: 0, groupKey: 0, keyNameNoSandbox: 0 });

/**
 * The routing contract of one request against the planned VirtualService:
 *  - with a sandbox's key as its routing key: that sandbox's fork host, through its copy of
 *    exactly the user route the ORIGINAL VirtualService picks (the user's `end-user` condition
 *    still decides);
 *  - otherwise: exactly the route and destinations of the ORIGINAL VirtualService (with no user
 *    VirtualService: the baseline host, as the sidecar's default route would), or, when the
 *    request holds no key-name member or key header at all and sandboxes split untagged traffic,
 *    the split copy of that route whose weights give each fork its share and the original
 *    destinations the rest.
 */
function checkRequest(setup: Setup, p: Planned, headers: Record<string, string | string[]>, seen: Seen): void {
  const withUserVs = setup.userVs !== false;
  const userVs = setup.mirror === true ? MIRRORED_VS : USER_VS;
  const merged = evaluateRoute(p.merged, { headers });
  expect(merged).toBeDefined();

  // The fixture's own semantics, independently: route 0 iff end-user is exactly "jason"
  // (repeated headers are joined with ',', so two "jason" headers are not "jason").
  const endUser = occurrences(headers, 'end-user');
  const isJason = endUser.length > 0 && endUser.join(',') === 'jason';
  const original = withUserVs
    ? (evaluateRoute(userVs, { headers }) as RouteDecision)
    : // No VirtualService: the sidecar's default route to the host.
      ({ routeIndex: 0, route: undefined, destinations: [{ host: BASELINE_HOST }] } as unknown as RouteDecision);
  if (withUserVs) {
    expect(original.routeIndex).toBe(isJason ? 0 : 1);
    // User routes are all still there, unchanged and in order.
    const http = (p.merged.spec as { http: Array<{ name?: string }> }).http;
    expect(http.filter((route) => !route.name?.startsWith('meshfork-'))).toEqual((userVs.spec as { http: unknown[] }).http);
  }

  const key = routingKeyOf(setup.config, headers);
  const carried = p.sandboxes.filter((s) => key !== undefined && s.keys.includes(key));
  if (carried.length === 0) {
    if (isJason) seen.noKeyJason++;
    else seen.noKeyOther++;
    const splits = setup.sandboxes.filter((s) => (s.split ?? 0) > 0);
    const keyName = holdsKeyName(setup.config, headers);
    if (keyName) seen.keyNameNoSandbox++;
    if (splits.length === 0 || keyName) {
      if (withUserVs) expect(merged?.route).toEqual(original.route);
      expect(merged?.destinations).toEqual(original.destinations);
      return;
    }
    expect(merged?.routeName).toBe(`meshfork-split-${original.routeIndex}`);
    if (withUserVs) expect(merged?.mirrors).toEqual(original.mirrors);
    splitRequests++;
    // Envoy's weighted-cluster pick over every random residue 0..99: exact shares.
    const picks = new Map<string, number>();
    for (let r = 0; r < 100; r++) {
      const d = pickDestination(merged?.destinations ?? [], r);
      const id = JSON.stringify({ host: d.host, subset: d.subset });
      picks.set(id, (picks.get(id) ?? 0) + 1);
    }
    const total = splits.reduce((a, s) => a + (s.split ?? 0), 0);
    const expected = new Map<string, number>();
    for (const s of splits) {
      const forkHost = p.sandboxes.find((x) => x.name === s.name)?.forkHost;
      expected.set(JSON.stringify({ host: forkHost, subset: undefined }), s.split ?? 0);
    }
    if (total < 100) {
      // The fixture's routes (and the default route) have one destination each: it keeps the rest.
      expect(original.destinations).toHaveLength(1);
      const base = original.destinations[0] as { host: string; subset?: string };
      expected.set(JSON.stringify({ host: base.host, subset: base.subset }), 100 - total);
    }
    expect(picks).toEqual(expected);
    return;
  }
  if (isJason) seen.keyJason++;
  else seen.keyOther++;
  if (p.sandboxes.length === 2) seen.twoSandboxes++;
  if (carried.some((s) => s.keys.indexOf(key as string) > 0)) seen.groupKey++;
  const copy = ROUTE_COPY.exec(merged?.routeName ?? '');
  expect(copy, `route taken: ${merged?.routeName}`).not.toBeNull();
  const [, sandbox, userIndex] = copy as unknown as [string, string, string];
  // A group key answers for every member: the first member in route order takes it.
  expect(sandbox).toBe(carried.map((s) => s.name).sort()[0]);
  expect(Number(userIndex)).toBe(original.routeIndex);
  const forkHost = p.sandboxes.find((s) => s.name === sandbox)?.forkHost;
  const forks = setup.sandboxes.find((s) => s.name === sandbox)?.forks ?? [];
  const taken = original.destinations[0] as { host: string; subset?: string };
  expect(original.destinations).toHaveLength(1);
  const expected =
    taken.subset === undefined ? { host: forkHost } : forks.includes(`reviews-${taken.subset}`) ? { host: forkHost, subset: taken.subset } : { host: taken.host, subset: taken.subset };
  expect(merged?.destinations).toEqual([expected]);
  // Mirror targets follow the same rule: the sandbox's fork of a subset it forks, else unchanged.
  const mirrors = (original.mirrors ?? []).map((m) => (m.subset === undefined || forks.includes(`reviews-${m.subset}`) ? { ...m, host: forkHost } : m));
  expect(merged?.mirrors).toEqual(mirrors);
  if (mirrors.length > 0) keyedMirrors.add(JSON.stringify(mirrors.map((m) => m.host === forkHost)));
}

/** Keyed requests that took a mirroring copy, by whether each mirror went to the fork (both kinds must occur). */
const keyedMirrors = new Set<string>();

/** Requests the split route took (checked by the split property). */
let splitRequests = 0;

/**
 * The properties below also assert that every kind of request was exercised (assertShares). A
 * share is a property of the sample, and the sample clusters by plan (a plan without a RouteGroup
 * gives no group-key request), so with a random seed a rare run falls under the bound. These runs
 * use a fixed seed; MESHFORK_FC_SEED explores others.
 */
const COVERAGE_SEED = Number(process.env['MESHFORK_FC_SEED'] ?? 20261130);

function assertShares(seen: Seen, runs: number, share: number): void {
  for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(runs * share);
}

describe('merged Bookinfo reviews VirtualService, evaluated as an Istio sidecar does', () => {
  it('the fixture is used unmodified', () => {
    expect(USER_VS_DOCS).toHaveLength(1);
    expect(USER_VS.metadata).toEqual({ name: 'reviews' });
  });

  it(`with a sandbox key: that sandbox's fork, via the copy of the route the original picks; without: the original's route (${RUNS} requests)`, () => {
    const seen = newSeen();
    keyedMirrors.clear();
    fc.assert(
      fc.property(setupArb, requestsArb, (setup, requests) => {
        const p = planned(setup);
        for (const r of requests) checkRequest(setup, p, renderRequest(p, setup.config, r), seen);
      }),
      { numRuns: SETUPS, seed: COVERAGE_SEED },
    );
    expect([...keyedMirrors].sort()).toEqual(['[false]', '[true]']);
    console.info(`merged-vs: ${JSON.stringify(seen)} over ${SETUPS} plans x ${REQUESTS_PER_SETUP} requests`);
    // Every combination must actually have been exercised.
    assertShares(seen, RUNS, 0.04);
    // And the fixture object was never mutated by the planner or the evaluator.
    expect(JSON.stringify(USER_VS)).toBe(USER_VS_TEXT);
  });

  it(`no user VirtualService: meshfork's own sends the key to the fork and the rest to the baseline host (${RUNS / 2} requests)`, () => {
    const seen = newSeen();
    fc.assert(
      fc.property(setupArb, requestsArb, (setup, requests) => {
        const own = { ...setup, userVs: false };
        const p = planned(own);
        for (const r of requests) checkRequest(own, p, renderRequest(p, own.config, r), seen);
      }),
      { numRuns: SETUPS / 2, seed: COVERAGE_SEED },
    );
    assertShares(seen, RUNS / 2, 0.04);
  });

  it(`split sandboxes take exactly their share of untagged traffic; tagged traffic is unaffected (${RUNS / 2} requests)`, () => {
    // Up to 50 each (the default policy.maxSplitWeight); two of 50 give the fork shares all of it.
    const weights = fc.constantFrom(null, 0, 1, 10, 25, 49, 50);
    const splitSetupArb = fc
      .tuple(setupArb, weights, weights, fc.boolean())
      .map(([setup, w0, w1, userVs]) => ({
        ...setup,
        userVs,
        sandboxes: setup.sandboxes.map((s, i) => ({ ...s, split: i === 0 ? w0 : w1 })),
      }))
      .filter((s) => s.sandboxes.reduce((a, x) => a + (x.split ?? 0), 0) <= 100);
    const seen = newSeen();
    let split = 0;
    splitRequests = 0;
    fc.assert(
      fc.property(splitSetupArb, requestsArb, (setup, requests) => {
        const p = planned(setup);
        for (const r of requests) checkRequest(setup, p, renderRequest(p, setup.config, r), seen);
        if (setup.sandboxes.some((s) => (s.split ?? 0) > 0)) split++;
      }),
      { numRuns: SETUPS / 2, seed: COVERAGE_SEED },
    );
    assertShares(seen, RUNS / 2, 0.02);
    expect(split).toBeGreaterThan(SETUPS / 4);
    expect(splitRequests).toBeGreaterThan((RUNS / 2) * 0.02);
  });
});

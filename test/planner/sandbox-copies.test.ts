/**
 * Sandbox copies of user routes beyond destinations: mirrors, `sourceLabels` matches and user
 * catch-all routes (src/planner/virtual-service.ts). Every case sends keyed and unkeyed requests
 * through the Envoy-semantics route evaluator (src/routing/evaluate.ts), on Istio's own samples
 * where they exist (read from the Go module cache).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { inventoryOf, podTemplateLabels } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan, type PlanResult } from '../../src/planner/plan.js';
import { baggageMemberRegex, DEFAULT_ROUTING_KEY_CONFIG, routingKeyMatchBlocks } from '../../src/planner/routing-key.js';
import { mergeVirtualService, type ForkedSource, type HostRouting } from '../../src/planner/virtual-service.js';
import { evaluateRoute, type RouteRequest } from '../../src/routing/evaluate.js';
import { istioSampleObjects, requireIstioSamples } from '../support/istio-samples.js';

const KEY_NAME = DEFAULT_ROUTING_KEY_CONFIG.keyName;
const fqdn = (name: string) => `${name}.default.svc.cluster.local`;
const keyedBy = (key: string) => ({ baggage: `${KEY_NAME}=${key}` });
const baggage = (key: string) => ({ regex: baggageMemberRegex(KEY_NAME, key) });

function vsOf(name: string, hosts: string[], http: unknown[]): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'default' }, spec: { hosts, http } };
}

/** Sandbox `name` (key `key`) forking `service`'s subsets `subsets` (all when omitted). */
function hostRouting(service: string, ...sandboxes: Array<{ name: string; key: string; subsets?: string[] }>): HostRouting {
  return {
    host: fqdn(service),
    routes: sandboxes.map((s) => ({
      sandbox: s.name,
      forkHost: fqdn(`${service}-${s.name}`),
      matchBlocks: routingKeyMatchBlocks({ ...DEFAULT_ROUTING_KEY_CONFIG, tracestate: false }, [s.key]),
      forkedSubsets: s.subsets ?? ['v1', 'v2'],
      families: [`default/${service}`],
    })),
  };
}

const httpOf = (vs: KubeObject) => (vs.spec as { http: Array<Record<string, unknown>> }).http;
const decide = (vs: unknown, request: Partial<RouteRequest> = {}) => {
  const decision = evaluateRoute(vs, { headers: {}, ...request });
  if (decision === undefined) throw new Error('no route matched');
  return { route: decision.routeName, destinations: decision.destinations, mirrors: decision.mirrors };
};

function sandbox(name: string, key: string, ...forks: string[]): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name, namespace: 'default' },
    spec: { routingKey: key, forks: forks.map((f) => ({ forkOf: { kind: 'Deployment' as const, name: f } })) },
  };
}

function synth(objects: readonly KubeObject[], ...sandboxes: SandboxObject[]): PlanResult {
  const result = plan({ inventory: inventoryOf([...objects]), sandboxes });
  expect(result.problems).toEqual([]);
  return result;
}

const objectNamed = (result: PlanResult, kind: string, name: string) => {
  const found = result.objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} in ${result.objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
};

// ---------------------------------------------------------------------------------------------
// Mirrors
// ---------------------------------------------------------------------------------------------

/**
 * The mirroring route of Istio's "Mirroring" task (istio.io/latest/docs/tasks/traffic-management/
 * mirroring/, "Mirroring traffic to httpbin-v2"): all traffic to subset v1, a copy of 100% of it
 * to subset v2. The task shows it only on istio.io, so it is written here.
 */
const TASK_ROUTE = {
  route: [{ destination: { host: 'httpbin', subset: 'v1' }, weight: 100 }],
  mirror: { host: 'httpbin', subset: 'v2' },
  mirrorPercentage: { value: 100.0 },
};
const TASK_VS = vsOf('httpbin', ['httpbin'], [TASK_ROUTE]);

describe('mirrors in sandbox copies (mergeVirtualService)', () => {
  it('the forked workload is the mirror target: the primary stays, the mirror goes to the fork (subset and percentage kept)', () => {
    const { virtualService, notes } = mergeVirtualService(TASK_VS, [hostRouting('httpbin', { name: 'a', key: 'keya', subsets: ['v2'] })]);
    expect(notes).toEqual([]);
    expect(httpOf(virtualService)).toEqual([
      {
        name: 'meshfork-a-0',
        match: [{ headers: { baggage: baggage('keya') } }],
        route: [{ destination: { host: 'httpbin', subset: 'v1' }, weight: 100 }],
        mirror: { host: fqdn('httpbin-a'), subset: 'v2' },
        mirrorPercentage: { value: 100 },
      },
      TASK_ROUTE,
    ]);
    expect(decide(virtualService, { headers: keyedBy('keya') })).toEqual({
      route: 'meshfork-a-0',
      destinations: [{ host: 'httpbin', subset: 'v1', weight: 100 }],
      mirrors: [{ host: fqdn('httpbin-a'), subset: 'v2', percentage: 100 }],
    });
    expect(decide(virtualService)).toEqual({ route: undefined, destinations: [{ host: 'httpbin', subset: 'v1', weight: 100 }], mirrors: [{ host: 'httpbin', subset: 'v2', percentage: 100 }] });
  });

  it('the forked workload is the primary: the primary goes to the fork, the mirror stays', () => {
    const { virtualService, notes } = mergeVirtualService(TASK_VS, [hostRouting('httpbin', { name: 'a', key: 'keya', subsets: ['v1'] })]);
    expect(notes).toEqual([]);
    expect(decide(virtualService, { headers: keyedBy('keya') })).toEqual({
      route: 'meshfork-a-0',
      destinations: [{ host: fqdn('httpbin-a'), subset: 'v1' }],
      mirrors: [{ host: 'httpbin', subset: 'v2', percentage: 100 }],
    });
  });

  it('a route whose primary is not forked but whose `mirrors` target is gets copies; each mirror follows the destination rule', () => {
    const route = {
      route: [{ destination: { host: 'ratings' } }],
      mirrors: [
        { destination: { host: 'httpbin', subset: 'v2', port: { number: 8000 } }, percentage: { value: 25 } },
        { destination: { host: 'httpbin', subset: 'v3' } },
        { destination: { host: 'details' }, percentage: { value: 50 } },
      ],
    };
    const vs = vsOf('ratings', ['ratings'], [route]);
    const { virtualService, notes } = mergeVirtualService(vs, [hostRouting('httpbin', { name: 'a', key: 'keya', subsets: ['v2'] })]);
    expect(notes).toEqual([]);
    expect(httpOf(virtualService)).toEqual([
      {
        name: 'meshfork-a-0',
        match: [{ headers: { baggage: baggage('keya') } }],
        route: [{ destination: { host: 'ratings' } }],
        mirrors: [
          { destination: { host: fqdn('httpbin-a'), subset: 'v2', port: { number: 8000 } }, percentage: { value: 25 } },
          { destination: { host: 'httpbin', subset: 'v3' } },
          { destination: { host: 'details' }, percentage: { value: 50 } },
        ],
      },
      route,
    ]);
    expect(decide(virtualService, { headers: keyedBy('keya') }).mirrors).toEqual([
      { host: fqdn('httpbin-a'), subset: 'v2', port: 8000, percentage: 25 },
      { host: 'httpbin', subset: 'v3', percentage: 100 },
      { host: 'details', percentage: 50 },
    ]);
    expect(decide(virtualService, { headers: keyedBy('other1') })).toEqual(decide(vs));
  });

  it('a mirror to a subset the sandbox does not fork stays, and the sandbox is told its keyed requests reach no fork', () => {
    const { virtualService, notes } = mergeVirtualService(vsOf('ratings', ['ratings'], [{ route: [{ destination: { host: 'ratings' } }], mirror: { host: 'httpbin', subset: 'v1' } }]), [
      hostRouting('httpbin', { name: 'a', key: 'keya', subsets: ['v2'] }),
    ]);
    expect(decide(virtualService, { headers: keyedBy('keya') }).mirrors).toEqual([{ host: 'httpbin', subset: 'v1', percentage: 100 }]);
    expect(notes.map((n) => n.message)).toEqual([
      `no route sends sandbox "a"'s keyed requests to its forks: the routes to its forked hosts name only subsets (or weight-0 destinations) whose pods it does not fork, so those requests reach the baseline`,
    ]);
  });

  it('merging is idempotent and removing the last sandbox restores the user VirtualService exactly, mirrors included (property)', () => {
    const http = [
      { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'ratings' } }], mirror: { host: 'httpbin', subset: 'v2' }, mirrorPercent: 30 },
      TASK_ROUTE,
      { route: [{ destination: { host: 'httpbin', subset: 'v2' } }], mirrors: [{ destination: { host: 'httpbin' }, percentage: { value: 5 } }] },
    ];
    const user = vsOf('httpbin', ['httpbin'], http);
    const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), { maxLength: 3 });
    const subsets = fc.subarray(['v1', 'v2', 'v3']);
    const routingArb = fc.array(fc.tuple(names, subsets)).map((entries) => entries.flatMap(([ns, ss]) => ns.map((n) => ({ name: n, key: `k${n}00`, subsets: ss }))));
    fc.assert(
      fc.property(routingArb, routingArb, (first, second) => {
        const unique = (rs: typeof first) => rs.filter((r, i) => rs.findIndex((x) => x.name === r.name) === i);
        const toRouting = (rs: typeof first) => [hostRouting('httpbin', ...unique(rs))];
        const once = mergeVirtualService(user, toRouting(first)).virtualService;
        expect(mergeVirtualService(once, toRouting(first)).virtualService).toEqual(once);
        expect(mergeVirtualService(once, toRouting(second)).virtualService).toEqual(mergeVirtualService(user, toRouting(second)).virtualService);
        expect(mergeVirtualService(once, []).virtualService).toEqual(user);
      }),
      { numRuns: 100 },
    );
  });
});

describe.skipIf(!requireIstioSamples())("mirrors on Istio's httpbin sample and the Mirroring task", () => {
  const KEY = 'mirror01';
  const FORK = fqdn('httpbin-sb');
  /**
   * samples/httpbin/httpbin.yaml (Deployment `httpbin`, labels app=httpbin, version=v1) as the
   * task's httpbin-v1, the task's httpbin-v2 (the same Deployment with version v2), and the task's
   * DestinationRule with subsets v1 and v2 (istio.io Mirroring task, "Before you begin" and
   * "Creating a default routing policy").
   */
  const inventory = (): KubeObject[] => {
    const objects = istioSampleObjects<KubeObject>('httpbin/httpbin.yaml');
    const v1 = objects.find((o) => o.kind === 'Deployment')!;
    const v2 = structuredClone(v1);
    v2.metadata.name = 'httpbin-v2';
    const spec = v2.spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } } };
    spec.selector.matchLabels.version = 'v2';
    spec.template.metadata.labels.version = 'v2';
    const rule: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'httpbin', namespace: 'default' },
      spec: { host: 'httpbin', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
    };
    return [...objects, v2, rule, TASK_VS];
  };

  it('forking httpbin-v2 (the mirror target): keyed requests go to v1 and are mirrored to the fork of v2; unkeyed ones as before', () => {
    const result = synth(inventory(), sandbox('sb', KEY, 'httpbin-v2'));
    const vs = objectNamed(result, 'VirtualService', 'httpbin');
    expect(decide(vs, { headers: keyedBy(KEY) })).toEqual({
      route: 'meshfork-sb-0',
      destinations: [{ host: 'httpbin', subset: 'v1', weight: 100 }],
      mirrors: [{ host: FORK, subset: 'v2', percentage: 100 }],
    });
    expect(decide(vs)).toEqual(decide(TASK_VS));
    expect(decide(vs, { headers: keyedBy('other001') })).toEqual(decide(TASK_VS));
    // The fork DestinationRule defines subset v2 for the fork's pods.
    expect((objectNamed(result, 'DestinationRule', 'httpbin-sb').spec as { subsets: unknown }).subsets).toEqual([{ name: 'v2', labels: { version: 'v2-sb' } }]);
    expect(result.notes).toEqual([]);
  });

  it('forking httpbin (v1, the primary): keyed requests reach the fork of v1 and are still mirrored to the baseline v2', () => {
    const result = synth(inventory(), sandbox('sb', KEY, 'httpbin'));
    const vs = objectNamed(result, 'VirtualService', 'httpbin');
    expect(decide(vs, { headers: keyedBy(KEY) })).toEqual({ route: 'meshfork-sb-0', destinations: [{ host: FORK, subset: 'v1' }], mirrors: [{ host: 'httpbin', subset: 'v2', percentage: 100 }] });
    expect(decide(vs)).toEqual(decide(TASK_VS));
  });
});

// ---------------------------------------------------------------------------------------------
// sourceLabels
// ---------------------------------------------------------------------------------------------

/**
 * A ratings VirtualService in the style of the `sourceLabels` example of Istio's VirtualService
 * reference (virtual_service.proto, HTTPMatchRequest `source_labels`): calls from reviews v2 go
 * to ratings v2, all others to ratings v1. Bookinfo's samples ship no such VirtualService.
 */
const RATINGS_BY_SOURCE = vsOf('ratings', ['ratings'], [
  { match: [{ sourceLabels: { app: 'reviews', version: 'v2' } }], route: [{ destination: { host: 'ratings', subset: 'v2' } }] },
  { route: [{ destination: { host: 'ratings', subset: 'v1' } }] },
]);

describe('sourceLabels select the forks of the workloads they select (mergeVirtualService)', () => {
  const source = (sandbox: string, namespace = 'default'): ForkedSource => ({
    sandbox,
    namespace,
    baselineLabels: { app: 'reviews', version: 'v2' },
    forkLabels: { app: 'reviews', version: `v2-${sandbox}`, 'meshfork.dev/sandbox': sandbox },
  });
  const forkBlock = (sandbox: string, namespace = 'default') => ({ sourceLabels: { app: 'reviews', version: `v2-${sandbox}`, 'meshfork.dev/sandbox': sandbox }, sourceNamespace: namespace });

  it('a meshfork-source copy before the user route selects each fork, even in a VirtualService that routes to no forked host', () => {
    const { virtualService, notes } = mergeVirtualService(RATINGS_BY_SOURCE, [], new Map(), { sources: [source('a'), source('b', 'team-b')] });
    expect(notes).toEqual([]);
    const user = httpOf(RATINGS_BY_SOURCE);
    expect(httpOf(virtualService)).toEqual([{ name: 'meshfork-source-0', match: [forkBlock('a'), forkBlock('b', 'team-b')], route: [{ destination: { host: 'ratings', subset: 'v2' } }] }, user[0], user[1]]);
    const fork = { sourceLabels: source('a').forkLabels, sourceNamespace: 'default' };
    expect(decide(virtualService, fork)).toEqual({ ...decide(RATINGS_BY_SOURCE, { sourceLabels: { app: 'reviews', version: 'v2' }, sourceNamespace: 'default' }), route: 'meshfork-source-0' });
    expect(decide(virtualService, { ...fork, headers: keyedBy('keya') }).destinations).toEqual([{ host: 'ratings', subset: 'v2' }]);
    // Other clients: exactly as before (reviews v1, another namespace's fork of a, the baseline).
    for (const client of [
      { sourceLabels: { app: 'reviews', version: 'v1' }, sourceNamespace: 'default' },
      { sourceLabels: source('a').forkLabels, sourceNamespace: 'team-b' },
      { sourceLabels: { app: 'reviews', version: 'v2' }, sourceNamespace: 'default' },
    ]) {
      const before = decide(RATINGS_BY_SOURCE, client);
      expect(decide(virtualService, client), JSON.stringify(client)).toEqual(before);
    }
    expect(mergeVirtualService(virtualService, [], new Map(), { sources: [source('a'), source('b', 'team-b')] }).virtualService).toEqual(virtualService);
    expect(mergeVirtualService(virtualService, []).virtualService).toEqual(RATINGS_BY_SOURCE);
  });

  it('leaves blocks alone that cannot select the fork differently: another sourceNamespace, a gateways block, labels the fork keeps', () => {
    const vs = vsOf('ratings', ['ratings'], [
      { match: [{ sourceLabels: { app: 'reviews', version: 'v2' }, sourceNamespace: 'other' }], route: [{ destination: { host: 'ratings', subset: 'v2' } }] },
      { match: [{ sourceLabels: { app: 'reviews', version: 'v2' }, gateways: ['mesh'] }], route: [{ destination: { host: 'ratings', subset: 'v2' } }] },
      { match: [{ sourceLabels: { app: 'reviews' } }], route: [{ destination: { host: 'ratings', subset: 'v2' } }] },
      { route: [{ destination: { host: 'ratings', subset: 'v1' } }] },
    ]);
    expect(mergeVirtualService(vs, [], new Map(), { sources: [source('a')] }).virtualService).toEqual(vs);
  });

  it("the sandbox copies of a sourceLabels route also carry the forks' blocks: a keyed request from the fork reaches the forked destination", () => {
    const { virtualService } = mergeVirtualService(RATINGS_BY_SOURCE, [hostRouting('ratings', { name: 'a', key: 'keya' })], new Map(), { sources: [source('a')] });
    expect(httpOf(virtualService).map((r) => r.name)).toEqual(['meshfork-a-0', 'meshfork-source-0', undefined, 'meshfork-a-1', undefined]);
    expect(httpOf(virtualService)[0]!.match).toEqual([
      { sourceLabels: { app: 'reviews', version: 'v2' }, headers: { baggage: baggage('keya') } },
      { ...forkBlock('a'), headers: { baggage: baggage('keya') } },
    ]);
    const fork = { sourceLabels: source('a').forkLabels, sourceNamespace: 'default' };
    expect(decide(virtualService, { ...fork, headers: keyedBy('keya') }).destinations).toEqual([{ host: fqdn('ratings-a'), subset: 'v2' }]);
    expect(decide(virtualService, fork).destinations).toEqual([{ host: 'ratings', subset: 'v2' }]);
  });
});

describe.skipIf(!requireIstioSamples())("sourceLabels on Istio's Bookinfo samples", () => {
  const KEY = 'source01';
  const bookinfo = () =>
    [
      ...istioSampleObjects('bookinfo/platform/kube/bookinfo.yaml'),
      ...istioSampleObjects('bookinfo/platform/kube/bookinfo-ratings-v2.yaml'),
      ...istioSampleObjects('bookinfo/networking/destination-rule-all.yaml'),
      RATINGS_BY_SOURCE,
    ] as KubeObject[];

  it('forking reviews-v2 only: its fork, as a client, is routed to ratings v2 as reviews-v2 is; every other client as before', () => {
    const result = synth(bookinfo(), sandbox('sb', KEY, 'reviews-v2'));
    const vs = objectNamed(result, 'VirtualService', 'ratings');
    const forkLabels = podTemplateLabels(objectNamed(result, 'Deployment', 'reviews-v2-sb'));
    expect(httpOf(vs)[0]).toEqual({
      name: 'meshfork-source-0',
      match: [{ sourceLabels: { app: 'reviews-sb', version: 'v2-sb', 'meshfork.dev/sandbox': 'sb' }, sourceNamespace: 'default' }],
      route: [{ destination: { host: 'ratings', subset: 'v2' } }],
    });
    const fromFork = { sourceLabels: forkLabels, sourceNamespace: 'default' };
    const fromBaseline = { sourceLabels: podTemplateLabels(bookinfo().find((o) => o.kind === 'Deployment' && o.metadata.name === 'reviews-v2')!), sourceNamespace: 'default' };
    const fromV1 = { sourceLabels: { app: 'reviews', version: 'v1' }, sourceNamespace: 'default' };
    // Without meshfork's copy the fork would fall through to ratings v1.
    expect(decide(RATINGS_BY_SOURCE, fromFork).destinations).toEqual([{ host: 'ratings', subset: 'v1' }]);
    for (const headers of [{}, keyedBy(KEY)]) {
      expect(decide(vs, { ...fromFork, headers }).destinations).toEqual([{ host: 'ratings', subset: 'v2' }]);
      expect(decide(vs, { ...fromBaseline, headers })).toEqual(decide(RATINGS_BY_SOURCE, fromBaseline));
      expect(decide(vs, { ...fromV1, headers })).toEqual(decide(RATINGS_BY_SOURCE, fromV1));
    }
  });

  it('forking reviews-v2 and ratings-v2: a keyed request from the fork of reviews-v2 reaches the fork of ratings v2; unkeyed ones the baseline', () => {
    const result = synth(bookinfo(), sandbox('sb', KEY, 'reviews-v2', 'ratings-v2'));
    const vs = objectNamed(result, 'VirtualService', 'ratings');
    const fromFork = { sourceLabels: podTemplateLabels(objectNamed(result, 'Deployment', 'reviews-v2-sb')), sourceNamespace: 'default' };
    const fromBaseline = { sourceLabels: { app: 'reviews', version: 'v2' }, sourceNamespace: 'default' };
    expect(decide(vs, { ...fromFork, headers: keyedBy(KEY) })).toMatchObject({ route: 'meshfork-sb-0', destinations: [{ host: fqdn('ratings-sb'), subset: 'v2' }] });
    expect(decide(vs, { ...fromBaseline, headers: keyedBy(KEY) })).toMatchObject({ route: 'meshfork-sb-0', destinations: [{ host: fqdn('ratings-sb'), subset: 'v2' }] });
    expect(decide(vs, fromFork)).toMatchObject({ route: 'meshfork-source-0', destinations: [{ host: 'ratings', subset: 'v2' }] });
    expect(decide(vs, fromBaseline)).toEqual(decide(RATINGS_BY_SOURCE, fromBaseline));
    expect(decide(vs, { sourceLabels: { app: 'reviews', version: 'v1' }, sourceNamespace: 'default', headers: keyedBy(KEY) }).destinations).toEqual([{ host: 'ratings', subset: 'v1' }]);
    // Removing the sandbox restores the user's VirtualService exactly.
    const restored = plan({ inventory: inventoryOf([...bookinfo().filter((o) => o.metadata.name !== 'ratings' || o.kind !== 'VirtualService'), vs]), sandboxes: [] });
    expect(restored.objects).toEqual([RATINGS_BY_SOURCE]);
  });
});

// ---------------------------------------------------------------------------------------------
// A user route that matches every request
// ---------------------------------------------------------------------------------------------

describe('no sandbox copies after a user route that matches every request', () => {
  const toV1 = { route: [{ destination: { host: 'reviews', subset: 'v1' } }] };
  const jasonToV2 = { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] };
  const merge = (http: unknown[]) => mergeVirtualService(vsOf('reviews', ['reviews'], http), [hostRouting('reviews', { name: 'a', key: 'keya', subsets: ['v2'] })]);
  const hiddenNote = (catchAll: number, hidden: string) => ({
    routeIndex: catchAll,
    message: `matches every request, so no later route is ever taken; meshfork writes no copies of ${hidden} after it (they would never match): every request, keyed or not, takes this route`,
  });

  it('a route without match: the copies of later routes are not written, a note says why; requests route as before', () => {
    const http = [toV1, jasonToV2];
    const { virtualService, notes } = merge(http);
    expect(httpOf(virtualService).map((r) => r.name)).toEqual(['meshfork-a-0', undefined, undefined]);
    expect(notes).toContainEqual(hiddenNote(0, 'spec.http[1]'));
    for (const headers of [{}, { 'end-user': 'jason' }, { ...keyedBy('keya'), 'end-user': 'jason' }, keyedBy('keya')] as Array<Record<string, string>>) {
      expect(decide(virtualService, { headers }).destinations).toEqual([{ host: 'reviews', subset: 'v1' }]);
    }
  });

  it('match blocks that match every request: an empty block, uri prefix "/", a block with only a name', () => {
    for (const block of [{}, { uri: { prefix: '/' } }, { name: 'all', ignoreUriCase: true }, { headers: {} }]) {
      const { virtualService, notes } = merge([{ ...toV1, match: [{ headers: { 'end-user': { exact: 'alice' } } }, block] }, jasonToV2]);
      expect(notes, JSON.stringify(block)).toContainEqual(hiddenNote(0, 'spec.http[1]'));
      expect(httpOf(virtualService).some((r) => r.name === 'meshfork-a-1')).toBe(false);
    }
  });

  it('blocks with a condition are not catch-alls: uri prefix "/api", a port, sourceLabels, gateways', () => {
    for (const block of [{ uri: { prefix: '/api' } }, { port: 9080 }, { sourceLabels: { app: 'productpage' } }, { gateways: ['mesh'] }, { uri: { regex: '.*' } }]) {
      const { virtualService, notes } = merge([{ ...toV1, match: [block] }, jasonToV2]);
      expect(notes, JSON.stringify(block)).toEqual([]);
      expect(httpOf(virtualService).map((r) => r.name)).toEqual(['meshfork-a-0', undefined, 'meshfork-a-1', undefined]);
    }
  });

  it('fork-source copies after a catch-all are not written either; the note lists every route left out', () => {
    const source: ForkedSource = { sandbox: 'a', namespace: 'default', baselineLabels: { app: 'productpage' }, forkLabels: { app: 'productpage-a', 'meshfork.dev/sandbox': 'a' } };
    const http = [toV1, jasonToV2, { match: [{ sourceLabels: { app: 'productpage' } }], route: [{ destination: { host: 'ratings' } }] }];
    const vs = vsOf('reviews', ['reviews'], http);
    const { virtualService, notes } = mergeVirtualService(vs, [hostRouting('reviews', { name: 'a', key: 'keya', subsets: ['v2'] })], new Map(), { sources: [source] });
    expect(httpOf(virtualService).map((r) => r.name)).toEqual(['meshfork-a-0', undefined, undefined, undefined]);
    expect(notes).toContainEqual(hiddenNote(0, 'spec.http[1], spec.http[2]'));
    expect(mergeVirtualService(virtualService, []).virtualService).toEqual(vs);
  });
});

describe.skipIf(!requireIstioSamples())("a catch-all before jason's route on Istio's Bookinfo reviews", () => {
  it('plan notes the VirtualService and the route; keyed and unkeyed requests go where the user route sends them', () => {
    const user = vsOf('reviews', ['reviews'], [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }, ...httpOf(istioSampleObjects('bookinfo/networking/virtual-service-reviews-test-v2.yaml')[0] as KubeObject).slice(0, 1)]);
    const objects = [...istioSampleObjects('bookinfo/platform/kube/bookinfo.yaml'), ...istioSampleObjects('bookinfo/networking/destination-rule-all.yaml'), user] as KubeObject[];
    const result = synth(objects, sandbox('sb', 'catch001', 'reviews-v2'));
    const vs = objectNamed(result, 'VirtualService', 'reviews');
    expect(result.notes).toContainEqual({
      object: 'VirtualService default/reviews',
      path: 'spec.http[0]',
      message: 'matches every request, so no later route is ever taken; meshfork writes no copies of spec.http[1] after it (they would never match): every request, keyed or not, takes this route',
    });
    for (const headers of [{}, { 'end-user': 'jason' }, { ...keyedBy('catch001'), 'end-user': 'jason' }] as Array<Record<string, string>>) {
      expect(decide(vs, { headers }).destinations).toEqual(decide(user, { headers }).destinations);
    }
  });
});

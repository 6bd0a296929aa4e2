import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeVirtualService, ownedVirtualService, type HostRouting } from '../../src/planner/virtual-service.js';
import { baggageMemberRegex, DEFAULT_ROUTING_KEY_CONFIG, routingKeyMatchBlocks } from '../../src/planner/routing-key.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { inventoryOf, podTemplateLabels, selectorMatches, serviceSelector } from '../../src/planner/inventory.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { evaluateRoute, type RouteDestination } from '../../src/routing/evaluate.js';
import { istioSampleObjects, requireIstioSamples } from '../support/istio-samples.js';

const REVIEWS = 'reviews.default.svc.cluster.local';

function userVs(http: unknown[]): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'], http } };
}

/** Sandboxes forking every version of reviews (subsets v1, v2 and v3), unless `subsets` says which. */
function routing(...sandboxes: Array<{ name: string; key: string; split?: number; subsets?: string[] }>): HostRouting[] {
  return [
    {
      host: REVIEWS,
      routes: sandboxes.map((s) => ({
        sandbox: s.name,
        forkHost: `reviews-${s.name}.default.svc.cluster.local`,
        matchBlocks: routingKeyMatchBlocks({ ...DEFAULT_ROUTING_KEY_CONFIG, tracestate: false }, [s.key]),
        forkedSubsets: s.subsets ?? ['v1', 'v2', 'v3'],
        families: ['default/reviews'],
        ...(s.split ? { splitWeight: s.split } : {}),
      })),
    },
  ];
}

const baggage = (key: string) => ({ regex: baggageMemberRegex('meshfork-routing-key', key) });

describe('mergeVirtualService', () => {
  const http = [
    { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }, { uri: { prefix: '/beta' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], retries: { attempts: 3 } },
    { name: 'ratings-detour', match: [{ uri: { prefix: '/ratings' } }], route: [{ destination: { host: 'ratings' } }] },
    { route: [{ destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } } }], timeout: '5s', headers: { request: { set: { x: 'y' } } } },
  ];

  it('puts one copy per sandbox before each user route to the forked host, user routes untouched and in order', () => {
    const { virtualService, notes } = mergeVirtualService(userVs(http), routing({ name: 'b', key: 'keyb' }, { name: 'a', key: 'keya' }));
    expect(notes).toEqual([]);
    expect((virtualService.spec as { http: unknown[] }).http).toEqual([
      {
        name: 'meshfork-a-0',
        match: [
          { headers: { 'end-user': { exact: 'jason' }, baggage: baggage('keya') } },
          { uri: { prefix: '/beta' }, headers: { baggage: baggage('keya') } },
        ],
        route: [{ destination: { host: 'reviews-a.default.svc.cluster.local', subset: 'v2' } }],
        retries: { attempts: 3 },
      },
      {
        name: 'meshfork-b-0',
        match: [
          { headers: { 'end-user': { exact: 'jason' }, baggage: baggage('keyb') } },
          { uri: { prefix: '/beta' }, headers: { baggage: baggage('keyb') } },
        ],
        route: [{ destination: { host: 'reviews-b.default.svc.cluster.local', subset: 'v2' } }],
        retries: { attempts: 3 },
      },
      http[0],
      http[1],
      {
        name: 'meshfork-a-2',
        match: [{ headers: { baggage: baggage('keya') } }],
        route: [{ destination: { host: 'reviews-a.default.svc.cluster.local', subset: 'v1', port: { number: 9080 } } }],
        timeout: '5s',
        headers: { request: { set: { x: 'y' } } },
      },
      {
        name: 'meshfork-b-2',
        match: [{ headers: { baggage: baggage('keyb') } }],
        route: [{ destination: { host: 'reviews-b.default.svc.cluster.local', subset: 'v1', port: { number: 9080 } } }],
        timeout: '5s',
        headers: { request: { set: { x: 'y' } } },
      },
      http[2],
    ]);
  });

  it('is idempotent and restores the user routes exactly when the last sandbox goes', () => {
    const once = mergeVirtualService(userVs(http), routing({ name: 'a', key: 'keya', split: 30 })).virtualService;
    expect(mergeVirtualService(once, routing({ name: 'a', key: 'keya', split: 30 })).virtualService).toEqual(once);
    expect(mergeVirtualService(once, routing()).virtualService).toEqual(userVs(http));
    expect(mergeVirtualService(once, []).virtualService).toEqual(userVs(http));
  });

  it('is idempotent for any subset of sandboxes (property)', () => {
    const names = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), { maxLength: 4 });
    fc.assert(
      fc.property(names, names, (first, second) => {
        const toRouting = (ns: string[]) => routing(...ns.map((n) => ({ name: n, key: `k${n}00` })));
        const merged = mergeVirtualService(mergeVirtualService(userVs(http), toRouting(first)).virtualService, toRouting(second)).virtualService;
        expect(merged).toEqual(mergeVirtualService(userVs(http), toRouting(second)).virtualService);
      }),
      { numRuns: 200 },
    );
  });

  it('reports a user match on the carrier header instead of dropping either condition', () => {
    const vs = userVs([{ match: [{ headers: { baggage: { prefix: 'x' } } }], route: [{ destination: { host: 'reviews' } }] }]);
    const { virtualService, notes } = mergeVirtualService(vs, routing({ name: 'a', key: 'keya' }));
    expect(notes).toEqual([{ routeIndex: 0, message: 'route already matches header baggage; sandbox "a" cannot add its routing key to that match block' }]);
    expect(virtualService).toEqual(vs);
  });

  it('splits untagged traffic by scaling the user weights', () => {
    const vs = userVs([{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 50 }, { destination: { host: 'reviews', subset: 'v3' }, weight: 50 }] }]);
    const http = (mergeVirtualService(vs, routing({ name: 'a', key: 'keya', split: 25 })).virtualService.spec as { http: Array<{ name?: string; route: unknown }> }).http;
    expect(http.map((r) => r.name)).toEqual(['meshfork-a-0', 'meshfork-split-0', undefined]);
    expect(http[0]?.route).toEqual([
      { destination: { host: 'reviews-a.default.svc.cluster.local', subset: 'v1' }, weight: 50 },
      { destination: { host: 'reviews-a.default.svc.cluster.local', subset: 'v3' }, weight: 50 },
    ]);
    expect(http[1]?.route).toEqual([
      { destination: { host: 'reviews', subset: 'v1' }, weight: 38 },
      { destination: { host: 'reviews', subset: 'v3' }, weight: 37 },
      { destination: { host: 'reviews-a.default.svc.cluster.local' }, weight: 25 },
    ]);
  });

  it('leaves routes to other hosts and meshfork-free VirtualServices alone', () => {
    const vs = userVs([{ route: [{ destination: { host: 'ratings' } }] }]);
    expect(mergeVirtualService(vs, routing({ name: 'a', key: 'keya' })).virtualService).toEqual(vs);
  });
});

describe('ownedVirtualService', () => {
  it('has the sandbox routes first and a named catch-all to the baseline last', () => {
    const { virtualService } = ownedVirtualService({ name: 'reviews-meshfork', namespace: 'default', host: routing({ name: 'a', key: 'keya' })[0]! });
    expect(virtualService).toEqual({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews-meshfork', namespace: 'default', labels: { 'app.kubernetes.io/managed-by': 'meshfork' } },
      spec: {
        hosts: [REVIEWS],
        http: [
          { name: 'meshfork-a-0', match: [{ headers: { baggage: baggage('keya') } }], route: [{ destination: { host: 'reviews-a.default.svc.cluster.local' } }] },
          { name: 'meshfork-baseline', route: [{ destination: { host: REVIEWS } }] },
        ],
      },
    });
  });

  it('a Service with several ports: one baseline route per port, matching it and naming it in the destination, and so each copy (IST0112)', () => {
    const { virtualService } = ownedVirtualService({ name: 'reviews-meshfork', namespace: 'default', host: routing({ name: 'a', key: 'keya' })[0]!, ports: [80, 9090] });
    const fork = 'reviews-a.default.svc.cluster.local';
    expect((virtualService.spec as { http: unknown }).http).toEqual([
      { name: 'meshfork-a-0', match: [{ port: 80, headers: { baggage: baggage('keya') } }], route: [{ destination: { host: fork, port: { number: 80 } } }] },
      { name: 'meshfork-baseline', match: [{ port: 80 }], route: [{ destination: { host: REVIEWS, port: { number: 80 } } }] },
      { name: 'meshfork-a-1', match: [{ port: 9090, headers: { baggage: baggage('keya') } }], route: [{ destination: { host: fork, port: { number: 9090 } } }] },
      { name: 'meshfork-baseline', match: [{ port: 9090 }], route: [{ destination: { host: REVIEWS, port: { number: 9090 } } }] },
    ]);
  });

  it.skipIf(!requireIstioSamples())("grpc-echo/grpc-echo.yaml (ports 80, 7070, 9090): keyed requests reach the fork on the port they came in on, unkeyed ones the baseline", () => {
    const objects = istioSampleObjects<KubeObject>('grpc-echo/grpc-echo.yaml');
    const sandbox: SandboxObject = {
      apiVersion: 'meshfork.dev/v1alpha1',
      kind: 'Sandbox',
      metadata: { name: 'sb', namespace: 'echo-grpc' },
      spec: { routingKey: 'echokey1', forks: [{ forkOf: { kind: 'Deployment', name: 'echo-v1' } }] },
    };
    const result = plan({ inventory: inventoryOf(objects), sandboxes: [sandbox] });
    expect(result.problems).toEqual([]);
    const vs = result.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'echo-meshfork')!;
    const http = (vs.spec as { http: Array<{ name: string; match: Array<{ port: number }> }> }).http;
    expect(http.map((r) => `${r.name} ${[...new Set(r.match.map((m) => m.port))].join(',')}`)).toEqual([
      'meshfork-sb-0 80',
      'meshfork-baseline 80',
      'meshfork-sb-1 7070',
      'meshfork-baseline 7070',
      'meshfork-sb-2 9090',
      'meshfork-baseline 9090',
    ]);
    const keyed = { baggage: 'meshfork-routing-key=echokey1' };
    for (const port of [80, 7070, 9090]) {
      expect(evaluateRoute(vs, { headers: keyed, port })!.destinations).toEqual([{ host: 'echo-sb.echo-grpc.svc.cluster.local', port }]);
      expect(evaluateRoute(vs, { headers: {}, port })!.destinations).toEqual([{ host: 'echo.echo-grpc.svc.cluster.local', port }]);
      expect(evaluateRoute(vs, { headers: { baggage: 'meshfork-routing-key=other001' }, port })!.destinations).toEqual([{ host: 'echo.echo-grpc.svc.cluster.local', port }]);
    }
  });
});

describe('sandbox copies: subsets and weights (mergeVirtualService)', () => {
  const fork = (subset?: string) => ({ host: 'reviews-a.default.svc.cluster.local', ...(subset ? { subset } : {}) });
  const copyOf = (http: unknown[], sandbox: { name: string; key: string; subsets?: string[] }, families = new Map<string, string[]>()) =>
    (mergeVirtualService(userVs(http), routing(sandbox), families).virtualService.spec as { http: Array<{ name?: string; route?: unknown }> }).http.find((r) => r.name === `meshfork-${sandbox.name}-0`)?.route;

  it('keeps a destination to a subset whose pods are not forked on the baseline host and subset, and says no copy reaches a fork', () => {
    const http = [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }];
    expect(copyOf(http, { name: 'a', key: 'keya', subsets: ['v3'] })).toEqual([{ destination: { host: 'reviews', subset: 'v1' } }]);
    expect(mergeVirtualService(userVs(http), routing({ name: 'a', key: 'keya', subsets: ['v3'] })).notes).toEqual([
      {
        routeIndex: 0,
        message: `no route sends sandbox "a"'s keyed requests to its forks: the routes to its forked hosts name only subsets (or weight-0 destinations) whose pods it does not fork, so those requests reach the baseline`,
      },
    ]);
    expect(mergeVirtualService(userVs(http), routing({ name: 'a', key: 'keya', subsets: ['v1'] })).notes).toEqual([]);
  });

  it('90/10 over subsets with v2 forked: the copy sends every keyed request to the fork of v2', () => {
    const http = [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 90 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 10 }] }];
    expect(copyOf(http, { name: 'a', key: 'keya', subsets: ['v2'] })).toEqual([{ destination: fork('v2') }]);
  });

  it('scales the weights of the forked destinations proportionally to 100 and keeps destinations of unrelated hosts', () => {
    const http = [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 60 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 10 },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 20 },
          { destination: { host: 'ratings' }, weight: 10 },
        ],
      },
    ];
    expect(copyOf(http, { name: 'a', key: 'keya', subsets: ['v2', 'v3'] })).toEqual([
      { destination: fork('v2'), weight: 25 },
      { destination: fork('v3'), weight: 50 },
      { destination: { host: 'ratings' }, weight: 25 },
    ]);
  });

  it('drops other Services of the forked version family (reviews-v1 next to a forked reviews-v2), not other families', () => {
    const http = [{ route: [{ destination: { host: 'reviews-v1' }, weight: 90 }, { destination: { host: 'reviews' }, weight: 10 }] }];
    const families = new Map([[`reviews-v1.default.svc.cluster.local`, ['default/reviews']]]);
    expect(copyOf(http, { name: 'a', key: 'keya' }, families)).toEqual([{ destination: fork() }]);
    const otherFamily = new Map([[`reviews-v1.default.svc.cluster.local`, ['default/reviews-legacy']]]);
    expect(copyOf(http, { name: 'a', key: 'keya' }, otherFamily)).toEqual([
      { destination: { host: 'reviews-v1' }, weight: 90 },
      { destination: fork(), weight: 10 },
    ]);
  });

  it('a forked destination of weight 0 reaches nothing: the copy keeps the user destinations', () => {
    const http = [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 100 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 0 }] }];
    expect(copyOf(http, { name: 'a', key: 'keya', subsets: ['v2'] })).toEqual(http[0]!.route);
  });
});

const sample = (path: string) => istioSampleObjects<KubeObject>(path);

describe.skipIf(!requireIstioSamples())("plan on Istio's Bookinfo samples: subsets survive, weights reach the fork", () => {
  const KEY = 'sbkey001';
  const FORK = 'reviews-sb.default.svc.cluster.local';
  const sandbox = (...forks: string[]): SandboxObject => ({
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 'sb', namespace: 'default' },
    spec: { routingKey: KEY, forks: forks.map((name) => ({ forkOf: { kind: 'Deployment' as const, name } })) },
  });
  const keyed = { baggage: `${DEFAULT_ROUTING_KEY_CONFIG.keyName}=${KEY}` };
  const synth = (objects: KubeObject[], ...forks: string[]) => {
    const result = plan({ inventory: inventoryOf(objects), sandboxes: [sandbox(...forks)] });
    expect(result.problems).toEqual([]);
    return result.objects;
  };
  const bookinfo = () => [...sample('bookinfo/platform/kube/bookinfo.yaml'), ...sample('bookinfo/networking/destination-rule-all.yaml')];
  const vsOf = (objects: KubeObject[], name: string) => objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === name)!;
  /** Every destination a request can reach through the VirtualService (one route is taken). */
  const reach = (vs: KubeObject, headers: Record<string, string>): RouteDestination[] => evaluateRoute(vs, { headers })!.destinations.map(({ host, subset }) => ({ host, ...(subset ? { subset } : {}) }));

  it('the fork DestinationRule has the forked subsets, whose labels select exactly the fork pods of the baseline subset', () => {
    const objects = synth(bookinfo(), 'reviews-v2', 'reviews-v3');
    const rule = objects.find((o) => o.kind === 'DestinationRule' && o.metadata.name === 'reviews-sb')!;
    expect(rule.spec).toEqual({ host: FORK, subsets: [{ name: 'v2', labels: { version: 'v2-sb' } }, { name: 'v3', labels: { version: 'v3-sb' } }] });
    const forkService = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'reviews-sb')!;
    const forks = objects.filter((o) => o.kind === 'Deployment');
    for (const subset of (rule.spec as { subsets: Array<{ name: string; labels: Record<string, string> }> }).subsets) {
      const selected = forks.filter((f) => selectorMatches(serviceSelector(forkService), podTemplateLabels(f)) && selectorMatches(subset.labels, podTemplateLabels(f)));
      expect(selected.map((f) => f.metadata.name), subset.name).toEqual([`reviews-${subset.name}-sb`]);
    }
  });

  it('virtual-service-reviews-jason-v2-v3 forking reviews-v2 and reviews-v3: jason+key -> fork v2, other+key -> fork v3, no key as before', () => {
    const user = sample('bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml')[0]!;
    const vs = vsOf(synth([...bookinfo(), user], 'reviews-v2', 'reviews-v3'), 'reviews');
    expect(reach(vs, { ...keyed, 'end-user': 'jason' })).toEqual([{ host: FORK, subset: 'v2' }]);
    expect(reach(vs, { ...keyed, 'end-user': 'alice' })).toEqual([{ host: FORK, subset: 'v3' }]);
    expect(reach(vs, keyed)).toEqual([{ host: FORK, subset: 'v3' }]);
    for (const headers of [{ 'end-user': 'jason' }, { 'end-user': 'alice' }, {}] as Array<Record<string, string>>) expect(reach(vs, headers)).toEqual(reach(user, headers));
    expect(reach(vs, { 'end-user': 'jason' })).toEqual([{ host: 'reviews', subset: 'v2' }]);
  });

  it('virtual-service-reviews-jason-v2-v3 forking only reviews-v3: jason+key stays on the baseline v2 (not forked)', () => {
    const user = sample('bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml')[0]!;
    const vs = vsOf(synth([...bookinfo(), user], 'reviews-v3'), 'reviews');
    expect(reach(vs, { ...keyed, 'end-user': 'jason' })).toEqual([{ host: 'reviews', subset: 'v2' }]);
    expect(reach(vs, keyed)).toEqual([{ host: FORK, subset: 'v3' }]);
  });

  it('virtual-service-reviews-90-10 forking reviews-v2: a keyed request always reaches fork v2; no key keeps 90/10', () => {
    const user = sample('bookinfo/networking/virtual-service-reviews-90-10.yaml')[0]!;
    const vs = vsOf(synth([...bookinfo(), user], 'reviews-v2'), 'reviews');
    expect(evaluateRoute(vs, { headers: keyed })!.destinations).toEqual([{ host: FORK, subset: 'v2' }]);
    expect(evaluateRoute(vs, { headers: {} })!.destinations).toEqual([
      { host: 'reviews', subset: 'v1', weight: 90 },
      { host: 'reviews', subset: 'v2', weight: 10 },
    ]);
  });

  it('virtual-service-reviews-v2-v3 (50/50) forking reviews-v2 and reviews-v3: the split stays inside the sandbox', () => {
    const user = sample('bookinfo/networking/virtual-service-reviews-v2-v3.yaml')[0]!;
    const vs = vsOf(synth([...bookinfo(), user], 'reviews-v2', 'reviews-v3'), 'reviews');
    expect(evaluateRoute(vs, { headers: keyed })!.destinations).toEqual([
      { host: FORK, subset: 'v2', weight: 50 },
      { host: FORK, subset: 'v3', weight: 50 },
    ]);
    expect(evaluateRoute(vs, { headers: {} })!.destinations).toEqual(evaluateRoute(user, { headers: {} })!.destinations);
  });

  it('90/10 over reviews-v1 / reviews-v2 Services forking reviews-v2 behaves like 90/10 over subsets', () => {
    const versionService = (version: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `reviews-${version}`, namespace: 'default' },
      spec: { selector: { app: 'reviews', version }, ports: [{ name: 'http', port: 9080 }] },
    });
    const user: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'default' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews-v1' }, weight: 90 }, { destination: { host: 'reviews-v2' }, weight: 10 }] }] },
    };
    const vs = vsOf(synth([...sample('bookinfo/platform/kube/bookinfo.yaml'), versionService('v1'), versionService('v2'), user], 'reviews-v2'), 'reviews');
    expect(evaluateRoute(vs, { headers: keyed })!.destinations).toEqual([{ host: 'reviews-v2-sb.default.svc.cluster.local' }]);
    expect(evaluateRoute(vs, { headers: {} })!.destinations).toEqual([
      { host: 'reviews-v1', weight: 90 },
      { host: 'reviews-v2', weight: 10 },
    ]);
  });
});

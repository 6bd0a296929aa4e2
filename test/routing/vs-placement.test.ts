/**
 * Issue 9 items 1 and 6: every VirtualService that routes to a forked host gets the sandbox copies
 * (gateway-bound ones as `routing.gateways` allows, facades, delegates), and scoped (`exportTo`)
 * VirtualServices are merged in their scope while meshfork's own VirtualService serves the other
 * namespaces. Requests go through the route evaluator (src/routing/evaluate.ts), with
 * delegates merged and VirtualServices picked per namespace as istiod does.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { plan, type PlanConfig } from '../../src/planner/plan.js';
import { inventoryOf, podTemplateLabels } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { resolveConfig } from '../../src/api/config.js';
import { DEFAULT_ROUTING_KEY_CONFIG } from '../../src/planner/routing-key.js';
import { evaluateRoute, mergeDelegates, visibleVirtualService, type RouteRequest } from '../../src/routing/evaluate.js';
import { istioSample, istioSampleObjects, requireIstioSamples } from '../support/istio-samples.js';
import { cli } from '../support/cli.js';

const KEY = 'sbkey001';
const keyed = { baggage: `${DEFAULT_ROUTING_KEY_CONFIG.keyName}=${KEY}` };
const PRODUCTPAGE = 'productpage.default.svc.cluster.local';
const PRODUCTPAGE_FORK = 'productpage-sb.default.svc.cluster.local';
const REVIEWS = 'reviews.default.svc.cluster.local';
const REVIEWS_FORK = 'reviews-sb.default.svc.cluster.local';
const ENABLE = 'enable the ingress guard (ingressGuard.enabled) or list the gateway in routing.gateways';

const sample = (path: string) => istioSampleObjects<KubeObject>(path);

function sandbox(...forks: string[]): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 'sb', namespace: 'default' },
    spec: { routingKey: KEY, forks: forks.map((name) => ({ forkOf: { kind: 'Deployment' as const, name } })) },
  };
}

function virtualService(namespace: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec };
}

function synth(objects: KubeObject[], forks: string[], config: Partial<PlanConfig> = {}) {
  const result = plan({ inventory: inventoryOf(objects), sandboxes: [sandbox(...forks)], config });
  expect(result.problems).toEqual([]);
  const vs = (namespace: string, name: string) => result.objects.find((o) => o.kind === 'VirtualService' && o.metadata.namespace === namespace && o.metadata.name === name);
  return { ...result, vs, virtualServices: result.objects.filter((o) => o.kind === 'VirtualService') };
}

/** Where a request goes: host (and subset) of the single destination taken. */
function target(vs: unknown, request: RouteRequest): string {
  const decision = evaluateRoute(vs, request);
  if (decision === undefined) return 'no route';
  expect(decision.destinations).toHaveLength(1);
  const d = decision.destinations[0]!;
  return d.subset === undefined ? d.host : `${d.host}/${d.subset}`;
}

const GUARD = { ingressGuard: { enabled: true } } as const;

describe.skipIf(!requireIstioSamples())("gateway-bound VirtualServices: Istio's Bookinfo ingress (bookinfo-gateway.yaml)", () => {
  const inventory = () => [
    ...sample('bookinfo/platform/kube/bookinfo.yaml'),
    ...sample('bookinfo/networking/bookinfo-gateway.yaml'),
    ...sample('bookinfo/networking/destination-rule-all.yaml'),
    ...sample('bookinfo/networking/virtual-service-all-v1.yaml'),
  ];
  const userGatewayVs = () => inventory().find((o) => o.kind === 'VirtualService' && o.metadata.name === 'bookinfo')!;
  const atGateway = (headers: Record<string, string>, uri = '/productpage'): RouteRequest => ({ headers, uri, gateway: 'default/bookinfo-gateway' });

  it('with the ingress guard on, a keyed request through the gateway reaches the productpage fork; an unkeyed one goes where it went', () => {
    const { vs, notes } = synth(inventory(), ['productpage-v1'], GUARD);
    const gatewayVs = vs('default', 'bookinfo')!;
    expect(gatewayVs).toBeDefined();
    for (const uri of ['/productpage', '/static/x.css', '/login', '/api/v1/products/0']) {
      expect(target(gatewayVs, atGateway(keyed, uri)), uri).toBe(PRODUCTPAGE_FORK);
      expect(target(gatewayVs, atGateway({}, uri)), uri).toBe('productpage');
      expect(evaluateRoute(gatewayVs, atGateway({}, uri))!.route).toEqual(evaluateRoute(userGatewayVs(), atGateway({}, uri))!.route);
    }
    expect(target(gatewayVs, atGateway(keyed, '/other'))).toBe('no route');
    // The copy keeps the user's port; the user's route is last and unchanged.
    expect(evaluateRoute(gatewayVs, atGateway(keyed))!.destinations).toEqual([{ host: PRODUCTPAGE_FORK, port: 9080 }]);
    const http = (gatewayVs.spec as { http: unknown[] }).http;
    expect(http.at(-1)).toEqual((userGatewayVs().spec as { http: unknown[] }).http[0]);
    // In the mesh, the sample's productpage VirtualService (subset v1) is merged too.
    expect(target(vs('default', 'productpage'), { headers: keyed })).toBe(`${PRODUCTPAGE_FORK}/v1`);
    expect(target(vs('default', 'productpage'), { headers: {} })).toBe('productpage/v1');
    expect(notes).toEqual([]);
  });

  it('with the ingress guard off, the gateway VirtualService is left alone and a note names it and what to enable', () => {
    const { vs, notes } = synth(inventory(), ['productpage-v1']);
    expect(vs('default', 'bookinfo')).toBeUndefined();
    expect(vs('default', 'productpage')).toBeDefined();
    expect(notes).toEqual([
      {
        object: 'VirtualService default/bookinfo',
        path: 'spec.gateways',
        message: `is bound only to gateway default/bookinfo-gateway, so requests through it with a sandbox's key for ${PRODUCTPAGE} reach the baseline; ${ENABLE}`,
      },
    ]);
  });

  it('routing.gateways decides over the default: a listed gateway gets copies, none turns them off even with the guard', () => {
    expect(synth(inventory(), ['productpage-v1'], { gateways: ['default/bookinfo-gateway'] }).vs('default', 'bookinfo')).toBeDefined();
    const other = synth(inventory(), ['productpage-v1'], { gateways: ['istio-system/ingressgateway'] });
    expect(other.vs('default', 'bookinfo')).toBeUndefined();
    expect(other.notes.map((n) => n.object)).toEqual(['VirtualService default/bookinfo']);
    const none = synth(inventory(), ['productpage-v1'], { ...GUARD, gateways: 'none' });
    expect(none.vs('default', 'bookinfo')).toBeUndefined();
    expect(none.notes.map((n) => n.object)).toEqual(['VirtualService default/bookinfo']);
  });

  it('a VirtualService bound to the mesh and a gateway gets copies limited to the mesh when gateway copies are off', () => {
    const edge = virtualService('default', 'productpage-edge', {
      hosts: ['productpage', 'bookinfo.example.com'],
      gateways: ['bookinfo-gateway', 'mesh'],
      http: [{ route: [{ destination: { host: 'productpage', port: { number: 9080 } } }] }],
    });
    const objects = [...sample('bookinfo/platform/kube/bookinfo.yaml'), edge];
    const off = synth(objects, ['productpage-v1']);
    const merged = off.vs('default', 'productpage-edge')!;
    expect(target(merged, { headers: keyed })).toBe(PRODUCTPAGE_FORK);
    expect(target(merged, { headers: {} })).toBe('productpage');
    expect(target(merged, { headers: keyed, gateway: 'default/bookinfo-gateway' })).toBe('productpage');
    const copyBlocks = (merged.spec as { http: Array<{ match?: Array<{ gateways?: string[] }> }> }).http[0]!.match ?? [];
    expect(copyBlocks.length).toBeGreaterThan(0);
    for (const block of copyBlocks) expect(block.gateways).toEqual(['mesh']);
    expect(off.notes).toEqual([
      {
        object: 'VirtualService default/productpage-edge',
        path: 'spec.gateways',
        message: `sandbox copies apply to mesh only (match gateways), so requests through default/bookinfo-gateway with a sandbox's key for ${PRODUCTPAGE} reach the baseline; ${ENABLE}`,
      },
    ]);
    // With the guard on, the copies apply wherever the user's route does.
    const on = synth(objects, ['productpage-v1'], GUARD).vs('default', 'productpage-edge')!;
    expect(target(on, { headers: keyed, gateway: 'default/bookinfo-gateway' })).toBe(PRODUCTPAGE_FORK);
    expect(target(on, { headers: keyed })).toBe(PRODUCTPAGE_FORK);
    expect(JSON.stringify(on.spec)).not.toContain('"gateways":["mesh"]');
  });

  it('an in-mesh facade host routing to the forked host gets copies', () => {
    const facade = virtualService('default', 'shop-facade', { hosts: ['shop.example.internal'], http: [{ route: [{ destination: { host: 'productpage' } }] }] });
    const { vs, notes } = synth([...sample('bookinfo/platform/kube/bookinfo.yaml'), facade], ['productpage-v1']);
    expect(target(vs('default', 'shop-facade'), { headers: keyed })).toBe(PRODUCTPAGE_FORK);
    expect(target(vs('default', 'shop-facade'), { headers: {} })).toBe('productpage');
    // productpage itself has no user mesh VirtualService: meshfork's own serves it.
    expect(target(vs('default', 'productpage-meshfork'), { headers: keyed })).toBe(PRODUCTPAGE_FORK);
    expect(notes).toEqual([]);
  });

  it('meshfork validate prints the same notes as synth', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-vs-placement-'));
    writeFileSync(join(dir, 'sandbox.yaml'), stringify(sandbox('productpage-v1')));
    const files = ['bookinfo/platform/kube/bookinfo.yaml', 'bookinfo/networking/bookinfo-gateway.yaml'].flatMap((f) => ['-f', istioSample(f)]);
    const notesOf = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('note: '));
    const synthRun = cli('synth', ...files, '-f', join(dir, 'sandbox.yaml'));
    const validateRun = cli('validate', ...files, '-f', join(dir, 'sandbox.yaml'));
    expect(synthRun.code).toBe(0);
    expect(validateRun.code).toBe(0);
    expect(notesOf(synthRun.stderr).some((l) => l.includes('VirtualService default/bookinfo') && l.includes(ENABLE))).toBe(true);
    expect(notesOf(validateRun.stderr)).toEqual(notesOf(synthRun.stderr));
  });
});

describe.skipIf(!requireIstioSamples())('delegate VirtualServices', () => {
  const bookinfo = () => [...sample('bookinfo/platform/kube/bookinfo.yaml'), ...sample('bookinfo/networking/destination-rule-all.yaml')];
  const delegate = virtualService('default', 'reviews-routes', {
    http: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] }, { route: [{ destination: { host: 'reviews', subset: 'v3' } }] }],
  });
  const gatewayRoot = virtualService('ingress', 'bookinfo-root', {
    hosts: ['bookinfo.example.com'],
    gateways: ['istio-system/ingressgateway'],
    http: [{ match: [{ uri: { prefix: '/reviews' } }], delegate: { name: 'reviews-routes', namespace: 'default' } }, { route: [{ destination: { host: 'productpage.default.svc.cluster.local' } }] }],
  });
  const meshRoot = virtualService('default', 'reviews', { hosts: ['reviews'], http: [{ delegate: { name: 'reviews-routes' } }] });
  const GW = 'istio-system/ingressgateway';

  it('the delegate holding the routes gets the copies: through a gateway root (guard on) keyed -> fork, jason keeps v2 (not forked), unkeyed as before', () => {
    const { vs, notes } = synth([...bookinfo(), gatewayRoot, delegate], ['reviews-v3'], GUARD);
    expect(vs('ingress', 'bookinfo-root')).toBeUndefined(); // the root has no route to reviews
    const merged = vs('default', 'reviews-routes')!;
    expect((merged.spec as { hosts?: unknown }).hosts).toBeUndefined();
    const istiod = mergeDelegates(gatewayRoot, [merged]);
    const before = mergeDelegates(gatewayRoot, [delegate]);
    const at = (headers: Record<string, string>, uri = '/reviews/0'): RouteRequest => ({ headers, uri, gateway: GW });
    expect(target(istiod, at(keyed))).toBe(`${REVIEWS_FORK}/v3`);
    expect(target(istiod, at({ ...keyed, 'end-user': 'jason' }))).toBe('reviews/v2');
    expect(target(istiod, at({}))).toBe('reviews/v3');
    expect(target(istiod, at({ 'end-user': 'jason' }))).toBe('reviews/v2');
    expect(target(istiod, at(keyed, '/productpage'))).toBe(PRODUCTPAGE);
    for (const headers of [{}, { 'end-user': 'jason' }] as Array<Record<string, string>>) expect(evaluateRoute(istiod, at(headers))!.route).toEqual(evaluateRoute(before, at(headers))!.route);
    // The reviews host has no mesh VirtualService: meshfork's own routes sidecars.
    expect(target(vs('default', 'reviews-meshfork'), { headers: keyed })).toBe(REVIEWS_FORK);
    expect(notes).toEqual([]);
  });

  it('a delegate reached only through a gateway root is left alone with the guard off, and a note names it', () => {
    const { vs, notes } = synth([...bookinfo(), gatewayRoot, delegate], ['reviews-v3']);
    expect(vs('default', 'reviews-routes')).toBeUndefined();
    expect(notes).toEqual([
      {
        object: 'VirtualService default/reviews-routes',
        path: 'metadata.name',
        message: `is a delegate of VirtualService ingress/bookinfo-root, bound only to gateway ${GW}, so requests through it with a sandbox's key for ${REVIEWS} reach the baseline; ${ENABLE}`,
      },
    ]);
  });

  it('a delegate of a mesh root is merged without the guard: sidecars route keyed requests to the fork', () => {
    const { vs, notes } = synth([...bookinfo(), meshRoot, delegate], ['reviews-v3']);
    expect(vs('default', 'reviews')).toBeUndefined();
    expect(vs('default', 'reviews-meshfork')).toBeUndefined(); // the root is the mesh VirtualService of reviews
    const istiod = mergeDelegates(meshRoot, [vs('default', 'reviews-routes')!]);
    expect(target(istiod, { headers: keyed })).toBe(`${REVIEWS_FORK}/v3`);
    expect(target(istiod, { headers: {} })).toBe('reviews/v3');
    expect(target(istiod, { headers: { ...keyed, 'end-user': 'jason' } })).toBe('reviews/v2');
    expect(notes).toEqual([]);
  });
});

describe.skipIf(!requireIstioSamples())('exportTo: scoped VirtualServices', () => {
  const client = (namespace: string): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'client', namespace },
    spec: { selector: { matchLabels: { app: 'client' } }, template: { metadata: { labels: { app: 'client' } }, spec: { containers: [{ name: 'c', image: 'curl' }] } } },
  });
  const objects = () => [...sample('bookinfo/platform/kube/bookinfo.yaml'), ...sample('bookinfo/networking/destination-rule-all.yaml'), client('shop')];
  const local = virtualService('default', 'reviews', { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] });

  it("clients in the VirtualService's namespace use the merged one, others meshfork's own, exported only where no user VirtualService is visible", () => {
    const { vs, virtualServices, notes } = synth([...objects(), local], ['reviews-v3']);
    expect((vs('default', 'reviews-meshfork')!.spec as { exportTo?: unknown }).exportTo).toEqual(['shop']);
    const inDefault = visibleVirtualService(virtualServices, REVIEWS, 'default')!;
    const inShop = visibleVirtualService(virtualServices, REVIEWS, 'shop')!;
    expect(inDefault.metadata).toMatchObject({ namespace: 'default', name: 'reviews' });
    expect(inShop.metadata).toMatchObject({ namespace: 'default', name: 'reviews-meshfork' });
    expect(target(inDefault, { headers: keyed })).toBe(`${REVIEWS_FORK}/v3`);
    expect(target(inDefault, { headers: {} })).toBe('reviews/v3');
    expect(target(inShop, { headers: keyed })).toBe(REVIEWS_FORK);
    expect(target(inShop, { headers: {} })).toBe(REVIEWS);
    // Before meshfork, shop had no VirtualService for reviews (default routing to the Service).
    expect(visibleVirtualService([local], REVIEWS, 'shop')).toBeUndefined();
    expect(notes).toEqual([
      {
        object: 'VirtualService default/reviews',
        path: 'spec.exportTo',
        message: `the user VirtualServices of ${REVIEWS} are exported only to some namespaces (VirtualService default/reviews to default), and get the sandbox routes there; meshfork's VirtualService default/reviews-meshfork carries them for shop. Clients in namespaces meshfork was not shown reach the baseline with a sandbox's key until it plans again with them`,
      },
    ]);
  });

  it('disjoint scopes: both merged, no IST0109 note, no VirtualService of meshfork when every known namespace has one', () => {
    const shopVs = virtualService('shop', 'reviews-shop', { hosts: [REVIEWS], exportTo: ['.'], http: [{ route: [{ destination: { host: REVIEWS, subset: 'v1' } }] }] });
    const { vs, virtualServices, notes } = synth([...objects(), local, shopVs], ['reviews-v1']);
    expect(vs('default', 'reviews-meshfork')).toBeUndefined();
    expect(target(visibleVirtualService(virtualServices, REVIEWS, 'shop'), { headers: keyed })).toBe(`${REVIEWS_FORK}/v1`);
    expect(target(visibleVirtualService(virtualServices, REVIEWS, 'shop'), { headers: {} })).toBe(`${REVIEWS}/v1`);
    expect(notes.filter((n) => n.message.includes('IST0109'))).toEqual([]);
    expect(notes.map((n) => n.path)).toEqual(['spec.exportTo', 'spec.http[0]']);
  });

  it('overlapping scopes get the IST0109 note naming the namespace they share', () => {
    const wide = virtualService('default', 'reviews', { ...(local.spec as object), exportTo: ['.', 'shop'] });
    const shopVs = virtualService('shop', 'reviews-shop', { hosts: [REVIEWS], exportTo: ['.'], http: [{ route: [{ destination: { host: REVIEWS, subset: 'v3' } }] }] });
    const { notes } = synth([...objects(), wide, shopVs], ['reviews-v3']);
    expect(notes.filter((n) => n.message.includes('IST0109'))).toEqual([
      {
        object: 'VirtualService shop/reviews-shop',
        path: 'spec.exportTo',
        message: `2 VirtualServices route ${REVIEWS} for sidecars of namespace shop; Istio uses one per namespace (namespace-local first, then exported, then public; the oldest within each) and istioctl analyze reports IST0109. meshfork adds its routes to each`,
      },
    ]);
  });
});

describe('routing.gateways in the configuration file', () => {
  it('all, none and a list are read; the default follows the ingress guard', () => {
    expect(resolveConfig({ routing: { gateways: 'all' } }, {}).config?.gateways).toBe('all');
    expect(resolveConfig({ routing: { gateways: ['istio-system/ingressgateway'] } }, {}).config?.gateways).toEqual(['istio-system/ingressgateway']);
    expect(resolveConfig({}, {}).config?.gateways).toBeUndefined();
  });

  it('anything else is one problem naming the field (or the entry)', () => {
    const rule = 'must be "all", "none" or a list of distinct gateway names <namespace>/<name> (e.g. istio-system/ingressgateway)';
    expect(resolveConfig({ routing: { gateways: 'some' } }, {})).toEqual({ problems: [{ path: 'routing.gateways', message: rule }] });
    expect(resolveConfig({ routing: { gateways: ['istio-system/ingressgateway', 'bookinfo-gateway'] } }, {})).toEqual({
      problems: [{ path: 'routing.gateways[1]', message: `"bookinfo-gateway" is not a gateway name <namespace>/<name>; routing.gateways ${rule}` }],
    });
    expect(resolveConfig({ routing: { gateways: ['a/b', 'a/b'] } }, {})).toEqual({ problems: [{ path: 'routing.gateways', message: rule }] });
  });
});

describe.skipIf(!requireIstioSamples())('placement with mirrors, sourceLabels and catch-alls (ADR 0008 with ADR 0009)', () => {
  const RATINGS_FORK = 'ratings-sb.default.svc.cluster.local';
  const GW = 'istio-system/ingressgateway';
  const bookinfo = () => [
    ...sample('bookinfo/platform/kube/bookinfo.yaml'),
    ...sample('bookinfo/platform/kube/bookinfo-ratings-v2.yaml'),
    ...sample('bookinfo/networking/destination-rule-all.yaml'),
  ];

  it('a gateway-bound VirtualService whose route only mirrors to a forked host gets copies mirroring keyed requests to the fork (guard on), a note without', () => {
    const edge = virtualService('default', 'edge', {
      hosts: ['*'],
      gateways: [GW],
      http: [{ route: [{ destination: { host: 'productpage', port: { number: 9080 } } }], mirror: { host: 'reviews' } }],
    });
    const at = (headers: Record<string, string>): RouteRequest => ({ headers, gateway: GW });
    const on = synth([...bookinfo(), edge], ['reviews-v1'], GUARD);
    const merged = on.vs('default', 'edge')!;
    expect(evaluateRoute(merged, at(keyed))).toMatchObject({ routeName: 'meshfork-sb-0', destinations: [{ host: 'productpage', port: 9080 }], mirrors: [{ host: REVIEWS_FORK, percentage: 100 }] });
    expect(evaluateRoute(merged, at({}))).toMatchObject({ destinations: [{ host: 'productpage', port: 9080 }], mirrors: [{ host: 'reviews', percentage: 100 }] });
    const off = synth([...bookinfo(), edge], ['reviews-v1']);
    expect(off.vs('default', 'edge')).toBeUndefined();
    expect(off.notes).toEqual([
      { object: 'VirtualService default/edge', path: 'spec.gateways', message: `is bound only to gateway ${GW}, so requests through it with a sandbox's key for ${REVIEWS} reach the baseline; ${ENABLE}` },
    ]);
  });

  it('mesh + gateway VirtualService with gateway copies off: sandbox copies limited to the mesh, the fork as a client routed as its baseline (meshfork-source, unlimited), nothing after the catch-all', () => {
    const ratings = virtualService('default', 'ratings', {
      hosts: ['ratings'],
      gateways: ['mesh', GW],
      http: [
        { name: 'from-reviews-v2', match: [{ sourceLabels: { app: 'reviews', version: 'v2' } }], route: [{ destination: { host: 'ratings', subset: 'v2' } }] },
        { name: 'default', route: [{ destination: { host: 'ratings', subset: 'v1' } }] },
        { name: 'dead', match: [{ uri: { prefix: '/x' } }], route: [{ destination: { host: 'ratings', subset: 'v1' } }] },
      ],
    });
    const { vs, notes, objects } = synth([...bookinfo(), ratings], ['reviews-v2', 'ratings-v1']);
    const merged = vs('default', 'ratings')!;
    const http = (merged.spec as { http: Array<{ name?: string; match?: unknown[] }> }).http;
    expect(http.map((r) => r.name)).toEqual(['meshfork-source-0', 'from-reviews-v2', 'meshfork-sb-1', 'default', 'dead']);
    expect(http[0]!.match).toEqual([{ sourceLabels: { app: 'reviews-sb', version: 'v2-sb', 'meshfork.dev/sandbox': 'sb' }, sourceNamespace: 'default' }]);
    const forkLabels = podTemplateLabels(objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'reviews-v2-sb')!);
    const fromFork = { sourceLabels: forkLabels, sourceNamespace: 'default' };
    const fromV1 = { sourceLabels: { app: 'reviews', version: 'v1' }, sourceNamespace: 'default' };
    const fromGateway = { sourceLabels: { app: 'istio-ingressgateway' }, sourceNamespace: 'istio-system', gateway: GW };
    // The fork of reviews-v2 as a client, keyed or not: ratings v2, as reviews-v2 would.
    expect(target(merged, { ...fromFork, headers: {} })).toBe('ratings/v2');
    expect(target(merged, { ...fromFork, headers: keyed })).toBe('ratings/v2');
    // Other sidecars: keyed -> the ratings fork (v1 subset), unkeyed as before.
    expect(target(merged, { ...fromV1, headers: keyed })).toBe(`${RATINGS_FORK}/v1`);
    expect(target(merged, { ...fromV1, headers: {} })).toBe('ratings/v1');
    // Through the gateway (not allowed): keyed requests reach the baseline.
    expect(target(merged, { ...fromGateway, headers: keyed })).toBe('ratings/v1');
    expect(notes).toEqual([
      {
        object: 'VirtualService default/ratings',
        path: 'spec.gateways',
        message: `sandbox copies apply to mesh only (match gateways), so requests through ${GW} with a sandbox's key for ratings.default.svc.cluster.local reach the baseline; ${ENABLE}`,
      },
      {
        object: 'VirtualService default/ratings',
        path: 'spec.http[0]',
        message: `sandbox "sb": match blocks with sourceLabels or sourceNamespace get no copy: the copy must name gateways (mesh) to stay off the other gateways, and istiod then ignores sourceLabels and sourceNamespace`,
      },
      {
        object: 'VirtualService default/ratings',
        path: 'spec.http[1]',
        message: 'matches every request, so no later route is ever taken; meshfork writes no copies of spec.http[2] after it (they would never match): every request, keyed or not, takes this route',
      },
    ]);
  });
});

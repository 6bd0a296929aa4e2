// The host-level answers of `meshfork routes` (src/routing/host-routes.ts): which VirtualService a
// proxy uses, the routes in order with their owners, subsets resolved through DestinationRules,
// delegates merged, the default route, and the route a request takes. Exact results.
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/planner/kube.js';
import { baggageMemberRegex, noMemberRegex, tracestateMemberRegex } from '../../src/planner/routing-key.js';
import { routeOwner } from '../../src/planner/virtual-service.js';
import { RouteEvalError } from '../../src/routing/evaluate.js';
import { UnknownHostError, describeKeyRegex, destinationRuleFor, hostRoutes, traceRequest, type RoutingObjects } from '../../src/routing/host-routes.js';

const REVIEWS = 'reviews.default.svc.cluster.local';

const vs = (name: string, namespace: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace, ...metadata }, spec }) as KubeObject;
const dr = (name: string, namespace: string, host: string, subsets: Record<string, Record<string, string>>, extra: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace }, spec: { host, subsets: Object.entries(subsets).map(([n, labels]) => ({ name: n, labels })), ...extra } }) as KubeObject;
const service = (name: string, namespace: string): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector: { app: name } } }) as KubeObject;

const to = (host: string, subset?: string, weight?: number) => ({ destination: { host, ...(subset ? { subset } : {}) }, ...(weight !== undefined ? { weight } : {}) });

function objects(virtualServices: KubeObject[], destinationRules: KubeObject[] = [], services: KubeObject[] = [service('reviews', 'default')]): RoutingObjects {
  return { virtualServices, destinationRules, services };
}

describe('routeOwner (route names meshfork writes)', () => {
  it('tells sandbox copies, meshfork routes of no sandbox and user routes apart', () => {
    expect(['meshfork-one-0', 'meshfork-star-ratings-12', 'meshfork-baseline', 'meshfork-split-3', 'meshfork-source-0', 'meshfork-x', 'meshfork-one-01', 'reviews-v2', undefined].map(routeOwner)).toEqual([
      { sandbox: 'one' },
      { sandbox: 'star-ratings' },
      { meshfork: 'baseline' },
      { meshfork: 'split' },
      { meshfork: 'source' },
      { user: true },
      { user: true },
      { user: true },
      { user: true },
    ]);
  });
});

describe('describeKeyRegex', () => {
  it("names the planner's key regexes, and only those", () => {
    expect(describeKeyRegex('baggage', baggageMemberRegex('meshfork-routing-key', 'k1one'), [])).toBe('baggage has meshfork-routing-key=k1one');
    expect(describeKeyRegex('tracestate', tracestateMemberRegex('sd.key', 'abcd'), [])).toBe('tracestate has sd.key=abcd');
    expect(describeKeyRegex('baggage', noMemberRegex('baggage', 'meshfork-routing-key'), ['meshfork-routing-key'])).toBe('baggage lacks meshfork-routing-key');
    // The tracestate regex under the baggage header is not the baggage regex: not recognised.
    expect(describeKeyRegex('baggage', tracestateMemberRegex('meshfork-routing-key', 'k1one'), ['meshfork-routing-key'])).toBeUndefined();
    // A look-alike that differs anywhere (here: no property part) is shown as written.
    expect(describeKeyRegex('baggage', baggageMemberRegex('meshfork-routing-key', 'k1one').replace('(?:;[^,]*)?', ''), [])).toBeUndefined();
    expect(describeKeyRegex('x-key', baggageMemberRegex('meshfork-routing-key', 'k1one'), [])).toBeUndefined();
  });
});

describe('hostRoutes', () => {
  const jason = { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [to('reviews', 'v2')] };

  it('lists the routes of the visible VirtualService in order, owners, shares and subsets resolved', () => {
    const routes = objects(
      [
        vs('reviews', 'default', {
          hosts: ['reviews'],
          http: [
            { name: 'meshfork-one-0', match: [{ headers: { baggage: { regex: baggageMemberRegex('meshfork-routing-key', 'k1one') } } }], route: [to('reviews-one.default.svc.cluster.local', 'v2')] },
            jason,
            { route: [to('reviews', 'v1', 90), to('reviews', 'v3', 10)], mirror: { host: 'reviews', subset: 'v9' }, mirrorPercentage: { value: 5 } },
          ],
        }),
      ],
      [dr('reviews', 'default', 'reviews', { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } })],
    );
    expect(hostRoutes(routes, REVIEWS, { namespace: 'default' })).toEqual({
      host: REVIEWS,
      virtualService: 'default/reviews',
      delegates: [],
      routes: [
        {
          index: 0,
          name: 'meshfork-one-0',
          owner: { sandbox: 'one' },
          match: ['baggage has meshfork-routing-key=k1one'],
          action: 'route',
          destinations: [{ host: 'reviews-one.default.svc.cluster.local', subset: 'v2', share: 100, problem: 'no DestinationRule for reviews-one.default.svc.cluster.local visible from namespace default defines subset "v2": requests fail with 503 (NC)' }],
          mirrors: [],
        },
        { index: 1, owner: { user: true }, match: ['end-user exact "jason"'], action: 'route', destinations: [{ host: REVIEWS, subset: 'v2', share: 100, destinationRule: 'default/reviews', subsetLabels: { version: 'v2' } }], mirrors: [] },
        {
          index: 2,
          owner: { user: true },
          match: [],
          action: 'route',
          destinations: [
            { host: REVIEWS, subset: 'v1', weight: 90, share: 90, destinationRule: 'default/reviews', subsetLabels: { version: 'v1' } },
            { host: REVIEWS, subset: 'v3', weight: 10, share: 10, destinationRule: 'default/reviews', subsetLabels: { version: 'v3' } },
          ],
          mirrors: [{ host: REVIEWS, subset: 'v9', percentage: 5 }],
        },
      ],
    });
  });

  it("uses Istio's default route to the Service without a VirtualService, and refuses a host nothing routes", () => {
    expect(hostRoutes(objects([]), REVIEWS, { namespace: 'default' })).toEqual({
      host: REVIEWS,
      delegates: [],
      routes: [{ index: 0, owner: { user: true }, match: [], action: 'route', destinations: [{ host: REVIEWS, share: 100 }], mirrors: [] }],
    });
    expect(() => hostRoutes(objects([]), 'nowhere.default.svc.cluster.local', { namespace: 'default' })).toThrow(
      new UnknownHostError('no VirtualService for nowhere.default.svc.cluster.local applies to sidecars of namespace default and no Service has that host'),
    );
    // A gateway routes nothing without a VirtualService bound to it, Service or not.
    expect(() => hostRoutes(objects([vs('reviews', 'default', { hosts: ['reviews'], http: [jason] })]), REVIEWS, { namespace: 'istio-system', gateway: 'istio-system/ingress' })).toThrow(
      new UnknownHostError(`no VirtualService for ${REVIEWS} applies to gateway istio-system/ingress`),
    );
  });

  it('picks the VirtualService the proxy uses: exportTo, own namespace first, oldest, exact host before wildcard', () => {
    const older = vs('b-older', 'default', { hosts: ['reviews'], http: [{ name: 'older', route: [to('reviews')] }] }, { creationTimestamp: '2026-01-01T00:00:00Z' });
    const newer = vs('a-newer', 'default', { hosts: ['reviews'], http: [{ name: 'newer', route: [to('reviews')] }] }, { creationTimestamp: '2026-02-01T00:00:00Z' });
    const scoped = vs('scoped', 'shop', { hosts: [REVIEWS], exportTo: ['.'], http: [{ name: 'scoped', route: [to(REVIEWS)] }] });
    const wildcard = vs('wild', 'default', { hosts: ['*.svc.cluster.local'], http: [{ name: 'wild', route: [to(REVIEWS)] }] });
    const first = (list: KubeObject[], namespace: string) => hostRoutes(objects(list), REVIEWS, { namespace }).routes[0]?.name;
    expect(first([newer, older], 'default')).toBe('older');
    expect(first([newer, older, scoped], 'shop')).toBe('scoped');
    expect(first([newer, older, scoped], 'default')).toBe('older');
    expect(first([wildcard, newer], 'default')).toBe('newer');
    expect(first([wildcard], 'default')).toBe('wild');
  });

  it('merges delegates in place of the routes that name them', () => {
    const root = vs('root', 'default', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/api' } }], delegate: { name: 'api', namespace: 'team' } }, { name: 'rest', route: [to('reviews', 'v1')] }] });
    const api = vs('api', 'team', { http: [{ name: 'v2', match: [{ uri: { prefix: '/api/v2' } }], route: [to('reviews.default.svc.cluster.local', 'v2')] }, { name: 'other', route: [to('reviews.default.svc.cluster.local', 'v1')] }] });
    const table = hostRoutes(objects([root, api], [dr('reviews', 'default', 'reviews', { v1: { version: 'v1' }, v2: { version: 'v2' } })]), REVIEWS, { namespace: 'default' });
    expect([table.virtualService, table.delegates]).toEqual(['default/root', ['team/api']]);
    expect(table.routes.map((r) => [r.index, r.name, r.match, r.destinations.map((d) => `${d.host}/${d.subset}`)])).toEqual([
      [0, 'v2', ['uri prefix "/api/v2"'], [`${REVIEWS}/v2`]],
      [1, 'other', ['uri prefix "/api"'], [`${REVIEWS}/v1`]],
      [2, 'rest', [], [`${REVIEWS}/v1`]],
    ]);
    // With the delegate missing, the root route that names it is dropped (istiod does the same).
    expect(hostRoutes(objects([root]), REVIEWS, { namespace: 'default' }).routes.map((r) => r.name)).toEqual(['rest']);
  });
});

describe('destinationRuleFor (the DestinationRule a proxy applies to a host)', () => {
  const inClient = dr('client', 'shop', REVIEWS, { v1: { version: 'v1' } });
  const inService = dr('service', 'default', 'reviews', { v1: { version: 'v1' } });
  const inRoot = dr('root', 'istio-system', REVIEWS, { v1: { version: 'v1' } });
  const private_ = dr('private', 'default', 'reviews', { v1: { version: 'v1' } }, { exportTo: ['.'] });
  it("client's namespace, then the host's, then the root namespace; exportTo respected", () => {
    const name = (list: KubeObject[], namespace: string) => destinationRuleFor(list, REVIEWS, namespace)?.metadata.name;
    expect(name([inRoot, inService, inClient], 'shop')).toBe('client');
    expect(name([inRoot, inService, inClient], 'web')).toBe('service');
    expect(name([inRoot, private_], 'web')).toBe('root');
    expect(name([inRoot, private_], 'default')).toBe('private');
    expect(name([private_], 'web')).toBeUndefined();
  });
});

describe('traceRequest', () => {
  const keyed = { name: 'meshfork-one-0', match: [{ headers: { baggage: { regex: baggageMemberRegex('meshfork-routing-key', 'k1one') } } }], route: [to('reviews-one')] };
  const bySource = { name: 'from-web', match: [{ sourceLabels: { app: 'web' } }], route: [to('reviews', 'v3')] };
  const base = { name: 'meshfork-baseline', route: [to('reviews')] };
  const routing = objects([vs('reviews', 'default', { hosts: ['reviews'], http: [keyed, bySource, base] })]);

  it('takes the first route whose match holds (RE2 full match on the joined header)', () => {
    const taken = (headers: Record<string, string | string[]>, sourceLabels: Record<string, string> = {}) => {
      const t = traceRequest(routing, REVIEWS, { namespace: 'default' }, { headers, sourceLabels });
      return [t.taken?.name, t.matchIndex];
    };
    expect(taken({ baggage: 'meshfork-routing-key=k1one' })).toEqual(['meshfork-one-0', 0]);
    expect(taken({ baggage: ['a=b', 'meshfork-routing-key = k1one ;p'] })).toEqual(['meshfork-one-0', 0]);
    expect(taken({ baggage: 'meshfork-routing-key=k1onex' })).toEqual(['meshfork-baseline', undefined]);
    expect(taken({ baggage: 'meshfork-routing-key=k1onex' }, { app: 'web', version: 'v1' })).toEqual(['from-web', 0]);
    expect(traceRequest(routing, REVIEWS, { namespace: 'default' }, { headers: {}, sourceLabels: {} }).taken?.destinations).toEqual([{ host: REVIEWS, share: 100 }]);
  });

  it('answers no route when none matches, and throws what it cannot decide', () => {
    const onlyKeyed = objects([vs('reviews', 'default', { hosts: ['reviews'], http: [keyed] })]);
    const none = traceRequest(onlyKeyed, REVIEWS, { namespace: 'default' }, { headers: {} });
    expect([none.taken, none.routes.length]).toEqual([undefined, 1]);
    // A route on sourceLabels with no client labels given: the evaluator says which input it needs.
    expect(() => traceRequest(routing, REVIEWS, { namespace: 'default' }, { headers: {} })).toThrow(RouteEvalError);
    expect(() => traceRequest(routing, REVIEWS, { namespace: 'default' }, { headers: {} })).toThrow('route-eval: spec.http[1].match[0].sourceLabels is set: the request must give sourceLabels');
  });

  it('routes as a gateway when asked (a VirtualService bound to it; match-level gateways)', () => {
    const ingress = vs('bookinfo', 'default', {
      hosts: ['*'],
      gateways: ['bookinfo-gateway', 'mesh'],
      http: [{ name: 'page', match: [{ uri: { exact: '/productpage' }, gateways: ['bookinfo-gateway'] }], route: [to('productpage')] }, { name: 'rest', route: [to('reviews')] }],
    });
    const o = objects([ingress], [], [service('reviews', 'default'), service('productpage', 'default')]);
    const at = (gateway: string | undefined) => traceRequest(o, 'bookinfo.example.com', { namespace: 'default', ...(gateway ? { gateway } : {}) }, { headers: {}, uri: '/productpage' }).taken?.name;
    expect(at('default/bookinfo-gateway')).toBe('page');
    expect(at(undefined)).toBe('rest');
  });
});

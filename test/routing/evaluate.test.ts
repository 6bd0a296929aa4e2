import { describe, expect, it } from 'vitest';
// The route evaluator (src/routing/evaluate.ts): Istio's first-match semantics, header match
// types, RE2, sourceLabels, gateways, mirrors, weights, VirtualService visibility. Exact results.
import {
  RouteEvalError,
  destinationShares,
  evaluateRoute,
  joinedHeader,
  pickDestination,
  re2FullMatch,
  routeAction,
  virtualServiceGateways,
  visibleVirtualService,
  type RouteRequest,
} from '../../src/routing/evaluate.js';

/** A VS for host `svc` whose routes are `routes`; route i goes to subset `r<i>` unless given. */
function vs(routes: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'svc', namespace: 'ns' },
    spec: {
      hosts: ['svc'],
      ...extra,
      http: routes.map((r, i) => ({ route: [{ destination: { host: 'svc', subset: `r${i}` } }], ...r })),
    },
  };
}

function routeOf(v: unknown, req: Partial<RouteRequest> & { headers?: RouteRequest['headers'] }): number | undefined {
  return evaluateRoute(v, { headers: {}, ...req })?.routeIndex;
}

describe('re2FullMatch (Envoy safe_regex is a full match)', () => {
  it('requires the whole value to match', () => {
    expect(re2FullMatch('b', 'abc')).toBe(false);
    expect(re2FullMatch('b', 'b')).toBe(true);
    expect(re2FullMatch('.*b.*', 'abc')).toBe(true);
    // A top-level alternation is anchored as a whole: ^(?:a|b)$.
    expect(re2FullMatch('a|bc', 'abc')).toBe(false);
    expect(re2FullMatch('a|bc', 'bc')).toBe(true);
    // `$` is end of text (RE2 without the m flag), and `.` does not match a newline.
    expect(re2FullMatch('a', 'a\n')).toBe(false);
    expect(re2FullMatch('a.b', 'a\nb')).toBe(false);
  });
  it('rejects syntax RE2 does not have', () => {
    expect(() => re2FullMatch('(?=a)a', 'a')).toThrow();
    expect(() => re2FullMatch('\\u0061', 'a')).toThrow(/RE2 does not support/);
    expect(() => re2FullMatch('(a', 'a')).toThrow();
  });
});

describe('joinedHeader', () => {
  it('joins repeated headers with "," in order, across name casings', () => {
    expect(joinedHeader({ baggage: ['a=1', 'b=2'] }, 'baggage')).toBe('a=1,b=2');
    expect(joinedHeader({ Baggage: 'a=1', BAGGAGE: ['b=2', ''] }, 'baggage')).toBe('a=1,b=2,');
    expect(joinedHeader({ other: 'x' }, 'baggage')).toBeUndefined();
    expect(joinedHeader({ baggage: '' }, 'baggage')).toBe('');
  });
});

describe('evaluateRoute: headers', () => {
  it('exact is a whole, case-sensitive value match', () => {
    const v = vs([{ match: [{ headers: { 'end-user': { exact: 'jason' } } }] }, {}]);
    expect(routeOf(v, { headers: { 'end-user': 'jason' } })).toBe(0);
    expect(routeOf(v, { headers: { 'End-User': 'jason' } })).toBe(0); // header names are case-insensitive
    expect(routeOf(v, { headers: { 'end-user': 'Jason' } })).toBe(1);
    expect(routeOf(v, { headers: { 'end-user': 'jasonx' } })).toBe(1);
    expect(routeOf(v, { headers: { 'end-user': ' jason' } })).toBe(1);
    expect(routeOf(v, { headers: {} })).toBe(1);
    // Repeated headers are matched joined: "jason,jason" is not "jason".
    expect(routeOf(v, { headers: { 'end-user': ['jason', 'jason'] } })).toBe(1);
  });

  it('prefix matches the start of the joined value', () => {
    const v = vs([{ match: [{ headers: { x: { prefix: 'ab' } } }] }, {}]);
    expect(routeOf(v, { headers: { x: 'abc' } })).toBe(0);
    expect(routeOf(v, { headers: { x: 'xab' } })).toBe(1);
    expect(routeOf(v, { headers: { x: ['zz', 'ab'] } })).toBe(1);
    expect(routeOf(v, { headers: { x: ['ab', 'zz'] } })).toBe(0);
    // An empty prefix matches any present value but not an absent header.
    const p = vs([{ match: [{ headers: { x: { prefix: '' } } }] }, {}]);
    expect(routeOf(p, { headers: { x: '' } })).toBe(0);
    expect(routeOf(p, { headers: {} })).toBe(1);
  });

  it('regex must match the whole value (abc does not match b)', () => {
    const v = vs([{ match: [{ headers: { x: { regex: 'b' } } }] }, {}]);
    expect(routeOf(v, { headers: { x: 'abc' } })).toBe(1);
    expect(routeOf(v, { headers: { x: 'b' } })).toBe(0);
    const any = vs([{ match: [{ headers: { x: { regex: '.*b.*' } } }] }, {}]);
    expect(routeOf(any, { headers: { x: 'abc' } })).toBe(0);
  });

  it('regex sees repeated headers joined with ","', () => {
    const v = vs([{ match: [{ headers: { baggage: { regex: 'a=1,b=2' } } }] }, {}]);
    expect(routeOf(v, { headers: { baggage: ['a=1', 'b=2'] } })).toBe(0);
    expect(routeOf(v, { headers: { baggage: 'a=1,b=2' } })).toBe(0);
    expect(routeOf(v, { headers: { baggage: ['b=2', 'a=1'] } })).toBe(1);
    expect(routeOf(v, { headers: { baggage: 'a=1, b=2' } })).toBe(1);
  });

  it('an empty StringMatch and regex "*" are presence matches (Istio canBeConvertedToPresentMatch)', () => {
    for (const m of [{}, { regex: '*' }, null]) {
      const v = vs([{ match: [{ headers: { x: m } }] }, {}]);
      expect(routeOf(v, { headers: { x: '' } })).toBe(0);
      expect(routeOf(v, { headers: { x: 'anything' } })).toBe(0);
      expect(routeOf(v, { headers: {} })).toBe(1);
    }
  });

  it('upper-case header names in the VS are matched lower-cased (Envoy LowerCaseString)', () => {
    const v = vs([{ match: [{ headers: { 'X-User': { exact: 'a' } } }] }, {}]);
    expect(routeOf(v, { headers: { 'x-user': 'a' } })).toBe(0);
  });
});

describe('evaluateRoute: blocks, order, catch-all', () => {
  it('ANDs the conditions of one block', () => {
    const v = vs([{ match: [{ headers: { a: { exact: '1' }, b: { exact: '2' } }, uri: { prefix: '/api' } }] }, {}]);
    expect(routeOf(v, { headers: { a: '1', b: '2' }, uri: '/api/x' })).toBe(0);
    expect(routeOf(v, { headers: { a: '1' }, uri: '/api/x' })).toBe(1);
    expect(routeOf(v, { headers: { b: '2' }, uri: '/api/x' })).toBe(1);
    expect(routeOf(v, { headers: { a: '1', b: '2' }, uri: '/web' })).toBe(1);
  });

  it('ORs the blocks of one route and reports the first block that matched', () => {
    const v = vs([{ match: [{ headers: { a: { exact: '1' } } }, { headers: { b: { exact: '2' } } }] }, {}]);
    expect(evaluateRoute(v, { headers: { a: '1' } })?.matchIndex).toBe(0);
    expect(evaluateRoute(v, { headers: { b: '2' } })?.matchIndex).toBe(1);
    expect(evaluateRoute(v, { headers: { a: '1', b: '2' } })?.matchIndex).toBe(0);
    expect(routeOf(v, { headers: { a: '2', b: '1' } })).toBe(1);
  });

  it('takes the first matching route, in order', () => {
    const v = vs([
      { name: 'first', match: [{ headers: { a: { exact: '1' } } }] },
      { name: 'second', match: [{ headers: { a: { prefix: '' } } }] },
      { name: 'rest' },
      { name: 'unreachable', match: [{ headers: { z: { exact: '1' } } }] },
    ]);
    expect(evaluateRoute(v, { headers: { a: '1', z: '1' } })).toMatchObject({ routeIndex: 0, routeName: 'first' });
    expect(evaluateRoute(v, { headers: { a: '2', z: '1' } })).toMatchObject({ routeIndex: 1, routeName: 'second' });
    expect(evaluateRoute(v, { headers: { z: '1' } })).toMatchObject({ routeIndex: 2, routeName: 'rest', matchIndex: undefined });
  });

  it('a route without match, with match: [] or with an empty block matches everything', () => {
    for (const r of [{}, { match: [] }, { match: [{}] }]) {
      expect(routeOf(vs([r]), { headers: { anything: 'x' }, uri: '/x?y=1' })).toBe(0);
    }
  });

  it('returns undefined when nothing matches (Envoy 404)', () => {
    const v = vs([{ match: [{ headers: { a: { exact: '1' } } }] }]);
    expect(evaluateRoute(v, { headers: {} })).toBeUndefined();
  });

  it('returns the destinations of the route taken', () => {
    const v = {
      metadata: { name: 'reviews' },
      spec: {
        hosts: ['reviews'],
        http: [
          {
            name: 'split',
            route: [
              { destination: { host: 'reviews', subset: 'v1', port: { number: 9080 } }, weight: 75 },
              { destination: { host: 'reviews-fork' }, weight: 25 },
            ],
          },
        ],
      },
    };
    expect(evaluateRoute(v, { headers: {} })).toMatchObject({
      routeIndex: 0,
      action: 'route',
      destinations: [
        { host: 'reviews', subset: 'v1', port: 9080, weight: 75 },
        { host: 'reviews-fork', weight: 25 },
      ],
    });
  });

  it('reports redirect and directResponse routes', () => {
    const v = vs([
      { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new' } },
      { match: [{ uri: { exact: '/teapot' } }], directResponse: { status: 418 } },
    ]);
    expect(evaluateRoute(v, { headers: {}, uri: '/old' })).toMatchObject({ action: 'redirect', destinations: [] });
    expect(evaluateRoute(v, { headers: {}, uri: '/teapot' })).toMatchObject({ action: 'directResponse', destinations: [] });
  });
});

describe('evaluateRoute: mirrors (istiod MirrorPercent / MirrorPercentByPolicy)', () => {
  const mirrorsOf = (route: Record<string, unknown>) => evaluateRoute(vs([route]), { headers: {} })?.mirrors;

  it('mirror with mirrorPercentage, the deprecated mirrorPercent, or 100% by default; 0% writes no mirror policy', () => {
    expect(mirrorsOf({})).toEqual([]);
    expect(mirrorsOf({ mirror: { host: 'm', subset: 'v2', port: { number: 8000 } } })).toEqual([{ host: 'm', subset: 'v2', port: 8000, percentage: 100 }]);
    expect(mirrorsOf({ mirror: { host: 'm' }, mirrorPercentage: { value: 12.5 } })).toEqual([{ host: 'm', percentage: 12.5 }]);
    expect(mirrorsOf({ mirror: { host: 'm' }, mirrorPercent: 30 })).toEqual([{ host: 'm', percentage: 30 }]);
    expect(mirrorsOf({ mirror: { host: 'm' }, mirrorPercentage: { value: 40 }, mirrorPercent: 30 })).toEqual([{ host: 'm', percentage: 40 }]);
    expect(mirrorsOf({ mirror: { host: 'm' }, mirrorPercentage: { value: 0 } })).toEqual([]);
  });

  it('mirrors[] in order, each with its percentage (100% by default, 0% dropped)', () => {
    expect(
      mirrorsOf({ mirrors: [{ destination: { host: 'a' }, percentage: { value: 5 } }, { destination: { host: 'b', subset: 'v1' } }, { destination: { host: 'c' }, percentage: { value: 0 } }] }),
    ).toEqual([
      { host: 'a', percentage: 5 },
      { host: 'b', subset: 'v1', percentage: 100 },
    ]);
  });

  it('refuses mirror and mirrors together (Istio validation) and malformed mirrors', () => {
    expect(() => mirrorsOf({ mirror: { host: 'a' }, mirrors: [{ destination: { host: 'b' } }] })).toThrow(/both mirror and mirrors/);
    expect(() => mirrorsOf({ mirrors: [{ percentage: { value: 5 } }] })).toThrow(/mirrors\[0\]\.destination is missing/);
    expect(() => mirrorsOf({ mirror: { host: 'a' }, mirrorPercentage: { value: 101 } })).toThrow(/mirrorPercentage must be a percentage/);
  });
});

describe('evaluateRoute: withoutHeaders', () => {
  it('matches when the header is absent or its value does not match', () => {
    const v = vs([{ match: [{ withoutHeaders: { 'x-skip': { exact: 'yes' } } }] }, {}]);
    expect(routeOf(v, { headers: {} })).toBe(0);
    expect(routeOf(v, { headers: { 'x-skip': 'no' } })).toBe(0);
    expect(routeOf(v, { headers: { 'x-skip': 'yes' } })).toBe(1);
    expect(routeOf(v, { headers: { 'X-Skip': 'yes' } })).toBe(1);
  });
  it('treats a missing header as empty (Istio sets treat_missing_header_as_empty)', () => {
    const empty = vs([{ match: [{ withoutHeaders: { x: { exact: '' } } }] }, {}]);
    expect(routeOf(empty, { headers: {} })).toBe(1);
    expect(routeOf(empty, { headers: { x: 'a' } })).toBe(0);
    const dotStar = vs([{ match: [{ withoutHeaders: { x: { regex: '.*' } } }] }, {}]);
    expect(routeOf(dotStar, { headers: {} })).toBe(1);
  });
  it('an empty StringMatch means "header absent"', () => {
    const v = vs([{ match: [{ withoutHeaders: { x: {} } }] }, {}]);
    expect(routeOf(v, { headers: {} })).toBe(0);
    expect(routeOf(v, { headers: { x: '' } })).toBe(1);
  });
  it('is ANDed with headers in the same block', () => {
    const v = vs([{ match: [{ headers: { a: { exact: '1' } }, withoutHeaders: { b: { regex: 'x.*' } } }] }, {}]);
    expect(routeOf(v, { headers: { a: '1' } })).toBe(0);
    expect(routeOf(v, { headers: { a: '1', b: 'y' } })).toBe(0);
    expect(routeOf(v, { headers: { a: '1', b: 'xy' } })).toBe(1);
    expect(routeOf(v, { headers: { b: 'y' } })).toBe(1);
  });
});

describe('evaluateRoute: proxyless gRPC clients match headers their own way', () => {
  it('an inverted regex on a missing header: Envoy matches (treat as empty), grpc-go does not, grpc-js does', () => {
    const v = vs([{ match: [{ withoutHeaders: { x: { regex: 'k=.*' } } }] }, {}]);
    expect(routeOf(v, { headers: {} })).toBe(0);
    expect(routeOf(v, { headers: {}, client: 'grpc-go' })).toBe(1);
    expect(routeOf(v, { headers: {}, client: 'grpc-js' })).toBe(0);
    // On a present header all three agree.
    for (const client of ['envoy', 'grpc-go', 'grpc-js'] as const) {
      expect(routeOf(v, { headers: { x: 'a=1' }, client })).toBe(0);
      expect(routeOf(v, { headers: { x: 'k=1' }, client })).toBe(1);
    }
  });
  it('an inverted regex matching the empty value: Envoy tests it on "", grpc-js inverts "no header"', () => {
    const v = vs([{ match: [{ withoutHeaders: { x: { regex: '.*' } } }] }, {}]);
    expect(routeOf(v, { headers: {} })).toBe(1);
    expect(routeOf(v, { headers: {}, client: 'grpc-js' })).toBe(0);
    expect(routeOf(v, { headers: {}, client: 'grpc-go' })).toBe(1);
  });
  it('presence and inverted presence agree everywhere', () => {
    const absent = vs([{ match: [{ withoutHeaders: { x: {} } }] }, {}]);
    const present = vs([{ match: [{ headers: { x: {} } }] }, {}]);
    for (const client of ['envoy', 'grpc-go', 'grpc-js'] as const) {
      expect([routeOf(absent, { headers: {}, client }), routeOf(absent, { headers: { x: '' }, client })]).toEqual([0, 1]);
      expect([routeOf(present, { headers: {}, client }), routeOf(present, { headers: { x: '' }, client })]).toEqual([1, 0]);
    }
  });
  it('grpc-js anchors a regex as ^re$ without a group: a top-level alternation changes meaning', () => {
    const v = vs([{ match: [{ headers: { x: { regex: 'zzz|.*k=v' } } }] }, {}]);
    expect(routeOf(v, { headers: { x: 'zzzq' } })).toBe(1);
    expect(routeOf(v, { headers: { x: 'zzzq' }, client: 'grpc-go' })).toBe(1);
    expect(routeOf(v, { headers: { x: 'zzzq' }, client: 'grpc-js' })).toBe(0);
  });
});

describe('evaluateRoute: uri, method, authority, scheme, query', () => {
  it('uri exact ignores the query string, prefix sees :path, regex is a full match on the path', () => {
    const exact = vs([{ match: [{ uri: { exact: '/a' } }] }, {}]);
    expect(routeOf(exact, { uri: '/a' })).toBe(0);
    expect(routeOf(exact, { uri: '/a?x=1' })).toBe(0);
    expect(routeOf(exact, { uri: '/a/' })).toBe(1);
    const prefix = vs([{ match: [{ uri: { prefix: '/a' } }] }, {}]);
    expect(routeOf(prefix, { uri: '/ab' })).toBe(0);
    expect(routeOf(prefix, { uri: '/b/a' })).toBe(1);
    const regex = vs([{ match: [{ uri: { regex: '/a/[0-9]+' } }] }, {}]);
    expect(routeOf(regex, { uri: '/a/12?z' })).toBe(0);
    expect(routeOf(regex, { uri: '/a/12/x' })).toBe(1);
    expect(routeOf(regex, { uri: '/x/a/12' })).toBe(1);
  });

  it('ignoreUriCase applies to exact and prefix only', () => {
    const exact = vs([{ match: [{ uri: { exact: '/Api' }, ignoreUriCase: true }] }, {}]);
    expect(routeOf(exact, { uri: '/aPI' })).toBe(0);
    const prefix = vs([{ match: [{ uri: { prefix: '/API' }, ignoreUriCase: true }] }, {}]);
    expect(routeOf(prefix, { uri: '/api/x' })).toBe(0);
    const regex = vs([{ match: [{ uri: { regex: '/api' }, ignoreUriCase: true }] }, {}]);
    expect(routeOf(regex, { uri: '/API' })).toBe(1);
    const sensitive = vs([{ match: [{ uri: { exact: '/Api' } }] }, {}]);
    expect(routeOf(sensitive, { uri: '/api' })).toBe(1);
  });

  it('method, authority and scheme are header matches on pseudo-headers', () => {
    const v = vs([{ match: [{ method: { exact: 'GET' }, authority: { prefix: 'svc' }, scheme: { exact: 'http' } }] }, {}]);
    expect(routeOf(v, { method: 'GET', authority: 'svc:8080', scheme: 'http' })).toBe(0);
    expect(routeOf(v, { method: 'get', authority: 'svc:8080', scheme: 'http' })).toBe(1);
    expect(routeOf(v, { method: 'GET', authority: 'other', scheme: 'http' })).toBe(1);
    expect(routeOf(v, { method: 'GET', headers: { host: 'svc' }, scheme: 'http' })).toBe(0);
    expect(() => routeOf(v, { authority: 'svc', scheme: 'http' })).toThrow(/must give method/);
  });

  it('queryParams: exact, regex (full), presence; from uri or query', () => {
    const v = vs([{ match: [{ queryParams: { a: { exact: '1' }, b: { regex: '[0-9]+' }, c: {} } }] }, {}]);
    expect(routeOf(v, { uri: '/?a=1&b=22&c' })).toBe(0);
    expect(routeOf(v, { uri: '/p', query: { a: '1', b: '22', c: 'x' } })).toBe(0);
    expect(routeOf(v, { uri: '/?a=1&b=22' })).toBe(1);
    expect(routeOf(v, { uri: '/?a=1&b=2x&c' })).toBe(1);
    expect(routeOf(v, { uri: '/?a=2&a=1&b=2&c' })).toBe(1); // first value wins
    expect(() => routeOf(v, { uri: '/?a=1', query: { a: '1' } })).toThrow(/either/);
  });
});

describe('evaluateRoute: port, sourceLabels, gateways', () => {
  it('port must equal the listener port', () => {
    const v = vs([{ match: [{ port: 9080 }] }, {}]);
    expect(routeOf(v, { port: 9080 })).toBe(0);
    expect(routeOf(v, { port: 80 })).toBe(1);
    expect(() => routeOf(v, {})).toThrow(/port/);
  });

  it('sourceLabels must be a subset of the client labels; sourceNamespace must be equal', () => {
    const v = vs([{ match: [{ sourceLabels: { app: 'productpage' }, sourceNamespace: 'ns' }] }, {}]);
    expect(routeOf(v, { sourceLabels: { app: 'productpage', version: 'v1' }, sourceNamespace: 'ns' })).toBe(0);
    expect(routeOf(v, { sourceLabels: { app: 'reviews' }, sourceNamespace: 'ns' })).toBe(1);
    expect(routeOf(v, { sourceLabels: { app: 'productpage' }, sourceNamespace: 'other' })).toBe(1);
    expect(() => routeOf(v, { sourceNamespace: 'ns' })).toThrow(/sourceLabels/);
  });

  it('match gateways select the proxy; with gateways set, sourceLabels are not looked at (istiod sourceMatchHTTP)', () => {
    const v = vs(
      [
        { match: [{ gateways: ['gw'], sourceLabels: { app: 'never' } }] },
        { match: [{ gateways: ['mesh'] }] },
        {},
      ],
      { gateways: ['mesh', 'gw'] },
    );
    expect(routeOf(v, { gateway: 'ns/gw', sourceLabels: {} })).toBe(0);
    expect(routeOf(v, { gateway: 'mesh' })).toBe(1);
    expect(virtualServiceGateways(v)).toEqual(['mesh', 'ns/gw']);
  });

  it('a VS not bound to the proxy gateway does not apply at all', () => {
    const v = vs([{}], { gateways: ['gw'] });
    expect(() => routeOf(v, {})).toThrow(/does not apply to gateway mesh/);
    expect(routeOf(v, { gateway: 'ns/gw' })).toBe(0);
    expect(virtualServiceGateways(vs([{}]))).toEqual(['mesh']);
  });
});

describe('evaluateRoute: refuses what it does not model', () => {
  it('throws on unknown match fields, StringMatch types, JWT claims, pseudo-headers, delegate', () => {
    expect(() => routeOf(vs([{ match: [{ sourceLabelz: {} }] }]), {})).toThrow(/unsupported match field/);
    expect(() => routeOf(vs([{ match: [{ headers: { a: { suffix: 'x' } } }] }]), { headers: { a: 'x' } })).toThrow(/unsupported StringMatch/);
    expect(() => routeOf(vs([{ match: [{ headers: { a: { exact: 'x', prefix: 'x' } } }] }]), {})).toThrow(/several/);
    expect(() => routeOf(vs([{ match: [{ headers: { '@request.auth.claims.sub': { exact: 'x' } } }] }]), {})).toThrow(/JWT/);
    expect(() => routeOf(vs([{ match: [{ headers: { ':path': { exact: '/' } } }] }]), {})).toThrow(/pseudo/);
    expect(() => routeOf(vs([{ delegate: { name: 'x' } }]), {})).toThrow(/delegate/);
    expect(() => routeOf(vs([]), {})).toThrow(/no spec.http/);
    expect(() => routeOf(vs([{}]), { headers: { ':authority': 'x' } })).toThrow(/pseudo/);
  });
  it('stops at the first matching block, like Envoy (a later block is never evaluated)', () => {
    const v = vs([{ match: [{}, { port: 1 }] }]);
    expect(routeOf(v, {})).toBe(0);
  });
});

describe('pickDestination', () => {
  const two = [
    { host: 'a', weight: 90 },
    { host: 'b', weight: 10 },
  ];
  it('picks by cumulative weight from an integer (mod total) or a fraction', () => {
    expect(pickDestination(two, 0).host).toBe('a');
    expect(pickDestination(two, 89).host).toBe('a');
    expect(pickDestination(two, 90).host).toBe('b');
    expect(pickDestination(two, 99).host).toBe('b');
    expect(pickDestination(two, 100).host).toBe('a');
    expect(pickDestination(two, 0.5).host).toBe('a');
    expect(pickDestination(two, 0.95).host).toBe('b');
  });
  it('a single destination takes everything; weight 0 destinations are dropped', () => {
    expect(pickDestination([{ host: 'only', weight: 0 }], 5).host).toBe('only');
    const withZero = [{ host: 'z', weight: 0 }, { host: 'a', weight: 1 }];
    for (let r = 0; r < 10; r++) expect(pickDestination(withZero, r).host).toBe('a');
    expect(() => pickDestination([{ host: 'a' }, { host: 'b' }], 0)).toThrow(/weight 0/);
    expect(() => pickDestination(two, -1)).toThrow();
    expect(() => pickDestination(two, 1.5)).toThrow();
  });
});

describe('RE2, not JavaScript RegExp (where the two disagree)', () => {
  it('refuses what JavaScript accepts and RE2 does not: lookaround, backreferences', () => {
    // JavaScript would evaluate these; Envoy NACKs them, so the evaluator must not route by them.
    expect(new RegExp('^(a)\\1$').test('aa')).toBe(true);
    expect(() => re2FullMatch('(a)\\1', 'aa')).toThrow();
    expect(new RegExp('^(?!b)a$').test('a')).toBe(true);
    expect(() => re2FullMatch('(?!b)a', 'a')).toThrow();
    expect(() => re2FullMatch('\\cA', '\u0001')).toThrow(RouteEvalError);
  });
  it('accepts what RE2 has and JavaScript has not: inline flags, \\z', () => {
    expect(() => new RegExp('(?i)abc')).toThrow();
    expect(re2FullMatch('(?i)abc', 'ABC')).toBe(true);
    // In JavaScript (no u flag) `\\z` is the letter z; in RE2 it is the end of the text.
    expect(new RegExp('^(?:a\\z)$').test('az')).toBe(true);
    expect(re2FullMatch('a\\z', 'a')).toBe(true);
    expect(re2FullMatch('a\\z', 'az')).toBe(false);
  });
});

describe('routeAction and destinationShares', () => {
  it('forward, redirect, direct response; shares as Envoy splits them', () => {
    expect(routeAction({ redirect: { uri: '/x' }, route: [{ destination: { host: 'a' } }] }, 'r')).toEqual({ action: 'redirect', destinations: [], mirrors: [] });
    expect(routeAction({ directResponse: { status: 503 } }, 'r')).toEqual({ action: 'directResponse', destinations: [], mirrors: [] });
    expect(routeAction({ route: [{ destination: { host: 'a', subset: 'v1', port: { number: 80 } }, weight: 3 }, { destination: { host: 'b' }, weight: 1 }] }, 'r')).toEqual({
      action: 'route',
      destinations: [{ host: 'a', subset: 'v1', port: 80, weight: 3 }, { host: 'b', weight: 1 }],
      mirrors: [],
    });
    expect(() => routeAction({ route: [] }, 'VirtualService ns/x spec.http[2]')).toThrow('route-eval: VirtualService ns/x spec.http[2].route must be a non-empty list');
    expect(destinationShares([{ host: 'a', weight: 0 }])).toEqual([100]);
    expect(destinationShares([{ host: 'a', weight: 3 }, { host: 'b', weight: 1 }, { host: 'c', weight: 0 }])).toEqual([75, 25, 0]);
    expect(destinationShares([{ host: 'a' }, { host: 'b' }])).toEqual([0, 0]);
  });
});

describe('visibleVirtualService', () => {
  const host = 'svc.ns.svc.cluster.local';
  const at = (name: string, hosts: string[], extra: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) => ({ metadata: { name, namespace: 'ns', ...metadata }, spec: { hosts, http: [{ route: [{ destination: { host: 'svc' } }] }], ...extra } });
  const name = (list: unknown[], namespace = 'ns', gateway = 'mesh') => (visibleVirtualService(list, host, namespace, gateway)?.metadata as { name?: string } | undefined)?.name;
  it('the oldest first, then by name; exact hosts before wildcards; gateways respected', () => {
    expect(name([at('b', ['svc'], {}, { creationTimestamp: '2026-01-01T00:00:00Z' }), at('a', ['svc'], {}, { creationTimestamp: '2026-01-02T00:00:00Z' })])).toBe('b');
    expect(name([at('b', ['svc']), at('a', ['svc'])])).toBe('a');
    expect(name([at('a-wild', ['*']), at('b-exact', ['svc'])])).toBe('b-exact');
    expect(name([at('a-wild', ['*.ns.svc.cluster.local'])])).toBe('a-wild');
    expect(name([at('other', ['*.other.svc.cluster.local'])])).toBeUndefined();
    expect(name([at('gw', ['*'], { gateways: ['ingress'] })])).toBeUndefined();
    expect(name([at('gw', ['*'], { gateways: ['ingress'] })], 'ns', 'ns/ingress')).toBe('gw');
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeVirtualService, ownedVirtualService, type HostRouting } from '../../src/planner/virtual-service.js';
import { baggageMemberRegex, DEFAULT_ROUTING_KEY_CONFIG, routingKeyMatchBlocks } from '../../src/planner/routing-key.js';
import type { KubeObject } from '../../src/planner/kube.js';

const REVIEWS = 'reviews.default.svc.cluster.local';

function userVs(http: unknown[]): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace: 'default' }, spec: { hosts: ['reviews'], http } };
}

function routing(...sandboxes: Array<{ name: string; key: string; split?: number }>): HostRouting[] {
  return [
    {
      host: REVIEWS,
      routes: sandboxes.map((s) => ({
        sandbox: s.name,
        forkHost: `reviews-${s.name}.default.svc.cluster.local`,
        matchBlocks: routingKeyMatchBlocks({ ...DEFAULT_ROUTING_KEY_CONFIG, tracestate: false }, [s.key]),
        ...(s.split ? { splitWeight: s.split } : {}),
      })),
    },
  ];
}

const baggage = (key: string) => ({ regex: baggageMemberRegex('meshfork-routing-key', key) });

describe('mergeVirtualService', () => {
  const http = [
    { name: 'jason', match: [{ headers: { 'end-user': { exact: 'jason' } } }, { uri: { prefix: '/beta' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }], retries: { attempts: 3 } },
    { name: 'ratings-detour', route: [{ destination: { host: 'ratings' } }] },
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
        route: [{ destination: { host: 'reviews-a.default.svc.cluster.local' } }],
        retries: { attempts: 3 },
      },
      {
        name: 'meshfork-b-0',
        match: [
          { headers: { 'end-user': { exact: 'jason' }, baggage: baggage('keyb') } },
          { uri: { prefix: '/beta' }, headers: { baggage: baggage('keyb') } },
        ],
        route: [{ destination: { host: 'reviews-b.default.svc.cluster.local' } }],
        retries: { attempts: 3 },
      },
      http[0],
      http[1],
      {
        name: 'meshfork-a-2',
        match: [{ headers: { baggage: baggage('keya') } }],
        route: [{ destination: { host: 'reviews-a.default.svc.cluster.local', port: { number: 9080 } } }],
        timeout: '5s',
        headers: { request: { set: { x: 'y' } } },
      },
      {
        name: 'meshfork-b-2',
        match: [{ headers: { baggage: baggage('keyb') } }],
        route: [{ destination: { host: 'reviews-b.default.svc.cluster.local', port: { number: 9080 } } }],
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
    expect(http[0]?.route).toEqual([{ destination: { host: 'reviews-a.default.svc.cluster.local' } }]);
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
});

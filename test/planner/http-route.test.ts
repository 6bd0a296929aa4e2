/**
 * The gatewayAPI routing mode through plan(): which hosts get derived HTTPRoutes/GRPCRoutes
 * (routing-mode.ts), what the copies hold (http-route.ts), and the problems and notes instead of a
 * guess (mixed APIs, ambient without a waypoint, Gateway API limits, a key header the user matches).
 */
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { keyHeaderMatches } from '../../src/planner/http-route.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan, type PlanConfig } from '../../src/planner/plan.js';
import { DEFAULT_ROUTING_KEY_CONFIG, routingKeyMatchBlocks } from '../../src/planner/routing-key.js';

const NS = 'shop';
const KEY = 'pr1key01';
/** The Gateway API header matches of KEY under the default carriers (baggage; tracestate with baggage present). */
const KEY_MATCHES = keyHeaderMatches(routingKeyMatchBlocks(DEFAULT_ROUTING_KEY_CONFIG, [KEY]));

function deployment(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: `${name}:1` }] } } },
  };
}

function service(name: string, selector: Record<string, string>, labels?: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, ...(labels ? { labels } : {}) }, spec: { selector, ports: [{ name: 'http', port: 8080 }] } };
}

function httpRoute(name: string, rules: unknown[], extra: { parent?: string; creationTimestamp?: string; parentRefs?: unknown[]; kind?: string } = {}): KubeObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: extra.kind ?? 'HTTPRoute',
    metadata: { name, namespace: NS, ...(extra.creationTimestamp ? { creationTimestamp: extra.creationTimestamp } : {}) },
    spec: { parentRefs: extra.parentRefs ?? [{ group: '', kind: 'Service', name: extra.parent ?? 'web', port: 8080 }], rules },
  };
}

const namespace = (labels: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels } });

const BASE = [deployment('web-v1', { app: 'web', version: 'v1' }), deployment('web-v2', { app: 'web', version: 'v2' }), service('web', { app: 'web' }), service('web-v2', { app: 'web', version: 'v2' })];

function sandbox(forks: string[], extra: Partial<SandboxObject['spec']> = {}): SandboxObject {
  return { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'pr-1', namespace: NS }, spec: { routingKey: KEY, forks: forks.map((name) => ({ forkOf: { kind: 'Deployment' as const, name } })), ...extra } };
}

function run(objects: KubeObject[], config: Partial<PlanConfig> = {}, forks = ['web-v2'], extra: Partial<SandboxObject['spec']> = {}) {
  return plan({ inventory: inventoryOf(objects), sandboxes: [sandbox(forks, extra)], config });
}

const kinds = (objects: KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.name}`);
const withKey = (match: Record<string, unknown>, keys: readonly unknown[]) => ({ ...match, headers: [...((match['headers'] as unknown[]) ?? []), ...keys] });
const LABELS = { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'pr-1' };

describe('routing mode per forked host', () => {
  it('auto: a Service with a user HTTPRoute gets a derived route and no VirtualService; one without keeps the VirtualService (sidecar namespace)', () => {
    const route = httpRoute('web', [{ backendRefs: [{ name: 'web-v2', port: 8080 }] }]);
    const result = run([...BASE, route]);
    expect(result.problems).toEqual([]);
    expect(kinds(result.objects).filter((k) => /Route|VirtualService/.test(k))).toEqual(['VirtualService web-v2-meshfork', 'HTTPRoute web-pr-1-8080']);
    expect(result.objects.find((o) => o.kind === 'HTTPRoute')).toEqual({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web-pr-1-8080', namespace: NS, labels: { ...LABELS, 'meshfork.dev/fork-of-service': 'web' } },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 8080 }],
        rules: [{ matches: KEY_MATCHES.map((k) => withKey({}, k)), backendRefs: [{ name: 'web-v2-pr-1', port: 8080 }] }],
      },
    });
  });

  it('gatewayAPI for every host (flag/config): a Service without user routes gets key -> fork and a baseline rule', () => {
    const result = run(BASE, { routingModes: { mode: 'gatewayAPI' } });
    expect(result.problems).toEqual([]);
    expect(kinds(result.objects).filter((k) => /Route|VirtualService/.test(k))).toEqual(['HTTPRoute web-pr-1', 'HTTPRoute web-v2-pr-1']);
    expect(result.objects.find((o) => o.metadata.name === 'web-v2-pr-1' && o.kind === 'HTTPRoute')!.spec).toEqual({
      parentRefs: [{ group: '', kind: 'Service', name: 'web-v2', port: 8080 }],
      rules: [{ matches: KEY_MATCHES.map((headers) => ({ headers })), backendRefs: [{ name: 'web-v2-pr-1', port: 8080 }] }, { backendRefs: [{ name: 'web-v2', port: 8080 }] }],
    });
  });

  it('a per-host setting overrides routing.mode (keys <service>.<namespace> or the FQDN)', () => {
    const result = run(BASE, { routingModes: { mode: 'gatewayAPI', hosts: { 'web-v2.shop': { mode: 'virtualService' } } } });
    expect(kinds(result.objects).filter((k) => /Route|VirtualService/.test(k))).toEqual(['VirtualService web-v2-meshfork', 'HTTPRoute web-pr-1']);
    const fqdn = run(BASE, { routingModes: { hosts: { 'web.shop.svc.cluster.local': { mode: 'gatewayAPI' } } } });
    expect(kinds(fqdn.objects).filter((k) => /Route|VirtualService/.test(k))).toEqual(['VirtualService web-v2-meshfork', 'HTTPRoute web-pr-1']);
  });

  it('a host with both a user VirtualService and a user HTTPRoute is a problem naming both', () => {
    const vs: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-vs', namespace: NS }, spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web' } }] }] } };
    const result = run([...BASE, vs, httpRoute('web', [{ backendRefs: [{ name: 'web', port: 8080 }] }])]);
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      {
        object: 'Sandbox shop/pr-1',
        path: 'spec.forks[0].forkOf.name',
        message:
          'Service shop/web is routed both by VirtualService shop/web-vs and by HTTPRoute shop/web (attached to it); Istio leaves mixing VirtualService and Gateway API routes for one host undefined, so meshfork routes neither: keep one of them',
      },
    ]);
  });

  it('routing.mode virtualService on a host with a user HTTPRoute is a problem, not a VirtualService next to it', () => {
    const result = run([...BASE, httpRoute('web', [{ backendRefs: [{ name: 'web', port: 8080 }] }])], { routingModes: { mode: 'virtualService' } });
    expect(result.problems).toEqual([
      {
        object: 'Sandbox shop/pr-1',
        path: 'spec.forks[0].forkOf.name',
        message: 'routing.mode is virtualService, but HTTPRoute shop/web is attached to Service shop/web; meshfork does not write a VirtualService for a host the user routes with Gateway API: use gatewayAPI or auto',
      },
    ]);
  });

  it('spec.split in gatewayAPI mode is a problem naming the field', () => {
    const result = run(BASE, { routingModes: { mode: 'gatewayAPI' } }, ['web-v2'], { split: { weight: 10 } });
    expect(result.problems.map((p) => [p.path, p.message])).toEqual([
      ['spec.split.weight', 'Service shop/web is routed with Gateway API (routing mode gatewayAPI), where meshfork does not split untagged traffic; remove spec.split or route the host with virtualService'],
      ['spec.split.weight', 'Service shop/web-v2 is routed with Gateway API (routing mode gatewayAPI), where meshfork does not split untagged traffic; remove spec.split or route the host with virtualService'],
    ]);
  });
});

describe('ambient namespaces', () => {
  it('auto picks gatewayAPI, no affinity EnvoyFilter (a note says why), fork DestinationRules kept', () => {
    const dr: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web', namespace: NS }, spec: { host: 'web', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } };
    const result = run([...BASE, dr, namespace({ 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' })]);
    expect(result.problems).toEqual([]);
    expect(kinds(result.objects)).toEqual(['Deployment web-v2-pr-1', 'Service web-pr-1', 'Service web-v2-pr-1', 'DestinationRule web-pr-1', 'HTTPRoute web-pr-1', 'HTTPRoute web-v2-pr-1']);
    expect(result.notes).toContainEqual({
      object: 'Sandbox shop/pr-1',
      path: 'spec.forks[0].forkOf.name',
      message:
        'namespace "shop" is ambient (istio.io/dataplane-mode: ambient), where EnvoyFilters are ignored: meshfork writes no affinity EnvoyFilter for the fork, so its calls stay in the sandbox only if the app propagates the routing key (baggage) from each request to the calls it causes, as OpenTelemetry or meshfork\'s SDK does',
    });
  });

  it('a forked Service without a waypoint is a problem (the Service\'s own label "none" overrides its Namespace\'s)', () => {
    const result = run([deployment('web-v2', { app: 'web', version: 'v2' }), service('web', { app: 'web' }, { 'istio.io/use-waypoint': 'none' }), service('web-v2', { app: 'web', version: 'v2' }), namespace({ 'istio.io/dataplane-mode': 'ambient', 'istio.io/use-waypoint': 'waypoint' })]);
    expect(result.problems).toEqual([
      {
        object: 'Sandbox shop/pr-1',
        path: 'spec.forks[0].forkOf.name',
        message:
          'Service shop/web is in the ambient namespace "shop" and has no waypoint (label istio.io/use-waypoint on the Service or its Namespace): routes apply only at waypoints, so keyed requests would silently reach the baseline; enroll a waypoint for it',
      },
    ]);
  });
});

describe('derived route contents', () => {
  it('copies every rule of every route on the parent, oldest route first, with retargeted backends and mirrors; user routes unchanged', () => {
    const newer = httpRoute('a-newer', [{ matches: [{ path: { type: 'Exact', value: '/x' } }], backendRefs: [{ name: 'web-v2', port: 8080 }] }], { creationTimestamp: '2026-03-01T00:00:00Z' });
    const older = httpRoute(
      'b-older',
      [
        {
          name: 'mirror',
          matches: [{ path: { type: 'PathPrefix', value: '/m' }, method: 'GET', queryParams: [{ name: 'q', value: '1' }] }],
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web-v2', port: 8080 } } }],
          backendRefs: [{ name: 'web', port: 8080, weight: 3 }, { name: 'other', namespace: 'elsewhere', port: 80, weight: 1 }],
          timeouts: { request: '3s' },
        },
      ],
      { creationTimestamp: '2026-01-01T00:00:00Z' },
    );
    const before = structuredClone([newer, older]);
    const result = run([...BASE, newer, older]);
    expect(result.problems).toEqual([]);
    expect([newer, older]).toEqual(before);
    const derived = result.objects.find((o) => o.kind === 'HTTPRoute' && o.metadata.name === 'web-pr-1-8080')!;
    expect((derived.spec as { rules: unknown[] }).rules).toEqual([
      {
        name: 'mirror',
        matches: KEY_MATCHES.map((k) => withKey({ path: { type: 'PathPrefix', value: '/m' }, method: 'GET', queryParams: [{ name: 'q', value: '1' }] }, k)),
        filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { name: 'web-v2-pr-1', port: 8080 } } }],
        backendRefs: [{ name: 'web-pr-1', port: 8080, weight: 3 }, { name: 'other', namespace: 'elsewhere', port: 80, weight: 1 }],
        timeouts: { request: '3s' },
      },
      { matches: KEY_MATCHES.map((k) => withKey({ path: { type: 'Exact', value: '/x' } }, k)), backendRefs: [{ name: 'web-v2-pr-1', port: 8080 }] },
    ]);
  });

  it('a rule with a ReplacePrefixMatch rewrite gets one copy per key alternative (CEL: exactly one PathPrefix match)', () => {
    const rewrite = { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } };
    const result = run([...BASE, httpRoute('web', [{ name: 'old', matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [rewrite], backendRefs: [{ name: 'web-v2', port: 8080 }] }])]);
    const rules = (result.objects.find((o) => o.kind === 'HTTPRoute')!.spec as { rules: Array<{ name: string; matches: unknown[] }> }).rules;
    expect(rules.map((r) => [r.name, r.matches.length])).toEqual([['old', 1], ['old-2', 1]]);
    expect(rules.map((r) => r.matches[0])).toEqual(KEY_MATCHES.map((k) => withKey({ path: { type: 'PathPrefix', value: '/old' } }, k)));
  });

  it('a route on an unforked Service that sends requests to a forked one gets copies on its parent', () => {
    const front = service('front', { app: 'front' });
    const result = run([...BASE, deployment('front', { app: 'front' }), front, httpRoute('front', [{ backendRefs: [{ name: 'web-v2', port: 8080 }] }], { parent: 'front' })]);
    expect(result.problems).toEqual([]);
    expect(result.objects.find((o) => o.kind === 'HTTPRoute')!.spec).toEqual({
      parentRefs: [{ group: '', kind: 'Service', name: 'front', port: 8080 }],
      rules: [{ matches: KEY_MATCHES.map((headers) => ({ headers })), backendRefs: [{ name: 'web-v2-pr-1', port: 8080 }] }],
    });
  });

  it('a GRPCRoute gets a GRPCRoute copy', () => {
    const route = httpRoute('web', [{ matches: [{ method: { service: 'shop.Web', method: 'Get' } }], backendRefs: [{ name: 'web', port: 8080 }] }], { kind: 'GRPCRoute' });
    const result = run([...BASE, route]);
    expect(result.objects.filter((o) => o.kind === 'GRPCRoute').map((o) => [o.metadata.name, o.spec])).toEqual([
      [
        'web-pr-1-8080',
        {
          parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 8080 }],
          rules: [{ matches: KEY_MATCHES.map((k) => withKey({ method: { service: 'shop.Web', method: 'Get' } }, k)), backendRefs: [{ name: 'web-pr-1', port: 8080 }] }],
        },
      ],
    ]);
  });

  it('a route attached to a Gateway that sends requests to a forked Service gets a note', () => {
    const gatewayRoute = httpRoute('ingress', [{ backendRefs: [{ name: 'web-v2', port: 8080 }] }], { parentRefs: [{ name: 'public-gateway' }] });
    const result = run([...BASE, gatewayRoute]);
    expect(result.notes).toContainEqual({
      object: 'HTTPRoute shop/ingress',
      path: 'spec.parentRefs',
      message: 'sends requests to the forked Service shop/web-v2 from a parent that is not a Service (a Gateway): meshfork copies only routes attached to Services, so keyed requests entering through that parent reach the baseline',
    });
  });
});

describe('around the derived routes', () => {
  it('a gateway-bound VirtualService routing to a gatewayAPI host gets a note (no sandbox copies in it)', () => {
    const ingress: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'ingress', namespace: NS },
      spec: { hosts: ['shop.example.com'], gateways: ['istio-system/public'], http: [{ route: [{ destination: { host: 'web' } }] }] },
    };
    const result = run([...BASE, ingress, httpRoute('web', [{ backendRefs: [{ name: 'web', port: 8080 }] }])]);
    expect(result.problems).toEqual([]);
    expect(result.notes).toContainEqual({
      object: 'VirtualService shop/ingress',
      path: 'spec.http',
      message: 'routes to web.shop.svc.cluster.local, routed with Gateway API (routing mode gatewayAPI): meshfork adds no sandbox routes to this gateway-bound VirtualService, so keyed requests entering through it reach the baseline of that host',
    });
  });

  it('two Sandboxes of one name in different namespaces keep their own keys', () => {
    const other = (o: KubeObject): KubeObject => ({ ...structuredClone(o), metadata: { ...o.metadata, namespace: 'other' } });
    const objects = [...BASE, httpRoute('web', [{ backendRefs: [{ name: 'web-v2', port: 8080 }] }])];
    const second: SandboxObject = { ...sandbox(['web-v2']), metadata: { name: 'pr-1', namespace: 'other' }, spec: { ...sandbox(['web-v2']).spec, routingKey: 'otherkey' } };
    const result = plan({ inventory: inventoryOf([...objects, ...objects.map(other)]), sandboxes: [sandbox(['web-v2']), second] });
    expect(result.problems).toEqual([]);
    const matchesIn = (ns: string) => (result.objects.find((o) => o.kind === 'HTTPRoute' && o.metadata.namespace === ns)!.spec as { rules: Array<{ matches: unknown }> }).rules[0]!.matches;
    expect([matchesIn(NS), matchesIn('other')]).toEqual([KEY_MATCHES.map((headers) => ({ headers })), keyHeaderMatches(routingKeyMatchBlocks(DEFAULT_ROUTING_KEY_CONFIG, ['otherkey'])).map((headers) => ({ headers }))]);
  });
});

describe('Gateway API limits and key headers are problems naming the user route, never a truncated copy', () => {
  it('more than 16 rules', () => {
    const rules = Array.from({ length: 9 }, (_, i) => ({ matches: [{ path: { type: 'Exact', value: `/${i}` } }], backendRefs: [{ name: 'web', port: 8080 }] }));
    const rewrite = { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } };
    const many = [...rules, ...Array.from({ length: 8 }, (_, i) => ({ matches: [{ path: { type: 'PathPrefix', value: `/p${i}` } }], filters: [rewrite], backendRefs: [{ name: 'web', port: 8080 }] }))];
    const result = run([...BASE, httpRoute('web', many)]);
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      {
        object: 'HTTPRoute shop/web',
        path: 'spec.rules',
        message: 'the copies of HTTPRoute shop/web for sandbox "pr-1" need 25 rules and 34 matches in one HTTPRoute attached to Service shop/web, over the 16 rules and 128 matches a route may hold',
      },
    ]);
  });

  it('a match with 15 headers', () => {
    const headers = Array.from({ length: 15 }, (_, i) => ({ name: `x-h${i}`, value: 'v' }));
    const result = run([...BASE, httpRoute('web', [{ matches: [{ headers }], backendRefs: [{ name: 'web', port: 8080 }] }])]);
    expect(result.problems).toEqual([
      { object: 'HTTPRoute shop/web', path: 'spec.rules[0].matches[0].headers', message: 'has 15 header matches; its copy for sandbox "pr-1" adds the routing key (2 more), over the 16 a match may hold' },
    ]);
  });

  it('a match on the baggage header', () => {
    const result = run([...BASE, httpRoute('web', [{ matches: [{ headers: [{ name: 'Baggage', type: 'RegularExpression', value: '.*' }] }], backendRefs: [{ name: 'web', port: 8080 }] }])]);
    expect(result.problems).toEqual([
      {
        object: 'HTTPRoute shop/web',
        path: 'spec.rules[0].matches[0].headers',
        message: 'matches header "Baggage", which carries the routing key: its copy for sandbox "pr-1" cannot add the key match (header names are unique within a match)',
      },
    ]);
  });
});

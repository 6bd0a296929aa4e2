// Event -> work keys: which Sandbox and Host keys a change of each watched kind enqueues.
import { describe, expect, it } from 'vitest';
import { allKeys, hostKey, keysForObject, parseKey, sandboxKey } from '../../src/controller/keys.js';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { planHost } from '../../src/controller/routing.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { routesSandbox, sandboxesRoutedBy } from '../../src/controller/view.js';
import { NS, baseView, routeGroup, sandbox, userPayVirtualService, withApplied, withVirtualServices } from './fixtures.js';

describe('work keys', () => {
  it('round-trip and refuse malformed keys', () => {
    expect(parseKey(sandboxKey('shop', 'alice'))).toEqual({ kind: 'Sandbox', namespace: 'shop', name: 'alice' });
    expect(parseKey(hostKey('shop', 'cart'))).toEqual({ kind: 'Host', namespace: 'shop', service: 'cart' });
    for (const bad of ['Sandbox/shop', 'Pod/shop/x', 'Host/shop/cart/x', 'Sandbox//x']) expect(() => parseKey(bad)).toThrow(`malformed work key ${JSON.stringify(bad)}`);
  });
});

describe('keysForObject', () => {
  const alice = sandbox('alice', ['cart-v1', 'pay-v1'], { labels: { team: 'x' } });
  const bob = sandbox('bob', ['cart-v1']);
  const dave = sandbox('dave', ['pay-v1'], { routingKey: 'sharedkey1' });
  const erin = sandbox('erin', ['pay-v1'], { routingKey: 'sharedkey1' });
  const applied = withApplied(withApplied(baseView({ sandboxes: [alice, bob, dave, erin] }), alice, 1), bob, 1);
  const verdicts = new Map([alice, bob].map((s) => [s.metadata.name, planSandbox(s, applied, undefined)]));
  const view = withVirtualServices(applied, [
    ...planHost(applied, { namespace: NS, service: 'cart' }, verdicts, undefined).apply,
    ...planHost(applied, { namespace: NS, service: 'pay' }, verdicts, undefined).update,
  ]);
  const find = (kind: string, name: string) => [...view.deployments, ...view.services, ...view.envoyFilters, ...view.virtualServices].find((o) => o.kind === kind && o.metadata.name === name)!;

  it('a Sandbox: itself and the Sandboxes sharing its routing key; going away, also the hosts it has Services or routes on', () => {
    // A Sandbox that stays: its own reconcile enqueues its hosts when their input changed.
    expect(keysForObject('Sandbox', alice as unknown as KubeObject, view)).toEqual(['Sandbox/shop/alice']);
    expect(keysForObject('Sandbox', dave as unknown as KubeObject, view)).toEqual(['Sandbox/shop/dave', 'Sandbox/shop/erin']);
    const deleting = { ...alice, metadata: { ...alice.metadata, deletionTimestamp: '2026-11-30T00:00:00Z' } };
    const withDeleting = { ...view, sandboxes: view.sandboxes.map((s) => (s === alice ? deleting : s)) };
    expect(keysForObject('Sandbox', deleting as unknown as KubeObject, withDeleting)).toEqual(['Host/shop/cart', 'Host/shop/pay', 'Sandbox/shop/alice', 'Sandbox/shop/bob', 'Sandbox/shop/dave', 'Sandbox/shop/erin']);
    // Gone from the cache (deleted without its finalizer): its routes and fork Services are still there.
    const gone = { ...view, sandboxes: view.sandboxes.filter((s) => s !== alice) };
    expect(keysForObject('Sandbox', alice as unknown as KubeObject, gone)).toEqual(['Host/shop/cart', 'Host/shop/pay', 'Sandbox/shop/alice', 'Sandbox/shop/bob', 'Sandbox/shop/dave', 'Sandbox/shop/erin']);
  });

  it('a baseline Deployment: only the Sandboxes forking it', () => {
    expect(keysForObject('Deployment', find('Deployment', 'cart-v1'), view)).toEqual(['Sandbox/shop/alice', 'Sandbox/shop/bob']);
    expect(keysForObject('Deployment', find('Deployment', 'pay-v1'), view)).toEqual(['Sandbox/shop/alice', 'Sandbox/shop/dave', 'Sandbox/shop/erin']);
  });

  it("a generated object: its Sandbox, by the labels (the sandbox-namespace label wins over the object's namespace)", () => {
    expect(keysForObject('Deployment', find('Deployment', 'cart-v1-bob'), view)).toEqual(['Sandbox/shop/bob']);
    expect(keysForObject('EnvoyFilter', find('EnvoyFilter', 'pay-v1-alice-affinity'), view)).toEqual(['Sandbox/shop/alice']);
    expect(keysForObject('Service', find('Service', 'cart-alice'), view)).toEqual(['Sandbox/shop/alice']);
    const elsewhere = structuredClone(find('Deployment', 'cart-v1-bob'));
    elsewhere.metadata.namespace = 'other';
    elsewhere.metadata.labels!['meshfork.dev/sandbox-namespace'] = 'shop';
    expect(keysForObject('Deployment', elsewhere, view)).toEqual(['Sandbox/shop/bob']);
  });

  it('a baseline Service: its host and every Sandbox forking in its namespace', () => {
    expect(keysForObject('Service', find('Service', 'cart'), view)).toEqual(['Host/shop/cart', 'Sandbox/shop/alice', 'Sandbox/shop/bob', 'Sandbox/shop/dave', 'Sandbox/shop/erin']);
  });

  it('a VirtualService: its hosts, the Sandboxes it routes and those forking its hosts', () => {
    expect(keysForObject('VirtualService', find('VirtualService', 'pay'), view)).toEqual(['Host/shop/pay', 'Sandbox/shop/alice']);
    expect(keysForObject('VirtualService', userPayVirtualService, view)).toEqual(['Host/shop/pay', 'Sandbox/shop/alice']);
    expect(keysForObject('VirtualService', find('VirtualService', 'cart-meshfork'), view)).toEqual(['Host/shop/cart', 'Sandbox/shop/alice', 'Sandbox/shop/bob']);
  });

  it('a RouteGroup: itself and every Sandbox of its namespace (its membership before the change is unknown)', () => {
    expect(keysForObject('RouteGroup', routeGroup('g', 'team', 'x') as unknown as KubeObject, view)).toEqual([
      'RouteGroup/shop/g',
      'Sandbox/shop/alice',
      'Sandbox/shop/bob',
      'Sandbox/shop/dave',
      'Sandbox/shop/erin',
    ]);
    // A Sandbox change may change the membership of every RouteGroup of its namespace.
    const withGroup = { ...view, routeGroups: [routeGroup('g', 'team', 'x')] };
    expect(keysForObject('Sandbox', bob as unknown as KubeObject, withGroup)).toEqual(['RouteGroup/shop/g', 'Sandbox/shop/bob']);
  });

  it('after the caches sync: every Sandbox and every host holding routes or fork Services', () => {
    expect(allKeys(view)).toEqual(['Host/shop/cart', 'Host/shop/pay', 'Sandbox/shop/alice', 'Sandbox/shop/bob', 'Sandbox/shop/dave', 'Sandbox/shop/erin']);
  });
});

describe('routesSandbox', () => {
  it("recognises a Sandbox's routes by name and by a destination in a namespace it forks into", () => {
    const alice = sandbox('alice', ['cart-v1']);
    const vs = (name: string, host: string): KubeObject => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'v', namespace: 'elsewhere' },
      spec: { hosts: ['x'], http: [{ name, route: [{ destination: { host } }] }] },
    });
    expect(routesSandbox(vs('meshfork-alice-0', `cart-alice.${NS}.svc.cluster.local`), alice)).toBe(true);
    expect(routesSandbox(vs('meshfork-alice-12', `cart-alice.${NS}.svc.cluster.local`), alice)).toBe(true);
    // Same name, routed into a namespace alice does not fork into: another namespace's "alice".
    expect(routesSandbox(vs('meshfork-alice-0', 'cart-alice.elsewhere.svc.cluster.local'), alice)).toBe(false);
    expect(routesSandbox(vs('meshfork-alice-0', 'cart-alice'), alice)).toBe(false);
    expect(routesSandbox(vs('meshfork-alice-bob-0', `cart-alice-bob.${NS}.svc.cluster.local`), alice)).toBe(false);
    expect(routesSandbox(vs('meshfork-baseline', `cart.${NS}.svc.cluster.local`), alice)).toBe(false);
  });
});

describe('sandboxesRoutedBy', () => {
  it('finds the Sandboxes a VirtualService routes from its route names, as routesSandbox over every Sandbox does', () => {
    // `a` and `a-1`: the route meshfork-a-1-0 is a-1's first route, never a's second.
    const a = sandbox('a', ['cart-v1']);
    const a1 = sandbox('a-1', ['cart-v1']);
    const a12 = sandbox('a-12', ['cart-v1']);
    let view = baseView({ sandboxes: [a, a1, a12] });
    for (const s of [a1, a12]) view = withApplied(view, s, 1);
    const verdicts = new Map([a1, a12].map((s) => [s.metadata.name, planSandbox(s, view, undefined)]));
    const vs = planHost(view, { namespace: NS, service: 'cart' }, verdicts, undefined).apply[0]!;
    expect(((vs.spec as { http: Array<{ name: string }> }).http).map((r) => r.name)).toEqual(['meshfork-a-1-0', 'meshfork-a-12-0', 'meshfork-baseline']);
    expect(sandboxesRoutedBy(vs, view).map((s) => s.metadata.name)).toEqual(['a-1', 'a-12']);
    expect(view.sandboxes.filter((s) => routesSandbox(vs, s)).map((s) => s.metadata.name)).toEqual(['a-1', 'a-12']);
  });
});

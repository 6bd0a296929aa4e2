// Make before break and the per-host plan: which Sandboxes get routes, and what the host's
// reconcile writes (apply meshfork's VirtualService, read-modify-write the user's, delete).
import { describe, expect, it } from 'vitest';
import { planSandbox, type SandboxVerdict } from '../../src/controller/sandbox-plan.js';
import { awaitsHostRoutes, eligibility, hostClosure, planHost, routingState, userVirtualService } from '../../src/controller/routing.js';
import { LonePlanMemo } from '../../src/controller/sandbox-plan.js';
import type { ClusterView } from '../../src/controller/view.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { NS, baseView, routeGroup, sandbox, userPayVirtualService, withApplied, withVirtualServices } from './fixtures.js';

function verdicts(view: ClusterView): Map<string, SandboxVerdict> {
  return new Map(view.sandboxes.map((s) => [s.metadata.name, planSandbox(s, view, undefined)]));
}

const routeNames = (vs: KubeObject | undefined) => ((vs?.spec as { http: Array<{ name?: string }> }).http ?? []).map((r) => r.name);

describe('eligibility (make before break)', () => {
  const alice = sandbox('alice', ['cart-v1']);

  it('waits for the fork Service to exist, then for an available replica', () => {
    const view = baseView({ sandboxes: [alice] });
    expect(eligibility(planSandbox(alice, view, undefined), view)).toEqual({ eligible: false, reason: `waiting for fork Service ${NS}/cart-alice to be created` });
    const created = withApplied(view, alice, 0);
    expect(eligibility(planSandbox(alice, created, undefined), created)).toEqual({ eligible: false, reason: `waiting for Deployment ${NS}/cart-v1-alice to have an available replica` });
    const noStatus = withApplied(view, alice, null);
    expect(eligibility(planSandbox(alice, noStatus, undefined), noStatus).eligible).toBe(false);
    const up = withApplied(view, alice, 1);
    expect(eligibility(planSandbox(alice, up, undefined), up)).toEqual({ eligible: true, reason: 'every fork has an available replica' });
  });

  it('keeps the routes of a routed Sandbox whose fork lost its replicas', () => {
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'cart' }, verdicts(up), undefined).apply);
    const down = { ...routed, deployments: routed.deployments.map((d) => (d.metadata.name === 'cart-v1-alice' ? { ...d, status: { availableReplicas: 0, observedGeneration: 1 } } : d)) };
    expect(eligibility(planSandbox(alice, down, undefined), down)).toEqual({
      eligible: true,
      reason: `keeps its routes although Deployment ${NS}/cart-v1-alice has no available replica`,
    });
    expect(routeNames(planHost(down, { namespace: NS, service: 'cart' }, verdicts(down), undefined).apply[0])).toEqual(['meshfork-alice-0', 'meshfork-baseline']);
  });

  it('never routes an invalid Sandbox or one being deleted, even when it is routed now', () => {
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'cart' }, verdicts(up), undefined).apply);
    const deleting = sandbox('alice', ['cart-v1'], { deleting: true });
    const view = { ...routed, sandboxes: [deleting] };
    expect(eligibility(planSandbox(deleting, view, undefined), view)).toEqual({ eligible: false, reason: 'the Sandbox is being deleted' });
    const invalid = sandbox('alice', ['cart-v9']);
    const view2 = { ...routed, sandboxes: [invalid] };
    expect(eligibility(planSandbox(invalid, view2, undefined), view2)).toEqual({ eligible: false, reason: 'the Sandbox spec is invalid' });
  });
});

describe('per-host make before break', () => {
  it('a routed Sandbox that adds a fork gets routes to it only once that fork is available', () => {
    const before = sandbox('alice', ['cart-v1']);
    const up = withApplied(baseView({ sandboxes: [before] }), before, 1);
    const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'cart' }, verdicts(up), undefined).apply);
    // The spec now forks pay-v1 too: its fork Service exists, its Deployment has no replica yet.
    const after = { ...before, spec: { ...before.spec, forks: [...before.spec.forks, { forkOf: { kind: 'Deployment' as const, name: 'pay-v1' }, customizations: {} }] } };
    const applied = withApplied({ ...routed, sandboxes: [after] }, after, 0);
    const view = {
      ...applied,
      // cart-v1-alice exists twice now (before and after); keep the available one.
      deployments: applied.deployments.filter((d, i, all) => all.findIndex((o) => o.metadata.name === d.metadata.name) === i),
      services: applied.services.filter((d, i, all) => all.findIndex((o) => o.metadata.name === d.metadata.name) === i),
      envoyFilters: applied.envoyFilters.filter((d, i, all) => all.findIndex((o) => o.metadata.name === d.metadata.name) === i),
    };
    const v = verdicts(view);
    expect(eligibility(v.get('alice')!, view, `pay.${NS}.svc.cluster.local`)).toEqual({ eligible: false, reason: `waiting for Deployment ${NS}/pay-v1-alice to have an available replica` });
    expect(eligibility(v.get('alice')!, view, `cart.${NS}.svc.cluster.local`)).toEqual({ eligible: true, reason: 'every fork has an available replica' });
    const pay = planHost(view, { namespace: NS, service: 'pay' }, v, undefined);
    expect(pay.update).toEqual([]); // no meshfork route in it, nothing to write
    expect(pay.routed).toEqual([]);
    expect(routeNames(planHost(view, { namespace: NS, service: 'cart' }, v, undefined).apply[0])).toEqual(['meshfork-alice-0', 'meshfork-baseline']);
  });

  it('a user VirtualService naming two hosts gets the routes of the eligible one only', () => {
    const both: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'both', namespace: NS }, spec: { hosts: ['cart', 'pay'], http: [{ route: [{ destination: { host: 'cart' } }] }, { route: [{ destination: { host: 'pay' } }] }] } };
    const alice = sandbox('alice', ['cart-v1', 'pay-v1']);
    const applied = withApplied(baseView({ sandboxes: [alice], virtualServices: [both] }), alice, 1);
    const view = { ...applied, deployments: applied.deployments.map((d) => (d.metadata.name === 'pay-v1-alice' ? { ...d, status: { availableReplicas: 0, observedGeneration: 1 } } : d)) };
    const plan = planHost(view, { namespace: NS, service: 'cart' }, verdicts(view), undefined);
    expect(plan.update.map((o) => o.metadata.name)).toEqual(['both']);
    const http = (plan.update[0]!.spec as { http: Array<{ name?: string; route: Array<{ destination: { host: string } }> }> }).http;
    expect(http.map((r) => [r.name, r.route[0]!.destination.host])).toEqual([
      ['meshfork-alice-0', `cart-alice.${NS}.svc.cluster.local`],
      [undefined, 'cart'],
      [undefined, 'pay'],
    ]);
  });
});

describe('planHost', () => {
  it("routes every eligible Sandbox in meshfork's own VirtualService and leaves out the others", () => {
    const [a, b, c] = [sandbox('alice', ['cart-v1']), sandbox('bob', ['cart-v1']), sandbox('carol', ['cart-v1'])];
    const view = withApplied(withApplied(withApplied(baseView({ sandboxes: [a, b, c] }), a, 1), b, 1), c, 0);
    const plan = planHost(view, { namespace: NS, service: 'cart' }, verdicts(view), undefined);
    expect(plan.apply.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([`${NS}/cart-meshfork`]);
    expect(routeNames(plan.apply[0])).toEqual(['meshfork-alice-0', 'meshfork-bob-0', 'meshfork-baseline']);
    expect(plan.update).toEqual([]);
    expect(plan.delete).toEqual([]);
    expect(plan.routed.map((s) => s.metadata.name)).toEqual(['alice', 'bob']);
  });

  it("merges into the user's VirtualService (never applies it) and restores it exactly when no Sandbox is left", () => {
    const a = sandbox('alice', ['pay-v1']);
    const view = withApplied(baseView({ sandboxes: [a] }), a, 1);
    const plan = planHost(view, { namespace: NS, service: 'pay' }, verdicts(view), undefined);
    expect(plan.apply).toEqual([]);
    expect(plan.update.map((o) => o.metadata.name)).toEqual(['pay']);
    expect(routeNames(plan.update[0])).toEqual(['meshfork-alice-0', 'canary', 'meshfork-alice-1', 'default']);
    const merged = plan.update[0]!;

    const gone = withVirtualServices({ ...view, sandboxes: [] }, [merged]);
    const after = planHost(gone, { namespace: NS, service: 'pay' }, verdicts(gone), undefined);
    expect(after.update).toEqual([userPayVirtualService]);
    expect(userVirtualService(gone, after.input, merged, undefined)).toEqual(userPayVirtualService);
    expect(userVirtualService(gone, after.input, userPayVirtualService, undefined)).toBeUndefined();
  });

  it("keeps a route the user added between the cache and the write (the merge re-runs on the fresh object)", () => {
    const a = sandbox('alice', ['pay-v1']);
    const view = withApplied(baseView({ sandboxes: [a] }), a, 1);
    const plan = planHost(view, { namespace: NS, service: 'pay' }, verdicts(view), undefined);
    const fresh = structuredClone(userPayVirtualService);
    (fresh.spec as { http: unknown[] }).http.unshift({ name: 'mirror', match: [{ headers: { 'x-mirror': { exact: '1' } } }], route: [{ destination: { host: 'pay' } }] });
    expect(routeNames(userVirtualService(view, plan.input, fresh, undefined))).toEqual(['meshfork-alice-0', 'mirror', 'meshfork-alice-1', 'canary', 'meshfork-alice-2', 'default']);
  });

  it("deletes meshfork's own VirtualService when the last Sandbox goes, and when a user VirtualService appears", () => {
    const a = sandbox('alice', ['cart-v1']);
    const up = withApplied(baseView({ sandboxes: [a] }), a, 1);
    const owned = planHost(up, { namespace: NS, service: 'cart' }, verdicts(up), undefined).apply;
    const none = withVirtualServices({ ...up, sandboxes: [] }, owned);
    expect(planHost(none, { namespace: NS, service: 'cart' }, verdicts(none), undefined).delete.map((o) => o.metadata.name)).toEqual(['cart-meshfork']);
    const userCart: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'cart', namespace: NS }, spec: { hosts: ['cart'], http: [{ route: [{ destination: { host: 'cart' } }] }] } };
    const taken = withVirtualServices(up, [...owned, userCart]);
    const plan = planHost(taken, { namespace: NS, service: 'cart' }, verdicts(taken), undefined);
    expect(plan.update.map((o) => o.metadata.name)).toEqual(['cart']);
    expect(plan.delete.map((o) => o.metadata.name)).toEqual(['cart-meshfork']);
  });

  it('plans hosts tied by one user VirtualService together, and leaves out a RouteGroup whose members fork one workload', () => {
    const both: KubeObject = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'both', namespace: NS }, spec: { hosts: ['cart', 'pay'], http: [{ route: [{ destination: { host: 'cart' } }] }, { route: [{ destination: { host: 'pay' } }] }] } };
    const tied = baseView({ virtualServices: [both] });
    expect(hostClosure(tied, { namespace: NS, service: 'cart' })).toEqual([
      { namespace: NS, service: 'cart' },
      { namespace: NS, service: 'pay' },
    ]);
    const a = sandbox('alice', ['cart-v1'], { labels: { team: 'x' } });
    const b = sandbox('bob', ['cart-v1'], { labels: { team: 'x' } });
    const group = routeGroup('team-x', 'team', 'x');
    const view = withApplied(withApplied({ ...baseView(), sandboxes: [a, b], routeGroups: [group] }, a, 1), b, 1);
    const plan = planHost(view, { namespace: NS, service: 'cart' }, verdicts(view), undefined);
    expect(plan.excluded).toEqual([{ object: `RouteGroup ${NS}/team-x`, path: 'spec.match', message: `members "alice" and "bob" both fork Deployment ${NS}/cart-v1` }]);
    expect(routeNames(plan.apply[0])).toEqual(['meshfork-alice-0', 'meshfork-bob-0', 'meshfork-baseline']);
  });
});

describe('planHost: gateway-bound VirtualServices', () => {
  // Bound to an ingress gateway only, `hosts: ["*"]`, routing to cart and pay.
  const edge: KubeObject = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'edge', namespace: NS },
    spec: { hosts: ['*'], gateways: ['istio-system/ingressgateway'], http: [{ match: [{ uri: { prefix: '/pay' } }], route: [{ destination: { host: 'pay' } }] }, { route: [{ destination: { host: 'cart' } }] }] },
  };

  it('ties the hosts it routes to, and is written by their plan when gateway copies are on', () => {
    const a = sandbox('alice', ['cart-v1']);
    const view = withApplied(baseView({ sandboxes: [a], virtualServices: [edge] }), a, 1);
    expect(hostClosure(view, { namespace: NS, service: 'cart' }).map((h) => h.service).sort()).toEqual(['cart', 'pay']);
    const on = planHost(view, { namespace: NS, service: 'cart' }, verdicts(view), { ingressGuard: { enabled: true } });
    expect(on.update.map((o) => o.metadata.name)).toEqual(['edge']);
    expect(routeNames(on.update[0])).toEqual([undefined, 'meshfork-alice-1', undefined]);
    const off = planHost(view, { namespace: NS, service: 'cart' }, verdicts(view), undefined);
    expect(off.update).toEqual([]);
  });
});

describe('userVirtualService', () => {
  it('sees no change in a stored object whose keys the API server sorted', () => {
    const a = sandbox('alice', ['pay-v1']);
    const view = withApplied(baseView({ sandboxes: [a] }), a, 1);
    const plan = planHost(view, { namespace: NS, service: 'pay' }, verdicts(view), undefined);
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)])) : v;
    const stored = sortKeys(plan.update[0]) as KubeObject;
    expect(JSON.stringify(stored)).not.toBe(JSON.stringify(plan.update[0]));
    expect(userVirtualService(view, plan.input, stored, undefined)).toBeUndefined();
  });
});

describe('routingState (a Sandbox reconcile enqueues its hosts when it changes)', () => {
  it('stays for a status write or a new snapshot; changes with the spec, availability, problems and deletion', () => {
    const memo = new LonePlanMemo();
    const alice = sandbox('alice', ['cart-v1']);
    const created = withApplied(baseView({ sandboxes: [alice] }), alice, 0);
    const state = (s: typeof alice, view: ClusterView) => routingState(planSandbox(s, view, undefined, memo), view);
    const waiting = state(alice, created);
    const statusWritten = { ...alice, metadata: { ...alice.metadata, resourceVersion: '7' }, status: { routingKey: 'x' } } as typeof alice;
    expect(state(statusWritten, { ...created, sandboxes: [statusWritten] })).toBe(waiting);
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const available = state(alice, up);
    expect(available).not.toBe(waiting);
    const respec = sandbox('alice', ['cart-v1', 'pay-v1']);
    expect(state(respec, { ...up, sandboxes: [respec] })).not.toBe(available);
    const deleting = sandbox('alice', ['cart-v1'], { deleting: true });
    expect(state(deleting, { ...up, sandboxes: [deleting] })).not.toBe(available);
    // A key clash: problems, no hosts.
    const holder = sandbox('older', ['pay-v1'], { routingKey: 'shared', created: '2020-01-01T00:00:00Z' });
    const clash = sandbox('alice', ['cart-v1'], { routingKey: 'shared' });
    const clashView = { ...up, sandboxes: [holder, clash] };
    const verdict = planSandbox(clash, clashView, undefined, memo);
    expect(verdict.problems.map((p) => p.path)).toEqual(['spec.routingKey']);
    expect(routingState(verdict, clashView)).not.toBe(state(sandbox('alice', ['cart-v1'], { routingKey: 'shared' }), { ...up, sandboxes: [sandbox('alice', ['cart-v1'], { routingKey: 'shared' })] }));
  });
});

describe('awaitsHostRoutes (its status waits for the routes being written)', () => {
  it('only while a valid Sandbox eligible on a host is not routed there yet', () => {
    const alice = sandbox('alice', ['cart-v1']);
    const creating = withApplied(baseView({ sandboxes: [alice] }), alice, 0);
    expect(awaitsHostRoutes(planSandbox(alice, creating, undefined), creating)).toBe(false);
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    expect(awaitsHostRoutes(planSandbox(alice, up, undefined), up)).toBe(true);
    const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'cart' }, new Map([['alice', planSandbox(alice, up, undefined)]]), undefined).apply);
    expect(awaitsHostRoutes(planSandbox(alice, routed, undefined), routed)).toBe(false);
    const deleting = sandbox('alice', ['cart-v1'], { deleting: true });
    const going = { ...up, sandboxes: [deleting] };
    expect(awaitsHostRoutes(planSandbox(deleting, going, undefined), going)).toBe(false);
  });
});

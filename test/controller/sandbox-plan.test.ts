// The lone plan of one Sandbox reads the baseline without meshfork's own routes: the same verdict
// as over the user's VirtualService holding every other Sandbox's routes, at a cost that does not
// grow with them.
import { describe, expect, it } from 'vitest';
import { LonePlanMemo, lonePlanInventory, planSandbox } from '../../src/controller/sandbox-plan.js';
import { planHost, routingState } from '../../src/controller/routing.js';
import { plan } from '../../src/planner/plan.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { NS, baseView, sandbox, userPayVirtualService, withApplied, withVirtualServices } from './fixtures.js';

const routeNames = (vs: KubeObject) => ((vs['spec'] as { http?: Array<{ name?: string }> }).http ?? []).map((r) => r.name);

describe('lonePlanInventory', () => {
  const others = Array.from({ length: 3 }, (_, i) => sandbox(`other${i}`, ['pay-v1']));
  let routed = baseView({ sandboxes: others });
  for (const s of others) routed = withApplied(routed, s, 1);
  const merged = planHost(routed, { namespace: NS, service: 'pay' }, new Map(others.map((s) => [s.metadata.name, planSandbox(s, routed, undefined)])), undefined).update;
  routed = withVirtualServices(routed, merged);

  it('leaves meshfork routes out of user VirtualServices, keeping the user routes in order and the cached objects as they are', () => {
    const cached = routed.virtualServices.find((o) => o.metadata.name === 'pay')!;
    expect(routeNames(cached)).toEqual(['meshfork-other0-0', 'meshfork-other1-0', 'meshfork-other2-0', 'canary', 'meshfork-other0-1', 'meshfork-other1-1', 'meshfork-other2-1', 'default']);
    const inventory = lonePlanInventory(routed);
    expect(inventory.virtualServices.map((o) => [o.metadata.name, routeNames(o)])).toEqual([['pay', ['canary', 'default']]]);
    expect(inventory.virtualServices[0]!.spec).toEqual(userPayVirtualService.spec);
    // The merged-routes count is meshfork's too.
    expect(cached.metadata.annotations).toEqual({ owner: 'payments', 'meshfork.dev/merged-routes': '6' });
    expect(inventory.virtualServices[0]!.metadata).toEqual({ ...cached.metadata, annotations: { owner: 'payments' } });
    expect(routeNames(cached)).toHaveLength(8);
    expect(lonePlanInventory(routed)).toBe(inventory);
  });

  it('gives the same verdict as a plan over the VirtualService with every route', () => {
    const alice = sandbox('alice', ['pay-v1', 'cart-v1']);
    const view = { ...routed, sandboxes: [...routed.sandboxes, alice] };
    const clean = { ...baseView({ sandboxes: [...others, alice] }), deployments: view.deployments, services: view.services, envoyFilters: view.envoyFilters, destinationRules: view.destinationRules };
    const verdict = planSandbox(alice, view, undefined);
    expect(verdict.problems).toEqual([]);
    expect(verdict.objects.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual([
      'Deployment cart-v1-alice',
      'Deployment pay-v1-alice',
      'Service cart-alice',
      'Service pay-alice',
      'EnvoyFilter cart-v1-alice-affinity',
      'EnvoyFilter pay-v1-alice-affinity',
    ]);
    expect(verdict).toEqual(planSandbox(alice, clean, undefined));
  });
});

describe('planSandbox: a fork naming a workload of another kind', () => {
  it("says what the name is when the view holds the workload's identity (the reconciler reads it on demand)", () => {
    const broker = sandbox('broker', ['kafka']);
    const path = 'spec.forks[0].forkOf.name';
    const without = planSandbox(broker, baseView({ sandboxes: [broker] }), undefined);
    expect(without.problems.map((p) => [p.path, p.message, p.code])).toEqual([[path, `Deployment "kafka" not found in namespace "${NS}"`, 'BaselineNotFound']]);
    const kafka = { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'kafka', namespace: NS } };
    const withWorkload = planSandbox(broker, baseView({ sandboxes: [broker], workloads: [kafka] }), undefined);
    expect(withWorkload.problems.map((p) => [p.path, p.message])).toEqual([
      [
        path,
        `Deployment "kafka" not found in namespace "${NS}"; ${NS}/kafka is a StatefulSet (apps/v1): a StatefulSet keeps stable pod names and volumes that a copy would share or contend for; fork the Deployments that use it (an env customization can point a fork at a separate instance)`,
      ],
    ]);
    expect(withWorkload.objects).toEqual([]);
  });
});

describe('LonePlanMemo', () => {
  const others = Array.from({ length: 2 }, (_, i) => sandbox(`other${i}`, ['pay-v1']));
  let start = baseView({ sandboxes: others });
  for (const s of others) start = withApplied(start, s, 1);
  const pay = (view: typeof start) => view.virtualServices.find((o) => o.metadata.name === 'pay')!;
  /** The view after a host reconcile wrote the routes of `sandboxes` into the user VirtualService (a new version of it). */
  const written = (view: typeof start, generation: number) => {
    const merged = planHost(view, { namespace: NS, service: 'pay' }, new Map(view.sandboxes.map((s) => [s.metadata.name, planSandbox(s, view, undefined)])), undefined).update;
    return withVirtualServices(view, merged.map((vs) => ({ ...vs, metadata: { ...vs.metadata, resourceVersion: String(generation), generation } })));
  };

  it('reuses a plan while the baseline stays the same (new snapshots, other routes in the user VirtualService), and gives what planSandbox gives alone', () => {
    const memo = new LonePlanMemo();
    const v1 = written(start, 1);
    const verdict = planSandbox(others[0]!, v1, undefined, memo);
    expect(memo.counts).toEqual({ planned: 1, reused: 0 });
    // A later snapshot: the VirtualService written again with a third Sandbox's routes.
    const third = sandbox('third', ['pay-v1']);
    const v2 = written(withApplied({ ...v1, sandboxes: [...v1.sandboxes, third] }, third, 1), 2);
    expect(routeNames(pay(v2))).not.toEqual(routeNames(pay(v1)));
    expect(memo.inventoryOf(v2)).toBe(memo.inventoryOf(v1));
    const again = planSandbox(others[0]!, v2, undefined, memo);
    expect(memo.counts).toEqual({ planned: 1, reused: 1 });
    expect(again.plan).toBe(verdict.plan);
    expect(again).toEqual(planSandbox(others[0]!, v2, undefined));
    // A new version of the Sandbox with a status written and server-set metadata moved on.
    const statusWritten = { ...others[0]!, metadata: { ...others[0]!.metadata, resourceVersion: '9', finalizers: ['meshfork.dev/cleanup'] }, status: { routingKey: again.routingKey } } as typeof others[0];
    expect(planSandbox(statusWritten, v2, undefined, memo).plan).toBe(verdict.plan);
    expect(memo.counts).toEqual({ planned: 1, reused: 2 });
  });

  it('plans again when the baseline, the Sandbox, its RouteGroups or the configuration change', () => {
    const memo = new LonePlanMemo();
    const alice = others[0]!;
    planSandbox(alice, start, undefined, memo);
    // A user route added to the user VirtualService: part of the baseline.
    const userVs = pay(start);
    const userEdit = { ...start, virtualServices: [{ ...userVs, spec: { ...(userVs.spec as object), http: [{ name: 'extra', route: [{ destination: { host: 'pay' } }] }, ...((userVs.spec as { http: unknown[] }).http)] } }] };
    expect(memo.inventoryOf(userEdit)).not.toBe(memo.inventoryOf(start));
    expect(planSandbox(alice, userEdit, undefined, memo)).toEqual(planSandbox(alice, userEdit, undefined));
    // The baseline Deployment's env (the fork follows what the Sandbox does not override).
    const image = { ...userEdit, deployments: userEdit.deployments.map((d) => (d.metadata.name === 'pay-v1' ? structuredClone(d) : d)) };
    const changed = image.deployments.find((d) => d.metadata.name === 'pay-v1')!;
    (changed.spec as { template: { spec: { containers: Array<{ env?: unknown[] }> } } }).template.spec.containers[0]!.env = [{ name: 'FROM_BASELINE', value: '2' }];
    const verdict = planSandbox(alice, image, undefined, memo);
    expect(JSON.stringify(verdict.objects)).toContain('FROM_BASELINE');
    // The Sandbox itself (a new version) and the configuration (a new object).
    planSandbox({ ...alice, metadata: { ...alice.metadata, labels: { edited: 'yes' } } }, image, undefined, memo);
    planSandbox(alice, image, { policy: {} }, memo);
    expect(memo.counts).toEqual({ planned: 5, reused: 0 });
  });

  it('reuses the plan when only annotations change (the planner never reads them on a Sandbox), and knows the hosts it forks', () => {
    const memo = new LonePlanMemo();
    const alice = sandbox('alice', ['cart-v1', 'pay-v1']);
    const annotated = { ...alice, metadata: { ...alice.metadata, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'argocd.argoproj.io/tracking-id': 'shop:meshfork.dev/Sandbox:shop/alice' } } };
    const view = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    // What makes leaving annotations out of the memo's input sound: plan() gives the same objects.
    const inventory = lonePlanInventory(view);
    expect(plan({ inventory, sandboxes: [annotated] }).objects).toEqual(plan({ inventory, sandboxes: [alice] }).objects);
    const first = planSandbox(alice, view, undefined, memo);
    const second = planSandbox(annotated, { ...view, sandboxes: [annotated] }, undefined, memo);
    expect(memo.counts).toEqual({ planned: 1, reused: 1 });
    expect(second.plan).toBe(first.plan);
    // Nor does a host reconcile read anything new of it: its hosts are not enqueued again.
    expect(routingState(second, { ...view, sandboxes: [annotated] })).toBe(routingState(first, view));
    expect([...memo.plannedHosts(annotated, memo.inventoryOf(view))!].sort()).toEqual([`cart.${NS}.svc.cluster.local`, `pay.${NS}.svc.cluster.local`]);
    // Another baseline (a new inventory): not known until planned over it.
    const edited = { ...view, deployments: view.deployments.map((d) => (d.metadata.name === 'pay-v1' ? structuredClone(d) : d)) };
    expect(memo.plannedHosts(annotated, memo.inventoryOf(edited))).toBeUndefined();
    expect(memo.plannedHosts(sandbox('bob', ['cart-v1']), memo.inventoryOf(view))).toBeUndefined();
  });
});

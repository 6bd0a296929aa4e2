// The lone plan of one Sandbox reads the baseline without meshfork's own routes: the same verdict
// as over the user's VirtualService holding every other Sandbox's routes, at a cost that does not
// grow with them.
import { describe, expect, it } from 'vitest';
import { lonePlanInventory, planSandbox } from '../../src/controller/sandbox-plan.js';
import { planHost } from '../../src/controller/routing.js';
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
    expect(inventory.virtualServices[0]!.metadata).toEqual(cached.metadata);
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

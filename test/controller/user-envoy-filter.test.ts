// A user's EnvoyFilter under the name of a fork's generated one: the controller's inventory holds
// it, so the planner refuses to replace it and the Sandbox's status says why.
import { describe, expect, it } from 'vitest';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { computeStatus } from '../../src/controller/status.js';
import { keysForObject } from '../../src/controller/keys.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { NS, baseView, sandbox } from './fixtures.js';

const userFilter: KubeObject = {
  apiVersion: 'networking.istio.io/v1alpha3',
  kind: 'EnvoyFilter',
  metadata: { name: 'cart-v1-alice-affinity', namespace: NS, labels: { team: 'cart' } },
  spec: { workloadSelector: { labels: { app: 'cart' } }, configPatches: [] },
};

describe('a user EnvoyFilter under a generated name', () => {
  const alice = sandbox('alice', ['cart-v1']);

  it('makes the Sandbox invalid with the planner message, and nothing is applied for it', () => {
    const view = baseView({ sandboxes: [alice], envoyFilters: [userFilter] });
    const verdict = planSandbox(alice, view, undefined);
    expect(verdict.objects).toEqual([]);
    expect(verdict.problems).toEqual([
      { object: `Sandbox ${NS}/alice`, path: 'spec.forks[0].forkOf.name', message: `would replace EnvoyFilter ${NS}/cart-v1-alice-affinity, which already exists and is not meshfork's output for this Sandbox` },
    ]);
    expect(computeStatus(verdict, view, new Date('2026-11-30T10:10:00Z')).conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      message: `spec.forks[0].forkOf.name: would replace EnvoyFilter ${NS}/cart-v1-alice-affinity, which already exists and is not meshfork's output for this Sandbox`,
    });
    expect(planSandbox(alice, baseView({ sandboxes: [alice] }), undefined).problems).toEqual([]);
  });

  it('its change (or removal) enqueues the Sandboxes forking into its namespace', () => {
    expect(keysForObject('EnvoyFilter', userFilter, baseView({ sandboxes: [alice] }))).toEqual([`Sandbox/${NS}/alice`]);
  });
});

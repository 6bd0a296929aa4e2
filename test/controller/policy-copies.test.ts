// Copies of label-selected policies in the controller: the inventory it plans with holds the
// policies its informers cache, so a Sandbox's verdict applies the copies before its fork
// Deployment; a change of a user's policy enqueues the Sandboxes forking into its namespace
// (every Sandbox for an Istio policy of the root namespace); the copies are generated objects of
// their Sandbox, so the same cleanup path deletes them.
import { describe, expect, it } from 'vitest';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { allKeys, keysForObject } from '../../src/controller/keys.js';
import { generatedFor, inventoryOfView } from '../../src/controller/view.js';
import { objectRef } from '../../src/planner/plan.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { NS, baseView, sandbox, withApplied } from './fixtures.js';

const deny: KubeObject = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'cart-deny-admin', namespace: NS, labels: { team: 'cart' } },
  spec: { selector: { matchLabels: { app: 'cart', version: 'v1' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] },
};

const netpol: KubeObject = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'cart-ingress', namespace: NS },
  spec: { podSelector: { matchLabels: { app: 'cart' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'pay' } } }], ports: [{ port: 8080 }] }] },
};

describe('policy copies in the controller', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const view = baseView({ sandboxes: [alice], policies: [deny, netpol] });

  it("a Sandbox's verdict holds the copies with the fork's selector, before its fork Deployment", () => {
    const verdict = planSandbox(alice, view, undefined);
    expect(verdict.problems).toEqual([]);
    expect(verdict.objects.map(objectRef)).toEqual([
      `NetworkPolicy ${NS}/cart-ingress-cart-v1-alice`,
      `AuthorizationPolicy ${NS}/cart-deny-admin-cart-v1-alice`,
      `Deployment ${NS}/cart-v1-alice`,
      `Service ${NS}/cart-alice`,
      `EnvoyFilter ${NS}/cart-v1-alice-affinity`,
    ]);
    const forkSelector = { app: 'cart-alice', version: 'v1-alice', 'meshfork.dev/sandbox': 'alice' };
    expect(verdict.objects.find((o) => o.kind === 'Deployment')?.spec).toMatchObject({ selector: { matchLabels: forkSelector } });
    expect(verdict.objects[1]).toEqual({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: {
        name: 'cart-deny-admin-cart-v1-alice',
        namespace: NS,
        labels: { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alice' },
        annotations: { 'meshfork.dev/copy-of': 'AuthorizationPolicy/cart-deny-admin' },
      },
      spec: { selector: { matchLabels: forkSelector }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] },
    });
    expect(verdict.objects[0]?.spec).toEqual({ podSelector: { matchLabels: forkSelector }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { app: 'pay' } } }], ports: [{ port: 8080 }] }] });
    // Without the policies in the view, no copies: what the controller planned before it watched them.
    expect(planSandbox(alice, baseView({ sandboxes: [alice] }), undefined).objects.some((o) => o.kind === 'AuthorizationPolicy' || o.kind === 'NetworkPolicy')).toBe(false);
  });

  it("the copies are generated objects of their Sandbox (deleted with it), never baseline, and a user's policy under a copy's name is a problem", () => {
    const applied = withApplied(view, alice);
    expect(generatedFor(applied, { namespace: NS, name: 'alice' }).map(objectRef)).toEqual([
      `NetworkPolicy ${NS}/cart-ingress-cart-v1-alice`,
      `AuthorizationPolicy ${NS}/cart-deny-admin-cart-v1-alice`,
      `Deployment ${NS}/cart-v1-alice`,
      `Service ${NS}/cart-alice`,
      `EnvoyFilter ${NS}/cart-v1-alice-affinity`,
    ]);
    expect(inventoryOfView(applied).policies).toEqual([deny, netpol]);
    // A copy whose Sandbox is gone is found by the orphan pass.
    const copy = applied.policies.find((o) => o.metadata.name === 'cart-deny-admin-cart-v1-alice')!;
    expect(allKeys({ ...baseView(), policies: [copy] })).toEqual([`Sandbox/${NS}/alice`]);
    const squatter: KubeObject = { ...deny, metadata: { name: 'cart-deny-admin-cart-v1-alice', namespace: NS } };
    expect(planSandbox(alice, baseView({ sandboxes: [alice], policies: [deny, squatter] }), undefined).problems).toEqual([
      { object: `Sandbox ${NS}/alice`, path: 'spec.forks[0].forkOf.name', message: `would replace AuthorizationPolicy ${NS}/cart-deny-admin-cart-v1-alice, which already exists and is not meshfork's output for this Sandbox` },
    ]);
  });

  it("a policy's change enqueues the Sandboxes whose forks it may select; a copy's, its Sandbox", () => {
    const other = { ...sandbox('bob', ['cart-v1']), metadata: { ...sandbox('bob', ['cart-v1']).metadata, namespace: 'elsewhere' } };
    const two = baseView({ sandboxes: [alice, other], policies: [deny] });
    expect(keysForObject('AuthorizationPolicy', deny, two)).toEqual([`Sandbox/${NS}/alice`]);
    expect(keysForObject('NetworkPolicy', netpol, two)).toEqual([`Sandbox/${NS}/alice`]);
    const rootPolicy = { ...deny, metadata: { name: 'mesh-deny', namespace: 'istio-system' } };
    expect(keysForObject('AuthorizationPolicy', rootPolicy, two)).toEqual(['Sandbox/elsewhere/bob', `Sandbox/${NS}/alice`]);
    const copy = withApplied(view, alice).policies.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'cart-ingress-cart-v1-alice')!;
    expect(keysForObject('NetworkPolicy', copy, baseView())).toEqual([`Sandbox/${NS}/alice`]);
  });
});

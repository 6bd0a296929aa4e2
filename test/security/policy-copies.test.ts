/**
 * A fork is never more open and never more closed than its baseline: label-selected policies
 * follow it as copies (docs/adr/0010-policy-copies-follow-forks.md), and what meshfork cannot keep
 * is a problem or a note naming the object. Hostile and edge inputs of ours, read with the real
 * loader: test/security/inputs/policy-copies/ (baseline.yaml: shop/cart calling shop/db;
 * sandbox.yaml: a Sandbox forking cart, whose app and version labels the planner rewrites).
 */
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import { plan, type PlanResult } from '../../src/planner/plan.js';

const INPUTS = new URL('./inputs/policy-copies/', import.meta.url).pathname;
const SANDBOX = 'Sandbox shop/pr1';
const FORK_PATH = 'spec.forks[0].forkOf.name';
const FORK_SELECTOR = { app: 'cart-pr1', version: 'v1-pr1', 'meshfork.dev/sandbox': 'pr1' };
const COPY_LABELS = { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'pr1' };

function planWith(file: string): PlanResult {
  const input = loadInputs([`${INPUTS}baseline.yaml`, `${INPUTS}sandbox.yaml`, `${INPUTS}${file}`], 'default');
  expect(input.problems).toEqual([]);
  return plan({ inventory: input.inventory, sandboxes: input.sandboxes });
}

const ids = (result: PlanResult) => result.objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
const copies = (result: PlanResult) => result.objects.filter((o) => o.metadata.annotations?.['meshfork.dev/copy-of'] !== undefined);

describe('label-selected policies follow the fork', () => {
  it('copies a DENY AuthorizationPolicy to the fork pods, ahead of the fork Deployment, without the user labels', () => {
    const result = planWith('deny.yaml');
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([]);
    expect(ids(result)).toEqual([
      'AuthorizationPolicy shop/deny-admin-cart-pr1',
      'Deployment shop/cart-pr1',
      'Service shop/cart-pr1',
      'EnvoyFilter shop/cart-pr1-affinity',
      'VirtualService shop/cart-meshfork',
    ]);
    expect(copies(result)).toEqual([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'AuthorizationPolicy',
        metadata: { name: 'deny-admin-cart-pr1', namespace: 'shop', labels: COPY_LABELS, annotations: { 'meshfork.dev/copy-of': 'AuthorizationPolicy/deny-admin' } },
        spec: { action: 'DENY', selector: { matchLabels: FORK_SELECTOR }, rules: [{ to: [{ operation: { ports: ['8080'], paths: ['/admin*'] } }] }] },
      },
    ]);
  });

  it('leaves a policy of another namespace alone, and names a root-namespace policy it cannot copy', () => {
    const result = planWith('other-namespace.yaml');
    expect(result.problems).toEqual([]);
    expect(copies(result)).toEqual([]);
    expect(result.notes).toEqual([
      {
        object: SANDBOX,
        path: FORK_PATH,
        message:
          "AuthorizationPolicy istio-system/mesh-deny-cart (Istio's root namespace) selects the pods of Deployment shop/cart in every namespace but not those of its fork cart-pr1; meshfork writes no copy in istio-system, so it does not apply to the fork",
      },
    ]);
  });

  it('refuses policy selectors with prototype keys, naming each field, and plans nothing', () => {
    const result = planWith('proto-selector.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'PeerAuthentication shop/strict-cart', path: 'spec.selector.matchLabels["__proto__"]', message: 'is not a valid label or annotation key' },
      { object: 'NetworkPolicy shop/cart-in', path: 'spec.podSelector.matchLabels["constructor"]', message: 'is not a valid label or annotation key' },
      { object: 'NetworkPolicy shop/cart-in', path: 'spec.ingress[0].from[0].podSelector.matchLabels["__proto__"]', message: 'is not a valid label or annotation key' },
    ]);
    expect(({} as Record<string, unknown>)['app']).toBeUndefined();
  });

  it('refuses a policy that would select the fork but not its baseline (NotIn on a rewritten label)', () => {
    const result = planWith('notin.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      {
        object: SANDBOX,
        path: FORK_PATH,
        message:
          "NetworkPolicy shop/not-v1 spec.podSelector selects the pods of fork cart-pr1 but not those of its baseline Deployment cart (the fork's labels differ in the selected keys), so the fork would not be treated as its baseline; make the selector name labels the fork keeps",
      },
    ]);
  });

  it('lets the fork reach where its baseline may and be reached from where it is (NetworkPolicy peers)', () => {
    const result = planWith('peers.yaml');
    expect(result.problems).toEqual([]);
    const origin = (name: string) => ({ 'meshfork.dev/copy-of': `NetworkPolicy/${name}` });
    expect(copies(result)).toEqual([
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'cart-to-db-cart-pr1', namespace: 'shop', labels: COPY_LABELS, annotations: origin('cart-to-db') },
        spec: {
          podSelector: { matchLabels: FORK_SELECTOR },
          policyTypes: ['Egress'],
          egress: [{ to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ protocol: 'TCP', port: 5432 }] }],
        },
      },
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'db-from-cart-pr1-peers', namespace: 'shop', labels: COPY_LABELS, annotations: origin('db-from-cart') },
        spec: {
          podSelector: { matchLabels: { app: 'db' } },
          policyTypes: ['Ingress'],
          ingress: [
            {
              from: [{ podSelector: { matchLabels: { app: 'cart' } } }, { podSelector: { matchLabels: FORK_SELECTOR } }, { namespaceSelector: { matchLabels: { team: 'ops' } } }],
              ports: [{ protocol: 'TCP', port: 5432 }],
            },
          ],
        },
      },
    ]);
    // default-deny selects every pod of shop, the fork's included: no copy.
    expect(ids(result).filter((id) => id.includes('default-deny'))).toEqual([]);
  });

  it('never replaces a user object that holds the name of a copy', () => {
    const result = planWith('squatter.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: SANDBOX, path: FORK_PATH, message: "would replace AuthorizationPolicy shop/deny-admin-cart-pr1, which already exists and is not meshfork's output for this Sandbox" },
    ]);
  });

  it('names each object it does not copy that treats the fork otherwise: PodMonitor, a kind it does not know (a ServiceMonitor follows the fork Service)', () => {
    const result = planWith('uncopied.yaml');
    expect(result.problems).toEqual([]);
    expect(copies(result)).toEqual([]);
    expect(result.notes).toEqual([
      {
        object: SANDBOX,
        path: FORK_PATH,
        message: 'PodMonitor shop/cart selects the pods of Deployment cart (spec.selector) but not its fork cart-pr1; meshfork does not copy PodMonitor objects, so it does not apply to the fork',
      },
      {
        object: SANDBOX,
        path: FORK_PATH,
        message: 'cannot tell whether Gadget shop/odd (spec.podSelector) selects the pods of Deployment cart or its fork: matchExpressions[0] has the operator "Near"; known: In, NotIn, Exists, DoesNotExist',
      },
      {
        object: SANDBOX,
        path: FORK_PATH,
        message: 'Gizmo shop/plain selects the pods of Deployment cart (spec.selector) but not its fork cart-pr1; meshfork does not copy Gizmo objects, so it does not apply to the fork',
      },
    ]);
  });

  it('replans its own copies as output, not as policies to copy again', () => {
    const first = planWith('deny.yaml');
    const input = loadInputs([`${INPUTS}baseline.yaml`, `${INPUTS}sandbox.yaml`, `${INPUTS}deny.yaml`], 'default');
    const again = plan({ inventory: { ...input.inventory, policies: [...(input.inventory.policies ?? []), ...copies(first)] }, sandboxes: input.sandboxes });
    expect(again.problems).toEqual([]);
    expect(again.objects).toEqual(first.objects);
  });
});

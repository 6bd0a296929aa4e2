/**
 * Isolation, checked after every customization (not only patches): no Service and no other
 * Deployment of the namespace selects a fork's pods (Deployments by their full label selector,
 * matchExpressions included; selectors that cannot be read are reported, not guessed), no
 * Service or Deployment generated for another fork selects them, and no generated object has
 * the kind/namespace/name of an inventory object it does not mean to replace (only the user
 * VirtualServices meshfork merges, and meshfork's own earlier output for the same Sandbox),
 * EnvoyFilters (a fork's affinity filter, the ingress guard) included.
 * Inputs: test/security/inputs/planner-isolation/, read with the real loader; baseline: Bookinfo.
 */
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import { SANDBOX_LABEL, type KubeObject } from '../../src/planner/kube.js';
import { podsSelectedBy } from '../../src/planner/forked-deployment.js';
import { labelSelectorVerdict } from '../../src/planner/label-selector.js';
import { plan } from '../../src/planner/plan.js';
import { deriveRoutingKey } from '../../src/planner/routing-key.js';
import { FIXTURES } from '../support/cli.js';

const INPUTS = new URL('./inputs/planner-isolation/', import.meta.url).pathname;
const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const BOOKINFO_MTLS = `${FIXTURES}bookinfo/destination-rule-all-mtls.yaml`;

function planFiles(...files: string[]) {
  return planWith({}, ...files);
}

function planWith(config: NonNullable<Parameters<typeof plan>[0]['config']>, ...files: string[]) {
  const input = loadInputs(files.map((f) => (f.startsWith('/') ? f : INPUTS + f)), 'default');
  expect(input.problems).toEqual([]);
  return { input, result: plan({ inventory: input.inventory, sandboxes: input.sandboxes, config }) };
}

const replaced = (id: string) => `would replace ${id}, which already exists and is not meshfork's output for this Sandbox`;

describe('generated objects never replace objects they do not own', () => {
  it('a fork Deployment named like an existing Deployment', () => {
    const { result } = planFiles(BOOKINFO, 'user-ratings-v1-canary.yaml', 'canary.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([{ object: 'Sandbox default/canary', path: 'spec.forks[0].forkOf.name', message: replaced('Deployment default/ratings-v1-canary') }]);
  });

  it("a fork Service, a fork DestinationRule and meshfork's own VirtualService named like user objects", () => {
    const { result } = planFiles(BOOKINFO, BOOKINFO_MTLS, 'user-objects-s1.yaml', 's1.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/s1', path: 'spec.forks[0].forkOf.name', message: replaced('Service default/reviews-s1') },
      { object: 'Sandbox default/s1', path: 'spec.forks[0].forkOf.name', message: replaced('DestinationRule default/reviews-s1') },
      { object: 'Sandbox default/s1', path: 'spec.forks[0].forkOf.name', message: replaced('VirtualService default/reviews-meshfork') },
    ]);
  });

  it("a fork's affinity EnvoyFilter and the ingress guard named like user EnvoyFilters", () => {
    const { result } = planWith({ ingressGuard: { enabled: true } }, BOOKINFO, 'user-envoy-filters.yaml', 's1.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/s1', path: 'spec.forks[0].forkOf.name', message: replaced('EnvoyFilter default/reviews-v1-s1-affinity') },
      { object: 'config', path: 'ingressGuard', message: "would replace EnvoyFilter istio-system/meshfork-ingress-guard, which already exists and is not meshfork's output" },
    ]);
  });

  it("replaces meshfork's own earlier EnvoyFilters: the guard, and a Sandbox's affinity filter only for that Sandbox", () => {
    const { input, result } = planWith({ ingressGuard: { enabled: true } }, BOOKINFO, 's1.yaml');
    expect(result.problems).toEqual([]);
    const filters = result.objects.filter((o) => o.kind === 'EnvoyFilter');
    expect(filters.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['default/reviews-v1-s1-affinity', 'istio-system/meshfork-ingress-guard']);
    const again = inventoryOf([...input.inventory.deployments, ...input.inventory.services, ...filters]);
    expect(again.envoyFilters).toEqual(filters);
    expect(plan({ inventory: again, sandboxes: input.sandboxes, config: { ingressGuard: { enabled: true } } })).toEqual(result);
    const relabel = (o: KubeObject): KubeObject => ({ ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, [SANDBOX_LABEL]: 'other' } } });
    const foreign = inventoryOf([...input.inventory.deployments, ...input.inventory.services, ...filters.map(relabel)]);
    expect(plan({ inventory: foreign, sandboxes: input.sandboxes, config: { ingressGuard: { enabled: true } } }).problems).toEqual([
      { object: 'Sandbox default/s1', path: 'spec.forks[0].forkOf.name', message: replaced('EnvoyFilter default/reviews-v1-s1-affinity') },
      { object: 'config', path: 'ingressGuard', message: "would replace EnvoyFilter istio-system/meshfork-ingress-guard, which already exists and is not meshfork's output" },
    ]);
  });

  it('an EnvoyFilter whose metadata cannot be read is a problem, not a guess', () => {
    const input = loadInputs([BOOKINFO, INPUTS + 's1.yaml'], 'default');
    const odd = { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'Bad_Name', labels: { a: 1 } }, spec: [] } as unknown as KubeObject;
    const result = plan({ inventory: { ...input.inventory, envoyFilters: [odd] }, sandboxes: input.sandboxes });
    expect(result.problems).toEqual([
      { object: 'EnvoyFilter default/Bad_Name', path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters)' },
      { object: 'EnvoyFilter default/Bad_Name', path: 'metadata.labels["a"]', message: 'must be a string (label maps and selectors map strings to strings), not the number 1' },
      { object: 'EnvoyFilter default/Bad_Name', path: 'spec', message: 'must be an object, not a list' },
    ]);
  });

  it("replaces meshfork's own earlier output for the same Sandbox, not another Sandbox's", () => {
    const { input, result } = planFiles(BOOKINFO, BOOKINFO_MTLS, 's1.yaml');
    expect(result.problems).toEqual([]);
    const ids = result.objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);
    expect(ids).toEqual([
      'Deployment default/reviews-v1-s1',
      'Service default/reviews-s1',
      'DestinationRule default/reviews-s1',
      'EnvoyFilter default/reviews-v1-s1-affinity',
      'VirtualService default/reviews-meshfork',
    ]);
    // The reconciler plans again with its own output in the inventory: same result.
    const again = inventoryOf([...input.inventory.deployments, ...input.inventory.services, ...input.inventory.destinationRules, ...result.objects]);
    expect(plan({ inventory: again, sandboxes: input.sandboxes })).toEqual(result);
    // The same objects left by another Sandbox are not this Sandbox's to replace.
    const relabel = (o: KubeObject): KubeObject => (o.metadata.labels?.[SANDBOX_LABEL] ? { ...o, metadata: { ...o.metadata, labels: { ...o.metadata.labels, [SANDBOX_LABEL]: 'other' } } } : o);
    const foreign = inventoryOf([...input.inventory.deployments, ...input.inventory.services, ...input.inventory.destinationRules, ...result.objects.map(relabel)]);
    expect(plan({ inventory: foreign, sandboxes: input.sandboxes }).problems).toEqual(
      ['Deployment default/reviews-v1-s1', 'EnvoyFilter default/reviews-v1-s1-affinity', 'Service default/reviews-s1', 'DestinationRule default/reviews-s1'].map((id) => ({
        object: 'Sandbox default/s1',
        path: 'spec.forks[0].forkOf.name',
        message: replaced(id),
      })),
    );
  });
});

describe('no other selector reaches the fork pods', () => {
  it('checks Deployments with matchExpressions even when the customizations have no patch', () => {
    const { result } = planFiles(BOOKINFO, 'shadow-deployments.yaml', 'iso-env-only.yaml');
    expect(result.objects).toEqual([]);
    // reviews-shadow (In + NotIn) selects the fork; not-forks (In + DoesNotExist) does not.
    expect(result.problems).toEqual([{ object: 'Sandbox default/iso', path: 'spec.forks[0].forkOf.name', message: 'baseline Deployment "reviews-shadow" selects the fork pods' }]);
  });

  it('refuses to guess about a selector operator Kubernetes does not define', () => {
    const { input, result } = planFiles(BOOKINFO, 'unknown-operator.yaml', 'iso-env-only.yaml');
    // plan() refuses the malformed inventory before forking (its shape check names the object) ...
    expect(result.objects).toEqual([]);
    expect(result.problems.map((p) => `${p.object}: ${p.path}`)).toEqual(['Deployment default/odd: spec.selector.matchExpressions[0].operator']);
    // ... and the isolation check itself never reads such a selector as "does not select".
    const fork = { ...input.inventory.deployments.find((d) => d.metadata.name === 'reviews-v1')! };
    const odd = input.inventory.deployments.filter((d) => d.metadata.name === 'odd');
    expect(podsSelectedBy(fork, [], odd, '', (o) => `baseline ${o.kind} "${o.metadata.name}"`)).toEqual([
      'cannot tell whether baseline Deployment "odd" selects the fork pods: in its spec.selector, matchExpressions[0] has the operator "Matches"; known: In, NotIn, Exists, DoesNotExist',
    ]);
  });

  it("a patch that puts a fork behind another fork's Service", () => {
    // Pod labels changed with policy.allow.podMetadata: isolation is still checked.
    const { result } = planWith({ policy: { allow: { podMetadata: true } } }, 'tiers.yaml', 'tiers-sandbox.yaml');
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/s', path: 'spec.forks[1].customizations.patch.value', message: 'after the patch Service default/web-s (generated for Sandbox default/s) selects the fork pods' },
    ]);
  });
});

describe('label selector semantics (metav1.LabelSelector)', () => {
  const labels = { app: 'reviews', version: 'v1' };
  const cases: Array<[string, unknown, ReturnType<typeof labelSelectorVerdict>]> = [
    ['absent selects nothing', undefined, { selects: false }],
    ['empty selects everything', {}, { selects: true }],
    ['matchLabels all equal', { matchLabels: { app: 'reviews', version: 'v1' } }, { selects: true }],
    ['matchLabels one differs', { matchLabels: { app: 'reviews', version: 'v2' } }, { selects: false }],
    ['In with the value', { matchExpressions: [{ key: 'version', operator: 'In', values: ['v2', 'v1'] }] }, { selects: true }],
    ['In, label absent', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }] }, { selects: false }],
    ['NotIn, label absent', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['web'] }] }, { selects: true }],
    ['NotIn with the value', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['reviews'] }] }, { selects: false }],
    ['Exists', { matchExpressions: [{ key: 'app', operator: 'Exists' }] }, { selects: true }],
    ['DoesNotExist', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, { selects: false }],
    ['DoesNotExist, label absent', { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, { selects: true }],
    ['inherited names are not labels', { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, { selects: false }],
    ['matchLabels AND matchExpressions', { matchLabels: { app: 'reviews' }, matchExpressions: [{ key: 'version', operator: 'NotIn', values: ['v1'] }] }, { selects: false }],
    ['In without values', { matchExpressions: [{ key: 'app', operator: 'In', values: [] }] }, { unknown: 'matchExpressions[0] (In) has no values' }],
    ['Exists with values', { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] }, { unknown: 'matchExpressions[0] (Exists) has values' }],
    ['unknown operator after a mismatch', { matchLabels: { app: 'x' }, matchExpressions: [{ key: 'app', operator: 'Gt', values: ['1'] }] }, { unknown: 'matchExpressions[0] has the operator "Gt"; known: In, NotIn, Exists, DoesNotExist' }],
  ];
  for (const [name, selector, verdict] of cases) {
    it(name, () => expect(labelSelectorVerdict(selector as never, labels)).toEqual(verdict));
  }
});

describe('one Sandbox cannot take another\'s routing key', () => {
  it('a key derived for a Sandbox stays its own when another writes it into spec.routingKey', () => {
    expect(deriveRoutingKey('Sandbox', 'default', 'b-victim')).toBe('ef2gelm8777x');
    const alone = planFiles(BOOKINFO, 'key-victim.yaml').result;
    expect(alone.problems).toEqual([]);
    const { result } = planFiles(BOOKINFO, 'key-thief.yaml', 'key-victim.yaml');
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a-thief', path: 'spec.routingKey', message: 'routing key "ef2gelm8777x" is already used by Sandbox default/b-victim' },
    ]);
    expect(result.sandboxes.find((s) => s.name === 'b-victim')).toEqual(alone.sandboxes[0]);
  });
});

describe("a Sandbox cannot take the names of meshfork's own routes", () => {
  it('refuses Sandboxes named split or baseline', () => {
    const { result } = planFiles(BOOKINFO, 'reserved-names.yaml');
    expect(result.objects).toEqual([]);
    const reserved = (name: string) => `"${name}" is reserved for the names of meshfork's own routes (meshfork-split-<i>, meshfork-source-<i>, meshfork-baseline); choose another name`;
    expect(result.problems).toEqual([
      { object: 'Sandbox default/baseline', path: 'metadata.name', message: reserved('baseline') },
      { object: 'Sandbox default/split', path: 'metadata.name', message: reserved('split') },
    ]);
  });
});

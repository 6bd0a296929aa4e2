import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { plan } from '../../src/planner/plan.js';
import { inventoryOf, podTemplateLabels, selectorMatches, serviceSelector, type Inventory } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { FIXTURES } from '../support/cli.js';

function load(namespace: string, ...files: string[]): KubeObject[] {
  return files.flatMap((f) =>
    parseAllDocuments(readFileSync(FIXTURES + f, 'utf8'))
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null && typeof o === 'object' && 'kind' in o)
      .map((o) => ({ ...o, metadata: { namespace, ...o.metadata } })),
  );
}

function sandbox(name: string, forks: string[], extra: Partial<SandboxObject['spec']> = {}, namespace = 'default'): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name, namespace },
    spec: { forks: forks.map((n) => ({ forkOf: { kind: 'Deployment' as const, name: n } })), ...extra },
  };
}

const ids = (objects: KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);

describe('plan: fork isolation on real manifests', () => {
  const cases: Array<[string, Inventory]> = [
    ['bookinfo', inventoryOf(load('default', 'bookinfo/bookinfo.yaml'))],
    ['online-boutique', inventoryOf(load('default', 'online-boutique/kubernetes-manifests.yaml'))],
    ['hotrod', inventoryOf(load('default', 'hotrod/k8s/base/route.yaml', 'hotrod/k8s/base/frontend.yaml', 'hotrod/k8s/base/driver.yaml', 'hotrod/k8s/base/location.yaml'))],
  ];
  for (const [name, inventory] of cases) {
    it(`${name}: no baseline Service or Deployment selects any fork, and each fork Service selects only its fork`, () => {
      const deployments = inventory.deployments.map((d) => d.metadata.name);
      expect(deployments.length).toBeGreaterThan(2);
      const result = plan({ inventory, sandboxes: [sandbox('iso', deployments)] });
      expect(result.problems).toEqual([]);
      const forks = result.objects.filter((o) => o.kind === 'Deployment');
      expect(forks).toHaveLength(deployments.length);
      const forkServices = result.objects.filter((o) => o.kind === 'Service');
      for (const fork of forks) {
        const labels = podTemplateLabels(fork);
        for (const svc of inventory.services) expect(selectorMatches(serviceSelector(svc), labels), `${svc.metadata.name} selects ${fork.metadata.name}`).toBe(false);
        for (const d of inventory.deployments) {
          const sel = (d.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
          expect(selectorMatches(sel, labels), `${d.metadata.name} selects ${fork.metadata.name}`).toBe(false);
        }
        expect(selectorMatches((fork.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels, labels)).toBe(true);
      }
      expect(new Set(ids(forkServices)).size).toBe(forkServices.length);
      for (const svc of forkServices) {
        const baselineService = inventory.services.find((b) => b.metadata.name === svc.metadata.labels?.['meshfork.dev/fork-of-service'])!;
        const expected = forks.filter((f) => selectorMatches(serviceSelector(baselineService), podTemplateLabels(inventory.deployments.find((d) => d.metadata.name === f.metadata.labels?.['meshfork.dev/fork-of'])!)));
        const selecting = forks.filter((f) => selectorMatches(serviceSelector(svc), podTemplateLabels(f)));
        expect(selecting.length, svc.metadata.name).toBeGreaterThan(0);
        expect(ids(selecting), svc.metadata.name).toEqual(ids(expected));
        for (const d of inventory.deployments) expect(selectorMatches(serviceSelector(svc), podTemplateLabels(d))).toBe(false);
      }
    });
  }
});

describe('plan: VirtualService ownership', () => {
  const bookinfo = load('default', 'bookinfo/bookinfo.yaml');

  it('merges into the user VirtualService and creates none of its own for that host', () => {
    const inventory = inventoryOf([...bookinfo, ...load('default', 'bookinfo/virtual-service-reviews-test-v2.yaml')]);
    const result = plan({ inventory, sandboxes: [sandbox('s1', ['reviews-v3'])] });
    expect(ids(result.objects)).toEqual([
      'Deployment default/reviews-v3-s1',
      'Service default/reviews-s1',
      'EnvoyFilter default/reviews-v3-s1-affinity',
      'VirtualService default/reviews',
    ]);
  });

  it('notes a gateway-only VirtualService and routes the mesh with its own', () => {
    const gatewayOnly: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews-edge', namespace: 'default' },
      spec: { hosts: ['reviews'], gateways: ['bookinfo-gateway'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    };
    const result = plan({ inventory: inventoryOf([...bookinfo, gatewayOnly]), sandboxes: [sandbox('s1', ['reviews-v3'])] });
    expect(ids(result.objects)).toContain('VirtualService default/reviews-meshfork');
    expect(ids(result.objects)).not.toContain('VirtualService default/reviews-edge');
    expect(result.notes).toEqual([
      {
        object: 'VirtualService default/reviews-edge',
        path: 'spec.gateways',
        message: `is bound only to gateway default/bookinfo-gateway, so requests through it with a sandbox's key for reviews.default.svc.cluster.local reach the baseline; enable the ingress guard (ingressGuard.enabled) or list the gateway in routing.gateways`,
      },
    ]);
  });

  it('notes two mesh VirtualServices for one host (IST0109) and merges both', () => {
    const second: KubeObject = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews-2', namespace: 'default' },
      spec: { hosts: ['reviews.default.svc.cluster.local'], http: [{ route: [{ destination: { host: 'reviews' } }] }] },
    };
    const inventory = inventoryOf([...bookinfo, ...load('default', 'bookinfo/virtual-service-reviews-test-v2.yaml'), second]);
    const result = plan({ inventory, sandboxes: [sandbox('s1', ['reviews-v3'])] });
    expect(ids(result.objects).filter((i) => i.startsWith('VirtualService'))).toEqual(['VirtualService default/reviews', 'VirtualService default/reviews-2']);
    expect(result.notes.map((n) => n.message)).toEqual([
      '2 VirtualServices route reviews.default.svc.cluster.local for the mesh; Istio uses only the oldest (IST0109). meshfork adds its routes to each',
      `no route sends sandbox "s1"'s keyed requests to its forks: the routes to its forked hosts name only subsets (or weight-0 destinations) whose pods it does not fork, so those requests reach the baseline`,
    ]);
  });

  it('ignores objects meshfork generated earlier when they come back as input', () => {
    const inventory = inventoryOf(bookinfo);
    const first = plan({ inventory, sandboxes: [sandbox('s1', ['reviews-v3'])] });
    const again = plan({ inventory: inventoryOf([...bookinfo, ...first.objects]), sandboxes: [sandbox('s1', ['reviews-v3'])] });
    expect(again.objects).toEqual(first.objects);
  });

  it('restores a previously merged user VirtualService once no sandbox forks its host', () => {
    const userVs = load('default', 'bookinfo/virtual-service-reviews-test-v2.yaml');
    const merged = plan({ inventory: inventoryOf([...bookinfo, ...userVs]), sandboxes: [sandbox('s1', ['reviews-v3'])] }).objects.filter((o) => o.kind === 'VirtualService');
    expect(merged.map((o) => o.metadata.annotations?.['meshfork.dev/merged-routes'])).toEqual(['2']);
    const after = plan({ inventory: inventoryOf([...bookinfo, ...merged]), sandboxes: [] });
    expect(after.objects).toEqual(userVs);
    // A user VirtualService that never held meshfork routes is not emitted.
    expect(plan({ inventory: inventoryOf([...bookinfo, ...userVs]), sandboxes: [] }).objects).toEqual([]);
  });

  it('rejects split weights that add up to more than 100% on one host', () => {
    const inventory = inventoryOf(bookinfo);
    const result = plan({ inventory, sandboxes: [sandbox('a', ['reviews-v3'], { split: { weight: 60 } }), sandbox('b', ['reviews-v2'], { split: { weight: 50 } })], config: { policy: { maxSplitWeight: 100 } } });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a', path: 'spec.split.weight', message: 'sandboxes splitting reviews.default.svc.cluster.local take 110% of its untagged traffic together, more than 100%' },
      { object: 'Sandbox default/b', path: 'spec.split.weight', message: 'sandboxes splitting reviews.default.svc.cluster.local take 110% of its untagged traffic together, more than 100%' },
    ]);
  });

  it('derives a stable routing key when none is given', () => {
    const inventory = inventoryOf(bookinfo);
    const a = plan({ inventory, sandboxes: [sandbox('s1', ['reviews-v3'])] });
    const b = plan({ inventory, sandboxes: [sandbox('s1', ['reviews-v3'])] });
    expect(a.sandboxes[0]?.routingKey).toMatch(/^[a-z0-9]{12}$/);
    expect(a.sandboxes[0]?.routingKey).toBe(b.sandboxes[0]?.routingKey);
    expect(plan({ inventory, sandboxes: [sandbox('s2', ['reviews-v3'])] }).sandboxes[0]?.routingKey).not.toBe(a.sandboxes[0]?.routingKey);
  });
});

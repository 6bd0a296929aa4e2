// The opt-out annotation `meshfork.dev/ignore: "true"` on a user VirtualService: the planner
// never writes it (no merged copy, no meshfork VirtualService beside it) and says so in a note.
import { describe, expect, it } from 'vitest';
import { plan } from '../../src/planner/plan.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';

const labels = { app: 'web', version: 'v1' };
const inventoryWith = (vs: KubeObject) => ({
  deployments: [
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web-v1', namespace: 'shop' }, spec: { selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'web:1' }] } } } },
  ],
  services: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] } }],
  virtualServices: [vs],
  destinationRules: [],
});
const userVs = (annotations?: Record<string, string>): KubeObject => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'web', namespace: 'shop', ...(annotations ? { annotations } : {}) },
  spec: { hosts: ['web'], http: [{ name: 'all', route: [{ destination: { host: 'web' } }] }] },
});
const alice: SandboxObject = { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'alice', namespace: 'shop' }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' } }] } };

describe('meshfork.dev/ignore on a user VirtualService', () => {
  it('is left out of the plan, no meshfork VirtualService is written for its host, and a note names it', () => {
    const result = plan({ inventory: inventoryWith(userVs({ 'meshfork.dev/ignore': 'true' })), sandboxes: [alice] });
    expect(result.problems).toEqual([]);
    expect(result.objects.filter((o) => o.kind === 'VirtualService')).toEqual([]);
    expect(result.notes).toContainEqual({
      object: 'VirtualService shop/web',
      path: 'metadata.annotations.meshfork.dev/ignore',
      message: 'is "true", so meshfork leaves this VirtualService as it is: requests through it with a sandbox\'s key for web.shop.svc.cluster.local follow its routes to the baseline',
    });
  });

  it('any other value merges as usual', () => {
    const result = plan({ inventory: inventoryWith(userVs({ 'meshfork.dev/ignore': 'false' })), sandboxes: [alice] });
    const merged = result.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'web');
    expect((merged?.spec as { http: Array<{ name: string }> }).http.map((r) => r.name)).toEqual(['meshfork-alice-0', 'all']);
  });
});

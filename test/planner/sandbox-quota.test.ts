// Quotas as planner checks (synth sees every Sandbox at once): policy.maxSandboxesPerNamespace
// serves the oldest first (no creationTimestamp in files: by name), policy.maxForksPerSandbox
// counts spec.forks. Bookinfo from the shared fixtures.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { plan } from '../../src/planner/plan.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import { namespaceQuotaProblems, olderThan } from '../../src/planner/sandbox-quota.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { FIXTURES } from '../support/cli.js';

const inventory = inventoryOf(
  parseAllDocuments(readFileSync(`${FIXTURES}bookinfo/bookinfo.yaml`, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object' && 'kind' in o)
    .map((o) => ({ ...o, metadata: { namespace: 'default', ...o.metadata } })),
);

function sandbox(name: string, forks: string[], namespace = 'default', created?: string): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name, namespace, ...(created ? { creationTimestamp: created } : {}) } as SandboxObject['metadata'],
    spec: { forks: forks.map((n) => ({ forkOf: { kind: 'Deployment' as const, name: n } })) },
  };
}

describe('plan: policy.maxSandboxesPerNamespace', () => {
  it('files carry no creation time: the first by name are served, the rest reported, per namespace', () => {
    const result = plan({
      inventory,
      sandboxes: [sandbox('c', ['reviews-v1']), sandbox('a', ['reviews-v2']), sandbox('b', ['ratings-v1']), sandbox('z', [], 'other')],
      config: { policy: { maxSandboxesPerNamespace: 2 } },
    });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      {
        object: 'Sandbox default/c',
        path: 'metadata.namespace',
        message: 'namespace "default" holds 3 Sandboxes and at most 2 are served (policy.maxSandboxesPerNamespace); the oldest 2 are, this one is number 3: delete a Sandbox of the namespace or raise the quota',
      },
    ]);
    expect(plan({ inventory, sandboxes: [sandbox('a', ['reviews-v2']), sandbox('b', ['ratings-v1'])], config: { policy: { maxSandboxesPerNamespace: 2 } } }).problems).toEqual([]);
  });

  it('creation time first, then namespace/name; no creation time comes last', () => {
    const early = sandbox('zz', [], 'default', '2026-11-30T08:00:00Z');
    const late = sandbox('aa', [], 'default', '2026-11-30T09:00:00Z');
    const unknown = sandbox('a0', []);
    expect([olderThan(early, late), olderThan(late, early), olderThan(late, unknown), olderThan(unknown, late)]).toEqual([true, false, true, false]);
    expect([...namespaceQuotaProblems([unknown, late, early], 1, (s) => s.metadata.name).keys()]).toEqual(['default/aa', 'default/a0']);
  });
});

describe('plan: policy.maxForksPerSandbox', () => {
  it('reports spec.forks over the quota with the config key', () => {
    const result = plan({ inventory, sandboxes: [sandbox('wide', ['reviews-v1', 'reviews-v2', 'ratings-v1'])], config: { policy: { maxForksPerSandbox: 2 } } });
    expect(result.problems).toEqual([
      { object: 'Sandbox default/wide', path: 'spec.forks', message: 'has 3 forks; a Sandbox may have at most 2 (policy.maxForksPerSandbox); remove 1' },
    ]);
    expect(plan({ inventory, sandboxes: [sandbox('wide', ['reviews-v1', 'reviews-v2'])], config: { policy: { maxForksPerSandbox: 2 } } }).problems).toEqual([]);
  });
});

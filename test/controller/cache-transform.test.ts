// cachedForm: what the controller's informer caches keep of each object (exact objects kept and dropped).
import { describe, expect, it } from 'vitest';
import { cachedForm } from '../../src/controller/cache-transform.js';
import { deploymentAvailability } from '../../src/controller/routing.js';
import { ownerOf } from '../../src/controller/view.js';

const managedFields = [{ manager: 'meshfork', operation: 'Apply', apiVersion: 'apps/v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }];
const template = {
  metadata: { labels: { app: 'web', 'meshfork.dev/sandbox': 'alpha' } },
  spec: { containers: [{ name: 'web', image: 'web:2', env: [{ name: 'MODE', value: 'sandbox' }], resources: {}, terminationMessagePath: '/dev/termination-log' }], restartPolicy: 'Always', dnsPolicy: 'ClusterFirst' },
};
const status = { observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, conditions: [{ type: 'Available', status: 'True' }] };

function deployment(name: string, labels: Record<string, string>, annotations: Record<string, string> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '42', generation: 2, labels, annotations, managedFields },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web', 'meshfork.dev/sandbox': 'alpha' } }, template, strategy: { type: 'RollingUpdate' }, revisionHistoryLimit: 10, progressDeadlineSeconds: 600 },
    status,
  };
}

const forkLabels = { app: 'web', 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alpha', 'meshfork.dev/sandbox-namespace': 'shop' };

describe('cachedForm', () => {
  it("keeps a fork Deployment the controller wrote without its pod template and managedFields, and everything the controller reads of it", () => {
    const fork = deployment('web-alpha', forkLabels, { 'meshfork.dev/applied-digest': 'abc' });
    const cached = cachedForm(fork);
    expect(cached).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web-alpha', namespace: 'shop', uid: 'uid-web-alpha', resourceVersion: '42', generation: 2, labels: forkLabels, annotations: { 'meshfork.dev/applied-digest': 'abc' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web', 'meshfork.dev/sandbox': 'alpha' } }, strategy: { type: 'RollingUpdate' }, revisionHistoryLimit: 10, progressDeadlineSeconds: 600 },
      status,
    });
    expect(deploymentAvailability(cached as never)).toEqual(deploymentAvailability(fork as never));
    expect(ownerOf(cached as never)).toEqual({ namespace: 'shop', name: 'alpha' });
    expect(fork.spec.template).toBe(template); // the listed/watched object is not changed
  });

  it('keeps baseline Deployments, GitOps output and other kinds whole but for managedFields', () => {
    const baseline = deployment('web', { app: 'web' });
    const gitOps = deployment('web-alpha', { app: 'web', 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alpha' });
    const forkService = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-alpha', namespace: 'shop', labels: forkLabels, managedFields }, spec: { selector: { app: 'web' }, template: 'not a Deployment' } };
    const withoutManagedFields = <T extends { metadata: object }>(o: T) => {
      const { managedFields: _m, ...metadata } = o.metadata as { managedFields?: unknown };
      return { ...o, metadata };
    };
    for (const object of [baseline, gitOps, forkService]) expect(cachedForm(object)).toEqual(withoutManagedFields(object));
    expect((cachedForm(baseline) as typeof baseline).spec.template).toBe(template);
    const unchanged = withoutManagedFields(baseline);
    expect(cachedForm(unchanged)).toBe(unchanged);
  });

  it("keeps an affinity EnvoyFilter the controller wrote without its spec (the Lua it applied); a user's EnvoyFilter whole", () => {
    const spec = { workloadSelector: { labels: { app: 'web' } }, configPatches: [{ applyTo: 'HTTP_FILTER', patch: { operation: 'INSERT_BEFORE', value: { name: 'meshfork.fork_affinity' } } }] };
    const metadata = { name: 'web-v1-alpha-affinity', namespace: 'shop', uid: 'uid-ef', resourceVersion: '7', labels: forkLabels, annotations: { 'meshfork.dev/applied-digest': 'def' } };
    const written = { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { ...metadata, managedFields }, spec };
    expect(cachedForm(written)).toEqual({ apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata });
    expect(ownerOf(cachedForm(written) as never)).toEqual({ namespace: 'shop', name: 'alpha' });
    const users = { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'web-v1-alpha-affinity', namespace: 'shop' }, spec };
    expect(cachedForm(users)).toEqual(users);
  });
});

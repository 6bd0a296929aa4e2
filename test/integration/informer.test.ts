// SharedInformer against a real kube-apiserver: synced cache on start, add/update/delete events,
// resync, namespace and label scoping.
import { CoreV1Api, KubernetesObjectApi, Watch, type KubernetesObject, type V1ConfigMap } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { SharedInformer, notServed, resourcePath, stripManagedFields, type InformerEventType } from '../../src/cluster/informer.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';

const hasBins = requireTestbin();

describe('resourcePath', () => {
  it('builds core, grouped, namespaced and cluster-wide paths', () => {
    expect(resourcePath({ apiVersion: 'v1', kind: 'Service', plural: 'services' })).toBe('/api/v1/services');
    expect(resourcePath({ apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespace: 'shop' })).toBe('/apis/apps/v1/namespaces/shop/deployments');
  });
});

describe.skipIf(!hasBins)('SharedInformer on a real API server', () => {
  const cp = useSharedControlPlane();

  async function until(condition: () => boolean, ms = 10_000): Promise<void> {
    const t0 = Date.now();
    while (!condition()) {
      if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('is synced when start() resolves, then reports every change of its namespace and labels only', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'inf-a' } } });
    await core.createNamespace({ body: { metadata: { name: 'inf-b' } } });
    const cm = (ns: string, name: string, labels: Record<string, string>, data: Record<string, string> = {}): V1ConfigMap => ({ metadata: { name, namespace: ns, labels }, data });
    await core.createNamespacedConfigMap({ namespace: 'inf-a', body: cm('inf-a', 'before', { watched: 'yes' }) });

    const informer = new SharedInformer<V1ConfigMap>(cp().kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace: 'inf-a', labelSelector: 'watched=yes' }, { resyncMs: 0 });
    const events: Array<[InformerEventType, string, string | undefined]> = [];
    informer.onEvent((type, o) => events.push([type, o.metadata!.name!, o.data?.['v']]));
    await informer.start();
    expect(informer.hasSynced).toBe(true);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(['before']);
    expect(events).toEqual([['add', 'before', undefined]]);
    // Listed objects look like watched ones: plain JSON (timestamps as strings), apiVersion and kind set.
    const listed = informer.get('before', 'inf-a') as V1ConfigMap & { metadata: { creationTimestamp: unknown } };
    expect([listed.apiVersion, listed.kind, typeof listed.metadata.creationTimestamp]).toEqual(['v1', 'ConfigMap', 'string']);

    await core.createNamespacedConfigMap({ namespace: 'inf-a', body: cm('inf-a', 'x', { watched: 'yes' }, { v: '1' }) });
    await core.createNamespacedConfigMap({ namespace: 'inf-a', body: cm('inf-a', 'unlabelled', {}) });
    await core.createNamespacedConfigMap({ namespace: 'inf-b', body: cm('inf-b', 'elsewhere', { watched: 'yes' }) });
    await core.replaceNamespacedConfigMap({ name: 'x', namespace: 'inf-a', body: cm('inf-a', 'x', { watched: 'yes' }, { v: '2' }) });
    await core.deleteNamespacedConfigMap({ name: 'x', namespace: 'inf-a' });
    await until(() => events.length === 4);
    expect(events).toEqual([
      ['add', 'before', undefined],
      ['add', 'x', '1'],
      ['update', 'x', '2'],
      ['delete', 'x', '2'],
    ]);
    expect(informer.get('x', 'inf-a')).toBeUndefined();

    informer.resync();
    expect(events.at(-1)).toEqual(['resync', 'before', undefined]);
    await informer.stop();
  });

  it('stopped while its first list is in flight, opens no watch once the list returns (nothing keeps a stopping process alive)', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'inf-stop' } } });
    const lists = vi.spyOn(KubernetesObjectApi.prototype, 'list');
    const watches = vi.spyOn(Watch.prototype, 'watch');
    try {
      const informer = new SharedInformer<V1ConfigMap>(cp().kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace: 'inf-stop' }, { resyncMs: 0 });
      void informer.start();
      await until(() => lists.mock.results.length === 1);
      await informer.stop();
      // The list returns after the stop; client-node's ListWatch then goes on to watch.
      await lists.mock.results[0]!.value;
      await new Promise((r) => setImmediate(r));
      expect(watches).not.toHaveBeenCalled();
      // Started again, it lists and watches as usual.
      await informer.start();
      expect(watches).toHaveBeenCalledTimes(1);
      await informer.stop();
    } finally {
      lists.mockRestore();
      watches.mockRestore();
    }
  });

  it('caches what its transform returns, for listed and watched objects alike (stripManagedFields)', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'inf-t' } } });
    await core.createNamespacedConfigMap({ namespace: 'inf-t', body: { metadata: { name: 'listed' }, data: { v: '1' } } });
    expect((await core.readNamespacedConfigMap({ name: 'listed', namespace: 'inf-t' })).metadata?.managedFields?.length).toBe(1);
    const informer = new SharedInformer<V1ConfigMap>(cp().kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace: 'inf-t' }, { resyncMs: 0, transform: stripManagedFields });
    const seen: Array<[InformerEventType, string, unknown]> = [];
    informer.onEvent((type, o) => seen.push([type, o.metadata!.name!, o.metadata?.managedFields]));
    await informer.start();
    await core.createNamespacedConfigMap({ namespace: 'inf-t', body: { metadata: { name: 'watched' }, data: { v: '1' } } });
    await core.replaceNamespacedConfigMap({ name: 'watched', namespace: 'inf-t', body: { metadata: { name: 'watched' }, data: { v: '2' } } });
    await until(() => seen.length === 3);
    expect(seen).toEqual([
      ['add', 'listed', undefined],
      ['add', 'watched', undefined],
      ['update', 'watched', undefined],
    ]);
    expect(informer.list().map((o) => [o.metadata?.name, o.metadata?.managedFields, o.data?.['v'], typeof o.metadata?.resourceVersion])).toEqual([
      ['listed', undefined, '1', 'string'],
      ['watched', undefined, '2', 'string'],
    ]);
    await informer.stop();
  });
  it('optional: a kind the API server does not serve reads as synced and empty, and is cached once its CRD is installed', async () => {
    const kc = cp().kubeConfig;
    const target = { apiVersion: 'example.com/v1', kind: 'Widget', plural: 'widgets', namespace: 'default' };
    const errors: unknown[] = [];
    const informer = new SharedInformer<KubernetesObject>(kc, target, { resyncMs: 0, optional: true, restartDelayMs: 100, onError: (_t, e) => errors.push(e) });
    const events: Array<[InformerEventType, string]> = [];
    informer.onEvent((type, o) => events.push([type, o.metadata!.name!]));
    await informer.start();
    expect([informer.hasSynced, informer.list()]).toEqual([true, []]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every(notServed)).toBe(true);

    const objects = KubernetesObjectApi.makeApiClient(kc);
    await objects.create({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        scope: 'Namespaced',
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    } as KubernetesObject);
    const t0 = Date.now();
    for (;;) {
      try {
        await objects.create({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w1', namespace: 'default' } });
        break;
      } catch (error) {
        if (Date.now() - t0 > 30_000) throw error;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await until(() => events.length === 1, 30_000);
    expect(events).toEqual([['add', 'w1']]);
    await informer.stop();
  });
});

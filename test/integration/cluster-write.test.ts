// ClusterWriter against a real kube-apiserver: server-side apply with meshfork's field manager,
// resourceVersion-checked read-modify-write retried on 409, deletes guarded by label and uid.
import { CoreV1Api, HttpMethod, KubeConfig, RequestContext, type KubernetesObject, type V1ConfigMap } from '@kubernetes/client-node';
import { describe, expect, it, vi } from 'vitest';
import { pooledConnections } from '../../src/cluster/kubeconfig.js';
import { ClusterWriter, FIELD_MANAGER, NotOwnedError, OwnedByOtherSandboxError } from '../../src/cluster/write.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';

const hasBins = requireTestbin();

const managed = { 'app.kubernetes.io/managed-by': 'meshfork' };

describe.skipIf(!hasBins)('ClusterWriter on a real API server', () => {
  const cp = useSharedControlPlane();
  const ref = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name });

  it('sends every request of a pooled KubeConfig over one kept-alive connection (client-node alone opens one per request)', async () => {
    const connections = async (kubeConfig: KubeConfig) => {
      // The dispatcher client-node hands a request is the one the next request gets, when pooled.
      const dispatcherOf = async () => {
        const context = new RequestContext(`${kubeConfig.getCurrentCluster()!.server}/api`, HttpMethod.GET);
        await kubeConfig.applySecurityAuthentication(context);
        return context.getDispatcher() as { on(event: 'connect', listener: () => void): void };
      };
      const seen = new Set<unknown>();
      let connects = 0;
      const core = kubeConfig.makeApiClient(CoreV1Api);
      for (let i = 0; i < 5; i++) {
        const dispatcher = await dispatcherOf();
        if (!seen.has(dispatcher)) dispatcher.on('connect', () => connects++);
        seen.add(dispatcher);
        await core.readNamespace({ name: 'default' });
      }
      return { connects, dispatchers: seen.size };
    };
    const plain = new KubeConfig();
    plain.loadFromString(cp().kubeConfig.exportConfig());
    const pooled = new KubeConfig();
    pooled.loadFromString(cp().kubeConfig.exportConfig());
    expect(pooledConnections(pooled)).toBe(pooled);
    expect(pooledConnections(pooled)).toBe(pooled); // idempotent: one pool, not a pool of pools
    expect((await connections(pooled))).toEqual({ connects: 1, dispatchers: 1 });
    // What the pool is for: without it each request gets a dispatcher (and a connection) of its own.
    expect((await connections(plain)).dispatchers).toBe(5);
  });

  it('applies owned objects with field manager meshfork; dropping a field removes it', async () => {
    const writer = new ClusterWriter(cp().kubeConfig);
    const cm = (data: Record<string, string>): V1ConfigMap & KubernetesObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owned', namespace: 'default', labels: managed }, data });
    await writer.apply(cm({ a: '1', b: '2' }));
    const first = await writer.read<V1ConfigMap>(ref('owned'));
    // Re-applying what is stored (with server-set metadata) is accepted and changes nothing.
    await writer.apply(first as KubernetesObject);
    const again = await writer.read<V1ConfigMap>(ref('owned'));
    expect(again?.metadata?.resourceVersion).toBe(first?.metadata?.resourceVersion);
    await writer.apply(cm({ a: '1' }));
    const stored = await writer.read<V1ConfigMap>(ref('owned'));
    expect(stored?.data).toEqual({ a: '1' });
    expect(stored?.metadata?.managedFields?.map((f) => [f.manager, f.operation])).toEqual([[FIELD_MANAGER, 'Apply']]);
  });

  it('never applies over an object it does not own, nor an object without its label', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'theirs' }, data: { keep: 'me' } } });
    const writer = new ClusterWriter(cp().kubeConfig);
    const ours = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'theirs', namespace: 'default', labels: managed }, data: { x: 'y' } };
    await expect(writer.apply(ours)).rejects.toThrow(new NotOwnedError({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'theirs' }));
    expect((await writer.read<V1ConfigMap>(ref('theirs')))?.data).toEqual({ keep: 'me' });
    await expect(writer.apply({ ...ours, metadata: { name: 'unlabelled', namespace: 'default' } })).rejects.toThrow(
      "ConfigMap default/unlabelled lacks meshfork's managed-by label; not applying it",
    );
    expect(await writer.read(ref('unlabelled'))).toBeUndefined();
  });

  it("never applies over an object written for another Sandbox (same name, other Sandbox namespace): the field manager is the same", async () => {
    const writer = new ClusterWriter(cp().kubeConfig);
    const forSandbox = (namespace: string, value: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'route-alice', namespace: 'default', labels: { ...managed, 'meshfork.dev/sandbox': 'alice', 'meshfork.dev/sandbox-namespace': namespace } },
      data: { backend: value },
    });
    await writer.apply(forSandbox('shop', 'cart-alice.shop'));
    await expect(writer.apply(forSandbox('shop2', 'cart-alice.shop2'))).rejects.toThrow(new OwnedByOtherSandboxError(ref('route-alice'), 'shop/alice'));
    expect((await writer.read<V1ConfigMap>(ref('route-alice')))?.data).toEqual({ backend: 'cart-alice.shop' });
    // Its own Sandbox still applies it.
    await writer.apply(forSandbox('shop', 'cart-alice.shop-v2'));
    expect((await writer.read<V1ConfigMap>(ref('route-alice')))?.data).toEqual({ backend: 'cart-alice.shop-v2' });
  });

  it('update retries from a fresh read when someone writes in between, and never loses their write', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'users' }, data: { user: 'v1' } } });
    const writer = new ClusterWriter(cp().kubeConfig);
    let calls = 0;
    const seen: string[] = [];
    const result = await writer.update<V1ConfigMap & KubernetesObject>(ref('users'), async (current) => {
      calls += 1;
      seen.push(current.data?.['user'] ?? '');
      // A user writes after our first read: our replace must get 409 and start over.
      if (calls === 1) await core.replaceNamespacedConfigMap({ name: 'users', namespace: 'default', body: { ...current, data: { user: 'v2' } } });
      return { ...current, data: { ...current.data, meshfork: 'routes' } };
    });
    expect(seen).toEqual(['v1', 'v2']);
    expect(result.written).toBe(true);
    expect((await writer.read<V1ConfigMap>(ref('users')))?.data).toEqual({ user: 'v2', meshfork: 'routes' });

    const unchanged = await writer.update(ref('users'), () => undefined);
    expect(unchanged.written).toBe(false);
    expect(await writer.update(ref('absent'), (c) => c)).toEqual({ object: undefined, written: false });
  });

  it('update over a cached version sends no read; a cache that is behind costs a 409 and a fresh read, never the newer write', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cached' }, data: { user: 'v1' } } });
    const writer = new ClusterWriter(cp().kubeConfig);
    const reads = vi.spyOn(writer, 'read');
    // An informer's copy: wire-form, managedFields stripped.
    const cached = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cached', namespace: 'default', resourceVersion: created.metadata!.resourceVersion! }, data: { user: 'v1' } } as KubernetesObject;
    const add = (current: KubernetesObject) => ({ ...current, data: { ...(current as V1ConfigMap).data, meshfork: 'routes' } }) as KubernetesObject;
    expect((await writer.update(ref('cached'), add, { cached })).written).toBe(true);
    expect(reads).toHaveBeenCalledTimes(0);
    const stored = (await writer.read<V1ConfigMap>(ref('cached')))!;
    expect(stored.data).toEqual({ user: 'v1', meshfork: 'routes' });
    // The stored managedFields were kept (the replace carried none): the creator's and meshfork's update.
    expect(stored.metadata?.managedFields?.map((f) => f.operation).sort()).toEqual(['Update', 'Update']);
    // A user writes; our cache still holds the first version.
    await core.replaceNamespacedConfigMap({ name: 'cached', namespace: 'default', body: { ...stored, data: { user: 'v2' } } });
    reads.mockClear();
    const seen: string[] = [];
    const result = await writer.update(ref('cached'), (current) => (seen.push((current as V1ConfigMap).data?.['user'] ?? ''), add(current)), { cached });
    expect(result.written).toBe(true);
    expect(seen).toEqual(['v1', 'v2']);
    expect(reads).toHaveBeenCalledTimes(1);
    expect((await writer.read<V1ConfigMap>(ref('cached')))?.data).toEqual({ user: 'v2', meshfork: 'routes' });
  });

  it('a 409 on every attempt is an error after the last attempt', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'contended' }, data: { n: '0' } } });
    const writer = new ClusterWriter(cp().kubeConfig);
    let n = 0;
    await expect(
      writer.update<V1ConfigMap & KubernetesObject>(
        ref('contended'),
        async (current) => {
          n += 1;
          await core.replaceNamespacedConfigMap({ name: 'contended', namespace: 'default', body: { ...current, data: { n: `user-${n}` } } });
          return { ...current, data: { n: `ours-${n}` } };
        },
        3,
      ),
    ).rejects.toMatchObject({ code: 409 });
    expect(n).toBe(3);
  });

  it('deletes only objects labelled as managed by meshfork', async () => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'user-owned' } } });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'ours', labels: managed } } });
    const writer = new ClusterWriter(cp().kubeConfig);
    expect(await writer.deleteManaged(ref('user-owned'))).toBe(false);
    expect(await writer.read(ref('user-owned'))).toBeDefined();
    expect(await writer.deleteManaged(ref('ours'))).toBe(true);
    expect(await writer.read(ref('ours'))).toBeUndefined();
    expect(await writer.deleteManaged(ref('ours'))).toBe(false);
  });
});

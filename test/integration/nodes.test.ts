// A test cluster whose Deployments become Available: `useControlPlane({ nodes: true })` adds
// kube-scheduler, KWOK with one fake Node and kube-controller-manager's deployment, replicaset,
// garbage-collector and node-lifecycle controllers. Pods are scheduled onto the fake Node and
// KWOK marks them Running/Ready; no container runs and no test sends traffic to a pod IP.
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Pod, type V1ReplicaSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { FAKE_NODE, FAKE_NODE_ANNOTATION, requireTestbin, useControlPlane } from '../support/control-plane.js';

const hasBins = requireTestbin();

const NS = 'kwok-apps';
/** Upper bound for a Deployment to become Available (0.2–0.3 s measured on the shared 2-core machine). */
const AVAILABLE_WITHIN_MS = 30_000;
/** Upper bound for pods and ReplicaSets to disappear after a scale-down or delete. */
const GONE_WITHIN_MS = 30_000;

function deployment(name: string, replicas: number): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        // Never pulled: KWOK plays the kubelet and runs nothing.
        spec: { containers: [{ name: 'app', image: 'registry.invalid/meshfork/app:1' }] },
      },
    },
  };
}

/** Polls `probe` every 100 ms until it returns a value; the error quotes the last state seen. */
async function poll<T>(what: string, ms: number, probe: () => Promise<{ done: T } | { state: unknown }>): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const r = await probe();
    if ('done' in r) return r.done;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms; last state: ${JSON.stringify(r.state)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe.skipIf(!hasBins)('control plane with nodes: kube-scheduler + KWOK', () => {
  const cp = useControlPlane({ nodes: true });
  const apps = () => cp().kubeConfig.makeApiClient(AppsV1Api);
  const core = () => cp().kubeConfig.makeApiClient(CoreV1Api);
  let nsCreated = false;

  async function ensureNamespace(): Promise<void> {
    if (nsCreated) return;
    await core().createNamespace({ body: { metadata: { name: NS } } });
    nsCreated = true;
  }

  const podsOf = async (app: string): Promise<V1Pod[]> =>
    (await core().listNamespacedPod({ namespace: NS, labelSelector: `app=${app}` })).items;
  const replicaSetsOf = async (app: string): Promise<V1ReplicaSet[]> =>
    (await apps().listNamespacedReplicaSet({ namespace: NS, labelSelector: `app=${app}` })).items;

  /** Creates a Deployment and waits until it is Available; returns it and the time taken. */
  async function createAvailable(name: string, replicas: number): Promise<{ dep: V1Deployment; ms: number }> {
    await ensureNamespace();
    const t0 = Date.now();
    await apps().createNamespacedDeployment({ namespace: NS, body: deployment(name, replicas) });
    const dep = await poll<V1Deployment>(`Deployment ${name} Available`, AVAILABLE_WITHIN_MS, async () => {
      const d = await apps().readNamespacedDeployment({ name, namespace: NS });
      const available = d.status?.conditions?.find((c) => c.type === 'Available');
      return d.status?.availableReplicas === replicas && available?.status === 'True' ? { done: d } : { state: d.status ?? null };
    });
    return { dep, ms: Date.now() - t0 };
  }

  it('runs kube-scheduler and kwok of the pinned versions, with one Ready, untainted fake Node on loopback', async () => {
    const plane = cp();
    const [scheduler, kwok] = await Promise.all([
      plane.exec('kube-scheduler', ['--version']),
      plane.exec('kwok', ['--version']),
    ]);
    console.log(`kube-scheduler --version: ${scheduler.stdout.trim()}\nkwok --version: ${kwok.stdout.trim()}`);
    expect(scheduler.stdout.trim()).toBe(`Kubernetes ${plane.versions.kubernetes}`);
    expect(kwok.stdout).toContain(`kwok version ${plane.versions.kwok} `);

    expect(plane.nodes).toEqual([FAKE_NODE]);
    const nodes = (await core().listNode()).items;
    expect(nodes.map((n) => n.metadata?.name)).toEqual([FAKE_NODE]);
    const node = nodes[0]!;
    expect(node.metadata?.annotations?.[FAKE_NODE_ANNOTATION.key]).toBe(FAKE_NODE_ANNOTATION.value);
    // The not-ready taint the API server put on it was lifted by node-lifecycle-controller.
    expect(node.spec?.taints ?? []).toEqual([]);
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.status?.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
  });

  it('a 2-replica Deployment becomes Available; its pods run on the fake Node with loopback IPs', async () => {
    const { dep, ms } = await createAvailable('web', 2);
    console.log(`Deployment web (2 replicas) Available after ${(ms / 1000).toFixed(1)} s`);
    expect(ms).toBeLessThan(AVAILABLE_WITHIN_MS);
    expect(dep.status).toMatchObject({ replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 });
    expect(dep.status?.conditions?.find((c) => c.type === 'Available')).toMatchObject({
      status: 'True',
      reason: 'MinimumReplicasAvailable',
    });

    const [rs, ...moreRs] = await replicaSetsOf('web');
    expect(moreRs).toEqual([]);
    expect(rs?.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'Deployment', name: 'web', uid: dep.metadata?.uid, controller: true }),
    ]);
    const pods = await podsOf('web');
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      expect(pod.metadata?.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'ReplicaSet', name: rs?.metadata?.name, uid: rs?.metadata?.uid, controller: true }),
      ]);
      expect(pod.spec?.nodeName).toBe(FAKE_NODE);
      expect(pod.status?.phase).toBe('Running');
      expect(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(pod.status?.hostIP).toBe('127.0.0.1');
      // Inside --cidr=127.77.0.0/16: fake, but never outside loopback.
      expect(pod.status?.podIP).toMatch(/^127\.77\.\d{1,3}\.\d{1,3}$/);
    }
  });

  it('scaling a Deployment to 0 removes its pods', async () => {
    await createAvailable('scaled', 2);
    expect(await podsOf('scaled')).toHaveLength(2);
    const t0 = Date.now();
    await apps().replaceNamespacedDeploymentScale({
      name: 'scaled',
      namespace: NS,
      body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'scaled', namespace: NS }, spec: { replicas: 0 } },
    });
    await poll('pods of scaled gone', GONE_WITHIN_MS, async () => {
      const pods = await podsOf('scaled');
      return pods.length === 0 ? { done: true } : { state: pods.map((p) => `${p.metadata?.name} ${p.status?.phase}`) };
    });
    console.log(`scale 2 -> 0: pods gone after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const dep = await poll<V1Deployment>('Deployment scaled reports 0 replicas', GONE_WITHIN_MS, async () => {
      const d = await apps().readNamespacedDeployment({ name: 'scaled', namespace: NS });
      return d.status?.observedGeneration === d.metadata?.generation && (d.status?.replicas ?? 0) === 0
        ? { done: d }
        : { state: d.status ?? null };
    });
    expect(dep.status?.availableReplicas ?? 0).toBe(0);
    // The ReplicaSet stays, scaled to 0.
    expect((await replicaSetsOf('scaled')).map((rs) => rs.spec?.replicas)).toEqual([0]);
  });

  it('deleting a Deployment garbage-collects its ReplicaSet and pods (ownerReferences)', async () => {
    const { dep } = await createAvailable('doomed', 2);
    const [rs] = await replicaSetsOf('doomed');
    expect(rs?.metadata?.ownerReferences?.map((o) => o.uid)).toEqual([dep.metadata?.uid]);
    expect(await podsOf('doomed')).toHaveLength(2);

    // No propagationPolicy: apps/v1 deletes in the background, the garbage collector follows the
    // ownerReferences (Deployment <- ReplicaSet <- Pod).
    const t0 = Date.now();
    await apps().deleteNamespacedDeployment({ name: 'doomed', namespace: NS });
    await poll('ReplicaSet and pods of doomed gone', GONE_WITHIN_MS, async () => {
      const [rs, pods] = await Promise.all([replicaSetsOf('doomed'), podsOf('doomed')]);
      return rs.length === 0 && pods.length === 0
        ? { done: true }
        : { state: { replicaSets: rs.map((r) => r.metadata?.name), pods: pods.map((p) => p.metadata?.name) } };
    });
    console.log(`Deployment delete: ReplicaSet and pods collected after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await expect(apps().readNamespacedDeployment({ name: 'doomed', namespace: NS })).rejects.toMatchObject({ code: 404 });
  });
});

// Copies of label-selected policies written by the reconciler against a real kube-apiserver
// (with Istio's CRDs): a DENY AuthorizationPolicy and a NetworkPolicy selecting the baseline
// web-v1 get copies selecting exactly the fork's pods, with an owner reference to the Sandbox;
// deleting the Sandbox deletes them (the finalizer's cleanup, no garbage collector running).
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';
import { readObject, until, webDeployment } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'pol';

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

const deny: Obj = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'web-deny-admin', namespace: NS },
  spec: { selector: { matchLabels: { app: 'web', version: 'v1' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] },
} as Obj;

const netpol: Obj = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'web-ingress', namespace: NS },
  spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] },
} as Obj;

describe.skipIf(!hasBins)('the controller copies label-selected policies for forks', () => {
  const cp = useSharedControlPlane();
  let controller: Controller;
  let objects: KubernetesObjectApi;
  const logs: LogRecord[] = [];

  const get = (apiVersion: string, kind: string, name: string) => readObject<Obj>(objects, apiVersion, kind, NS, name);

  /** A NetworkPolicy as the API server stores it (wire JSON, not client-node's model). */
  const networkPolicy = async (name: string): Promise<Obj | undefined> => {
    const r = await cp().request('GET', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/${name}`);
    if (r.status === 404) return undefined;
    expect(r.status).toBe(200);
    return JSON.parse(r.body) as Obj;
  };

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    for (const o of [
      webDeployment(NS) as Obj,
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } } as Obj,
      deny,
    ]) {
      await objects.create(o);
    }
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], workers: 2, routeWaitMs: 200, logger: recordingLogger(logs) });
    await controller.start();
    // The NetworkPolicy reaches the controller by its watch (wire JSON), the AuthorizationPolicy by
    // its list. Raw JSON: client-node's typed serialization of NetworkPolicy would drop `from`
    // (src/cluster/wire.ts), in this test as in the controller's writes.
    const r = await cp().request('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, netpol);
    expect(r.status).toBe(201);
    await until('the controller sees the NetworkPolicy', async () => controller.view().policies.some((o) => o.metadata.name === 'web-ingress'));
  });

  afterAll(async () => {
    await controller?.stop();
  });

  it('writes the copies with the fork selector once the Sandbox is Ready, and deletes them with the Sandbox', async () => {
    const created = await objects.create({
      apiVersion: 'meshfork.dev/v1alpha1',
      kind: 'Sandbox',
      metadata: { name: 'one', namespace: NS },
      spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' }, customizations: { images: [{ container: 'web', image: 'registry.example.com/web:2' }] } }] },
    } as Obj);
    const fork = await until('fork web-v1-one', () => get('apps/v1', 'Deployment', 'web-v1-one'));
    // What the deployment controller would report once the fork's pod is up (none runs here).
    const apps = cp().kubeConfig.makeApiClient(AppsV1Api);
    await apps.replaceNamespacedDeploymentStatus({
      name: 'web-v1-one',
      namespace: NS,
      body: { ...(fork as V1Deployment), status: { observedGeneration: fork.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } },
    });
    await until('Sandbox one Ready', async () => {
      const conditions = ((await get('meshfork.dev/v1alpha1', 'Sandbox', 'one'))?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? [];
      return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
    }, 60_000);

    const forkSelector = { app: 'web-one', version: 'v1-one', 'meshfork.dev/sandbox': 'one' };
    expect((fork.spec as { selector: unknown }).selector).toEqual({ matchLabels: forkSelector });
    const ownerReferences = [{ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', name: 'one', uid: created.metadata?.uid, controller: true, blockOwnerDeletion: true }];
    const labels = { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'one', 'meshfork.dev/sandbox-namespace': NS };

    const denyCopy = await get('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin-web-v1-one');
    expect(denyCopy?.spec).toEqual({ selector: { matchLabels: forkSelector }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] });
    expect(denyCopy?.metadata?.labels).toEqual(labels);
    expect(denyCopy?.metadata?.annotations).toMatchObject({ 'meshfork.dev/copy-of': 'AuthorizationPolicy/web-deny-admin' });
    expect(denyCopy?.metadata?.ownerReferences).toEqual(ownerReferences);
    const netpolCopy = await networkPolicy('web-ingress-web-v1-one');
    expect(netpolCopy?.spec).toEqual({ podSelector: { matchLabels: forkSelector }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] });
    expect(netpolCopy?.metadata?.labels).toEqual(labels);
    expect(netpolCopy?.metadata?.ownerReferences).toEqual(ownerReferences);
    // The baselines are left as they were.
    expect((await get('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin'))?.spec).toEqual(deny.spec);
    expect((await networkPolicy('web-ingress'))?.spec).toEqual(netpol.spec);
    // Applied before the fork Deployment, as the planner orders them.
    const applied = logs.filter((r) => r['msg'] === 'applied').map((r) => String(r['object']));
    expect(applied.indexOf(`AuthorizationPolicy ${NS}/web-deny-admin-web-v1-one`)).toBeGreaterThanOrEqual(0);
    expect(applied.indexOf(`NetworkPolicy ${NS}/web-ingress-web-v1-one`)).toBeGreaterThanOrEqual(0);
    expect(applied.indexOf(`AuthorizationPolicy ${NS}/web-deny-admin-web-v1-one`)).toBeLessThan(applied.indexOf(`Deployment ${NS}/web-v1-one`));
    expect(applied.indexOf(`NetworkPolicy ${NS}/web-ingress-web-v1-one`)).toBeLessThan(applied.indexOf(`Deployment ${NS}/web-v1-one`));
    expect(controller.managedCounts()).toMatchObject({ AuthorizationPolicy: 1, NetworkPolicy: 1, Deployment: 1 });

    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'one', namespace: NS } } as Obj);
    await until('Sandbox one gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'one')) === undefined, 60_000);
    expect(await get('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin-web-v1-one')).toBeUndefined();
    expect(await networkPolicy('web-ingress-web-v1-one')).toBeUndefined();
    expect(await get('apps/v1', 'Deployment', 'web-v1-one')).toBeUndefined();
    expect(await get('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin')).toBeDefined();
    // The fork Deployment went before the copies of its baseline's policies.
    const deleted = logs.filter((r) => r['msg'] === 'deleted').map((r) => String(r['object']));
    expect(deleted.indexOf(`Deployment ${NS}/web-v1-one`)).toBeLessThan(deleted.indexOf(`AuthorizationPolicy ${NS}/web-deny-admin-web-v1-one`));
    expect(deleted.indexOf(`Deployment ${NS}/web-v1-one`)).toBeLessThan(deleted.indexOf(`NetworkPolicy ${NS}/web-ingress-web-v1-one`));
    expect(logs.filter((r) => r['level'] === 'error')).toEqual([]);
  }, 120_000);
});

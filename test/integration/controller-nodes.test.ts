// The controller on a cluster whose Deployments really become Available (kube-scheduler + KWOK's
// fake Node + the deployment and replicaset controllers): no test writes a Deployment status.
// create -> Ready (and `kubectl wait --for=condition=Ready` returns); two Sandboxes created at once
// -> both routed; a Sandbox's image update -> the fork rolls and Ready follows the new generation;
// a baseline env change -> the fork follows.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'ctl-nodes';

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };


const baseline = (env: string): V1Deployment => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'shop-v1', namespace: NS, labels: { app: 'shop' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'shop' } },
    template: {
      metadata: { labels: { app: 'shop' } },
      spec: { containers: [{ name: 'main', image: 'registry.invalid/shop:1', env: [{ name: 'LEVEL', value: env }, { name: 'KEEP', value: 'baseline' }] }] },
    },
  },
});

function sandbox(name: string, image: string): Obj {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name, namespace: NS },
    spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'shop-v1' }, customizations: { images: [{ container: 'main', image }], env: [{ name: 'KEEP', value: name }] } }] },
  } as Obj;
}

describe.skipIf(!hasBins)('meshfork controller with Deployments that become Available', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], nodes: true });
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  const logs: LogRecord[] = [];

  const get = async (apiVersion: string, kind: string, name: string) => (await objects.read({ apiVersion, kind, metadata: { name, namespace: NS } })) as Obj;
  const ready = async (name: string) => {
    const status = (await get('meshfork.dev/v1alpha1', 'Sandbox', name)).status as { observedGeneration?: number; conditions?: Array<{ type: string; status: string; observedGeneration?: number }> } | undefined;
    return status?.conditions?.find((c) => c.type === 'Ready');
  };
  const routeNames = async (name: string) => ((await get('networking.istio.io/v1', 'VirtualService', name)).spec as { http: Array<{ name?: string }> }).http.map((r) => r.name);
  const container = async (name: string) => (await apps.readNamespacedDeployment({ name, namespace: NS })).spec?.template.spec?.containers[0];

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    apps = kc.makeApiClient(AppsV1Api);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    await apps.createNamespacedDeployment({ namespace: NS, body: baseline('1') });
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop', namespace: NS }, spec: { selector: { app: 'shop' }, ports: [{ name: 'http', port: 80 }] } } as Obj);
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], logger: recordingLogger(logs) });
    await controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    const errors = logs.filter((l) => l.level === 'error');
    if (errors.length > 0) console.log(`controller errors:\n${errors.map((e) => JSON.stringify(e)).join('\n')}`);
  });

  it('two Sandboxes created at once both become Ready and routed; kubectl wait works', async () => {
    const t0 = Date.now();
    await Promise.all([objects.create(sandbox('alpha', 'registry.invalid/shop:alpha')), objects.create(sandbox('beta', 'registry.invalid/shop:beta'))]);
    const wait = await cp().exec('kubectl', ['wait', '--for=condition=Ready', '-n', NS, 'sandbox/alpha', 'sandbox/beta', '--timeout=60s'], { timeoutMs: 70_000 });
    expect(wait.stderr).toBe('');
    expect(wait.code).toBe(0);
    console.log(`two Sandboxes Ready (forks Available, routed) ${Date.now() - t0} ms after create`);
    expect(await routeNames('shop-meshfork')).toEqual(['meshfork-alpha-0', 'meshfork-beta-0', 'meshfork-baseline']);
    const fork = await apps.readNamespacedDeployment({ name: 'shop-v1-alpha', namespace: NS });
    expect(fork.status?.availableReplicas).toBe(1);
  });

  it("a Sandbox's image update rolls its fork, and Ready follows the new generation", async () => {
    const current = await get('meshfork.dev/v1alpha1', 'Sandbox', 'alpha');
    await objects.replace({ ...current, spec: (sandbox('alpha', 'registry.invalid/shop:alpha-2') as { spec: unknown }).spec } as Obj);
    await until('fork image', async () => (await container('shop-v1-alpha'))?.image === 'registry.invalid/shop:alpha-2', 60_000);
    await until('alpha Ready for generation 2', async () => {
      const c = await ready('alpha');
      return c?.status === 'True' && c.observedGeneration === 2;
    });
    const fork = await apps.readNamespacedDeployment({ name: 'shop-v1-alpha', namespace: NS });
    expect(fork.status?.observedGeneration).toBe(fork.metadata?.generation);
    expect(fork.status?.updatedReplicas).toBe(1);
    expect(await routeNames('shop-meshfork')).toEqual(['meshfork-alpha-0', 'meshfork-beta-0', 'meshfork-baseline']);
  });

  it("a baseline env change flows into the forks, except what a Sandbox overrides", async () => {
    const current = await apps.readNamespacedDeployment({ name: 'shop-v1', namespace: NS });
    await apps.replaceNamespacedDeployment({ name: 'shop-v1', namespace: NS, body: { ...current, spec: baseline('2').spec! } });
    for (const name of ['shop-v1-alpha', 'shop-v1-beta']) {
      await until(`${name} env`, async () => (await container(name))?.env?.find((e) => e.name === 'LEVEL')?.value === '2', 60_000);
    }
    expect((await container('shop-v1-beta'))?.env?.find((e) => e.name === 'KEEP')?.value).toBe('beta');
    expect((await container('shop-v1-beta'))?.image).toBe('registry.invalid/shop:beta');
  });
});

// The controller's configuration from a ConfigMap on a real API server: the routes follow a valid
// edit (another key name); an invalid edit is reported (log line and a Warning Event on the
// ConfigMap) and ignored, the last good configuration staying in effect.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, type LogEntry } from '../../src/controller/reconciler.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'ctl-config';


describe.skipIf(!hasBins)('meshfork controller configuration from a ConfigMap', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'] });
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let core: CoreV1Api;
  const logs: LogEntry[] = [];

  const routeText = async () => JSON.stringify(((await objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-meshfork', namespace: NS } })) as { spec?: unknown }).spec);
  const setConfig = async (text: string) => {
    const cm = await core.readNamespacedConfigMap({ name: 'meshfork', namespace: NS });
    await core.replaceNamespacedConfigMap({ name: 'meshfork', namespace: NS, body: { ...cm, data: { 'config.yaml': text } } });
  };

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'meshfork' }, data: { 'config.yaml': 'routing:\n  keyName: team-key\n' } } });
    const web: V1Deployment = {
      metadata: { name: 'web-v1', namespace: NS, labels: { app: 'web' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } } },
    };
    await apps.createNamespacedDeployment({ namespace: NS, body: web });
    await core.createNamespacedService({ namespace: NS, body: { metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }] } } });
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], configMap: { namespace: NS, name: 'meshfork' }, log: (e) => logs.push(e) });
    await controller.start();
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'alpha', namespace: NS }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' } }] } } as KubernetesObject);
    // No deployment controller runs here: report the fork available as it would.
    await until('fork', async () => (await apps.readNamespacedDeployment({ name: 'web-v1-alpha', namespace: NS })) !== undefined);
    const fork = await apps.readNamespacedDeployment({ name: 'web-v1-alpha', namespace: NS });
    await apps.replaceNamespacedDeploymentStatus({ name: 'web-v1-alpha', namespace: NS, body: { ...fork, status: { observedGeneration: fork.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } } });
  });

  afterAll(async () => {
    await controller?.stop();
  });

  it('routes with the key name of the ConfigMap and follows a valid edit', async () => {
    await until('routes with team-key', async () => (await routeText()).includes('team-key'));
    expect(await routeText()).not.toContain('meshfork-routing-key');
    await setConfig('routing:\n  keyName: other-key\n');
    await until('routes with other-key', async () => (await routeText()).includes('other-key'));
    expect(await routeText()).not.toContain('team-key');
    expect(logs.filter((l) => l.msg === 'configuration loaded')).toHaveLength(2);
  });

  it('reports an invalid edit and keeps the last good configuration', async () => {
    await setConfig('routing:\n  keyName: NOT VALID\n');
    await until('refusal logged', async () => logs.some((l) => l.msg === 'configuration refused; the last good one stays'));
    expect(logs.find((l) => l.msg === 'configuration refused; the last good one stays')).toMatchObject({
      level: 'error',
      key: `ConfigMap/${NS}/meshfork`,
      problems: expect.stringMatching(/^data\["config\.yaml"\]\.routing\.keyName: must match pattern/),
    });
    const event = await until('Warning Event', async () =>
      (await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=meshfork' })).items.find((e) => e.reason === 'InvalidConfig'),
    );
    expect(event).toMatchObject({ type: 'Warning', involvedObject: { kind: 'ConfigMap', name: 'meshfork' } });
    expect(controller.currentConfig?.routing?.keyName).toBe('other-key');
    controller.resync();
    await new Promise((r) => setTimeout(r, 300));
    await controller.idle();
    expect(await routeText()).toContain('other-key');
  });
});

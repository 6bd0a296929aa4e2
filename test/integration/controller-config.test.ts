// The controller's configuration from a ConfigMap on a real API server: the routes follow a valid
// edit (another key name); an invalid edit is reported (log line and a Warning Event on the
// ConfigMap) and ignored, the last good configuration staying in effect; the quota and default
// TTL keys act on the Sandboxes. And the JSON log records of one reconcile, exactly.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';
import { until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'ctl-config';


describe.skipIf(!hasBins)('meshfork controller configuration from a ConfigMap', () => {
  const cp = useSharedControlPlane();
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let core: CoreV1Api;
  const logs: LogRecord[] = [];

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
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], configMap: { namespace: NS, name: 'meshfork' }, logger: recordingLogger(logs) });
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

  it('policy.maxSandboxesPerNamespace: the younger Sandbox gets Ready=False naming the key, the older keeps working; policy.defaultTtl sets expiresAt', async () => {
    type Status = { status?: { expiresAt?: string; conditions?: Array<{ type: string; status: string; reason: string; message: string }> }; metadata?: { creationTimestamp?: string | Date } };
    const read = async (name: string) => (await objects.read({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace: NS } })) as Status;
    const ready = async (name: string) => (await read(name)).status?.conditions?.find((c) => c.type === 'Ready');
    const alphaReady = await ready('alpha');
    await setConfig('routing:\n  keyName: other-key\npolicy:\n  maxSandboxesPerNamespace: 1\n  defaultTtl: {duration: 1w}\n');
    await until('config with the quota', async () => controller.currentConfig?.policy?.maxSandboxesPerNamespace === 1);
    const created = new Date((await read('alpha')).metadata!.creationTimestamp!).getTime();
    await until('alpha expires a week after its creation', async () => (await read('alpha')).status?.expiresAt === new Date(created + 7 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'beta', namespace: NS }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' } }] } } as KubernetesObject);
    const refused = await until('beta refused', async () => ((await ready('beta'))?.reason === 'InvalidSpec' ? ready('beta') : undefined));
    expect(refused).toMatchObject({
      status: 'False',
      message: `metadata.namespace: namespace "${NS}" holds 2 Sandboxes and at most 1 are served (policy.maxSandboxesPerNamespace); the oldest 1 are, this one is number 2: delete a Sandbox of the namespace or raise the quota`,
    });
    await expect(objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web-v1-beta', namespace: NS } })).rejects.toMatchObject({ code: 404 });
    expect(await ready('alpha')).toEqual(alphaReady);
    expect(await routeText()).toContain('other-key');
    // The older one gone, the younger is served.
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'alpha', namespace: NS } });
    await until('beta served', async () => (await ready('beta'))?.reason !== 'InvalidSpec');
    await until('fork of beta', async () => objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web-v1-beta', namespace: NS } }));
  });

  it('logs one Sandbox reconcile: exact JSON records carrying key, namespace and sandbox', async () => {
    const LOG_NS = 'ctl-log';
    const kc = cp().kubeConfig;
    await core.createNamespace({ body: { metadata: { name: LOG_NS } } });
    await kc.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: LOG_NS,
      body: { metadata: { name: 'api-v1', labels: { app: 'api' } }, spec: { selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'api', image: 'registry.invalid/api:1' }] } } } },
    });
    await core.createNamespacedService({ namespace: LOG_NS, body: { metadata: { name: 'api' }, spec: { selector: { app: 'api' }, ports: [{ name: 'http', port: 80 }] } } });
    // The finalizer is there already, so the first reconcile applies the forks.
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'logged', namespace: LOG_NS, finalizers: ['meshfork.dev/cleanup'] }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'api-v1' } }] } } as KubernetesObject);
    const records: LogRecord[] = [];
    // No workers: the test runs the one reconcile itself.
    const logged = new Controller({ kubeConfig: kc, namespaces: [LOG_NS], workers: 0, logger: recordingLogger(records, 'debug') });
    await logged.start();
    // Start-up on a plane without the Gateway API CRDs says so once per kind; then the reconcile's records alone.
    expect(records.splice(0).map(({ time: _t, ...r }) => r).sort((x, y) => String(x['kind']).localeCompare(String(y['kind'])))).toEqual(
      ['GRPCRoute', 'HTTPRoute'].map((kind) => ({ level: 'info', kind, apiVersion: 'gateway.networking.k8s.io/v1', msg: 'kind not served (its CRD is not installed): no objects of it; watching for it' })),
    );
    try {
      expect(logged.view().sandboxes.map((s) => s.metadata.name)).toEqual(['logged']);
      await logged.reconcile(`Sandbox/${LOG_NS}/logged`);
    } finally {
      await logged.stop();
    }
    for (const r of records) expect(r['time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const fields = { key: `Sandbox/${LOG_NS}/logged`, namespace: LOG_NS, sandbox: 'logged' };
    expect(records.map(({ time: _t, durationMs, ...r }) => ({ ...r, ...(durationMs !== undefined ? { durationMs: typeof durationMs } : {}) }))).toEqual([
      { level: 'info', ...fields, object: `Deployment ${LOG_NS}/api-v1-logged`, msg: 'applied' },
      { level: 'info', ...fields, object: `Service ${LOG_NS}/api-logged`, msg: 'applied' },
      { level: 'info', ...fields, object: `EnvoyFilter ${LOG_NS}/api-v1-logged-affinity`, msg: 'applied' },
      { level: 'info', ...fields, object: `Sandbox ${LOG_NS}/logged`, ready: 'False', reason: 'ForksUnavailable', msg: 'status written' },
      { level: 'debug', ...fields, durationMs: 'number', msg: 'reconciled' },
    ]);
  });
});

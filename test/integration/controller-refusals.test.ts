// What the controller refuses to write, on a real API server, and how the Sandbox says so:
//  - a VirtualService that would not fit in one etcd request (the limit checked against the server
//    itself) is not written, the user's stays as it was, RoutingReady=False names it;
//  - a user's EnvoyFilter under the name of a fork's generated one is never replaced: the Sandbox
//    is Ready=False with the planner's message, and proceeds once the user's filter is gone.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { ETCD_MAX_REQUEST_BYTES, MAX_OBJECT_BYTES } from '../../src/cluster/write.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { until } from './controller-support.js';

const hasBins = requireTestbin();
const BIG = 'ctl-big';
const EF = 'ctl-ef';

type Condition = { type: string; status: string; reason: string; message: string };

describe.skipIf(!hasBins)('meshfork controller refusals', () => {
  const cp = useSharedControlPlane();
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  const logs: LogRecord[] = [];

  const baseline = async (namespace: string, app: string) => {
    const core = cp().kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await apps.createNamespacedDeployment({
      namespace,
      body: { metadata: { name: `${app}-v1`, labels: { app } }, spec: { selector: { matchLabels: { app } }, template: { metadata: { labels: { app } }, spec: { containers: [{ name: app, image: `registry.invalid/${app}:1` }] } } } },
    });
    await core.createNamespacedService({ namespace, body: { metadata: { name: app }, spec: { selector: { app }, ports: [{ name: 'http', port: 80 }] } } });
  };
  const createSandbox = (namespace: string, name: string, deployment: string) =>
    objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: deployment } }] } } as KubernetesObject);
  const condition = async (namespace: string, name: string, type: string) =>
    ((await objects.read({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace } })) as { status?: { conditions?: Condition[] } }).status?.conditions?.find((c) => c.type === type);
  // No deployment controller runs here: report a fork available as it would.
  const markAvailable = async (namespace: string, name: string) => {
    const fork = await until(`fork ${name}`, () => apps.readNamespacedDeployment({ name, namespace }));
    await apps.replaceNamespacedDeploymentStatus({ name, namespace, body: { ...fork, status: { observedGeneration: fork.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } } });
  };

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    apps = kc.makeApiClient(AppsV1Api);
    controller = new Controller({ kubeConfig: kc, namespaces: [BIG, EF], logger: recordingLogger(logs) });
    await controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
  });

  it(`the API server refuses an object over etcd's ${ETCD_MAX_REQUEST_BYTES} bytes and stores one of ${MAX_OBJECT_BYTES}`, async () => {
    await baseline(BIG, 'web');
    // A VirtualService (a custom resource, stored as its JSON) of a given JSON size: a URI prefix pads it to exactly `bytes`.
    const sized = (name: string, bytes: number) => {
      const shell = (pad: string) => ({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace: BIG },
        spec: { hosts: [`${name}.example.com`], http: [{ match: [{ uri: { prefix: `/${pad}` } }], route: [{ destination: { host: 'web' } }] }] },
      });
      return shell('x'.repeat(bytes - Buffer.byteLength(JSON.stringify(shell('')))));
    };
    expect(Buffer.byteLength(JSON.stringify(sized('fits', MAX_OBJECT_BYTES)))).toBe(MAX_OBJECT_BYTES);
    await objects.create(sized('fits', MAX_OBJECT_BYTES));
    await expect(objects.create(sized('too-large', ETCD_MAX_REQUEST_BYTES + 1))).rejects.toMatchObject({ body: expect.stringContaining('too large') });
    // It routes to the host the next test forks, so the planner would merge copies into it too
    // (a facade VirtualService, ADR 0008): gone before that test.
    await objects.delete({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'fits', namespace: BIG } });
  });

  it('a VirtualService too large for the API server is not written; the user one stays as it was; RoutingReady=False says why', async () => {
    // A user VirtualService of ~700 KB whose 400 routes all go to the forked host: one Sandbox's
    // copies (each user match ANDed with every routing-key carrier) more than double it.
    const user = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'web', namespace: BIG, labels: { team: 'web' } },
      spec: {
        hosts: ['web'],
        http: Array.from({ length: 400 }, (_, i) => ({ name: `r${i}`, match: [{ uri: { prefix: `/p${i}/${'x'.repeat(1_500)}` } }], route: [{ destination: { host: 'web' } }] })),
      },
    };
    const stored = (await objects.create(user as KubernetesObject)) as KubernetesObject & { spec: unknown };
    // The controller must know the user VirtualService before it plans the host (else it would make its own).
    await until('user VirtualService cached', async () => controller.view().virtualServices.some((vs) => vs.metadata.name === 'web'));
    await createSandbox(BIG, 'huge', 'web-v1');
    await markAvailable(BIG, 'web-v1-huge');
    const routing = await until('RoutingReady=False naming the size', async () => {
      const c = await condition(BIG, 'huge', 'RoutingReady');
      return c?.message.includes('bytes') ? c : undefined;
    });
    const bytes = Number(/would be (\d+) bytes/.exec(routing.message)?.[1]);
    expect(bytes).toBeGreaterThan(ETCD_MAX_REQUEST_BYTES);
    expect(routing).toMatchObject({
      status: 'False',
      reason: 'RoutesPending',
      message: `no routes yet for web.${BIG}.svc.cluster.local (VirtualService ${BIG}/web would be ${bytes} bytes with the routes of 1 Sandbox, over the ${MAX_OBJECT_BYTES} the API server can store (etcd --max-request-bytes); it is left as it was: delete Sandboxes that fork this host, or split the VirtualService's routes over several VirtualServices)`,
    });
    expect(await condition(BIG, 'huge', 'Ready')).toMatchObject({ status: 'False', message: routing.message });
    const now = (await objects.read({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web', namespace: BIG } })) as KubernetesObject & { spec: unknown };
    expect(now.metadata?.resourceVersion).toBe(stored.metadata?.resourceVersion);
    expect(now.spec).toEqual(user.spec);
    expect(logs.filter((l) => l.msg === 'VirtualService too large; not written')[0]).toMatchObject({
      level: 'error',
      key: `Host/${BIG}/web`,
      namespace: BIG,
      sandboxes: [`${BIG}/huge`],
      object: `VirtualService ${BIG}/web`,
      bytes,
      limit: MAX_OBJECT_BYTES,
    });
  });

  it("a user's EnvoyFilter under a generated name: Ready=False with the planner's message, never replaced; the Sandbox proceeds once it is gone", async () => {
    await baseline(EF, 'api');
    const filter = { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'api-v1-held-affinity', namespace: EF }, spec: { workloadSelector: { labels: { app: 'api' } }, configPatches: [] } };
    const stored = await objects.create(filter as KubernetesObject);
    await createSandbox(EF, 'held', 'api-v1');
    const ready = await until('Ready=False InvalidSpec', async () => {
      const c = await condition(EF, 'held', 'Ready');
      return c?.reason === 'InvalidSpec' ? c : undefined;
    });
    expect(ready).toMatchObject({
      status: 'False',
      message: `spec.forks[0].forkOf.name: would replace EnvoyFilter ${EF}/api-v1-held-affinity, which already exists and is not meshfork's output for this Sandbox`,
    });
    await expect(apps.readNamespacedDeployment({ name: 'api-v1-held', namespace: EF })).rejects.toMatchObject({ code: 404 });
    const after = await objects.read({ apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', metadata: { name: 'api-v1-held-affinity', namespace: EF } });
    expect(after.metadata?.resourceVersion).toBe(stored.metadata?.resourceVersion);
    // The user's filter gone, the Sandbox is planned again (its deletion enqueues it) and forks.
    await objects.delete(filter as KubernetesObject);
    await until('fork of held', () => apps.readNamespacedDeployment({ name: 'api-v1-held', namespace: EF }));
    await until('held no longer InvalidSpec', async () => (await condition(EF, 'held', 'Ready'))?.reason !== 'InvalidSpec');
  });
});

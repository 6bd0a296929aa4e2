// `meshfork controller` against a real kube-apiserver (issue 10 leftovers), one control plane:
//  - a Sandbox whose fork names a StatefulSet gets Ready=False saying what the name is (the
//    controller reads the workload on demand; the planner words the hint as for files);
//  - SIGTERM after the API server went away: the controller must not
// hang (test/controller/shutdown.test.ts covers the stand-ins: a refused port, a silent listener,
// the grace period). Here the real kube-apiserver, stopped with the control plane's
// stopApiServer() under a leading controller: the stop finishes without the API server but cannot
// release the Lease, so the controller exits 1 and says so in one `shutdown incomplete` record.
import { CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { readObject, startControllerProcess, until, webDeployment, type ControllerProcess } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'ops';

describe.skipIf(!hasBins)('meshfork controller: hints for other workload kinds, shutdown without an API server', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'] });
  let controller: ControllerProcess | undefined;
  afterAll(() => {
    if (controller?.child.exitCode === null) controller.child.kill('SIGKILL');
  });

  const sandbox = (name: string, fork: string) =>
    ({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace: NS }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: fork } }] } }) as KubernetesObject;

  it('a fork naming a StatefulSet: Ready=False saying it is one, with what to fork instead', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    await objects.create(webDeployment(NS) as KubernetesObject);
    const labels = { app: 'kafka' };
    await objects.create({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'kafka', namespace: NS }, spec: { serviceName: 'kafka', selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'kafka', image: 'registry.example.com/kafka:1' }] } } } } as KubernetesObject);
    await objects.create(sandbox('one', 'web-v1'));
    await objects.create(sandbox('broker', 'kafka'));
    controller = startControllerProcess(cp().kubeconfigPath, ['--namespaces', NS, '--leader-elect', '--lease-namespace', NS, '--health-address', '127.0.0.1:0', '--shutdown-timeout', '10']);
    type Condition = { type: string; status: string; reason?: string; message?: string };
    const ready = await until('broker Ready=False', async () => {
      const broker = await readObject<KubernetesObject & { status?: { conditions?: Condition[] } }>(objects, 'meshfork.dev/v1alpha1', 'Sandbox', NS, 'broker');
      return broker?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False');
    }, 90_000);
    expect([ready.reason, ready.message]).toEqual([
      'InvalidSpec',
      `spec.forks[0].forkOf.name: Deployment "kafka" not found in namespace "${NS}"; ${NS}/kafka is a StatefulSet (apps/v1): a StatefulSet keeps stable pod names and volumes that a copy would share or contend for; fork the Deployments that use it (an env customization can point a fork at a separate instance)`,
    ]);
  });

  it('SIGTERM with the API server gone: exits 1 within its grace period, naming what it could not finish', async () => {
    const objects = KubernetesObjectApi.makeApiClient(cp().kubeConfig);
    if (controller === undefined) throw new Error('the first test starts the controller');
    // Leading, caches synced and the Sandbox reconciled (its fork Deployment written).
    await until('the fork of one', async () => (await readObject(objects, 'apps/v1', 'Deployment', NS, 'web-v1-one')) !== undefined, 90_000);

    await cp().stopApiServer();
    controller.child.kill('SIGTERM');
    // A hang fails this test by its timeout; the grace period is the controller's own bound.
    expect(await controller.exited).toBe(1);
    const records = controller.stderr.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const incomplete = records.filter((r) => r['msg'] === 'shutdown incomplete');
    expect(incomplete.map((r) => [r['level'], r['unfinished']])).toEqual([['error', [expect.stringMatching(/^release the Lease ops\/meshfork-controller: .+ \(a standby takes over when it expires\)$/)]]]);
    // Not the grace period running out: the stop finished, without the Lease release.
    expect(records.some((r) => r['msg'] === 'shutdown did not finish in time; exiting')).toBe(false);
    expect(records.at(-1)?.['msg']).toBe('shutdown incomplete');
    await cp().startApiServer();
  });
});

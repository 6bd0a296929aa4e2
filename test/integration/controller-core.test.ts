// The reconciler in-process against a real kube-apiserver (+ kube-controller-manager's garbage
// collector): Sandbox create -> forks, fork Services, DestinationRules, EnvoyFilters with owner
// references and the finalizer; routes only once forks are available; an invalid Sandbox beside
// a valid one; two Sandboxes in one VirtualService; RouteGroup membership; delete -> routes
// first, then every generated object, and the user's VirtualService exactly as it was; TTL.
//
// No kubelet runs here and the deployment controller is off, so a fork becomes "available" when
// the test writes its Deployment status (what the deployment controller would report).
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { SharedInformer } from '../../src/cluster/informer.js';
import { deriveRoutingKey } from '../../src/planner/routing-key.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { FORK_KINDS, listLabelled, markDeploymentAvailable, readObject, until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'ctl';
const GROUP = { group: 'meshfork.dev', version: 'v1alpha1', namespace: NS };

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

function deployment(name: string, app: string): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app, version: 'v1' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app, version: 'v1' } },
      template: { metadata: { labels: { app, version: 'v1' } }, spec: { containers: [{ name: 'main', image: `registry.example.com/${app}:1` }] } },
    },
  } as Obj;
}

function service(name: string): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] } } as Obj;
}

const userVirtualService: Obj = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'pay', namespace: NS, labels: { team: 'payments' }, annotations: { 'example.com/owner': 'payments' } },
  spec: {
    hosts: ['pay'],
    http: [
      { name: 'canary', match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [{ destination: { host: 'pay', port: { number: 8080 } } }], timeout: '3s' },
      { name: 'default', route: [{ destination: { host: 'pay', port: { number: 8080 } } }], retries: { attempts: 2 } },
    ],
  },
} as Obj;

const userDestinationRule: Obj = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'pay', namespace: NS },
  spec: { host: 'pay', trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } } },
} as Obj;

/** The `<Condition>=<status>` heads of a Sandbox Event's message, space-separated. */
function conditionsNamed(message: string | undefined): string {
  return [...(message ?? '').matchAll(/(?:^|; )((?:Ready|RoutingReady|WorkloadsReady)=(?:True|False|Unknown)): /g)].map((m) => m[1]).join(' ');
}

function sandboxObject(name: string, forks: string[], extra: { labels?: Record<string, string>; ttl?: { duration: string } } = {}): Obj {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name, namespace: NS, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { forks: forks.map((f) => ({ forkOf: { kind: 'Deployment', name: f }, customizations: { images: [{ container: 'main', image: `registry.example.com/${f}:${name}` }] } })), ...(extra.ttl ? { ttl: extra.ttl } : {}) },
  } as Obj;
}


interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

describe.skipIf(!hasBins)('meshfork controller on a real API server', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], controllerManager: true });
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  const logs: LogRecord[] = [];
  let skewMs = 0;
  // Order in which the cluster saw things happen (a watch of our own).
  const seen: Array<{ at: number; what: string }> = [];
  const watchers: Array<SharedInformer<KubernetesObject>> = [];

  const kcCore = () => cp().kubeConfig.makeApiClient(CoreV1Api);
  // While the user's VirtualService is labelled freeze=true, an admission policy (created in
  // beforeAll) refuses its updates that keep the label: the controller cannot change its routes.
  const patchPay = (metadata: Record<string, unknown>, dryRun?: string) =>
    objects.patch({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'pay', namespace: NS, ...metadata } } as unknown as Obj, undefined, dryRun, 'test', undefined, PatchStrategy.MergePatch);
  const setFreeze = async (on: boolean) => {
    await patchPay({ labels: { freeze: on ? 'true' : null } });
    if (!on) return;
    await until('the policy refuses updates', async () => {
      try {
        await patchPay({ annotations: { probe: 'x' } }, 'All');
        return false;
      } catch (error) {
        return (error as { code?: number }).code === 422 || (error as { code?: number }).code === 403;
      }
    });
  };
  const get = (apiVersion: string, kind: string, name: string) => readObject<Obj>(objects, apiVersion, kind, NS, name);
  const sandboxStatus = async (name: string) => ((await get('meshfork.dev/v1alpha1', 'Sandbox', name))?.status ?? {}) as { conditions?: Condition[]; routingKey?: string; forks?: unknown[]; expiresAt?: string; observedGeneration?: number };
  const condition = async (name: string, type: string) => (await sandboxStatus(name)).conditions?.find((c) => c.type === type);
  const routeNames = (vs: Obj | undefined) => ((vs?.spec as { http?: Array<{ name?: string }> } | undefined)?.http ?? []).map((r) => r.name);
  const userPart = (vs: Obj | undefined) => ({ spec: vs?.spec, labels: vs?.metadata?.labels, annotations: vs?.metadata?.annotations });
  const managedBy = (sandbox: string) => listLabelled(objects, NS, `app.kubernetes.io/managed-by=meshfork,meshfork.dev/sandbox=${sandbox}`, FORK_KINDS);
  /** What the deployment controller would write once the fork's pods are up. */
  const markAvailable = (name: string, available = 1) => markDeploymentAvailable(apps, NS, name, available);

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    custom = kc.makeApiClient(CustomObjectsApi);
    apps = kc.makeApiClient(AppsV1Api);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    for (const o of [deployment('cart-v1', 'cart'), service('cart'), deployment('pay-v1', 'pay'), service('pay'), deployment('tmp-v1', 'tmp'), service('tmp'), userVirtualService, userDestinationRule]) {
      await objects.create(o);
    }
    for (const [apiVersion, kind, plural] of [
      ['networking.istio.io/v1', 'VirtualService', 'virtualservices'],
      ['v1', 'Service', 'services'],
    ] as const) {
      const informer = new SharedInformer<KubernetesObject>(kc, { apiVersion, kind, plural, namespace: NS }, { resyncMs: 0 });
      informer.onEvent((type, o) => seen.push({ at: Date.now(), what: `${type} ${kind} ${o.metadata?.name} ${kind === 'VirtualService' ? routeNames(o as Obj).join(',') : ''}`.trim() }));
      await informer.start();
      watchers.push(informer);
    }
    await objects.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: 'freeze-virtualservices' },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: ['networking.istio.io'], apiVersions: ['*'], operations: ['UPDATE'], resources: ['virtualservices'] }] },
        validations: [
          {
            expression: "!(has(oldObject.metadata.labels) && 'freeze' in oldObject.metadata.labels && has(object.metadata.labels) && 'freeze' in object.metadata.labels)",
            message: 'frozen by the test',
          },
        ],
      },
    } as Obj);
    await objects.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: 'freeze-virtualservices' },
      spec: { policyName: 'freeze-virtualservices', validationActions: ['Deny'], matchResources: { namespaceSelector: {} } },
    } as Obj);
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], workers: 4, routeWaitMs: 200, logger: recordingLogger(logs), now: () => new Date(Date.now() + skewMs) });
    await controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    for (const w of watchers) await w.stop();
  });

  it('creates forks with owner references and the finalizer, and routes them only once they are available', async () => {
    const userBefore = await get('networking.istio.io/v1', 'VirtualService', 'pay');
    const created = await objects.create(sandboxObject('alice', ['cart-v1', 'pay-v1']));
    const uid = created.metadata?.uid;
    await until('fork objects of alice', async () => (await managedBy('alice')).length === 7);
    expect(await managedBy('alice')).toEqual([
      'Deployment cart-v1-alice',
      'Deployment pay-v1-alice',
      'DestinationRule pay-alice',
      'EnvoyFilter cart-v1-alice-affinity',
      'EnvoyFilter pay-v1-alice-affinity',
      'Service cart-alice',
      'Service pay-alice',
    ]);
    const fork = await get('apps/v1', 'Deployment', 'cart-v1-alice');
    expect(fork?.metadata?.ownerReferences).toEqual([{ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', name: 'alice', uid, controller: true, blockOwnerDeletion: true }]);
    expect(fork?.metadata?.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alice', 'meshfork.dev/sandbox-namespace': NS });
    expect(fork?.metadata?.managedFields?.map((f) => [f.manager, f.operation])).toEqual([['meshfork', 'Apply']]);
    const forkRule = await get('networking.istio.io/v1', 'DestinationRule', 'pay-alice');
    expect((forkRule?.spec as { host: string; trafficPolicy: unknown }).trafficPolicy).toEqual({ connectionPool: { tcp: { maxConnections: 7 } } });
    expect((await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice'))?.metadata?.finalizers).toEqual(['meshfork.dev/cleanup']);

    // Make before break: no route while the forks have no available replica.
    await until('alice WorkloadsReady=False', async () => (await condition('alice', 'WorkloadsReady'))?.status === 'False');
    expect(await condition('alice', 'WorkloadsReady')).toMatchObject({
      reason: 'ForksUnavailable',
      message: `Deployment ${NS}/cart-v1-alice: 0 of 1 replicas available; Deployment ${NS}/pay-v1-alice: 0 of 1 replicas available`,
    });
    expect(await condition('alice', 'RoutingReady')).toMatchObject({ status: 'False', reason: 'RoutesPending' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork')).toBeUndefined();
    expect((await get('networking.istio.io/v1', 'VirtualService', 'pay'))?.metadata?.resourceVersion).toBe(userBefore?.metadata?.resourceVersion);

    await markAvailable('cart-v1-alice');
    await markAvailable('pay-v1-alice');
    await until('alice Ready', async () => (await condition('alice', 'Ready'))?.status === 'True');
    expect(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))).toEqual(['meshfork-alice-0', 'meshfork-baseline']);
    const merged = await get('networking.istio.io/v1', 'VirtualService', 'pay');
    expect(routeNames(merged)).toEqual(['meshfork-alice-0', 'canary', 'meshfork-alice-1', 'default']);
    expect(merged?.metadata?.labels).toEqual({ team: 'payments' });
    // The user's VirtualService is written by update, never applied.
    expect(merged?.metadata?.managedFields?.some((f) => f.operation === 'Apply')).toBe(false);
    // One Event per status write with transitions, naming every condition that changed, on the Sandbox.
    const events = await until('alice Ready Event', async () => {
      const list = await kcCore().listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=alice' });
      return list.items.some((e) => e.reason === 'Ready') ? list.items : undefined;
    });
    const ready = events.find((e) => e.reason === 'Ready');
    expect(ready).toMatchObject({ type: 'Normal', involvedObject: { kind: 'Sandbox', name: 'alice', uid } });
    // The forks come up before or after the routes are written, depending on timing: the status
    // goes through Ready=False RoutesPending (three writes, three Events) or straight to Ready
    // (two writes, two Events).
    const throughRoutesPending = [
      'Normal Ready: Ready=True RoutingReady=True',
      'Warning ForksUnavailable: Ready=False RoutingReady=False WorkloadsReady=False',
      'Warning RoutesPending: Ready=False WorkloadsReady=True',
    ];
    const straight = ['Normal Ready: Ready=True RoutingReady=True WorkloadsReady=True', 'Warning ForksUnavailable: Ready=False RoutingReady=False WorkloadsReady=False'];
    expect([throughRoutesPending, straight]).toContainEqual(events.map((e) => `${e.type} ${e.reason}: ${conditionsNamed(e.message)}`).sort());
    expect(ready?.message).toBe(
      events.length === 3
        ? 'Ready=True: forks available and routed; RoutingReady=True: routes for 2 hosts installed'
        : 'Ready=True: forks available and routed; RoutingReady=True: routes for 2 hosts installed; WorkloadsReady=True: 2 forks available',
    );
    // The first status: the forks not created yet or not available (WorkloadsReady's message is Ready's).
    const unavailable = `Deployment ${NS}/(cart|pay)-v1-alice[^;]*(; Deployment ${NS}/pay-v1-alice[^;]*)?`;
    expect(events.find((e) => e.reason === 'ForksUnavailable')?.message).toMatch(
      new RegExp(`^Ready=False: (${unavailable}); RoutingReady=False: no routes yet for cart\\.${NS}\\.svc\\.cluster\\.local \\([^)]*\\), pay\\.${NS}\\.svc\\.cluster\\.local \\([^)]*\\); WorkloadsReady=False: \\1$`),
    );
    const hostsPending = `(cart|pay)\\.${NS}\\.svc\\.cluster\\.local \\([^)]*\\)(, pay\\.${NS}\\.svc\\.cluster\\.local \\([^)]*\\))?`;
    expect(events.find((e) => e.reason === 'RoutesPending')?.message ?? 'none').toMatch(new RegExp(`^(none|Ready=False: no routes yet for ${hostsPending}; WorkloadsReady=True: 2 forks available)$`));
    // Its cache keeps its own forks without their pod template (cache-transform.ts), baselines whole.
    const { template: _template, ...forkSpec } = fork!.spec as Record<string, unknown>;
    const cached = (name: string) => controller.view().deployments.find((d) => d.metadata.name === name);
    expect(cached('cart-v1-alice')?.spec).toEqual(forkSpec);
    expect(cached('cart-v1-alice')?.metadata.annotations).toEqual(fork?.metadata?.annotations);
    expect(Object.keys(cached('cart-v1')?.spec ?? {})).toContain('template');
    const status = await sandboxStatus('alice');
    expect(status.routingKey).toBe(deriveRoutingKey('Sandbox', NS, 'alice'));
    expect(status.forks).toEqual([
      { forkOf: `${NS}/cart-v1`, deployment: 'cart-v1-alice', ready: true },
      { forkOf: `${NS}/pay-v1`, deployment: 'pay-v1-alice', ready: true },
    ]);
  });

  it('reports an invalid Sandbox with the planner message and keeps reconciling a valid one beside it', async () => {
    await objects.create(sandboxObject('broken', ['missing-v1']));
    await objects.create(sandboxObject('bob', ['cart-v1']));
    await until('broken Ready=False', async () => (await condition('broken', 'Ready'))?.reason === 'InvalidSpec');
    expect(await condition('broken', 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSpec', message: `spec.forks[0].forkOf.name: Deployment "missing-v1" not found in namespace "${NS}"` });
    await until('bob forks', async () => (await managedBy('bob')).length === 3);
    expect(await managedBy('bob')).toEqual(['Deployment cart-v1-bob', 'EnvoyFilter cart-v1-bob-affinity', 'Service cart-bob']);
    expect(await managedBy('broken')).toEqual([]);
    const events = await until('broken Event', async () => {
      const list = await kcCore().listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=broken' });
      return list.items.length > 0 ? list.items : undefined;
    });
    expect(events.map((e) => ({ type: e.type, reason: e.reason, message: e.message }))).toEqual([
      {
        type: 'Warning',
        reason: 'InvalidSpec',
        message:
          `Ready=False: spec.forks[0].forkOf.name: Deployment "missing-v1" not found in namespace "${NS}"; ` +
          'RoutingReady=Unknown: nothing is routed for an invalid spec; see the Ready condition; ' +
          'WorkloadsReady=Unknown: nothing is deployed for an invalid spec; see the Ready condition',
      },
    ]);
  });

  it('routes two Sandboxes forking one host in one VirtualService', async () => {
    await markAvailable('cart-v1-bob');
    await until('bob routed', async () => JSON.stringify(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))) === JSON.stringify(['meshfork-alice-0', 'meshfork-bob-0', 'meshfork-baseline']));
    await until('bob Ready', async () => (await condition('bob', 'Ready'))?.status === 'True');
  });

  it('writes nothing when nothing changed: every key reconciled again sends no write to the API server', async () => {
    // apiserver_request_total counts every request by verb and resource (APPLY is a server-side apply).
    const writes = async () => {
      const metrics = (await cp().request('GET', '/metrics')).body;
      const out: Record<string, number> = {};
      for (const line of metrics.split('\n')) {
        if (!line.startsWith('apiserver_request_total{')) continue;
        const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        if (!['APPLY', 'PATCH', 'POST', 'PUT', 'DELETE'].includes(labels['verb'] ?? '')) continue;
        if (!['deployments', 'services', 'destinationrules', 'envoyfilters', 'virtualservices', 'sandboxes'].includes(labels['resource'] ?? '')) continue;
        const id = `${labels['verb']} ${labels['resource']}${labels['subresource'] ? `/${labels['subresource']}` : ''}`;
        out[id] = (out[id] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return out;
    };
    await controller.idle();
    const before = await writes();
    expect(before['APPLY deployments']).toBeGreaterThan(0); // the counter does see the controller's writes
    const reconciled = (k: string) => controller.counts.get(k) ?? 0;
    const [sandboxes, hosts] = [reconciled('Sandbox/success'), reconciled('Host/success')];
    controller.resync();
    await new Promise((r) => setTimeout(r, 200));
    await controller.idle();
    expect(reconciled('Sandbox/success') - sandboxes).toBeGreaterThanOrEqual(3); // alice, bob, broken
    expect(reconciled('Host/success') - hosts).toBeGreaterThanOrEqual(2); // cart, pay
    expect(await writes()).toEqual(before);
  });

  it('keeps the routes of a fork that lost its replicas, and says so in status and an Event', async () => {
    await markAvailable('cart-v1-bob', 0);
    await until('bob WorkloadsReady=False', async () => (await condition('bob', 'WorkloadsReady'))?.status === 'False');
    expect(await condition('bob', 'WorkloadsReady')).toMatchObject({ reason: 'ForksUnavailable', message: `Deployment ${NS}/cart-v1-bob: 0 of 1 replicas available` });
    expect(await condition('bob', 'Ready')).toMatchObject({ status: 'False', reason: 'ForksUnavailable' });
    expect(await condition('bob', 'RoutingReady')).toMatchObject({ status: 'True', reason: 'Routed' });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))).toEqual(['meshfork-alice-0', 'meshfork-bob-0', 'meshfork-baseline']);
    // The Events of bob with this exact message, as `<type> <reason>`, once there is one.
    const bobEvents = (message: string) =>
      until(`bob Event ${message}`, async () => {
        const list = await kcCore().listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=bob' });
        const found = list.items.filter((e) => e.message === message).map((e) => `${e.type} ${e.reason}`);
        return found.length > 0 ? found : undefined;
      });
    const lost = `Deployment ${NS}/cart-v1-bob: 0 of 1 replicas available`;
    expect(await bobEvents(`Ready=False: ${lost}; WorkloadsReady=False: ${lost}`)).toEqual(['Warning ForksUnavailable']);
    await markAvailable('cart-v1-bob', 1);
    await until('bob Ready again', async () => (await condition('bob', 'Ready'))?.status === 'True');
    expect(await bobEvents('Ready=True: forks available and routed; WorkloadsReady=True: 1 fork available')).toEqual(['Normal Ready']);
  });

  it('follows RouteGroup membership: a member gets the group key in its routes, and loses it when it leaves', async () => {
    const groupKey = deriveRoutingKey('RouteGroup', NS, 'team-x');
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'team-x', namespace: NS }, spec: { match: { label: { key: 'team', value: 'x' } } } } as Obj);
    const aliceRoute = async () => JSON.stringify(((await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))?.spec as { http: Array<{ name?: string }> }).http.find((r) => r.name === 'meshfork-alice-0'));
    const bobRoute = async () => JSON.stringify(((await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))?.spec as { http: Array<{ name?: string }> }).http.find((r) => r.name === 'meshfork-bob-0'));
    expect(await aliceRoute()).not.toContain(groupKey);
    await custom.patchNamespacedCustomObject(
      { ...GROUP, plural: 'sandboxes', name: 'alice', body: [{ op: 'add', path: '/metadata/labels', value: { team: 'x' } }] },
    );
    await until('group key in alice route', async () => (await aliceRoute()).includes(groupKey));
    expect(await bobRoute()).not.toContain(groupKey);
    const groupStatus = async () => (await get('meshfork.dev/v1alpha1', 'RouteGroup', 'team-x'))?.status as { routingKey?: string; sandboxes?: string[]; conditions?: Condition[] } | undefined;
    await until('RouteGroup status lists alice', async () => JSON.stringify((await groupStatus())?.sandboxes) === '["alice"]');
    expect(await groupStatus()).toMatchObject({ routingKey: groupKey, sandboxes: ['alice'], conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: '1 member' }] });
    await custom.patchNamespacedCustomObject({ ...GROUP, plural: 'sandboxes', name: 'alice', body: [{ op: 'remove', path: '/metadata/labels' }] });
    await until('group key gone from alice route', async () => !(await aliceRoute()).includes(groupKey));
    await until('RouteGroup status lists no member', async () => JSON.stringify((await groupStatus())?.sandboxes) === '[]');
  });

  it('a fork dropped from the spec loses its routes first, then its objects', async () => {
    await setFreeze(true);
    const t0 = Date.now();
    const current = await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice');
    await objects.replace({ ...current, spec: (sandboxObject('alice', ['cart-v1']) as { spec: unknown }).spec } as Obj);
    // The routes to pay-alice cannot go while the user's VirtualService is frozen: nor can the fork.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await managedBy('alice')).toHaveLength(7);
    expect(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'pay'))).toEqual(['meshfork-alice-0', 'canary', 'meshfork-alice-1', 'default']);
    await setFreeze(false);
    await until('pay-v1-alice objects gone', async () => (await managedBy('alice')).length === 3, 90_000);
    expect(await managedBy('alice')).toEqual(['Deployment cart-v1-alice', 'EnvoyFilter cart-v1-alice-affinity', 'Service cart-alice']);
    expect(userPart(await get('networking.istio.io/v1', 'VirtualService', 'pay'))).toEqual(userPart(userVirtualService));
    const events = seen.filter((e) => e.at >= t0).map((e) => e.what);
    expect(events.indexOf('update VirtualService pay canary,default')).toBeGreaterThanOrEqual(0);
    expect(events.indexOf('delete Service pay-alice')).toBeGreaterThan(events.indexOf('update VirtualService pay canary,default'));
    await until('alice Ready', async () => (await condition('alice', 'Ready'))?.status === 'True');
    // Back to both forks for the deletion test.
    const again = await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice');
    await objects.replace({ ...again, spec: (sandboxObject('alice', ['cart-v1', 'pay-v1']) as { spec: unknown }).spec } as Obj);
    await until('pay-v1-alice again', async () => (await managedBy('alice')).length === 7);
    await markAvailable('pay-v1-alice');
    await until('alice routed on pay again', async () => routeNames(await get('networking.istio.io/v1', 'VirtualService', 'pay')).includes('meshfork-alice-0'));
  });

  it('deletes routes first, then every generated object, and leaves the user VirtualService exactly as it was', async () => {
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'bob', namespace: NS } });
    await until('bob gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'bob')) === undefined);
    expect(await managedBy('bob')).toEqual([]);
    expect(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork'))).toEqual(['meshfork-alice-0', 'meshfork-baseline']);
    expect((await condition('alice', 'Ready'))?.status).toBe('True');

    // While the user's VirtualService cannot be written (an admission policy refuses updates of a
    // VirtualService labelled freeze=true that stays so), alice's routes in it cannot go, so her
    // forks must stay however long that lasts.
    await setFreeze(true);
    // A Sandbox whose routes cannot be written says why.
    await objects.create(sandboxObject('dora', ['pay-v1']));
    await until('dora forks', async () => (await managedBy('dora')).length === 4);
    await markAvailable('pay-v1-dora');
    await until('dora RoutingReady names the refused write', async () => (await condition('dora', 'RoutingReady'))?.message?.includes('could not be written'));
    expect(await condition('dora', 'RoutingReady')).toMatchObject({
      status: 'False',
      reason: 'RoutesPending',
      message: expect.stringMatching(
        new RegExp(`^no routes yet for pay\\.${NS}\\.svc\\.cluster\\.local \\(VirtualService ${NS}/pay could not be written: HTTP 422: .*frozen by the test`),
      ),
    });
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'dora', namespace: NS } });

    const t0 = Date.now();
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'alice', namespace: NS } });
    await until('cart-meshfork gone', async () => (await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork')) === undefined);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(routeNames(await get('networking.istio.io/v1', 'VirtualService', 'pay'))).toEqual(['meshfork-alice-0', 'canary', 'meshfork-alice-1', 'default']);
    expect(await managedBy('alice')).toHaveLength(7);
    expect((await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice'))?.metadata?.finalizers).toEqual(['meshfork.dev/cleanup']);
    await setFreeze(false);
    await until('alice gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice')) === undefined, 90_000);
    await until('dora gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'dora')) === undefined);
    expect(await managedBy('alice')).toEqual([]);
    expect(await managedBy('dora')).toEqual([]);
    expect(await get('networking.istio.io/v1', 'VirtualService', 'cart-meshfork')).toBeUndefined();
    expect(userPart(await get('networking.istio.io/v1', 'VirtualService', 'pay'))).toEqual(userPart(userVirtualService));
    // Routes went before the fork Services did.
    const events = seen.filter((e) => e.at >= t0).map((e) => e.what);
    const routesGone = events.findIndex((e) => e === 'update VirtualService pay canary,default');
    const serviceGone = events.findIndex((e) => e === 'delete Service pay-alice');
    expect(routesGone).toBeGreaterThanOrEqual(0);
    expect(serviceGone).toBeGreaterThan(routesGone);
    expect(events.findIndex((e) => e === 'delete VirtualService cart-meshfork')).toBeLessThan(events.findIndex((e) => e === 'delete Service cart-alice'));
  });

  it('logged no errors but the refused writes of the frozen VirtualService, each as one line', () => {
    const errors = logs.filter((l) => l.level === 'error');
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) {
      expect(e).toMatchObject({ msg: 'reconcile failed; retrying', key: `Host/${NS}/pay` });
      expect(e['error']).toMatch(/^HTTP 422: virtualservices\.networking\.istio\.io "pay" is forbidden: ValidatingAdmissionPolicy 'freeze-virtualservices' .*frozen by the test/);
    }
    logs.length = 0;
  });

  it('cleans up a Sandbox whose forked Deployment is already gone', async () => {
    await objects.create(sandboxObject('carl', ['tmp-v1']));
    await until('carl forks', async () => (await managedBy('carl')).length === 3);
    await markAvailable('tmp-v1-carl');
    await until('carl routed', async () => routeNames(await get('networking.istio.io/v1', 'VirtualService', 'tmp-meshfork')).includes('meshfork-carl-0'));
    await objects.delete(deployment('tmp-v1', 'tmp'));
    await until('carl invalid', async () => (await condition('carl', 'Ready'))?.reason === 'InvalidSpec');
    expect(await condition('carl', 'Ready')).toMatchObject({ message: `spec.forks[0].forkOf.name: Deployment "tmp-v1" not found in namespace "${NS}"` });
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'carl', namespace: NS } });
    await until('carl gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'carl')) === undefined);
    expect(await managedBy('carl')).toEqual([]);
    expect(await get('networking.istio.io/v1', 'VirtualService', 'tmp-meshfork')).toBeUndefined();
  });

  it('after a restart, deletes what it generated for a Sandbox that no longer exists, and nothing else', async () => {
    await controller.stop();
    const orphan = (name: string, labels: Record<string, string>): Obj => ({ ...deployment(name, name), metadata: { name, namespace: NS, labels } }) as Obj;
    // Left behind by a Sandbox deleted with its finalizer edited away while no controller ran.
    await objects.create(orphan('web-v1-ghost', { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'ghost', 'meshfork.dev/sandbox-namespace': NS }));
    // Not meshfork's: the same sandbox label without managed-by.
    await objects.create(orphan('web-v1-lookalike', { 'meshfork.dev/sandbox': 'ghost' }));
    controller = new Controller({ kubeConfig: cp().kubeConfig, namespaces: [NS], workers: 4, routeWaitMs: 200, logger: recordingLogger(logs), now: () => new Date(Date.now() + skewMs) });
    await controller.start();
    await until('orphan deleted', async () => (await get('apps/v1', 'Deployment', 'web-v1-ghost')) === undefined);
    await controller.idle();
    expect(await get('apps/v1', 'Deployment', 'web-v1-lookalike')).toBeDefined();
    expect(logs.find((l) => l.msg === 'deleted objects of a Sandbox that no longer exists')).toMatchObject({ sandbox: 'ghost', objects: [`Deployment ${NS}/web-v1-ghost`] });
  });

  it('deletes a Sandbox whose TTL ran out, and reports when it will', async () => {
    await objects.create(sandboxObject('short', ['cart-v1'], { ttl: { duration: '1h' } }));
    await until('short expiresAt', async () => (await sandboxStatus('short')).expiresAt);
    const created = (await get('meshfork.dev/v1alpha1', 'Sandbox', 'short'))?.metadata?.creationTimestamp as unknown as string;
    expect((await sandboxStatus('short')).expiresAt).toBe(new Date(Date.parse(String(created)) + 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    await until('short forks', async () => (await managedBy('short')).length === 3);
    skewMs = 2 * 3_600_000; // the controller's clock is now past the expiry
    await custom.patchNamespacedCustomObject({ ...GROUP, plural: 'sandboxes', name: 'short', body: [{ op: 'add', path: '/metadata/labels', value: { touched: 'yes' } }] });
    await until('short deleted', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'short')) === undefined);
    expect(await managedBy('short')).toEqual([]);
    skewMs = 0;
    expect(logs.some((l) => l.msg === 'TTL expired; deleting the Sandbox' && l['sandbox'] === 'short')).toBe(true);
    expect(logs.filter((l) => l.level === 'error')).toEqual([]);
  });
});

// The reconciler in-process against a real kube-apiserver with the Gateway API CRDs (one control
// plane for the file): a Sandbox forking a host routed by a user HTTPRoute gets its derived
// HTTPRoute, exactly what `meshfork synth` writes for the same objects as the API server stores
// it, only after its fork is available; a change of the user's route reaches the derived one;
// deleting the Sandbox removes the derived route before the fork objects, and leaves the user's
// HTTPRoute byte-identical. No kubelet runs: a fork becomes "available" when the test writes its
// Deployment status.
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../src/controller/reconciler.js';
import { SharedInformer } from '../../src/cluster/informer.js';
import { plan } from '../../src/planner/plan.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { markDeploymentAvailable, readObject, until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'gw';
const GATEWAY = 'gateway.networking.k8s.io/v1';

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

const cartDeployment: Obj = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'cart-v1', namespace: NS, labels: { app: 'cart', version: 'v1' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'cart', version: 'v1' } },
    template: { metadata: { labels: { app: 'cart', version: 'v1' } }, spec: { containers: [{ name: 'main', image: 'registry.example.com/cart:1' }] } },
  },
} as Obj;

const cartService: Obj = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart', namespace: NS }, spec: { selector: { app: 'cart' }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] } } as Obj;

/** The user's route: /api with a timeout and a header filter, everything else to cart. */
const userRoute: Obj = {
  apiVersion: GATEWAY,
  kind: 'HTTPRoute',
  metadata: { name: 'cart', namespace: NS, labels: { team: 'cart' } },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'cart', port: 8080 }],
    rules: [
      {
        name: 'api',
        matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
        filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-api', value: '1' }] } }],
        backendRefs: [{ name: 'cart', port: 8080 }],
        timeouts: { request: '3s' },
      },
      { name: 'default', backendRefs: [{ name: 'cart', port: 8080 }] },
    ],
  },
} as Obj;

const alice: Obj = {
  apiVersion: 'meshfork.dev/v1alpha1',
  kind: 'Sandbox',
  metadata: { name: 'alice', namespace: NS },
  spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'cart-v1' }, customizations: { images: [{ container: 'main', image: 'registry.example.com/cart:alice' }] } }] },
} as Obj;

describe.skipIf(!hasBins)('meshfork controller on a Gateway API host (real API server)', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], gatewayApi: true });
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  const logs: LogRecord[] = [];
  // Order in which the cluster saw things happen (watches of our own).
  const seen: string[] = [];
  const watchers: Array<SharedInformer<KubernetesObject>> = [];
  const get = (apiVersion: string, kind: string, name: string) => readObject<Obj>(objects, apiVersion, kind, NS, name);
  const ready = async (name: string) => {
    const status = (await get('meshfork.dev/v1alpha1', 'Sandbox', name))?.status as { conditions?: Array<{ type: string; status: string }> } | undefined;
    return (status?.conditions ?? []).find((c) => c.type === 'Ready')?.status;
  };

  /** What `meshfork synth` writes for the cluster's objects and Sandbox alice, as the API server stores it (server-side dry-run). */
  async function synthesized(name: string): Promise<Obj> {
    const live: KubeObject[] = [];
    // Raw JSON lists (client-node turns lists of built-in kinds into model classes).
    for (const [apiVersion, kind, path] of [['apps/v1', 'Deployment', `/apis/apps/v1/namespaces/${NS}/deployments`], ['v1', 'Service', `/api/v1/namespaces/${NS}/services`], [GATEWAY, 'HTTPRoute', `/apis/${GATEWAY}/namespaces/${NS}/httproutes`]] as const) {
      const list = JSON.parse((await cp().request('GET', path)).body) as { items: KubeObject[] };
      live.push(...list.items.filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'] !== 'meshfork').map((o) => ({ ...o, apiVersion, kind })));
    }
    const result = plan({ inventory: inventoryOf(live), sandboxes: [(await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice')) as never], routeGroups: [] });
    expect(result.problems).toEqual([]);
    const route = result.objects.find((o) => o.kind === 'HTTPRoute' && o.metadata.name === name)!;
    return (await objects.create({ ...route, metadata: { ...route.metadata, name: `${name}-dry` } } as Obj, undefined, 'All')) as Obj;
  }

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    apps = kc.makeApiClient(AppsV1Api);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    for (const o of [cartDeployment, cartService, userRoute]) await objects.create(o);
    for (const [apiVersion, kind, plural] of [
      [GATEWAY, 'HTTPRoute', 'httproutes'],
      ['apps/v1', 'Deployment', 'deployments'],
      ['v1', 'Service', 'services'],
    ] as const) {
      const informer = new SharedInformer<KubernetesObject>(kc, { apiVersion, kind, plural, namespace: NS }, { resyncMs: 0 });
      informer.onEvent((type, o) => {
        const available = kind === 'Deployment' ? ` available=${(o as Obj & { status?: { availableReplicas?: number } }).status?.availableReplicas ?? 0}` : '';
        seen.push(`${type} ${kind} ${o.metadata?.name}${available}`);
      });
      await informer.start();
      watchers.push(informer);
    }
    controller = new Controller({ kubeConfig: kc, namespaces: [NS], workers: 4, routeWaitMs: 200, logger: recordingLogger(logs) });
    await controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    for (const w of watchers) await w.stop();
  });

  it('writes the derived HTTPRoute only after the fork is available, exactly as meshfork synth would, and no VirtualService', async () => {
    await objects.create(alice);
    await until('fork Deployment of alice', async () => (await get('apps/v1', 'Deployment', 'cart-v1-alice')) !== undefined);
    await until('fork Service of alice', async () => (await get('v1', 'Service', 'cart-alice')) !== undefined);
    await controller.idle();
    expect(await get(GATEWAY, 'HTTPRoute', 'cart-alice-8080')).toBeUndefined();
    expect(await ready('alice')).toBe('False');

    await markDeploymentAvailable(apps, NS, 'cart-v1-alice');
    const derived = await until('derived HTTPRoute', () => get(GATEWAY, 'HTTPRoute', 'cart-alice-8080'));
    await until('alice Ready', async () => (await ready('alice')) === 'True');
    // Make before break: the route was created after the cluster saw the fork available.
    const available = seen.indexOf('update Deployment cart-v1-alice available=1');
    expect(available).toBeGreaterThanOrEqual(0);
    expect(seen.indexOf('add HTTPRoute cart-alice-8080')).toBeGreaterThan(available);

    expect(derived.spec).toEqual((await synthesized('cart-alice-8080')).spec);
    const sandbox = (await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice'))!;
    expect(derived.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alice', 'meshfork.dev/fork-of-service': 'cart', 'meshfork.dev/sandbox-namespace': NS });
    expect(derived.metadata?.ownerReferences).toEqual([{ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', name: 'alice', uid: sandbox.metadata?.uid, controller: true, blockOwnerDeletion: true }]);
    expect(derived.metadata?.managedFields?.map((f) => [f.manager, f.operation])).toEqual([['meshfork', 'Apply']]);
    const rules = (derived.spec as { rules: Array<{ name?: string; backendRefs: Array<{ name: string }>; timeouts?: unknown; filters?: unknown }> }).rules;
    expect(rules.map((r) => [r.name, r.backendRefs.map((b) => b.name), r.timeouts, r.filters !== undefined])).toEqual([
      ['api', ['cart-alice'], { request: '3s' }, true],
      ['default', ['cart-alice'], undefined, false],
    ]);
    // The host is routed with Gateway API: no VirtualService is written for it.
    expect((await objects.list('networking.istio.io/v1', 'VirtualService', NS)).items).toEqual([]);
    expect(controller.managedCounts()).toMatchObject({ HTTPRoute: 1, GRPCRoute: 0, VirtualService: 0 });
  });

  it("follows a change of the user's route", async () => {
    await objects.patch(
      { apiVersion: GATEWAY, kind: 'HTTPRoute', metadata: { name: 'cart', namespace: NS }, spec: { rules: [...(userRoute.spec as { rules: unknown[] }).rules, { name: 'legacy', matches: [{ path: { type: 'Exact', value: '/legacy' } }], backendRefs: [{ name: 'cart', port: 8080 }] }] } } as Obj,
      undefined,
      undefined,
      'test',
      undefined,
      PatchStrategy.MergePatch,
    );
    const names = async () => ((await get(GATEWAY, 'HTTPRoute', 'cart-alice-8080'))?.spec as { rules?: Array<{ name?: string }> } | undefined)?.rules?.map((r) => r.name).join(',');
    await until('the copy of the new rule', async () => (await names()) === 'api,default,legacy');
    expect((await get(GATEWAY, 'HTTPRoute', 'cart-alice-8080'))?.spec).toEqual((await synthesized('cart-alice-8080')).spec);
  });

  it("on delete removes the derived route before the fork objects, and leaves the user's HTTPRoute byte-identical", async () => {
    const before = JSON.stringify(await get(GATEWAY, 'HTTPRoute', 'cart'));
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'alice', namespace: NS } } as Obj);
    await until('Sandbox alice gone', async () => (await get('meshfork.dev/v1alpha1', 'Sandbox', 'alice')) === undefined, 60_000);
    expect(await get(GATEWAY, 'HTTPRoute', 'cart-alice-8080')).toBeUndefined();
    expect(await get('apps/v1', 'Deployment', 'cart-v1-alice')).toBeUndefined();
    expect(await get('v1', 'Service', 'cart-alice')).toBeUndefined();
    // Our watches may deliver the last deletes a moment after the reads above.
    const at = (prefix: string) => seen.findIndex((e) => e.startsWith(prefix));
    await until('the deletes seen by our watches', async () => ['delete HTTPRoute cart-alice-8080', 'delete Service cart-alice', 'delete Deployment cart-v1-alice'].every((e) => at(e) >= 0));
    const routeGone = at('delete HTTPRoute cart-alice-8080');
    expect(at('delete Service cart-alice')).toBeGreaterThan(routeGone);
    expect(at('delete Deployment cart-v1-alice')).toBeGreaterThan(routeGone);
    expect(JSON.stringify(await get(GATEWAY, 'HTTPRoute', 'cart'))).toBe(before);
    expect(logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });
});

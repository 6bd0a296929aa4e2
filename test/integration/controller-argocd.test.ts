// Argo CD's two GitOps paths beside the controller, on a real API server with the reconciler
// running (one control plane for the file):
//  - namespace `synth`: `meshfork synth` output applied with kubectl (the objects-in-Git path).
//    The controller changes and deletes none of it, reports each object once (log line + Event),
//    and refuses a Sandbox there (ADR 0016).
//  - namespace `argo`: Bookinfo's baseline and examples/argocd/sandboxes/pr-42.yaml applied as Argo
//    CD applies them (client-side apply, its tracking label and annotation). The Sandbox becomes
//    Ready; pruning it (a delete with the example's PrunePropagationPolicy=background) removes
//    every trace and gives back the user VirtualService byte for byte.
// Every Sandbox and RouteGroup version the API server sends is kept; the health Lua of
// examples/argocd/argocd-cm.yaml runs on the versions that matter, and those versions are the
// recorded status objects of test/lua/argocd-health/ (rewritten with MESHFORK_RECORD=1; otherwise
// their conditions must match what the controller wrote).
import { readFileSync, writeFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, GITOPS_OUTPUT_MESSAGE } from '../../src/controller/reconciler.js';
import { SharedInformer } from '../../src/cluster/informer.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { runArgoHealth } from '../lua/harness.js';
import { cliProcess } from '../support/cli.js';
import { FORK_KINDS, listLabelled, markDeploymentAvailable, readObject, until } from './controller-support.js';

const hasBins = requireTestbin();
const REPO = new URL('../../', import.meta.url).pathname;
const RECORDED = new URL('../lua/argocd-health/', import.meta.url).pathname;
const RECORD = process.env.MESHFORK_RECORD === '1';
const ARGO = 'argo';
const SYNTH = 'synth';

type Obj = KubernetesObject & { spec?: unknown; status?: { observedGeneration?: number; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; routingKey?: string } };

const argocdCm = parse(readFileSync(`${REPO}examples/argocd/argocd-cm.yaml`, 'utf8')) as { data: Record<string, string> };
const HEALTH = {
  Sandbox: argocdCm.data['resource.customizations.health.meshfork.dev_Sandbox']!,
  RouteGroup: argocdCm.data['resource.customizations.health.meshfork.dev_RouteGroup']!,
};

/** The object as recorded: what a health check reads, server-set times and ids fixed. */
function recordable(o: Obj): unknown {
  const m = o.metadata ?? {};
  const annotations = Object.fromEntries(Object.entries(m.annotations ?? {}).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'));
  const fixTimes = (v: unknown): unknown =>
    typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(v) ? '2026-11-30T10:00:00Z' : Array.isArray(v) ? v.map(fixTimes) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fixTimes(x)])) : v;
  return fixTimes({
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: { name: m.name, namespace: m.namespace, generation: m.generation, ...(m.labels ? { labels: m.labels } : {}), ...(Object.keys(annotations).length ? { annotations } : {}), ...(m.finalizers ? { finalizers: m.finalizers } : {}) },
    spec: o.spec,
    ...(o.status ? { status: o.status } : {}),
  });
}

/** Records `o` as test/lua/argocd-health/<name>.json, or checks the recorded one says the same (conditions by type, status and reason). */
function recordOrCompare(name: string, o: Obj): void {
  const file = `${RECORDED}${name}.json`;
  const now = recordable(o) as { status?: Obj['status']; metadata: { generation?: number } };
  if (RECORD) {
    writeFileSync(file, `${JSON.stringify(now, null, 2)}\n`);
    return;
  }
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as typeof now;
  const shape = (x: typeof now) => ({
    generation: x.metadata.generation,
    observedGeneration: x.status?.observedGeneration,
    conditions: (x.status?.conditions ?? []).map((c) => [c.type, c.status, c.reason]),
  });
  expect(shape(now), `${file} no longer says what the controller writes; re-record with MESHFORK_RECORD=1`).toEqual(shape(recorded));
}

describe.skipIf(!hasBins)('Argo CD paths beside the controller', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], controllerManager: true });
  let controller: Controller;
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  const logs: LogRecord[] = [];
  /** Every version of every Sandbox and RouteGroup the API server sent, in order. */
  const versions: Obj[] = [];
  const watchers: Array<SharedInformer<KubernetesObject>> = [];

  const kubectl = async (args: string[], input?: string) => {
    const r = await cp().exec('kubectl', args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const kc = () => cp().kubeConfig.makeApiClient(CoreV1Api);
  const getJson = async (namespace: string, resource: string, name: string) => JSON.parse(await kubectl(['get', '-n', namespace, resource, name, '-o', 'json'])) as Obj;
  const versionsOf = (kind: string, namespace: string, name: string) => versions.filter((v) => v.kind === kind && v.metadata?.namespace === namespace && v.metadata?.name === name);
  const ready = (o: Obj) => o.status?.conditions?.find((c) => c.type === 'Ready');
  const health = (o: Obj) => runArgoHealth(HEALTH[o.kind as keyof typeof HEALTH], o);
  /** Every object labelled managed-by=meshfork in `namespace` (any kind meshfork writes), with its resourceVersion. */
  const managedIn = (namespace: string) =>
    listLabelled(
      objects,
      namespace,
      'app.kubernetes.io/managed-by=meshfork',
      [...FORK_KINDS, ['networking.istio.io/v1', 'VirtualService'], ['security.istio.io/v1', 'AuthorizationPolicy'], ['networking.k8s.io/v1', 'NetworkPolicy']],
      (o) => ` ${o.metadata?.resourceVersion}`,
    );
  /** A manifest as Argo CD applies it: its tracking label and annotation added (application `app`). */
  const asArgoCd = (o: Obj, app: string, namespace: string): Obj => {
    const group = o.apiVersion?.includes('/') ? o.apiVersion.split('/')[0] : '';
    return {
      ...o,
      metadata: {
        ...o.metadata,
        namespace,
        labels: { ...(o.metadata?.labels ?? {}), 'app.kubernetes.io/instance': app },
        annotations: { ...(o.metadata?.annotations ?? {}), 'argocd.argoproj.io/tracking-id': `${app}:${group}/${o.kind}:${namespace}/${o.metadata?.name}` },
      },
    };
  };

  beforeAll(async () => {
    const config = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(config);
    apps = config.makeApiClient(AppsV1Api);
    const core = config.makeApiClient(CoreV1Api);
    for (const name of [ARGO, SYNTH]) await core.createNamespace({ body: { metadata: { name } } });
    for (const [kind, plural] of [
      ['Sandbox', 'sandboxes'],
      ['RouteGroup', 'routegroups'],
    ] as const) {
      const informer = new SharedInformer<KubernetesObject>(config, { apiVersion: 'meshfork.dev/v1alpha1', kind, plural }, { resyncMs: 0 });
      informer.onEvent((type, o) => {
        if (type !== 'delete') versions.push(structuredClone(o) as Obj);
      });
      await informer.start();
      watchers.push(informer);
    }
    // Both namespaces hold Bookinfo's baseline (with the user's reviews VirtualService).
    for (const ns of [ARGO, SYNTH]) await kubectl(['apply', '-n', ns, '-f', `${REPO}examples/bookinfo/baseline.yaml`]);
    controller = new Controller({ kubeConfig: config, namespaces: [ARGO, SYNTH], workers: 4, routeWaitMs: 200, logger: recordingLogger(logs) });
    await controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    for (const w of watchers) await w.stop();
  });

  it('synth output applied with kubectl: the controller changes and deletes none of it, reports each object once, refuses a Sandbox there', async () => {
    const out = cliProcess(['synth', '-f', `${REPO}examples/bookinfo`, '-n', SYNTH]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    await kubectl(['apply', '-f', '-'], out.stdout);
    const generated = ['Deployment reviews-v3-star-ratings', 'DestinationRule reviews-star-ratings', 'EnvoyFilter reviews-v3-star-ratings-affinity', 'Service reviews-star-ratings'];
    const reported = () => logs.filter((l) => l.msg === GITOPS_OUTPUT_MESSAGE).map((l) => l.object as string).sort();
    await until('each synth object reported', async () => reported().length === generated.length);
    expect(reported()).toEqual(generated.map((g) => g.replace(' ', ` ${SYNTH}/`)).sort());
    const vsBefore = await getJson(SYNTH, 'virtualservice', 'reviews');
    expect((vsBefore.spec as { http: Array<{ name: string }> }).http.map((r) => r.name)).toEqual(['meshfork-star-ratings-0', 'test-user', 'meshfork-star-ratings-1', 'default']);
    const before = await managedIn(SYNTH);
    expect(before.map((o) => o.split(' ').slice(0, 2).join(' '))).toEqual(generated);

    // A Sandbox of the cluster in that namespace: refused with the objects that claim it, nothing written.
    await kubectl(['apply', '-n', SYNTH, '-f', '-'], JSON.stringify({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'intruder' }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v2' } }] } }));
    const refused = await until('the Sandbox in the synth namespace refused', async () => versionsOf('Sandbox', SYNTH, 'intruder').find((v) => ready(v)?.reason === 'NamespaceClaimedByGitOps'));
    expect(ready(refused)?.message).toBe(
      `metadata.namespace: namespace "${SYNTH}" belongs to the GitOps path: it holds Deployment ${SYNTH}/reviews-v3-star-ratings, Service ${SYNTH}/reviews-star-ratings, DestinationRule ${SYNTH}/reviews-star-ratings and 1 more, generated by meshfork synth or cdk8s with no Sandbox in the cluster; the controller writes nothing there (docs/adr/0016)`,
    );
    expect(health(refused)).toEqual({ status: 'Degraded', message: `NamespaceClaimedByGitOps: ${ready(refused)?.message}` });
    recordOrCompare('sandbox-gitops-namespace', refused);

    // Every key reconciled again, and an update of one synth object: still nothing written, nothing reported twice.
    controller.resync();
    await kubectl(['label', '-n', SYNTH, 'deployment', 'reviews-v3-star-ratings', 'synced=again']);
    const afterLabel = await managedIn(SYNTH);
    await controller.idle();
    expect(await managedIn(SYNTH)).toEqual(afterLabel);
    expect(afterLabel.filter((o) => !before.includes(o))).toHaveLength(1); // only the one we labelled
    const vsAfter = await getJson(SYNTH, 'virtualservice', 'reviews');
    expect(vsAfter.metadata?.resourceVersion).toBe(vsBefore.metadata?.resourceVersion);
    expect(reported()).toHaveLength(generated.length);
    const events = await kc().listNamespacedEvent({ namespace: SYNTH });
    const left = events.items.filter((e) => e.reason === 'LeftToGitOps').map((e) => `${e.involvedObject.kind} ${e.involvedObject.name}`).sort();
    expect(left).toEqual(generated);
  });

  it('a Sandbox synced from Git becomes Ready (Progressing until then), its health follows generation lag, invalid specs and RouteGroups', async () => {
    const userVs = async () => {
      const vs = await getJson(ARGO, 'virtualservice', 'reviews');
      return JSON.stringify({ spec: vs.spec, labels: vs.metadata?.labels, annotations: vs.metadata?.annotations });
    };
    const userBefore = await userVs();
    const fromGit = parse(readFileSync(`${REPO}examples/argocd/sandboxes/pr-42.yaml`, 'utf8')) as Obj;
    await kubectl(['apply', '-f', '-'], JSON.stringify(asArgoCd(fromGit, 'bookinfo-sandboxes', ARGO)));

    await until('the fork of pr-42', async () => (await readObject(objects, 'apps/v1', 'Deployment', ARGO, 'reviews-v2-pr-42')) !== undefined);
    const fresh = versionsOf('Sandbox', ARGO, 'pr-42')[0]!;
    expect(fresh.status).toBeUndefined();
    expect(health(fresh)).toEqual({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 1' });
    recordOrCompare('sandbox-new', fresh);
    const progressing = await until('pr-42 waiting for its fork', async () => versionsOf('Sandbox', ARGO, 'pr-42').find((v) => ready(v)?.reason === 'ForksUnavailable'));
    expect(health(progressing)).toEqual({ status: 'Progressing', message: `ForksUnavailable: ${ready(progressing)?.message}` });
    recordOrCompare('sandbox-progressing', progressing);

    await markDeploymentAvailable(apps, ARGO, 'reviews-v2-pr-42'); // no kubelet runs here
    const healthy = await until('pr-42 Ready', async () => versionsOf('Sandbox', ARGO, 'pr-42').find((v) => ready(v)?.status === 'True'));
    expect(healthy.status?.observedGeneration).toBe(1);
    expect(health(healthy)).toEqual({ status: 'Healthy', message: 'forks available and routed' });
    recordOrCompare('sandbox-healthy', healthy);
    const routed = await getJson(ARGO, 'virtualservice', 'reviews');
    expect((routed.spec as { http: Array<{ name: string }> }).http.map((r) => r.name)).toEqual(['meshfork-pr-42-0', 'test-user', 'meshfork-pr-42-1', 'default']);
    const live = await getJson(ARGO, 'sandbox', 'pr-42');
    expect(live.metadata?.labels?.['app.kubernetes.io/instance']).toBe('bookinfo-sandboxes');
    expect(live.metadata?.annotations?.['argocd.argoproj.io/tracking-id']).toBe(`bookinfo-sandboxes:meshfork.dev/Sandbox:${ARGO}/pr-42`);

    // A new commit changes the spec: generation 2 before the controller observes it.
    const changed = { ...fromGit, spec: { ...(fromGit.spec as object), description: 'Pull request 42 of reviews, second push.' } };
    await kubectl(['apply', '-f', '-'], JSON.stringify(asArgoCd(changed, 'bookinfo-sandboxes', ARGO)));
    const lagging = await until('generation 2 seen before its status', async () => versionsOf('Sandbox', ARGO, 'pr-42').find((v) => v.metadata?.generation === 2 && v.status?.observedGeneration === 1));
    expect(health(lagging)).toEqual({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 2' });
    recordOrCompare('sandbox-generation-lag', lagging);
    await until('generation 2 observed and Ready', async () => versionsOf('Sandbox', ARGO, 'pr-42').find((v) => v.status?.observedGeneration === 2 && ready(v)?.status === 'True'));

    // An invalid Sandbox from Git: Degraded with the planner's message.
    await kubectl(['apply', '-f', '-'], JSON.stringify(asArgoCd({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'pr-7' }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v9' } }] } } as Obj, 'bookinfo-sandboxes', ARGO)));
    const invalid = await until('pr-7 refused', async () => versionsOf('Sandbox', ARGO, 'pr-7').find((v) => ready(v)?.reason === 'InvalidSpec'));
    expect(health(invalid)).toEqual({ status: 'Degraded', message: `InvalidSpec: spec.forks[0].forkOf.name: Deployment "reviews-v9" not found in namespace "${ARGO}"` });
    recordOrCompare('sandbox-invalid', invalid);
    await kubectl(['delete', '-n', ARGO, 'sandbox', 'pr-7', '--wait=true']);

    // RouteGroups: one with pr-42 as member (Healthy), one holding pr-42's key (Degraded).
    const key = healthy.status?.routingKey;
    expect(key).toMatch(/^[a-z0-9]+$/);
    await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [
      asArgoCd({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'reviews-team' }, spec: { match: { label: { key: 'team', value: 'reviews' } } } } as Obj, 'bookinfo-sandboxes', ARGO),
      asArgoCd({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'copycat' }, spec: { routingKey: key, match: { label: { key: 'team', value: 'nobody' } } } } as Obj, 'bookinfo-sandboxes', ARGO),
    ] }));
    const groupNew = versionsOf('RouteGroup', ARGO, 'reviews-team')[0]!;
    expect(health(groupNew)).toEqual({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 1' });
    recordOrCompare('routegroup-new', groupNew);
    const group = await until('reviews-team Ready', async () => versionsOf('RouteGroup', ARGO, 'reviews-team').find((v) => ready(v)?.status === 'True'));
    expect(health(group)).toEqual({ status: 'Healthy', message: '1 member' });
    recordOrCompare('routegroup-healthy', group);
    const conflict = await until('copycat refused', async () => versionsOf('RouteGroup', ARGO, 'copycat').find((v) => ready(v)?.reason === 'KeyConflict'));
    expect(health(conflict)).toEqual({ status: 'Degraded', message: `KeyConflict: spec.routingKey: routing key "${key}" is already used by Sandbox ${ARGO}/pr-42` });
    recordOrCompare('routegroup-conflict', conflict);

    // Pruned from Git: the RouteGroups and the Sandbox deleted as Argo CD prunes them (the example's
    // PrunePropagationPolicy=background). Every trace goes; the user VirtualService comes back byte for byte.
    await kubectl(['delete', '-n', ARGO, 'routegroup', 'reviews-team', 'copycat', '--cascade=background', '--wait=true']);
    await kubectl(['delete', '-n', ARGO, 'sandbox', 'pr-42', '--cascade=background', '--wait=true', '--timeout=60s']);
    await until('no meshfork object left', async () => (await managedIn(ARGO)).length === 0);
    await controller.idle();
    expect(await managedIn(ARGO)).toEqual([]);
    expect(await userVs()).toBe(userBefore);
    expect(await kubectl(['get', '-n', ARGO, 'sandboxes,routegroups', '-o', 'name'])).toBe('');
  });
});

// The controller survives what kills controllers, on a cluster whose Deployments become Available
// (kube-scheduler + KWOK + the deployment and replicaset controllers):
//  - SIGKILL at random points (seeded: MESHFORK_CHURN_SEED replays a run) during a churn of
//    create/update/delete operations on Sandboxes that fork two hosts (one with a user
//    VirtualService, one without) and join/leave a RouteGroup, restarted after each kill: the
//    cluster converges to exactly what plan() makes of the final Sandboxes (no orphaned, no missing
//    object or route), and once everything is deleted the user VirtualService is byte for byte
//    what it was;
//  - kube-apiserver restarted under a running controller: its informers list and watch again,
//    and changes made right after the restart all take effect.
import { CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteGroupObject, SandboxObject } from '../../src/api/schema.js';
import { plan } from '../../src/planner/plan.js';
import { isManaged, type KubeObject } from '../../src/planner/kube.js';
import { canonicalJson } from '../../src/controller/view.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { startControllerProcess, until, type ControllerProcess } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'resilience';
const SANDBOX_API = 'meshfork.dev/v1alpha1';
/** The kinds meshfork writes, as the planner names them. */
const MANAGED_KINDS = [
  ['apps/v1', 'Deployment'],
  ['v1', 'Service'],
  ['networking.istio.io/v1', 'DestinationRule'],
  ['networking.istio.io/v1alpha3', 'EnvoyFilter'],
  ['networking.istio.io/v1', 'VirtualService'],
] as const;

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

function deployment(app: string): Obj {
  const labels = { app, version: 'v1' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${app}-v1`, namespace: NS, labels },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'main', image: `registry.invalid/${app}:1` }] } } },
  } as Obj;
}

function service(app: string): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: NS }, spec: { selector: { app }, ports: [{ name: 'http', port: 8080 }] } } as Obj;
}

/** The user's VirtualService of `web` (api has none: meshfork owns `api-meshfork`). */
const userVirtualService: Obj = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'web', namespace: NS, labels: { team: 'web' }, annotations: { 'example.com/owner': 'web team' } },
  spec: {
    hosts: ['web'],
    http: [
      { name: 'canary', match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [{ destination: { host: 'web', port: { number: 8080 } } }], timeout: '3s' },
      { name: 'default', route: [{ destination: { host: 'web', port: { number: 8080 } } }], retries: { attempts: 2 } },
    ],
  },
} as Obj;

const routeGroup: Obj = { apiVersion: SANDBOX_API, kind: 'RouteGroup', metadata: { name: 'team-r', namespace: NS }, spec: { match: { label: { key: 'team', value: 'r' } } } } as Obj;

interface SandboxShape {
  forks: Array<'web-v1' | 'api-v1'>;
  tag: string;
  /** Member of the RouteGroup (only one Sandbox ever is: two members forking one workload conflict). */
  member: boolean;
}

function sandboxBody(name: string, shape: SandboxShape): { metadata: Obj['metadata']; spec: unknown } {
  return {
    metadata: { name, namespace: NS, ...(shape.member ? { labels: { team: 'r' } } : {}) },
    spec: { forks: shape.forks.map((f) => ({ forkOf: { kind: 'Deployment', name: f }, customizations: { images: [{ container: 'main', image: `registry.invalid/${f}:${shape.tag}` }] } })) },
  };
}

/** mulberry32: a small seeded PRNG, so a failing churn can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasBins)('meshfork controller under SIGKILL churn and an API server restart', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], nodes: true });
  let objects: KubernetesObjectApi;
  /** The user VirtualService as stored before any Sandbox existed. */
  let userVsBefore: Obj;
  const processes: ControllerProcess[] = [];
  const report: string[] = [];

  const startController = () => {
    // A health address makes the process log a line once its signal handlers are installed.
    const p = startControllerProcess(cp().kubeconfigPath, ['--namespaces', NS, '--health-address', '127.0.0.1:0']);
    processes.push(p);
    return p;
  };
  const logTail = (p: ControllerProcess | undefined, lines = 30) => (p?.stderr.join('') ?? '').trim().split('\n').slice(-lines).join('\n');

  const list = async (apiVersion: string, kind: string, labelSelector?: string) =>
    (await objects.list(apiVersion, kind, NS, undefined, undefined, undefined, undefined, labelSelector)).items.map((o) => ({ ...o, apiVersion, kind }) as unknown as KubeObject);
  const read = async (apiVersion: string, kind: string, name: string): Promise<Obj | undefined> => {
    try {
      return (await objects.read({ apiVersion, kind, metadata: { name, namespace: NS } })) as Obj;
    } catch {
      return undefined;
    }
  };

  /**
   * What differs between the cluster and plan() of the Sandboxes and RouteGroups now stored
   * (empty when converged): meshfork's objects missing or orphaned, VirtualService specs (routes)
   * not as planned, fork images not as planned, the user VirtualService not as before when no
   * Sandbox forks its host, a Sandbox still being deleted.
   */
  const divergence = async (): Promise<string[]> => {
    const stored = (await list(SANDBOX_API, 'Sandbox')) as unknown as SandboxObject[];
    const isDeleting = (s: SandboxObject) => (s.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined;
    const deleting = stored.filter(isDeleting).map((s) => `Sandbox ${s.metadata.name} still being deleted`);
    const sandboxes = stored.filter((s) => !isDeleting(s));
    const routeGroups = (await list(SANDBOX_API, 'RouteGroup')) as unknown as RouteGroupObject[];
    const cluster = new Map<string, KubeObject>();
    for (const [apiVersion, kind] of MANAGED_KINDS) for (const o of await list(apiVersion, kind)) cluster.set(`${kind} ${o.metadata.name}`, o);
    const baseline = [...cluster.values()].filter((o) => !isManaged(o));
    const inventory = {
      deployments: baseline.filter((o) => o.kind === 'Deployment'),
      services: baseline.filter((o) => o.kind === 'Service'),
      destinationRules: baseline.filter((o) => o.kind === 'DestinationRule'),
      virtualServices: baseline.filter((o) => o.kind === 'VirtualService'),
    };
    const planned = plan({ inventory, sandboxes, routeGroups });
    if (planned.problems.length > 0) throw new Error(`the churn made an invalid Sandbox set (a test bug): ${JSON.stringify(planned.problems)}`);
    const expected = new Map(planned.objects.map((o) => [`${o.kind} ${o.metadata.name}`, o]));
    const out = [...deleting];
    for (const [id, o] of cluster) if (isManaged(o) && !expected.has(id)) out.push(`orphaned ${id}`);
    for (const [id, want] of expected) {
      const have = cluster.get(id);
      if (have === undefined) {
        out.push(`missing ${id}`);
      } else if (want.kind === 'VirtualService' && canonicalJson(have.spec) !== canonicalJson(want.spec)) {
        out.push(`${id} routes ${JSON.stringify((have.spec as { http?: Array<{ name?: string }> }).http?.map((r) => r.name))}, planned ${JSON.stringify((want.spec as { http?: Array<{ name?: string }> }).http?.map((r) => r.name))}${canonicalJson((have.spec as { http?: unknown }).http) === canonicalJson((want.spec as { http?: unknown }).http) ? ' (same names, other content)' : ''}`);
      } else if (want.kind === 'Deployment') {
        const images = (d: KubeObject) => JSON.stringify((d.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template.spec.containers.map((c) => c.image));
        if (images(have) !== images(want)) out.push(`${id} images ${images(have)}, planned ${images(want)}`);
      }
    }
    if (!expected.has('VirtualService web')) {
      const user = cluster.get('VirtualService web');
      if (canonicalJson(user?.spec) !== canonicalJson(userVsBefore.spec)) out.push(`VirtualService web not restored: ${JSON.stringify(user?.spec)}`);
    }
    return out;
  };

  const converged = async (what: string, ms: number) => {
    const t0 = Date.now();
    let last: string[] = [];
    const running = processes.at(-1);
    const gone = () => running !== undefined && (running.child.exitCode !== null || running.child.signalCode !== null);
    try {
      await until(what, async () => gone() || (last = await divergence()).length === 0, ms);
    } catch (error) {
      throw new Error(`${String(error)}\nstill diverging:\n  ${last.join('\n  ')}\ncontroller log tail:\n${logTail(running)}`);
    }
    // A controller that gave up is not one that converged.
    if (gone()) throw new Error(`the controller exited (${running?.child.exitCode ?? running?.child.signalCode}) while waiting for ${what}; log tail:\n${logTail(running)}`);
    return Date.now() - t0;
  };

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    for (const o of [deployment('web'), service('web'), deployment('api'), service('api'), userVirtualService, routeGroup]) await objects.create(o);
    userVsBefore = (await read('networking.istio.io/v1', 'VirtualService', 'web'))!;
  });

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    if (report.length > 0) console.log(`controller resilience:\n  ${report.join('\n  ')}`);
  });

  it('converges to plan() of the final Sandboxes after SIGKILLs at random points of a churn of 60 operations', async () => {
    const seed = Number(process.env.MESHFORK_CHURN_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`SIGKILL churn: seed ${seed} (MESHFORK_CHURN_SEED=${seed} replays the operations and kill points)`);
    const random = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const NAMES = ['s0', 's1', 's2', 's3', 's4', 's5'];
    const OPERATIONS = 60;
    const kills = new Set<number>();
    while (kills.size < 8) kills.add(Math.floor(random() * OPERATIONS));
    const randomShape = (name: string): SandboxShape => {
      const forks = pick([['web-v1'], ['api-v1'], ['web-v1', 'api-v1']] as const);
      return { forks: [...forks], tag: `t${Math.floor(random() * 1000)}`, member: name === 's0' && random() < 0.5 };
    };

    const t0 = Date.now();
    let controller = startController();
    const counts = { create: 0, update: 0, delete: 0, kill: 0 };
    const journal: string[] = [];
    for (let op = 0; op < OPERATIONS; ) {
      if (kills.has(op)) {
        kills.delete(op);
        await controller.stop('SIGKILL');
        counts.kill++;
        journal.push(`#${op} SIGKILL`);
        controller = startController();
      }
      const name = pick(NAMES);
      const current = await read(SANDBOX_API, 'Sandbox', name);
      if (current !== undefined && (current.metadata as { deletionTimestamp?: string }).deletionTimestamp !== undefined) {
        await sleep(50); // still being finalized: pick again
        continue;
      }
      if (current === undefined) {
        const body = sandboxBody(name, randomShape(name));
        await objects.create({ apiVersion: SANDBOX_API, kind: 'Sandbox', ...body } as Obj);
        counts.create++;
        journal.push(`#${op} create ${name} ${JSON.stringify(body.spec)}`);
      } else if (random() < 0.65) {
        const shape = randomShape(name);
        // Read-modify-write: the controller writes the finalizer and status meanwhile (409: again).
        for (let fresh = current; ; ) {
          const body = sandboxBody(name, shape);
          try {
            await objects.replace({ ...fresh, metadata: { ...fresh.metadata, labels: body.metadata?.labels ?? {} }, spec: body.spec } as Obj);
            break;
          } catch (error) {
            if ((error as { code?: number }).code !== 409) throw error;
            fresh = (await read(SANDBOX_API, 'Sandbox', name))!;
          }
        }
        counts.update++;
        journal.push(`#${op} update ${name} ${JSON.stringify(shape)}`);
      } else {
        await objects.delete({ apiVersion: SANDBOX_API, kind: 'Sandbox', metadata: { name, namespace: NS } });
        counts.delete++;
        journal.push(`#${op} delete ${name}`);
      }
      op++;
      // Random pacing, so the kills land in every phase of a reconcile (not a timing assertion).
      await sleep(Math.floor(random() * 400));
    }
    const churnMs = Date.now() - t0;
    let convergeMs: number;
    try {
      convergeMs = await converged('the cluster matching plan() of the final Sandboxes', 180_000);
    } catch (error) {
      throw new Error(`${String(error)}\nseed ${seed}; operations:\n  ${journal.join('\n  ')}`);
    }
    const finalSandboxes = (await list(SANDBOX_API, 'Sandbox')).map((s) => s.metadata.name);
    expect(counts.create + counts.update + counts.delete).toBe(OPERATIONS);
    expect(counts.kill).toBe(8);

    // Everything deleted (one more SIGKILL while the finalizers run): no object of meshfork is
    // left, and the user's VirtualService is exactly what it was before the first Sandbox.
    for (const name of finalSandboxes) await objects.delete({ apiVersion: SANDBOX_API, kind: 'Sandbox', metadata: { name, namespace: NS } });
    await sleep(Math.floor(random() * 400));
    await controller.stop('SIGKILL');
    controller = startController();
    await until('every Sandbox finalized', async () => (await list(SANDBOX_API, 'Sandbox')).length === 0, 120_000);
    await converged('no object of meshfork left', 60_000);
    for (const [apiVersion, kind] of MANAGED_KINDS) expect(await list(apiVersion, kind, 'app.kubernetes.io/managed-by=meshfork')).toEqual([]);
    const userVsAfter = (await read('networking.istio.io/v1', 'VirtualService', 'web'))!;
    expect(JSON.stringify(userVsAfter.spec)).toBe(JSON.stringify(userVsBefore.spec));
    expect(userVsAfter.metadata?.labels).toEqual(userVsBefore.metadata?.labels);
    expect(userVsAfter.metadata?.annotations).toEqual(userVsBefore.metadata?.annotations);
    // The previous process may have finalized everything before its SIGKILL: this one may still
    // be starting, before it handles SIGTERM.
    await until('the restarted controller is up', async () => controller.logIncludes('serving /metrics, /healthz, /readyz'), 60_000);
    expect(await controller.stop('SIGTERM'), logTail(controller)).toBe(0);
    report.push(
      `SIGKILL churn (seed ${seed}): ${counts.create} creates, ${counts.update} updates, ${counts.delete} deletes, ${counts.kill + 1} SIGKILLs in ${(churnMs / 1000).toFixed(1)}s; ` +
        `converged ${(convergeMs / 1000).toFixed(1)}s after the last operation (${finalSandboxes.length} Sandboxes left: ${finalSandboxes.join(', ')})`,
    );
  }, 600_000);

  it('lists and watches again after kube-apiserver restarts, and no change made right after is lost', async () => {
    const create = (name: string, shape: SandboxShape) => objects.create({ apiVersion: SANDBOX_API, kind: 'Sandbox', ...sandboxBody(name, shape) } as Obj);
    const controller = startController();
    await create('keep', { forks: ['web-v1'], tag: 'k1', member: false });
    await create('change', { forks: ['api-v1'], tag: 'c1', member: false });
    await create('drop', { forks: ['web-v1', 'api-v1'], tag: 'd1', member: true });
    const beforeMs = await converged('three Sandboxes routed before the restart', 120_000);
    console.log(`three Sandboxes routed in ${(beforeMs / 1000).toFixed(1)}s; restarting kube-apiserver`);

    const downMs = await cp().restartApiServer();
    // Right after /readyz, while the controller's informers are still failing or backing off:
    // each kind of change, on both hosts and the RouteGroup.
    await create('added', { forks: ['api-v1', 'web-v1'], tag: 'a1', member: false });
    const change = (await read(SANDBOX_API, 'Sandbox', 'change'))!;
    await objects.replace({ ...change, metadata: { ...change.metadata, labels: { team: 'r' } }, spec: sandboxBody('change', { forks: ['web-v1'], tag: 'c2', member: true }).spec } as Obj);
    await objects.delete({ apiVersion: SANDBOX_API, kind: 'Sandbox', metadata: { name: 'drop', namespace: NS } });
    const convergeMs = await converged('the changes made after the restart', 180_000);
    expect((await list(SANDBOX_API, 'Sandbox')).map((s) => s.metadata.name).sort()).toEqual(['added', 'change', 'keep']);
    const web = (await read('networking.istio.io/v1', 'VirtualService', 'web'))!;
    expect((web.spec as { http: Array<{ name?: string }> }).http.map((r) => r.name)).toEqual([
      'meshfork-added-0', 'meshfork-change-0', 'meshfork-keep-0', 'canary',
      'meshfork-added-1', 'meshfork-change-1', 'meshfork-keep-1', 'default',
    ]);
    // The informers saw the API server go away and came back (not a controller that never noticed).
    expect(controller.logIncludes('"msg":"list/watch failed; restarting"')).toBe(true);

    for (const name of ['added', 'change', 'keep']) await objects.delete({ apiVersion: SANDBOX_API, kind: 'Sandbox', metadata: { name, namespace: NS } });
    await until('every Sandbox finalized', async () => (await list(SANDBOX_API, 'Sandbox')).length === 0, 120_000);
    await converged('no object of meshfork left', 60_000);
    expect(await controller.stop('SIGTERM'), logTail(controller)).toBe(0);
    report.push(`kube-apiserver restart: unreachable ${(downMs / 1000).toFixed(1)}s; changes made right after it converged in ${(convergeMs / 1000).toFixed(1)}s`);
  }, 600_000);
});

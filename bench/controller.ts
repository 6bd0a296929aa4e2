/**
 * `meshfork controller` against a real kube-apiserver + etcd (the integration suites' control
 * plane, from MESHFORK_TESTBIN), the controller running as its own process as the image runs it
 * (`node lib/bundle/meshfork.mjs controller`, ADR 0022), so its RSS and its prom-client `/metrics`
 * are its own. It runs with the environment the Helm chart deploys it with (NODE_OPTIONS from
 * controller.nodeOptions: V8 heap sizing, ADR 0019 point 19; MALLOC_ARENA_MAX from
 * controller.mallocArenaMax), NODE_OPTIONS then extended by MESHFORK_BENCH_CONTROLLER_NODE_OPTIONS (profilers);
 * MESHFORK_BENCH_HEAP_SNAPSHOT_DIR, when set, receives a heap snapshot of it at the large count.
 * Selected by name (`npm run bench -- controller`); skipped, loudly, without MESHFORK_TESTBIN.
 *
 * Workload: namespace `bench` with {@link HOSTS} baseline Deployments + Services (every other host
 * with a user VirtualService that meshfork's routes are spliced into); Sandbox `sbNNNN` forks
 * Deployment `wNN-v1` with one env override. No kubelet runs: the bench marks each fork
 * Deployment available as soon as it appears (a status write, standing in for the deployment
 * controller and a kubelet), because the controller routes a fork only once it has an available
 * replica. Routes are seen by a watch on the namespace's VirtualServices (`meshfork-<sandbox>-<i>`).
 *
 * Benchmarks, in this order on one control plane and one controller process:
 *  - apply -> routes written, one Sandbox at a time (5 samples) next to `kubectl apply
 *    --server-side` of the objects `plan()` generates for one Sandbox (no istiod runs here);
 *  - 200 Sandboxes applied at once (one `kubectl apply --server-side`): per Sandbox, the time until
 *    its routes are in its host's VirtualService (p50, p99) next to `kubectl apply --server-side`
 *    of every object `plan()` generates for those 200 (in a namespace the controller does not watch);
 *  - API writes while nothing changes, over MESHFORK_BENCH_IDLE_SECONDS (default 60) s, from the API
 *    server's own `apiserver_request_total` (write verbs, resources the controller writes);
 *  - controller RSS at MESHFORK_BENCH_SANDBOXES (default 1000) Sandboxes, at rest
 *    MESHFORK_BENCH_REST_SECONDS (default 30) after the touch below (also read right after it, and
 *    the peak; with its JS heap and the seconds it spent in garbage collection), and reconcile p99 there
 *    vs at 10 (every Sandbox touched by an annotation, the `meshfork_reconcile_duration_seconds`
 *    histogram's increase over that round, Sandbox and Host keys together);
 *  - the controller's event-loop delay (perf_hooks monitorEventLoopDelay since it started, from its
 *    `meshfork_event_loop_delay_seconds`) after the 200 and over the whole run, p99 against 1 s;
 *  - the largest number of Sandboxes that can fork one host before its VirtualService is refused:
 *    a binary search over the size of the VirtualService `plan()` generates against etcd's default
 *    request limit, then real writes at that count (accepted) and one more (refused).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { SandboxObject } from '../src/api/schema.js';
import { SharedInformer } from '../src/cluster/informer.js';
import { pooledConnections } from '../src/cluster/kubeconfig.js';
import type { KubeObject } from '../src/planner/kube.js';
import { inventoryOf } from '../src/planner/inventory.js';
import { plan } from '../src/planner/plan.js';
import { chartControllerEnv } from '../test/support/chart.js';
import { missingTestbin, startControlPlane, type ControlPlane } from '../test/support/control-plane.js';
import { type BenchResult, type BenchSuite, median } from './report.js';

const NS = 'bench';
const KUBECTL_NS = 'bench-kubectl';
const LIMIT_NS = 'bench-limit';
const HOSTS = 20;
const AT_ONCE = 200;
const SMALL = 10;
/** etcd's default `--max-request-bytes`, 1.5 MiB (https://etcd.io/docs/v3.6/dev-guide/limit/). */
const ETCD_REQUEST_LIMIT = 1.5 * 1024 * 1024;
const RSS_BUDGET_MIB = 150;
/** Opt-in: a heap snapshot of the controller at the large count is written here (for memory analysis). */
const SNAPSHOT_DIR = process.env['MESHFORK_BENCH_HEAP_SNAPSHOT_DIR'] || undefined;
/** Opt-in: every line the controller logs is appended to this file. */
const LOG_FILE = process.env['MESHFORK_BENCH_CONTROLLER_LOG'] || undefined;
/**
 * A controller whose event loop stalls longer than a kubelet probe's default timeout (1 s,
 * https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#configure-probes)
 * fails /healthz while busy.
 */
const EVENT_LOOP_BUDGET_MS = 1000;
const REPO = new URL('../', import.meta.url).pathname;
const WRITE_VERBS = ['APPLY', 'PATCH', 'POST', 'PUT', 'DELETE'];
/** Resources the controller writes (the API server's own Lease renewals are left out). */
const CONTROLLER_RESOURCES = ['deployments', 'services', 'destinationrules', 'envoyfilters', 'virtualservices', 'sandboxes', 'routegroups', 'events', 'configmaps'];

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const host = (i: number) => `w${String(i % HOSTS).padStart(2, '0')}`;
const sandboxName = (i: number) => `sb${String(i).padStart(4, '0')}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${raw}: give a positive number`);
  return n;
}

function baseline(namespace: string, hosts: readonly string[]): Obj[] {
  return hosts.flatMap((app, i): Obj[] => [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `${app}-v1`, namespace, labels: { app, version: 'v1' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app, version: 'v1' } },
        template: { metadata: { labels: { app, version: 'v1' } }, spec: { containers: [{ name: 'main', image: `registry.example.com/${app}:1`, env: [{ name: 'MODE', value: 'baseline' }] }] } },
      },
    } as Obj,
    { apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace }, spec: { selector: { app }, ports: [{ name: 'http', port: 8080, targetPort: 8080 }] } } as Obj,
    ...(i % 2 === 0
      ? [
          {
            apiVersion: 'networking.istio.io/v1',
            kind: 'VirtualService',
            metadata: { name: app, namespace },
            spec: { hosts: [app], http: [{ name: 'default', route: [{ destination: { host: app, port: { number: 8080 } } }], retries: { attempts: 2 } }] },
          } as Obj,
        ]
      : []),
  ]);
}

function sandbox(namespace: string, i: number, forkOf = `${host(i)}-v1`): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: sandboxName(i), namespace },
    spec: { forks: [{ forkOf: { kind: 'Deployment', name: forkOf }, customizations: { env: [{ name: 'MODE', value: sandboxName(i) }] } }] },
  } as SandboxObject;
}

/** The objects `plan()` generates for these Sandboxes over `inventory` (throws on problems). */
function generated(inventory: readonly Obj[], sandboxes: readonly SandboxObject[]): KubeObject[] {
  const result = plan({ inventory: inventoryOf(inventory as KubeObject[]), sandboxes });
  if (result.problems.length > 0) throw new Error(`bench input has problems: ${JSON.stringify(result.problems.slice(0, 3))}`);
  return result.objects;
}

const yamlDocs = (objects: readonly unknown[]) => objects.map((o) => stringify(o)).join('---\n');

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Prometheus text: samples of one metric as [labels, value]. */
function samples(text: string, metric: string): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const brace = line.indexOf('}');
    const labels = Object.fromEntries([...line.slice(0, Math.max(brace, 0)).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.push([labels, Number(line.slice(line.lastIndexOf(' ') + 1))]);
  }
  return out;
}

/** The controller's event-loop delay since it started (meshfork_event_loop_delay_seconds), ms. */
async function eventLoopDelay(controller: ControllerProcess): Promise<{ p50: number; p99: number; max: number }> {
  const stats = Object.fromEntries(samples(await controller.metrics(), 'meshfork_event_loop_delay_seconds').map(([l, v]) => [l['stat'], v * 1000]));
  return { p50: stats['p50'] ?? NaN, p99: stats['p99'] ?? NaN, max: stats['max'] ?? NaN };
}

/**
 * The controller's V8 heap (prom-client's nodejs_heap_size_* and external memory, MiB: what of its
 * RSS is JS heap) and its garbage collection since start (nodejs_gc_duration_seconds by kind,
 * against process_cpu_seconds_total: what the heap flags cost).
 */
async function heapOf(controller: ControllerProcess): Promise<{ totalMiB: number; usedMiB: number; externalMiB: number; gcSeconds: number; cpuSeconds: number; text: string }> {
  const text = await controller.metrics();
  const value = (metric: string) => samples(text, `meshfork_${metric}`)[0]?.[1] ?? NaN;
  const [totalMiB, usedMiB, externalMiB] = ['nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes'].map((m) => value(m) / 2 ** 20) as [number, number, number];
  const gc = samples(text, 'meshfork_nodejs_gc_duration_seconds_sum');
  const gcSeconds = gc.reduce((sum, [, v]) => sum + v, 0);
  const cpuSeconds = value('process_cpu_seconds_total');
  const byKind = gc.map(([l, v]) => `${l['kind']} ${v.toFixed(1)}`).join(', ');
  return {
    totalMiB,
    usedMiB,
    externalMiB,
    gcSeconds,
    cpuSeconds,
    text: `JS heap ${usedMiB.toFixed(1)} MiB used of ${totalMiB.toFixed(1)} MiB, external ${externalMiB.toFixed(1)} MiB; GC ${gcSeconds.toFixed(1)} s of ${cpuSeconds.toFixed(1)} s CPU since start (${byKind})`,
  };
}

/** Cumulative bucket counts (by `le`) of successful reconciles, every key kind summed. */
function reconcileBuckets(text: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const [labels, v] of samples(text, 'meshfork_reconcile_duration_seconds_bucket')) {
    if (labels['result'] !== 'success') continue;
    const le = labels['le'] === '+Inf' ? Infinity : Number(labels['le']);
    buckets.set(le, (buckets.get(le) ?? 0) + v);
  }
  return buckets;
}

/** histogram_quantile() over the increase between two bucket snapshots (linear within a bucket). */
function histogramQuantile(before: Map<number, number>, after: Map<number, number>, q: number): { value: number; count: number } {
  const les = [...after.keys()].sort((a, b) => a - b);
  const inc = les.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const count = inc[inc.length - 1] ?? 0;
  if (count === 0) return { value: NaN, count };
  const rank = q * count;
  for (let i = 0; i < les.length; i++) {
    if (inc[i]! < rank) continue;
    const upper = les[i]!;
    const lower = i === 0 ? 0 : les[i - 1]!;
    if (upper === Infinity) return { value: lower, count };
    const below = i === 0 ? 0 : inc[i - 1]!;
    return { value: lower + ((upper - lower) * (rank - below)) / Math.max(inc[i]! - below, 1), count };
  }
  return { value: les[les.length - 2] ?? NaN, count };
}

/** GET without keep-alive (a reused connection the server just closed would fail the request). */
function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Memory {
  readonly rssMiB: number;
  readonly anonMiB: number;
  readonly fileMiB: number;
  readonly peakMiB: number;
}

function memoryText(m: Memory): string {
  return `RSS ${m.rssMiB.toFixed(1)} MiB (anonymous ${m.anonMiB.toFixed(1)}, file-backed ${m.fileMiB.toFixed(1)}; peak ${m.peakMiB.toFixed(1)} MiB)`;
}

interface ControllerProcess {
  readonly child: ChildProcess;
  /** NODE_OPTIONS and MALLOC_ARENA_MAX the controller was started with. */
  readonly nodeOptions: string;
  readonly mallocArenaMax: string | undefined;
  metrics(): Promise<string>;
  /** VmRSS (anonymous and file-backed parts) and VmHWM (peak) from /proc, MiB. */
  memory(): Memory;
  /** With MESHFORK_BENCH_HEAP_SNAPSHOT_DIR: writes a V8 heap snapshot of the controller there; its path and size. */
  heapSnapshot(): Promise<string | undefined>;
  tail(): string;
  stop(): Promise<void>;
}

async function startController(cp: ControlPlane): Promise<ControllerProcess> {
  // The chart's flags, then the bench's own (profilers, heap snapshots).
  const chartEnv = chartControllerEnv();
  const nodeOptions = [chartEnv['NODE_OPTIONS'] ?? '', process.env['MESHFORK_BENCH_CONTROLLER_NODE_OPTIONS'] ?? '', ...(SNAPSHOT_DIR !== undefined ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${SNAPSHOT_DIR}`] : [])].filter((o) => o !== '').join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env, ...chartEnv, NODE_OPTIONS: nodeOptions };
  if (chartEnv['MALLOC_ARENA_MAX'] === undefined) delete env['MALLOC_ARENA_MAX'];
  const child = spawn(process.execPath, [`${REPO}lib/bundle/meshfork.mjs`, 'controller', '--kubeconfig', cp.kubeconfigPath, '--namespaces', NS, '--health-address', '127.0.0.1:0'], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
    // e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--heap-prof` to profile the controller alone.
    env,
  });
  const lines: string[] = [];
  let address: string | undefined;
  let partial = '';
  child.stderr?.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (address === undefined && line.includes('"serving /metrics, /healthz, /readyz"')) {
        const entry = JSON.parse(line) as { msg?: string; address?: string };
        if (entry.msg === 'serving /metrics, /healthz, /readyz') address = entry.address;
      }
      lines.push(line);
      if (lines.length > 200) lines.shift();
      if (LOG_FILE !== undefined) appendFileSync(LOG_FILE, `${line}\n`);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Never outlive the bench (the control plane's harness exits the process on SIGINT/SIGTERM).
  const killChild = () => child.kill('SIGKILL');
  process.once('exit', killChild);
  const t0 = Date.now();
  while (address === undefined) {
    if (child.exitCode !== null) throw new Error(`controller exited: ${lines.join('\n')}`);
    if (Date.now() - t0 > 60_000) throw new Error(`controller did not serve /metrics within 60 s: ${lines.join('\n')}`);
    await sleep(100);
  }
  const get = async (path: string) => (await httpGet(`http://${address}${path}`)).body;
  while ((await httpGet(`http://${address}/readyz`)).status !== 200) await sleep(200);
  return {
    child,
    nodeOptions,
    mallocArenaMax: env['MALLOC_ARENA_MAX'],
    metrics: () => get('/metrics'),
    memory: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024, peakMiB: kib('VmHWM') / 1024 };
    },
    heapSnapshot: async () => {
      if (SNAPSHOT_DIR === undefined) return undefined;
      const ours = () => readdirSync(SNAPSHOT_DIR).filter((f) => f.endsWith('.heapsnapshot') && f.includes(`.${child.pid}.`));
      const before = new Set(ours());
      child.kill('SIGUSR2');
      let file: string | undefined;
      while ((file = ours().find((f) => !before.has(f))) === undefined) await sleep(500);
      // V8 writes the snapshot on the controller's main thread: /healthz answers once it is done.
      await get('/healthz');
      return `${SNAPSHOT_DIR}/${file} (${(statSync(`${SNAPSHOT_DIR}/${file}`).size / 2 ** 20).toFixed(0)} MiB)`;
    },
    tail: () => lines.slice(-20).join('\n'),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
      process.off('exit', killChild);
    },
  };
}

/** Write requests the API server counted, by `VERB resource[/subresource]`. */
async function apiWrites(cp: ControlPlane): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [labels, v] of samples((await cp.request('GET', '/metrics')).body, 'apiserver_request_total')) {
    if (!WRITE_VERBS.includes(labels['verb'] ?? '')) continue;
    const id = `${labels['verb']} ${labels['resource']}${labels['subresource'] ? `/${labels['subresource']}` : ''}`;
    out[id] = (out[id] ?? 0) + v;
  }
  return out;
}

function writesBetween(before: Record<string, number>, after: Record<string, number>, resources: readonly string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, v] of Object.entries(after)) {
    const resource = id.split(' ')[1]!.split('/')[0]!;
    if (resources !== undefined && !resources.includes(resource)) continue;
    const d = v - (before[id] ?? 0);
    if (d > 0) out[id] = d;
  }
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function kubectlApply(cp: ControlPlane, objects: readonly unknown[], what: string): Promise<number> {
  const t0 = performance.now();
  const r = await cp.exec('kubectl', ['apply', '--server-side', '--force-conflicts', '--field-manager=meshfork', '-f', '-'], { input: yamlDocs(objects), timeoutMs: 600_000 });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`kubectl apply (${what}) failed: ${r.stderr.slice(0, 2000)}`);
  return ms;
}

class Cluster {
  readonly objects: KubernetesObjectApi;
  /** The stand-in deployment controller's client: one kept-alive connection pool, as kube-controller-manager keeps. */
  private readonly standInApps: AppsV1Api;
  /** When each Sandbox's first route was seen in a VirtualService (performance.now()). */
  readonly routedAt = new Map<string, number>();
  private readonly informers: Array<SharedInformer<KubernetesObject>> = [];

  constructor(readonly cp: ControlPlane) {
    this.objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig);
    const standIn = new KubeConfig();
    standIn.loadFromFile(cp.kubeconfigPath);
    this.standInApps = pooledConnections(standIn).makeApiClient(AppsV1Api);
  }

  async watch(): Promise<void> {
    const kc = this.cp.kubeConfig;
    const vs = new SharedInformer<KubernetesObject>(kc, { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', plural: 'virtualservices', namespace: NS }, { resyncMs: 0 });
    vs.onEvent((_type, o) => {
      const now = performance.now();
      for (const route of ((o as Obj).spec as { http?: Array<{ name?: string }> } | undefined)?.http ?? []) {
        const m = /^meshfork-(sb\d{4})-\d+$/.exec(route.name ?? '');
        if (m && !this.routedAt.has(m[1]!)) this.routedAt.set(m[1]!, now);
      }
    });
    // Stands in for the deployment controller and a kubelet: a fork is available once it exists.
    // Like kube-controller-manager it writes from its watch, not after a read (one merge patch of
    // the status per fork version), over one kept-alive connection pool.
    const forks = new SharedInformer<KubernetesObject>(kc, { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespace: NS, labelSelector: 'app.kubernetes.io/managed-by=meshfork' }, { resyncMs: 0 });
    forks.onEvent((type, o) => {
      if (type === 'delete') return;
      const d = o as V1Deployment;
      if ((d.status?.availableReplicas ?? 0) >= 1 && d.status?.observedGeneration === d.metadata?.generation) return;
      const name = d.metadata!.name!;
      const status = { observedGeneration: d.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 };
      // Gone meanwhile: nothing to stand in for.
      void this.standInApps.patchNamespacedDeploymentStatus({ name, namespace: NS, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)).catch(() => undefined);
    });
    for (const i of [vs, forks]) {
      await i.start();
      this.informers.push(i);
    }
  }

  async until(what: string, done: () => boolean, ms: number): Promise<void> {
    const t0 = Date.now();
    while (!done()) {
      if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    for (const i of this.informers) await i.stop();
  }
}

/** Touches every Sandbox (an annotation) and returns reconcile p99 over the reconciles that follow. */
async function touchRound(cluster: Cluster, controller: ControllerProcess, names: readonly string[], rounds: number): Promise<{ p99: number; p50: number; count: number }> {
  const before = reconcileBuckets(await controller.metrics());
  const sandboxReconciles = async () => samples(await controller.metrics(), 'meshfork_reconcile_total').filter(([l]) => l['kind'] === 'Sandbox').reduce((a, [, v]) => a + v, 0);
  for (let round = 0; round < rounds; round++) {
    const start = await sandboxReconciles();
    await mapLimit(names, 8, (name) =>
      cluster.objects.patch({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace: NS, annotations: { 'bench.meshfork.dev/touch': `${Date.now()}-${round}` } } } as Obj, undefined, undefined, 'bench', undefined, PatchStrategy.MergePatch),
    );
    await quiet(controller, async () => (await sandboxReconciles()) - start >= names.length, 20 * 60_000);
  }
  const after = reconcileBuckets(await controller.metrics());
  const p99 = histogramQuantile(before, after, 0.99);
  return { p99: p99.value, p50: histogramQuantile(before, after, 0.5).value, count: p99.count };
}

/** Waits for `ready` and then for an empty work queue (nothing waiting or in flight) and no Event left to send, twice in a row. */
async function quiet(controller: ControllerProcess, ready: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now();
  let empty = 0;
  while (empty < 2) {
    if (Date.now() - t0 > ms) throw new Error(`controller not idle within ${ms / 1000} s; log tail:\n${controller.tail()}`);
    await sleep(250);
    const text = await controller.metrics();
    const depth = samples(text, 'meshfork_workqueue_depth');
    const busy = depth.filter(([l]) => l['state'] !== 'delayed').reduce((a, [, v]) => a + v, 0) + (samples(text, 'meshfork_events_pending')[0]?.[1] ?? 0);
    empty = busy === 0 && (await ready()) ? empty + 1 : 0;
  }
}

async function controllerBenchmarks(cp: ControlPlane, log: (line: string) => void): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const idleSeconds = envNumber('MESHFORK_BENCH_IDLE_SECONDS', 60);
  const restSeconds = envNumber('MESHFORK_BENCH_REST_SECONDS', 30);
  const scale = Math.max(AT_ONCE + SMALL, Math.round(envNumber('MESHFORK_BENCH_SANDBOXES', 1000)));
  const core = cp.kubeConfig.makeApiClient(CoreV1Api);
  const hosts = range(0, HOSTS).map(host);
  const cluster = new Cluster(cp);
  for (const ns of [NS, KUBECTL_NS]) {
    await core.createNamespace({ body: { metadata: { name: ns } } });
    for (const o of baseline(ns, hosts)) await cluster.objects.create(o);
  }
  const kubectlInventory = baseline(KUBECTL_NS, hosts);
  await cluster.watch();
  const controller = await startController(cp);
  try {
    const startMemory = controller.memory();
    log(`controller started (caches synced, no Sandbox): RSS ${startMemory.rssMiB.toFixed(1)} MiB; ${(await heapOf(controller)).text}; NODE_OPTIONS ${JSON.stringify(controller.nodeOptions)}, MALLOC_ARENA_MAX ${controller.mallocArenaMax ?? 'unset'}`);
    // 1. apply -> routes written, one Sandbox at a time.
    const single: number[] = [];
    const singleKubectl: number[] = [];
    for (const i of range(0, 5)) {
      singleKubectl.push(await kubectlApply(cp, generated(kubectlInventory, [sandbox(KUBECTL_NS, i)]), 'one Sandbox\'s objects'));
      const t0 = performance.now();
      await kubectlApply(cp, [sandbox(NS, i)], 'one Sandbox');
      await cluster.until(`routes of ${sandboxName(i)}`, () => cluster.routedAt.has(sandboxName(i)), 120_000);
      single.push(cluster.routedAt.get(sandboxName(i))! - t0);
    }
    log(`apply -> routes written, one Sandbox: ${single.map((ms) => ms.toFixed(0)).join(', ')} ms; kubectl apply --server-side of its generated objects: ${singleKubectl.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    results.push({
      id: 'controller-apply-to-routes',
      title: 'apply -> routes written, 1 Sandbox (no istiod)',
      baseline: { label: 'kubectl SSA of its objects', value: median(singleKubectl), unit: 'ms' },
      candidate: { label: 'median', value: median(single), unit: 'ms' },
      ratio: median(single) / median(singleKubectl),
      target: 1.5,
      extra: { median_ms: median(single), max_ms: Math.max(...single), kubectl_median_ms: median(singleKubectl), samples: single.length },
    });

    // Reconcile p99 and RSS at 10 Sandboxes.
    await kubectlApply(cp, range(5, SMALL).map((i) => sandbox(NS, i)), `${SMALL - 5} Sandboxes`);
    await cluster.until(`routes of ${SMALL} Sandboxes`, () => range(0, SMALL).every((i) => cluster.routedAt.has(sandboxName(i))), 120_000);
    await quiet(controller, async () => true, 120_000);
    const small = await touchRound(cluster, controller, range(0, SMALL).map(sandboxName), 5);
    const smallMemory = controller.memory();
    log(`at ${SMALL} Sandboxes: reconcile p50 ${(small.p50 * 1000).toFixed(1)} ms, p99 ${(small.p99 * 1000).toFixed(1)} ms over ${small.count} reconciles; RSS ${smallMemory.rssMiB.toFixed(1)} MiB; ${(await heapOf(controller)).text}`);

    // 2. 200 Sandboxes applied at once.
    const batch = range(SMALL, SMALL + AT_ONCE);
    const kubectlMs = await kubectlApply(cp, generated(kubectlInventory, batch.map((i) => sandbox(KUBECTL_NS, i))), `the objects of ${AT_ONCE} Sandboxes`);
    const writesBefore = await apiWrites(cp);
    const t0 = performance.now();
    const applyMs = await kubectlApply(cp, batch.map((i) => sandbox(NS, i)), `${AT_ONCE} Sandboxes`);
    await cluster.until(`routes of ${AT_ONCE} Sandboxes`, () => batch.every((i) => cluster.routedAt.has(sandboxName(i))), 20 * 60_000);
    const latencies = batch.map((i) => cluster.routedAt.get(sandboxName(i))! - t0).sort((a, b) => a - b);
    await quiet(controller, async () => true, 10 * 60_000);
    const convergeWrites = writesBetween(writesBefore, await apiWrites(cp), CONTROLLER_RESOURCES);
    const [p50, p99] = [quantile(latencies, 0.5), quantile(latencies, 0.99)];
    log(`${AT_ONCE} Sandboxes at once: routes p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, last ${latencies[latencies.length - 1]!.toFixed(0)} ms (kubectl apply of the Sandboxes took ${applyMs.toFixed(0)} ms); kubectl apply --server-side of their ${generated(kubectlInventory, batch.map((i) => sandbox(KUBECTL_NS, i))).length} generated objects: ${kubectlMs.toFixed(0)} ms`);
    log(`writes while converging (incl. the bench's ${AT_ONCE} creates and fork status writes): ${JSON.stringify(convergeWrites)}`);
    const burstDelay = await eventLoopDelay(controller);
    log(`controller event-loop delay since start, after the ${AT_ONCE}: p50 ${burstDelay.p50.toFixed(1)} ms, p99 ${burstDelay.p99.toFixed(1)} ms, max ${burstDelay.max.toFixed(1)} ms`);
    results.push({
      id: 'controller-200-at-once',
      title: `${AT_ONCE} Sandboxes at once: apply -> routes p50`,
      baseline: { label: 'kubectl SSA of generated objects', value: kubectlMs, unit: 'ms' },
      candidate: { label: 'p50', value: p50, unit: 'ms' },
      ratio: p50 / kubectlMs,
      target: 1.5,
      extra: { p50_ms: p50, p99_ms: p99, p99_ratio: p99 / kubectlMs, kubectl_ms: kubectlMs, sandboxes: AT_ONCE, hosts: HOSTS },
    });

    // 3. Writes while nothing changes.
    const idleBefore = await apiWrites(cp);
    await sleep(idleSeconds * 1000);
    const idleAfter = await apiWrites(cp);
    const idle = writesBetween(idleBefore, idleAfter, CONTROLLER_RESOURCES);
    log(`idle ${idleSeconds} s: writes to the controller's resources ${JSON.stringify(idle)}; every write the API server counted: ${JSON.stringify(writesBetween(idleBefore, idleAfter, undefined))}`);
    results.push({
      id: 'controller-idle-writes',
      title: `API writes while idle, ${idleSeconds} s`,
      baseline: { label: `writes converging ${AT_ONCE}`, value: total(convergeWrites), unit: 'writes' },
      candidate: { label: 'idle', value: total(idle), unit: 'writes' },
      ratio: total(idle) / Math.max(total(convergeWrites), 1),
      target: 0,
      extra: { idle_writes: total(idle), window_s: idleSeconds, converge_writes: total(convergeWrites) },
    });

    // 4. Scale to `scale` Sandboxes: RSS and reconcile p99.
    const rest = range(SMALL + AT_ONCE, scale);
    for (let k = 0; k < rest.length; k += 200) await kubectlApply(cp, rest.slice(k, k + 200).map((i) => sandbox(NS, i)), 'more Sandboxes');
    await cluster.until(`routes of ${scale} Sandboxes`, () => rest.every((i) => cluster.routedAt.has(sandboxName(i))), 40 * 60_000);
    await quiet(controller, async () => true, 20 * 60_000);
    const large = await touchRound(cluster, controller, range(0, scale).map(sandboxName), 1);
    const touchedMemory = controller.memory();
    const touchedHeap = await heapOf(controller);
    log(`at ${scale} Sandboxes, right after touching every one: ${memoryText(touchedMemory)}; ${touchedHeap.text}`);
    // At rest: the figure of a controller holding `scale` Sandboxes, once V8's memory reducer has
    // had the idle time it waits for (about 8 s after allocation slows) to shrink the heap.
    await sleep(restSeconds * 1000);
    const largeMemory = controller.memory();
    const largeHeap = await heapOf(controller);
    const snapshot = await controller.heapSnapshot();
    if (snapshot !== undefined) log(`heap snapshot of the controller at ${scale} Sandboxes: ${snapshot}`);
    const promRss = (samples(await controller.metrics(), 'meshfork_process_resident_memory_bytes')[0]?.[1] ?? NaN) / 2 ** 20;
    const delay = await eventLoopDelay(controller);
    log(`controller event-loop delay over the whole run (${scale} Sandboxes): p50 ${delay.p50.toFixed(1)} ms, p99 ${delay.p99.toFixed(1)} ms, max ${delay.max.toFixed(1)} ms`);
    results.push({
      id: 'controller-event-loop-delay',
      title: `controller event-loop delay p99, whole run to ${scale}`,
      baseline: { label: 'budget', value: EVENT_LOOP_BUDGET_MS, unit: 'ms' },
      candidate: { label: 'p99', value: delay.p99, unit: 'ms' },
      ratio: delay.p99 / EVENT_LOOP_BUDGET_MS,
      target: 1,
      extra: { p50_ms: delay.p50, p99_ms: delay.p99, max_ms: delay.max, after_burst_p99_ms: burstDelay.p99, after_burst_max_ms: burstDelay.max, sandboxes: scale },
    });
    log(`at ${scale} Sandboxes: reconcile p50 ${(large.p50 * 1000).toFixed(1)} ms, p99 ${(large.p99 * 1000).toFixed(1)} ms over ${large.count} reconciles; at rest ${restSeconds} s later: ${memoryText(largeMemory)} (metrics ${promRss.toFixed(1)} MiB); ${largeHeap.text}`);
    results.push({
      id: 'controller-rss',
      title: `controller RSS at ${scale} Sandboxes, at rest`,
      baseline: { label: 'budget', value: RSS_BUDGET_MIB, unit: 'MiB' },
      candidate: { label: 'RSS', value: largeMemory.rssMiB, unit: 'MiB' },
      ratio: largeMemory.rssMiB / RSS_BUDGET_MIB,
      target: 1,
      extra: {
        rss_mib: largeMemory.rssMiB,
        rss_anon_mib: largeMemory.anonMiB,
        rss_file_mib: largeMemory.fileMiB,
        touched_rss_mib: touchedMemory.rssMiB,
        peak_mib: largeMemory.peakMiB,
        heap_used_mib: largeHeap.usedMiB,
        heap_total_mib: largeHeap.totalMiB,
        touched_heap_total_mib: touchedHeap.totalMiB,
        gc_s: largeHeap.gcSeconds,
        cpu_s: largeHeap.cpuSeconds,
        rss_start_mib: startMemory.rssMiB,
        rss_small_mib: smallMemory.rssMiB,
        rest_s: restSeconds,
        sandboxes: scale,
      },
    });
    results.push({
      id: 'controller-reconcile-p99',
      title: `reconcile p99, ${scale} vs ${SMALL} Sandboxes`,
      baseline: { label: `${SMALL} Sandboxes`, value: small.p99 * 1000, unit: 'ms' },
      candidate: { label: `${scale} Sandboxes`, value: large.p99 * 1000, unit: 'ms' },
      ratio: large.p99 / small.p99,
      target: 2,
      extra: { small_p99_ms: small.p99 * 1000, large_p99_ms: large.p99 * 1000, small_reconciles: small.count, large_reconciles: large.count, sandboxes: scale },
    });
  } catch (error) {
    log(`controller log tail:\n${controller.tail()}`);
    throw error;
  } finally {
    await controller.stop();
    await cluster.stop();
  }
  return results;
}

/** 5. How many Sandboxes can fork one host before its VirtualService is refused. */
async function virtualServiceLimit(cp: ControlPlane, log: (line: string) => void): Promise<BenchResult> {
  const objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig);
  await cp.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: LIMIT_NS } } });
  const inventory = baseline(LIMIT_NS, ['big']).filter((o) => o.kind !== 'VirtualService');
  const vsFor = (n: number) => {
    const vs = generated(inventory, range(0, n).map((i) => sandbox(LIMIT_NS, i, 'big-v1'))).find((o) => o.kind === 'VirtualService');
    if (vs === undefined) throw new Error('plan() generated no VirtualService');
    return vs;
  };
  const sizeOf = (n: number) => Buffer.byteLength(JSON.stringify(vsFor(n)));
  let lo = 1;
  let hi = 2;
  while (sizeOf(hi) <= ETCD_REQUEST_LIMIT) [lo, hi] = [hi, hi * 2];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (sizeOf(mid) <= ETCD_REQUEST_LIMIT) lo = mid;
    else hi = mid;
  }
  const estimate = lo;
  log(`plan(): the VirtualService of ${estimate} Sandboxes forking one host is ${sizeOf(estimate)} bytes of JSON, ${estimate + 1} Sandboxes ${sizeOf(estimate + 1)} bytes (etcd's request limit ${ETCD_REQUEST_LIMIT} bytes)`);
  const write = async (n: number): Promise<string | undefined> => {
    const vs = vsFor(n) as unknown as Obj;
    try {
      await objects.patch(vs, undefined, undefined, 'meshfork', true, PatchStrategy.ServerSideApply);
      await objects.delete(vs);
      return undefined;
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      let message = typeof body === 'string' ? body : String(error);
      try {
        message = (JSON.parse(message) as { message?: string }).message ?? message;
      } catch {
        // not JSON: keep the text
      }
      return `HTTP ${(error as { code?: number }).code}: ${message}`.slice(0, 300);
    }
  };
  // Confirm against the real API server; the stored object also carries metadata, so step down
  // (binary search over real writes) if the estimate itself is refused.
  let accepted = estimate;
  let refusal = await write(estimate + 1);
  if ((await write(estimate)) !== undefined) {
    let [okN, badN] = [Math.max(1, estimate - 256), estimate];
    while ((await write(okN)) !== undefined) okN = Math.max(1, okN - 256);
    while (badN - okN > 1) {
      const mid = (okN + badN) >> 1;
      const r = await write(mid);
      if (r === undefined) okN = mid;
      else [badN, refusal] = [mid, r];
    }
    accepted = okN;
  }
  log(`real writes: ${accepted} Sandboxes accepted; ${refusal === undefined ? `${estimate + 1} accepted too (the limit is not etcd's default here)` : `one more refused: ${refusal}`}`);
  return {
    id: 'vs-sandbox-limit',
    title: 'Sandboxes forking one host (VS size limit)',
    baseline: { label: 'estimate from plan() size', value: estimate, unit: 'sandboxes' },
    candidate: { label: 'accepted by the API server', value: accepted, unit: 'sandboxes' },
    ratio: accepted / estimate,
    target: 1,
    extra: { sandboxes: accepted, estimate, vs_bytes: sizeOf(accepted), limit_bytes: ETCD_REQUEST_LIMIT, refused_next: String(refusal !== undefined) },
  };
}

export const controllerSuite: BenchSuite = {
  name: 'controller',
  optIn: true,
  run: async (log) => {
    const dir = process.env['MESHFORK_TESTBIN'];
    const missing = dir ? missingTestbin(dir) : ['MESHFORK_TESTBIN is not set'];
    if (missing.length > 0) {
      log(`!!!!! SKIPPED: the controller benchmarks need a real control plane (${missing.join(', ')}); run \`npm run testbin\` and set MESHFORK_TESTBIN !!!!!`);
      return [];
    }
    const cp = await startControlPlane({
      crds: [`${REPO}charts/meshfork/crds/meshfork.dev_crds.yaml`],
      // Room for a ClusterIP per fork Service (the harness's default /24 holds 254); nothing is
      // ever sent to these addresses.
      apiServerFlags: ['--service-cluster-ip-range=10.0.0.0/16'],
    });
    try {
      log(`control plane up in ${(cp.startupMs / 1000).toFixed(1)} s (kube-apiserver ${cp.versions.server.gitVersion})`);
      const limit = await virtualServiceLimit(cp, log);
      return [...(await controllerBenchmarks(cp, log)), limit];
    } finally {
      await cp.stop();
    }
  },
};

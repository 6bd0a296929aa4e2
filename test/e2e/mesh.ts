/**
 * The e2e "cluster": a control plane + istiod, echo backends standing in for pods, and a sync
 * step that applies `meshfork synth` output the way a GitOps tool with pruning would.
 *
 * No kubelet runs, and kube-apiserver refuses EndpointSlices on 127.0.0.0/8, so every Deployment
 * (baseline or fork) gets an echo backend named after it on its own loopback port and a
 * `WorkloadEntry` at 127.0.0.1 carrying the Deployment's pod-template labels, with
 * `ports: {grpc: <port>}`. Istio merges WorkloadEntries into the endpoints of every Kubernetes
 * Service whose selector matches them (PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES, on by default),
 * mapping the Service port named `grpc` to the entry's port. A fork's WorkloadEntry therefore
 * carries exactly the labels meshfork gives the fork's pods (rewritten selector values +
 * meshfork.dev/sandbox), so it proves that the fork Service selects the fork and only the fork.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { SharedInformer } from '../../src/cluster/informer.js';
import { isManaged, type KubeObject } from '../../src/planner/kube.js';
import type { ControlPlane } from '../support/control-plane.js';
import { cli } from '../support/cli.js';
import { applyObjects, deleteObject, listObjects, type ConfigDump, type Istiod, type KubeObj } from '../support/istiod.js';
import { startEchoBackend, xdsBootstrap, xdsEchoClient, type EchoBackend, type EchoClient } from '../support/xds-client.js';

export const NS = 'e2e';
export const PORT = 7070;
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const INVENTORY = `${FIXTURES}inventory.yaml`;
export const sandboxFile = (name: string) => `${FIXTURES}sandboxes/${name}.yaml`;

const MANAGED = 'app.kubernetes.io/managed-by=meshfork';
const STAND_IN_LABEL = 'e2e.meshfork.dev/stand-in-for';

export const fqdn = (service: string, ns = NS) => `${service}.${ns}.svc.cluster.local`;
export const clusterName = (service: string, subset = '', port = PORT, ns = NS) => `outbound|${port}|${subset}|${fqdn(service, ns)}`;

/** A proxyless gRPC client (app label `app`, in `namespace`) calling `service` through istiod's xDS. */
export function serviceClient(istiod: Istiod, service: string, app: string, namespace = NS, port = PORT): EchoClient {
  return xdsEchoClient(`xds:///${fqdn(service, namespace)}:${port}`, xdsBootstrap({ xdsAddress: istiod.xdsAddress, namespace, app }));
}

export function parseYamlDocs(text: string, what: string): KubeObj[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${what}: ${d.errors[0]!.message}`);
      return d.toJS() as KubeObj | null;
    })
    .filter((o): o is KubeObj => o !== null && typeof o === 'object');
}

export function loadYaml(file: string): KubeObj[] {
  return parseYamlDocs(readFileSync(file, 'utf8'), file);
}

/** `meshfork synth -f inventory.yaml <sandbox files>` in-process; the objects it prints. */
export function synth(sandboxes: readonly string[]): KubeObj[] {
  return synthFiles([INVENTORY, ...sandboxes.map(sandboxFile)]);
}

/** `meshfork synth <flags> -n <namespace> -f <files>` in-process; the objects it prints (notes allowed, no problems). */
export function synthFiles(files: readonly string[], namespace = NS, flags: readonly string[] = []): KubeObj[] {
  const r = cli('synth', ...flags, '-n', namespace, '-f', ...files);
  const errors = r.stderr.split('\n').filter((l) => l && !l.startsWith('note: '));
  if (r.code !== 0 || errors.length > 0) throw new Error(`meshfork synth failed (${r.code}):\n${r.stderr}`);
  return parseYamlDocs(r.stdout, 'synth output');
}

const key = (o: Pick<KubeObj, 'kind' | 'metadata'>) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;

function podLabels(deployment: KubeObj): Record<string, string> {
  const spec = deployment['spec'] as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined;
  return { ...(spec?.template?.metadata?.labels ?? {}) };
}

/** Route kinds meshfork writes in Gateway API mode; pruned only on a plane serving them. */
const GATEWAY_ROUTE_KINDS: ReadonlyArray<[apiVersion: string, kind: string]> = [
  ['gateway.networking.k8s.io/v1', 'HTTPRoute'],
  ['gateway.networking.k8s.io/v1', 'GRPCRoute'],
];
const ROUTE_KINDS = new Set(['VirtualService', ...GATEWAY_ROUTE_KINDS.map(([, kind]) => kind)]);

/** Kinds meshfork writes, in deletion order ("break before unmake": routes first, forks last). */
const PRUNE_KINDS: ReadonlyArray<[apiVersion: string, kind: string]> = [
  ...GATEWAY_ROUTE_KINDS,
  ['networking.istio.io/v1', 'VirtualService'],
  ['networking.istio.io/v1alpha3', 'EnvoyFilter'],
  ['networking.istio.io/v1', 'DestinationRule'],
  ['v1', 'Service'],
  ['networking.istio.io/v1', 'WorkloadEntry'],
  ['apps/v1', 'Deployment'],
];

const APPLY_ORDER = ['Namespace', 'Deployment', 'WorkloadEntry', 'Service', 'DestinationRule', 'EnvoyFilter', 'VirtualService', 'HTTPRoute', 'GRPCRoute'];

export interface SyncReport {
  readonly applied: string[];
  readonly restored: string[];
  readonly deleted: string[];
  /** How long the removed routes took to reach (and be ACKed by) every client. */
  readonly routesReleasedMs: number;
}

export class Mesh {
  readonly backends = new Map<string, EchoBackend>();
  readonly inventory: KubeObj[];

  /**
   * @param proxies the xDS clients (istiod proxy id and the Service each one calls); before a
   *   fork Service is deleted, sync waits until none of them is still routed to it.
   * @param inventory the baseline objects (default: fixtures/inventory.yaml); its user
   *   VirtualServices are restored when meshfork no longer writes them.
   */
  constructor(
    readonly cp: ControlPlane,
    readonly istiod: Istiod,
    readonly proxies: ReadonlyArray<{ readonly proxyId: string; readonly service: string }> = [],
    inventory: readonly KubeObj[] = loadYaml(INVENTORY),
  ) {
    this.inventory = [...inventory];
  }

  /** The backend (started on first use) standing in for Deployment `name`'s pods. */
  async backend(name: string): Promise<EchoBackend> {
    let b = this.backends.get(name);
    if (b === undefined) {
      b = await startEchoBackend(name);
      this.backends.set(name, b);
    }
    return b;
  }

  /** The WorkloadEntry standing in for a Deployment's pods (its pod-template labels). */
  async standIn(deployment: KubeObj): Promise<KubeObj> {
    const labels = podLabels(deployment);
    const backend = await this.backend(deployment.metadata.name);
    const managed = deployment.metadata.labels?.['app.kubernetes.io/managed-by'];
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: {
        name: deployment.metadata.name,
        namespace: deployment.metadata.namespace ?? NS,
        labels: { ...labels, [STAND_IN_LABEL]: deployment.metadata.name, ...(managed ? { 'app.kubernetes.io/managed-by': managed } : {}) },
      },
      spec: { address: '127.0.0.1', labels, ports: { grpc: backend.port } },
    };
  }

  /** Namespace, baseline inventory and a stand-in WorkloadEntry per baseline Deployment. */
  async installBaseline(): Promise<void> {
    const standIns = await Promise.all(this.inventory.filter((o) => o.kind === 'Deployment').map((d) => this.standIn(d)));
    await applyObjects(this.cp, sortForApply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }, ...this.inventory, ...standIns]));
  }

  /**
   * Applies `desired` (synth output) like a pruning GitOps sync, make before break:
   *  1. apply everything desired, forks and their stand-ins before the routes that use them;
   *     re-apply the user's own VirtualServices that meshfork no longer changes (restore);
   *     delete meshfork's routes (VirtualServices, and HTTPRoutes/GRPCRoutes on a plane that
   *     serves them) that are no longer desired;
   *  2. wait until no client is routed to a fork Service about to go: istiod's RDS for every
   *     client names none of its clusters and the client ACKed istiod's latest routes
   *     (/debug/syncz route_acked == route_sent) — what meshfork's reconciler must do between
   *     "VS route removed" and "fork removed";
   *  3. delete every other object carrying meshfork's label that is no longer desired.
   */
  async sync(desired: readonly KubeObj[]): Promise<SyncReport> {
    const standIns = await Promise.all(desired.filter((o) => o.kind === 'Deployment').map((d) => this.standIn(d)));
    const toApply = sortForApply([...desired, ...standIns]);
    await applyObjects(this.cp, toApply);
    const desiredKeys = new Set(toApply.map(key));
    const restore = this.inventory.filter((o) => o.kind === 'VirtualService' && !desiredKeys.has(key(o)));
    await applyObjects(this.cp, restore);
    const stale: KubeObj[] = [];
    const served = (kind: string) => !GATEWAY_ROUTE_KINDS.some(([, k]) => k === kind) || this.cp.crds.includes(`${kind.toLowerCase()}s.gateway.networking.k8s.io`);
    for (const [apiVersion, kind] of PRUNE_KINDS) {
      if (!served(kind)) continue;
      for (const o of await listObjects(this.cp, apiVersion, kind, NS, MANAGED)) if (!desiredKeys.has(key(o))) stale.push(o);
    }
    const deleted: string[] = [];
    for (const o of stale.filter((x) => ROUTE_KINDS.has(x.kind))) {
      await deleteObject(this.cp, o);
      deleted.push(key(o));
    }
    const goneHosts = stale.filter((o) => o.kind === 'Service').map((o) => fqdn(o.metadata.name, o.metadata.namespace ?? NS));
    const routesReleasedMs = goneHosts.length > 0 ? await this.waitRoutesReleased(goneHosts) : 0;
    for (const o of stale.filter((x) => !ROUTE_KINDS.has(x.kind))) {
      await deleteObject(this.cp, o);
      deleted.push(key(o));
    }
    return { applied: toApply.map(key), restored: restore.map(key), deleted, routesReleasedMs };
  }

  /** Waits until no client's routes (as istiod sent them, and the client ACKed) reach `hosts`. */
  async waitRoutesReleased(hosts: readonly string[], timeoutMs = 20_000): Promise<number> {
    const t0 = Date.now();
    let clean = 0;
    let last = '';
    for (;;) {
      last = await this.routesStillUsing(hosts);
      clean = last === '' ? clean + 1 : 0;
      if (clean >= 2) return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`make before break: clients still routed to ${hosts.join(', ')} ${timeoutMs}ms after their routes were removed: ${last}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async routesStillUsing(hosts: readonly string[]): Promise<string> {
    const sync = await this.istiod.get('/debug/syncz');
    const status = JSON.parse(sync.body) as Array<{ proxy?: string; route_sent?: string; route_acked?: string }>;
    for (const p of this.proxies) {
      const routes = summarizeRoutes(await this.routeConfig(p.proxyId, p.service));
      const using = routes.find((r) => r.clusters.some((c) => hosts.some((h) => c.split('*')[0]!.endsWith(`|${h}`))));
      if (using) return `${p.proxyId}: route ${using.name} -> ${using.clusters.join(', ')}`;
      const st = status.find((x) => x.proxy === p.proxyId);
      if (!st || !st.route_sent || st.route_sent !== st.route_acked) return `${p.proxyId}: routes not ACKed yet (${JSON.stringify(st ?? null)})`;
    }
    return '';
  }

  /**
   * Plays kubelet + deployment controller for the forks someone else creates (the controller, or
   * an apply of synth output): each Deployment labelled managed-by=meshfork in the namespace gets
   * its stand-in WorkloadEntry and the status the deployment controller writes once its pod is
   * Ready (one available replica); a deleted one loses its stand-in. Errors (a 409 when the
   * Deployment was written meanwhile is retried by the update event) go to `onError`.
   */
  async standInForForks(onError: (error: unknown) => void): Promise<SharedInformer<KubernetesObject>> {
    const apps = this.cp.kubeConfig.makeApiClient(AppsV1Api);
    const informer = new SharedInformer<KubernetesObject>(this.cp.kubeConfig, { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', namespace: NS }, { resyncMs: 0 });
    const ready = async (d: V1Deployment & KubeObj) => {
      await applyObjects(this.cp, [await this.standIn(d)]);
      const s = d.status;
      if (s?.observedGeneration === d.metadata.generation && s?.availableReplicas === 1) return;
      await apps.replaceNamespacedDeploymentStatus({
        name: d.metadata.name,
        namespace: NS,
        body: { ...d, status: { observedGeneration: d.metadata.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } },
      });
    };
    informer.onEvent((type, o) => {
      const d = o as V1Deployment & KubeObj;
      if (!isManaged(d as unknown as KubeObject)) return;
      const done =
        type === 'delete'
          ? deleteObject(this.cp, { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: d.metadata.name, namespace: NS } })
          : ready(d);
      done.catch(onError);
    });
    await informer.start();
    return informer;
  }

  async close(): Promise<void> {
    await Promise.all([...this.backends.values()].map((b) => b.close()));
    this.backends.clear();
  }

  /** The RouteConfiguration istiod generates for `proxyId`'s watch on `service`, if any. */
  async routeConfig(proxyId: string, service: string, port = PORT, ns = NS): Promise<RouteConfig | undefined> {
    const dump: ConfigDump = await this.istiod.configDump(proxyId, 'rds');
    const name = clusterName(service, '', port, ns);
    const rc = (dump.configs ?? []).map((c) => snakeKeys(c) as RouteConfig).find((c) => c.name === name);
    return rc;
  }
}

function sortForApply(objects: KubeObj[]): KubeObj[] {
  return [...objects].sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind));
}

// ---------------------------------------------------------------------------------------------
// Tier 1: what istiod generated (Envoy RouteConfiguration JSON from /debug/config_dump).

export interface RouteConfig {
  name: string;
  virtual_hosts?: Array<{ name?: string; domains?: string[]; routes?: EnvoyRoute[] }>;
}
interface EnvoyHeaderMatcher {
  name: string;
  string_match?: { exact?: string; prefix?: string; safe_regex?: { regex: string } };
  exact_match?: string;
  safe_regex_match?: { regex: string };
  present_match?: boolean;
  invert_match?: boolean;
}
interface EnvoyRoute {
  name?: string;
  match?: { prefix?: string; path?: string; headers?: EnvoyHeaderMatcher[] };
  route?: { cluster?: string; weighted_clusters?: { clusters: Array<{ name: string; weight?: number }> } };
}

/** One Envoy route reduced to what routing depends on, comparable with a VS's expectation. */
export interface RouteSummary {
  name: string;
  /** `header op value`, sorted: `baggage ~ <regex>`, `end-user = jason`. */
  headers: string[];
  /** `cluster` or `cluster*weight`, in order. */
  clusters: string[];
}

/** Converts protojson camelCase keys to snake_case (istiod's JSON uses either depending on version). */
export function snakeKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snakeKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const sk = k.startsWith('@') ? k : k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out[sk] = snakeKeys(x);
  }
  return out;
}

function headerSummary(h: EnvoyHeaderMatcher): string {
  const neg = h.invert_match ? '!' : '';
  const sm = h.string_match;
  if (sm?.safe_regex) return `${h.name} ${neg}~ ${sm.safe_regex.regex}`;
  if (sm?.exact !== undefined) return `${h.name} ${neg}= ${sm.exact}`;
  if (sm?.prefix !== undefined) return `${h.name} ${neg}^= ${sm.prefix}`;
  if (h.safe_regex_match) return `${h.name} ${neg}~ ${h.safe_regex_match.regex}`;
  if (h.exact_match !== undefined) return `${h.name} ${neg}= ${h.exact_match}`;
  if (h.present_match === true) return `${h.name} ${neg}present`;
  return `${h.name} ${neg}? ${JSON.stringify(h)}`;
}

/** The routes of the virtual host serving `host` (the only one gRPC's filtered RDS carries). */
export function summarizeRoutes(rc: RouteConfig | undefined): RouteSummary[] {
  const vh = rc?.virtual_hosts?.[0];
  return (vh?.routes ?? []).map((r) => ({
    name: r.name ?? '',
    headers: (r.match?.headers ?? []).map(headerSummary).sort(),
    clusters: r.route?.cluster
      ? [r.route.cluster]
      : (r.route?.weighted_clusters?.clusters ?? []).map((c) => `${c.name}*${c.weight ?? 0}`),
  }));
}

export function formatRoutes(routes: readonly RouteSummary[]): string {
  return routes.map((r, i) => `  ${i}. ${r.name || '(unnamed)'} [${r.headers.join(' & ')}] -> ${r.clusters.join(', ')}`).join('\n') || '  (no routes)';
}

type VsStringMatch = { exact?: string; regex?: string; prefix?: string };
interface VsHttpRoute {
  name?: string;
  match?: Array<{ headers?: Record<string, VsStringMatch>; withoutHeaders?: Record<string, VsStringMatch> }>;
  route?: Array<{ destination: { host: string; subset?: string; port?: { number: number } }; weight?: number }>;
}

/**
 * The Envoy routes a VirtualService should become for a sidecar-less client: one route per
 * match block (Istio splits OR-ed blocks into consecutive routes, each named after the HTTP
 * route), header conditions as RE2 `safe_regex` or exact matchers, destinations as
 * `outbound|<port>|<subset>|<fqdn>` clusters, nothing after the first catch-all route.
 */
export function expectedRoutes(vs: KubeObj, listenerPort = PORT): RouteSummary[] {
  const ns = vs.metadata.namespace ?? NS;
  const http = ((vs['spec'] as { http?: VsHttpRoute[] }).http ?? []);
  const out: RouteSummary[] = [];
  for (const r of http) {
    const destinations = r.route ?? [];
    const clusters = destinations.map((d) => {
      const host = d.destination.host.includes('.') ? d.destination.host : `${d.destination.host}.${ns}.svc.cluster.local`;
      const c = `outbound|${d.destination.port?.number ?? listenerPort}|${d.destination.subset ?? ''}|${host}`;
      return destinations.length > 1 ? `${c}*${d.weight ?? 0}` : c;
    });
    const catchAll = !r.match || r.match.length === 0;
    const blocks = catchAll ? [{}] : r.match!;
    for (const b of blocks) {
      // `withoutHeaders` become inverted matchers; an empty StringMatch is a presence match
      // (route.go TranslateRouteMatch, canBeConvertedToPresentMatch).
      const summary = (neg: string) => ([name, m]: [string, VsStringMatch]) =>
        m.regex !== undefined ? `${name} ${neg}~ ${m.regex}` : m.exact !== undefined ? `${name} ${neg}= ${m.exact}` : m.prefix !== undefined ? `${name} ${neg}^= ${m.prefix}` : `${name} ${neg}present`;
      const headers = [...Object.entries(b.headers ?? {}).map(summary('')), ...Object.entries(b.withoutHeaders ?? {}).map(summary('!'))].sort();
      out.push({ name: r.name ?? '', headers, clusters });
    }
    // Routes after a catch-all can never match; Istio drops them
    // (pilot/pkg/networking/core/route/route.go BuildHTTPRoutesForVirtualService).
    if (catchAll) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The golden cases (test/planner/golden.test.ts), re-synthesized into a namespace of their own so
// they can share one API server. Same planner, same inputs; only the default namespace differs.

export const SHARED_FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const GOLDEN_INPUTS = fileURLToPath(new URL('../golden/inputs/', import.meta.url));

export interface GoldenCase {
  readonly name: string;
  readonly namespace: string;
  /** Inventory files under shared/fixtures (applied as they are, into `namespace`). */
  readonly files: readonly string[];
  readonly flags?: readonly string[];
}

/** Keep in step with GOLDEN_CASES in test/planner/golden.test.ts (not imported: it registers tests). */
export const GOLDEN_CASES: readonly GoldenCase[] = [
  { name: 'bookinfo-reviews', namespace: 'g-bookinfo', files: ['bookinfo/bookinfo.yaml', 'bookinfo/virtual-service-reviews-test-v2.yaml', 'bookinfo/destination-rule-all-mtls.yaml'] },
  { name: 'boutique-cart', namespace: 'g-boutique', files: ['online-boutique/kubernetes-manifests.yaml', 'online-boutique/istio-manifests.yaml'] },
  { name: 'routegroup', namespace: 'g-routegroup', files: ['bookinfo/bookinfo.yaml', 'bookinfo/destination-rule-all-mtls.yaml', 'bookinfo/virtual-service-all-v1.yaml'] },
  { name: 'split', namespace: 'g-split', files: ['bookinfo/bookinfo.yaml', 'bookinfo/virtual-service-reviews-90-10.yaml'] },
  {
    name: 'signadot',
    namespace: 'hotrod',
    files: ['hotrod/k8s/base/route.yaml', 'hotrod/k8s/base/frontend.yaml', 'hotrod/k8s/overlays/prod/istio/virtual-service.yaml'],
    flags: ['--compat', 'signadot'],
  },
];

/** `meshfork synth` of a golden case with `-n <its namespace>`. */
export function synthGolden(c: GoldenCase): KubeObj[] {
  const r = cli('synth', ...(c.flags ?? []), '-n', c.namespace, '-f', ...c.files.map((f) => SHARED_FIXTURES + f), GOLDEN_INPUTS + c.name);
  const errors = r.stderr.split('\n').filter((l) => l && !l.startsWith('note: '));
  if (r.code !== 0 || errors.length > 0) throw new Error(`meshfork synth (${c.name}) failed (${r.code}):\n${r.stderr}`);
  return parseYamlDocs(r.stdout, `synth ${c.name}`);
}

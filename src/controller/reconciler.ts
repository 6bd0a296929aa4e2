/**
 * The in-cluster reconciler: shared informers feed work keys (keys.ts) into a rate-limited
 * de-duplicating queue; N workers reconcile one key at a time each, never one key twice at once.
 *
 *  - Sandbox key: ensure the finalizer; plan the Sandbox alone (sandbox-plan.ts); when valid,
 *    server-side apply, in the planner's order, the copies of label-selected policies its forks
 *    need, its Deployments, Services, DestinationRules and EnvoyFilters (owner
 *    reference to the Sandbox when in its namespace) and delete its objects no longer desired
 *    once no VirtualService routes to them; write status when it changed; enqueue its hosts.
 *    An invalid Sandbox gets `Ready=False` (InvalidSpec) and nothing is written or deleted for
 *    it. TTL expiry deletes the Sandbox. Deletion: its hosts are reconciled without it (routes
 *    go first); once no VirtualService holds its routes, its objects are deleted and the
 *    finalizer removed.
 *  - RouteGroup key: its status (routing key, members, conflicts).
 *  - Host key: plan the VirtualService(s) of the host from the eligible Sandboxes (routing.ts);
 *    apply meshfork's own, read-modify-write a user's (never server-side apply it), delete
 *    meshfork's own when no Sandbox is left (a user's is written back restored).
 * Errors put the key back with per-key exponential backoff; success forgets the backoff.
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, type KubernetesObject, type V1ConfigMap } from '@kubernetes/client-node';
import { API_GROUP, API_VERSION, type SandboxObject } from '../api/schema.js';
import { ClusterWriter, MAX_OBJECT_BYTES, TooLargeError, apiStatus, refOf } from '../cluster/write.js';
import { SharedInformer, type InformerTarget } from '../cluster/informer.js';
import { compareObjects, objectRef, type PlanConfig } from '../planner/plan.js';
import type { KubeObject } from '../planner/kube.js';
import { WORKLOAD_KINDS, namespaceOf, resolveHost, serviceFqdn } from '../planner/inventory.js';
import { ENVOY_FILTER_API_VERSION } from '../planner/envoy-filter.js';
import { WorkQueue } from './work-queue.js';
import { createLogger, type Logger } from './log.js';
import type { ControllerMetrics } from './metrics.js';
import { computeRouteGroupStatus } from './route-group-status.js';
import { configFromData } from './config-map.js';
import { allKeys, hostKey, hostKeysOfSandbox, keysForObject, parseKey, sandboxKey, type PolicyWatchedKind, type WatchedKind } from './keys.js';
import { planSandbox, type SandboxVerdict } from './sandbox-plan.js';
import { hostClosure, isRouted, planHost, userVirtualService } from './routing.js';
import { computeStatus, expiresAt, sameStatus, transitions, type Transition } from './status.js';
import { FINALIZER, SANDBOX_NAMESPACE_LABEL, baselineServiceOf, canonicalJson, forkNamespaces, generatedFor, idOf, isManaged, sandboxKindObjects, serverMeta, type ClusterView } from './view.js';

/** Annotation holding a digest of what the controller last applied; an equal digest skips the apply. */
export const APPLIED_DIGEST_ANNOTATION = 'meshfork.dev/applied-digest';

export interface ReconcileResult {
  /** Reconcile the key again after this long (a wait the watch does not end, or a TTL). */
  readonly requeueAfterMs?: number;
}

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  /** Watch only these namespaces. @default all namespaces */
  readonly namespaces?: readonly string[];
  /** Concurrent reconciles. @default 4 */
  readonly workers?: number;
  readonly config?: Partial<PlanConfig>;
  /** Informer resync period. @default 600_000 */
  readonly resyncMs?: number;
  /** How often a deletion re-checks that its routes are gone. @default 1_000 */
  readonly routeWaitMs?: number;
  readonly now?: () => Date;
  /** Where the JSON log lines go (log.ts). @default createLogger(): stderr, level info */
  readonly logger?: Logger;
  /** Prometheus metrics to record into (see metrics.ts). */
  readonly metrics?: ControllerMetrics;
  /** Read the configuration from this ConfigMap (key config.yaml) and follow its edits. */
  readonly configMap?: { readonly namespace: string; readonly name: string };
}

const SANDBOX_PLURAL = 'sandboxes';

/**
 * The planner's label-selected policy kinds (POLICY_KINDS), every object of them: a user's are
 * the baseline the planner copies for forks, meshfork's own are those copies. The versions are
 * those served by Istio 1.22+ (the security, networking and telemetry kinds went v1 in 1.22;
 * WasmPlugin is still v1alpha1). Objects keep the watched apiVersion, and a copy
 * is written with its policy's, so these are the versions the controller writes.
 * https://istio.io/latest/news/releases/1.22.x/announcing-1.22/#istio-apis-promoted-to-v1
 */
const POLICY_TARGETS: Record<PolicyWatchedKind, Omit<InformerTarget, 'namespace'>> = {
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  PeerAuthentication: { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', plural: 'peerauthentications' },
  RequestAuthentication: { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', plural: 'requestauthentications' },
  AuthorizationPolicy: { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies' },
  Sidecar: { apiVersion: 'networking.istio.io/v1', kind: 'Sidecar', plural: 'sidecars' },
  Telemetry: { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', plural: 'telemetries' },
  WasmPlugin: { apiVersion: 'extensions.istio.io/v1alpha1', kind: 'WasmPlugin', plural: 'wasmplugins' },
};

const TARGETS: Record<WatchedKind, Omit<InformerTarget, 'namespace'>> = {
  Sandbox: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'Sandbox', plural: SANDBOX_PLURAL },
  RouteGroup: { apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'RouteGroup', plural: 'routegroups' },
  Deployment: { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  Service: { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  DestinationRule: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', plural: 'destinationrules' },
  VirtualService: { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', plural: 'virtualservices' },
  // Every EnvoyFilter, a user's too: a user's one under a generated name is a problem of the
  // Sandbox (the planner's replacedObjectProblems), reported in its status.
  EnvoyFilter: { apiVersion: ENVOY_FILTER_API_VERSION, kind: 'EnvoyFilter', plural: 'envoyfilters' },
  ...POLICY_TARGETS,
};

/** An error as one line: an API error's code and the API server's message, not the HTTP dump. */
export function describeError(error: unknown): string {
  if (error instanceof ApiException) {
    const body: unknown = typeof error.body === 'string' ? safeJson(error.body) : error.body;
    const message = typeof body === 'object' && body !== null && typeof (body as { message?: unknown }).message === 'string' ? (body as { message: string }).message : String(error.body);
    return `HTTP ${error.code}: ${message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function digest(object: KubeObject): string {
  return createHash('sha256').update(JSON.stringify(object)).digest('hex').slice(0, 32);
}

export class Controller {
  readonly queue: WorkQueue;
  private readonly informers = new Map<WatchedKind, Array<SharedInformer<KubernetesObject>>>();
  private readonly writer: ClusterWriter;
  private readonly customObjects: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly workers: Array<Promise<void>> = [];
  private synced = false;
  /** Set by stop(); a start() still loading its caches then returns without starting workers. */
  private stopping = false;
  private readonly log: Logger;
  private readonly now: () => Date;
  /** Why the VirtualService of a host (FQDN) could not be written, until it is (for status). */
  private readonly hostErrors = new Map<string, string>();
  /** The configuration in effect (the last good one of the ConfigMap, when one is watched). */
  private config: Partial<PlanConfig> | undefined;
  private configInformer: SharedInformer<V1ConfigMap & KubernetesObject> | undefined;
  /** Reconciles finished, by key kind and result (for tests and metrics). */
  readonly counts = new Map<string, number>();

  constructor(private readonly options: ControllerOptions) {
    this.writer = new ClusterWriter(options.kubeConfig);
    this.customObjects = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 60_000 });
    this.log = options.logger ?? createLogger();
    this.now = options.now ?? (() => new Date());
    this.config = options.config;
    this.queue.onDequeue = (key, waitedMs) => options.metrics?.queueSeconds.observe({ kind: key.split('/')[0] }, waitedMs / 1000);
  }

  /** Whether the caches have synced (readiness). */
  get hasSynced(): boolean {
    return this.synced;
  }

  /** Objects labelled managed-by=meshfork in the caches, by kind (a metric). */
  managedCounts(): Record<string, number> {
    const view = this.view();
    const count = (list: readonly KubeObject[]) => list.filter(isManaged).length;
    return {
      Deployment: count(view.deployments),
      Service: count(view.services),
      DestinationRule: count(view.destinationRules),
      VirtualService: count(view.virtualServices),
      EnvoyFilter: count(view.envoyFilters),
      ...Object.fromEntries(Object.keys(POLICY_TARGETS).map((kind) => [kind, count(view.policies.filter((o) => o.kind === kind))])),
    };
  }

  /** Starts the informers, waits until their caches are synced, enqueues every key and starts the workers. */
  async start(): Promise<void> {
    const namespaces = this.options.namespaces?.length ? this.options.namespaces : [undefined];
    for (const [kind, target] of Object.entries(TARGETS) as Array<[WatchedKind, InformerTarget]>) {
      const list = namespaces.map(
        (namespace) =>
          new SharedInformer<KubernetesObject>(this.options.kubeConfig, namespace === undefined ? target : { ...target, namespace }, {
            resyncMs: this.options.resyncMs ?? 600_000,
            onError: (t, error) => {
              this.options.metrics?.apiErrors.inc({ code: String(apiStatus(error) ?? 0) });
              this.log.error({ kind: t.kind, namespace: t.namespace, error: describeError(error) }, 'list/watch failed; restarting');
            },
          }),
      );
      for (const informer of list) informer.onEvent((_type, object) => this.onEvent(kind, object));
      this.informers.set(kind, list);
    }
    if (this.options.configMap !== undefined) await this.watchConfigMap(this.options.configMap);
    await Promise.all([...this.informers.values()].flat().map((i) => i.start()));
    if (this.stopping) return;
    this.synced = true;
    for (const key of allKeys(this.view())) this.queue.add(key);
    for (let i = 0; i < (this.options.workers ?? 4); i++) this.workers.push(this.work());
  }

  /** Stops taking keys, lets reconciles in flight finish, stops the informers. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.queue.shutdown();
    await this.queue.drained();
    await Promise.all(this.workers);
    await Promise.all([...this.informers.values()].flat().map((i) => i.stop()));
    await this.configInformer?.stop();
  }

  /** The configuration in effect. */
  get currentConfig(): Partial<PlanConfig> | undefined {
    return this.config;
  }

  /**
   * Follows the ConfigMap: a valid version replaces the configuration and every key is
   * reconciled again; an invalid one is logged and recorded as a Warning Event on the ConfigMap,
   * and the last good configuration stays (also when the ConfigMap is deleted).
   */
  private async watchConfigMap(ref: { namespace: string; name: string }): Promise<void> {
    const informer = new SharedInformer<V1ConfigMap & KubernetesObject>(this.options.kubeConfig, { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespace: ref.namespace }, { resyncMs: 0 });
    let lastVersion: string | undefined;
    informer.onEvent((type, cm) => {
      if (cm.metadata?.name !== ref.name || type === 'delete' || cm.metadata.resourceVersion === lastVersion) return;
      lastVersion = cm.metadata.resourceVersion;
      const result = configFromData(cm.data);
      const key = `ConfigMap/${ref.namespace}/${ref.name}`;
      if ('problems' in result) {
        const message = result.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
        this.log.error({ key, namespace: ref.namespace, problems: message }, 'configuration refused; the last good one stays');
        void this.configEvent(cm, 'Warning', 'InvalidConfig', `refused, the last good configuration stays: ${message}`);
        return;
      }
      this.config = { ...(this.options.config ?? {}), ...result.config };
      this.log.info({ key, namespace: ref.namespace, resourceVersion: lastVersion }, 'configuration loaded');
      void this.configEvent(cm, 'Normal', 'ConfigLoaded', 'configuration in effect');
      if (this.synced) this.resync();
    });
    this.configInformer = informer;
    await informer.start();
  }

  private async configEvent(cm: V1ConfigMap, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const m = cm.metadata ?? {};
    const namespace = m.namespace ?? 'default';
    const log = this.log.child({ key: `ConfigMap/${namespace}/${m.name}`, namespace });
    await this.postEvent({ apiVersion: 'v1', kind: 'ConfigMap', name: m.name ?? '', namespace, uid: m.uid, resourceVersion: m.resourceVersion }, type, reason, message, log);
  }


  /** Enqueues every key (what the caches hold), as after the first sync. */
  resync(): void {
    for (const key of allKeys(this.view())) this.queue.add(key);
  }

  /** Resolves once no key is waiting, delayed by less than `horizonMs`, or being processed. */
  async idle(horizonMs = 1_000): Promise<void> {
    for (;;) {
      const m = this.queue.metrics();
      if (m.depth === 0 && m.processing === 0 && this.queue.nextDelayedWithin(horizonMs) === false) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A snapshot of the caches. */
  view(): ClusterView {
    const list = (kind: WatchedKind) => (this.informers.get(kind) ?? []).flatMap((i) => i.list()) as unknown as KubeObject[];
    return {
      sandboxes: list('Sandbox') as unknown as SandboxObject[],
      routeGroups: list('RouteGroup') as unknown as ClusterView['routeGroups'],
      deployments: list('Deployment'),
      services: list('Service'),
      destinationRules: list('DestinationRule'),
      virtualServices: list('VirtualService'),
      envoyFilters: list('EnvoyFilter'),
      policies: (Object.keys(POLICY_TARGETS) as PolicyWatchedKind[]).flatMap(list),
    };
  }

  private onEvent(kind: WatchedKind, object: KubernetesObject): void {
    if (!this.synced) return; // the first pass after sync enqueues every key
    try {
      for (const key of keysForObject(kind, object as KubeObject, this.view())) this.queue.add(key);
    } catch (error) {
      // An object of an unexpected shape must not stop the informer; the next resync retries it.
      this.log.error({ kind, name: object.metadata?.name, namespace: object.metadata?.namespace, error: describeError(error) }, 'mapping a change to work keys failed');
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = Date.now();
      const log = this.logFor(key);
      try {
        const result = await this.reconcile(key, log);
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
        this.count(key, 'success', (Date.now() - started) / 1000);
      } catch (error) {
        const delay = this.queue.addRateLimited(key);
        this.count(key, 'error', (Date.now() - started) / 1000);
        if (error instanceof ApiException) this.options.metrics?.apiErrors.inc({ code: String(error.code) });
        log.error({ retryInMs: delay, error: describeError(error), durationMs: Date.now() - started }, 'reconcile failed; retrying');
      } finally {
        this.queue.done(key);
      }
    }
  }

  private count(key: string, result: string, seconds: number): void {
    const kind = key.split('/')[0] ?? '';
    const name = `${kind}/${result}`;
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    this.options.metrics?.reconciles.inc({ kind, result });
    this.options.metrics?.reconcileSeconds.observe({ kind, result }, seconds);
  }

  /** A logger binding the fields of a work key: key, namespace, and sandbox for a Sandbox key. */
  private logFor(key: string): Logger {
    const parsed = parseKey(key);
    return this.log.child({ key, namespace: parsed.namespace, ...(parsed.kind === 'Sandbox' ? { sandbox: parsed.name } : {}) });
  }

  /** Reconciles one key; its lines carry the key's fields, and a successful end logs `reconciled` (debug). */
  async reconcile(key: string, log: Logger = this.logFor(key)): Promise<ReconcileResult> {
    const started = Date.now();
    const parsed = parseKey(key);
    const result =
      parsed.kind === 'Sandbox'
        ? await this.reconcileSandbox(parsed.namespace, parsed.name, log)
        : parsed.kind === 'RouteGroup'
          ? await this.reconcileRouteGroup(parsed.namespace, parsed.name, log)
          : await this.reconcileHost(parsed.namespace, parsed.service, log);
    log.debug({ durationMs: Date.now() - started, ...result }, 'reconciled');
    return result;
  }

  /** RouteGroup status: key, members, conflicts; written only when it changed. */
  private async reconcileRouteGroup(namespace: string, name: string, log: Logger): Promise<ReconcileResult> {
    const view = this.view();
    const group = view.routeGroups.find((g) => namespaceOf(g) === namespace && g.metadata.name === name);
    if (group === undefined) return {};
    const status = computeRouteGroupStatus(group, view, this.config, this.now());
    if (canonicalJson(status) === canonicalJson(group.status ?? {})) return {};
    try {
      await this.customObjects.replaceNamespacedCustomObjectStatus({
        group: API_GROUP,
        version: API_VERSION,
        namespace,
        plural: 'routegroups',
        name,
        body: { ...group, status },
        fieldManager: this.writer.fieldManager,
      });
      log.info({ object: objectRef(group) }, 'status written');
    } catch (error) {
      const code = apiStatus(error);
      if (code !== 409 && code !== 404) throw error;
    }
    return {};
  }

  private async reconcileSandbox(namespace: string, name: string, log: Logger): Promise<ReconcileResult> {
    const view = this.view();
    const sandbox = view.sandboxes.find((s) => namespaceOf(s) === namespace && s.metadata.name === name);
    if (sandbox === undefined) return this.collectOrphans({ namespace, name }, view, log);
    if (serverMeta(sandbox).deletionTimestamp !== undefined) return this.finalize(sandbox, view, log);
    const finalizers = [...(serverMeta(sandbox).finalizers ?? [])];
    if (!finalizers.includes(FINALIZER)) {
      // The update event brings the Sandbox back with the finalizer; the reconcile goes on then.
      await this.patchSandbox(sandbox, { finalizers: [...finalizers, FINALIZER] });
      log.info({ object: objectRef(sandbox) }, 'finalizer added');
      return {};
    }
    const now = this.now();
    let verdict = planSandbox(sandbox, view, this.config);
    if (verdict.problems.some((p) => p.code === 'BaselineNotFound')) {
      // Say what the missing baseline is (a StatefulSet, ...), as the planner does with files.
      const workloads = await this.workloadsNamedBy(sandbox, view, log);
      if (workloads.length > 0) verdict = planSandbox(sandbox, { ...view, workloads }, this.config);
    }
    const expiry = expiresAt(sandbox, now, verdict.ttl);
    if (expiry !== undefined && Date.parse(expiry) <= now.getTime()) {
      log.info({ object: objectRef(sandbox), expiresAt: expiry }, 'TTL expired; deleting the Sandbox');
      await this.writer.objects.delete(sandbox as KubernetesObject, undefined, undefined, undefined, undefined, undefined, {
        preconditions: { uid: serverMeta(sandbox).uid! },
      });
      return {};
    }

    let requeueAfterMs: number | undefined;
    if (verdict.problems.length === 0) {
      for (const object of verdict.objects) await this.applyOwned(this.decorate(object, sandbox), view, log);
      requeueAfterMs = await this.deleteStale(sandbox, verdict, view, log);
    }
    await this.writeStatus(sandbox, verdict, log);
    for (const key of this.hostKeys(sandbox, verdict, view)) this.queue.add(key);
    if (expiry !== undefined) {
      const untilExpiry = Math.max(0, Date.parse(expiry) - now.getTime());
      requeueAfterMs = Math.min(requeueAfterMs ?? Number.POSITIVE_INFINITY, untilExpiry + 100, 2 ** 31 - 1);
    }
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  }

  /**
   * Identities of the workloads of other kinds (WORKLOAD_KINDS) named by the Sandbox's forks
   * that have no Deployment of that name: one GET per kind and name. Best effort, for the
   * message only: a kind the cluster does not serve, a 403 or an unreachable API server leaves
   * that kind out.
   */
  private async workloadsNamedBy(sandbox: SandboxObject, view: ClusterView, log: Logger): Promise<KubeObject[]> {
    const missing = new Set(
      sandbox.spec.forks
        .map((f) => `${f.forkOf.namespace ?? namespaceOf(sandbox)}/${f.forkOf.name}`)
        .filter((ref) => !view.deployments.some((d) => `${namespaceOf(d)}/${d.metadata.name}` === ref)),
    );
    const found: KubeObject[] = [];
    for (const ref of missing) {
      const [namespace = '', name = ''] = ref.split('/');
      for (const [kind, apiVersion] of Object.entries(WORKLOAD_KINDS)) {
        try {
          await this.writer.objects.read({ apiVersion, kind, metadata: { name, namespace } });
          found.push({ apiVersion, kind, metadata: { name, namespace } });
        } catch (error) {
          if (apiStatus(error) !== 404) log.debug({ object: `${kind} ${ref}`, error: describeError(error) }, 'cannot read a workload a fork names');
        }
      }
    }
    return found;
  }

  private hostKeys(sandbox: SandboxObject, verdict: SandboxVerdict, view: ClusterView): string[] {
    return [...new Set([...verdict.hosts.map((h) => hostKey(h.namespace, h.service)), ...hostKeysOfSandbox(view, sandbox)])];
  }

  /** Owner reference (same namespace only), sandbox-namespace label and the applied digest. */
  private decorate(object: KubeObject, sandbox: SandboxObject): KubeObject {
    const labels = { ...(object.metadata.labels ?? {}), [SANDBOX_NAMESPACE_LABEL]: namespaceOf(sandbox) };
    const ownerReferences =
      namespaceOf(object) === namespaceOf(sandbox)
        ? [{ apiVersion: sandbox.apiVersion, kind: sandbox.kind, name: sandbox.metadata.name, uid: serverMeta(sandbox).uid!, controller: true, blockOwnerDeletion: true }]
        : undefined;
    return this.digested({ ...object, metadata: { ...object.metadata, labels, ...(ownerReferences ? { ownerReferences } : {}) } });
  }

  /** Server-side apply unless the cached object carries the same applied digest. */
  private async applyOwned(object: KubeObject, view: ClusterView, log: Logger): Promise<void> {
    const cached = [...sandboxKindObjects(view), ...view.virtualServices].find(
      (o) => o.kind === object.kind && objectRef(o) === objectRef(object),
    );
    if (cached !== undefined && cached.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION] === object.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION]) return;
    await this.writer.apply(object as KubernetesObject, (cached as KubernetesObject | undefined) ?? undefined);
    log.info({ object: objectRef(object) }, 'applied');
  }

  /**
   * Deletes the Sandbox's objects it no longer wants, once no VirtualService routes to its
   * stale fork Services; returns a requeue delay while routes still point at them.
   */
  private async deleteStale(sandbox: SandboxObject, verdict: SandboxVerdict, view: ClusterView, log: Logger): Promise<number | undefined> {
    const wanted = new Set(verdict.objects.map(objectRef));
    return this.deleteUnrouted(
      generatedFor(view, idOf(sandbox)).filter((o) => !wanted.has(objectRef(o))),
      view,
      log,
    );
  }

  /**
   * Deletes generated objects once no VirtualService routes to their fork Services; returns a
   * requeue delay while one still does.
   */
  private async deleteUnrouted(objects: readonly KubeObject[], view: ClusterView, log: Logger): Promise<number | undefined> {
    if (objects.length === 0) return undefined;
    const hosts = new Set(objects.filter((o) => o.kind === 'Service').map((o) => `${o.metadata.name}.${namespaceOf(o)}.svc.cluster.local`));
    const stillRouted = view.virtualServices.some((vs) =>
      ((vs.spec as { http?: Array<{ route?: Array<{ destination?: { host?: string } }> }> } | undefined)?.http ?? []).some((r) =>
        (r.route ?? []).some((d) => typeof d.destination?.host === 'string' && hosts.has(resolveHost(d.destination.host, namespaceOf(vs)))),
      ),
    );
    if (stillRouted) return this.options.routeWaitMs ?? 1_000;
    await this.deleteAll(objects, log);
    return undefined;
  }

  /**
   * Deletes generated objects (deleteManaged: meshfork's only, uid-checked), logging each delete
   * sent, in the reverse of the planner's apply order: fork Deployments before the copies of
   * their baseline's policies, so no fork pod runs without its baseline's DENY policies.
   */
  private async deleteAll(objects: readonly KubeObject[], log: Logger): Promise<void> {
    for (const object of [...objects].sort((a, b) => compareObjects(b, a))) {
      if (await this.writer.deleteManaged(refOf(object as KubernetesObject))) log.info({ object: objectRef(object) }, 'deleted');
    }
  }

  /**
   * Objects generated for a Sandbox that no longer exists (removed without its finalizer running,
   * e.g. with the finalizer edited away while the controller was down): their routes go first
   * (the hosts are reconciled without it), then they are deleted. The Sandbox's absence is
   * confirmed with a read, so a cache that has not seen a new Sandbox yet deletes nothing.
   */
  private async collectOrphans(id: { namespace: string; name: string }, view: ClusterView, log: Logger): Promise<ReconcileResult> {
    const orphans = generatedFor(view, id);
    if (orphans.length === 0) return {};
    const live = await this.writer.read({ apiVersion: `${API_GROUP}/${API_VERSION}`, kind: 'Sandbox', namespace: id.namespace, name: id.name });
    if (live !== undefined) return { requeueAfterMs: this.options.routeWaitMs ?? 1_000 };
    for (const service of orphans) {
      const baseline = service.kind === 'Service' ? baselineServiceOf(service) : undefined;
      if (baseline) this.queue.add(hostKey(baseline.namespace, baseline.service));
    }
    const wait = await this.deleteUnrouted(orphans, view, log);
    if (wait === undefined) log.info({ objects: orphans.map(objectRef) }, 'deleted objects of a Sandbox that no longer exists');
    return wait === undefined ? {} : { requeueAfterMs: wait };
  }

  private async finalize(sandbox: SandboxObject, view: ClusterView, log: Logger): Promise<ReconcileResult> {
    const finalizers = [...(serverMeta(sandbox).finalizers ?? [])];
    if (!finalizers.includes(FINALIZER)) return {};
    const verdict = planSandbox(sandbox, view, this.config);
    for (const key of this.hostKeys(sandbox, verdict, view)) this.queue.add(key);
    // Routes go first: the host reconciles drop a Sandbox being deleted.
    if (isRouted(view, sandbox)) return { requeueAfterMs: this.options.routeWaitMs ?? 1_000 };
    await this.deleteAll(generatedFor(view, idOf(sandbox)), log);
    await this.patchSandbox(sandbox, { finalizers: finalizers.filter((f) => f !== FINALIZER) });
    log.info({ object: objectRef(sandbox) }, 'Sandbox cleaned up; finalizer removed');
    return {};
  }

  /** JSON merge patch of the Sandbox's metadata, checked against the cached resourceVersion. */
  private async patchSandbox(sandbox: SandboxObject, metadata: Record<string, unknown>): Promise<void> {
    try {
      await this.patchSandboxMetadata(sandbox, metadata);
    } catch (error) {
      // 404: already gone (its finalizer was removed by an earlier reconcile the cache had not seen).
      if (apiStatus(error) !== 404) throw error;
    }
  }

  private async patchSandboxMetadata(sandbox: SandboxObject, metadata: Record<string, unknown>): Promise<void> {
    await this.writer.objects.patch(
      {
        apiVersion: sandbox.apiVersion,
        kind: sandbox.kind,
        metadata: { name: sandbox.metadata.name, namespace: namespaceOf(sandbox), resourceVersion: serverMeta(sandbox).resourceVersion!, ...metadata },
      },
      undefined,
      undefined,
      this.writer.fieldManager,
      undefined,
      PatchStrategy.MergePatch,
    );
  }

  private async writeStatus(sandbox: SandboxObject, verdict: SandboxVerdict, log: Logger): Promise<void> {
    const status = computeStatus(verdict, this.view(), this.now(), this.hostErrors);
    if (sameStatus(status, sandbox.status)) return;
    let stored: { metadata?: { resourceVersion?: string } } | undefined;
    try {
      stored = (await this.customObjects.replaceNamespacedCustomObjectStatus({
        group: API_GROUP,
        version: API_VERSION,
        namespace: namespaceOf(sandbox),
        plural: SANDBOX_PLURAL,
        name: sandbox.metadata.name,
        body: { ...sandbox, status },
        fieldManager: this.writer.fieldManager,
      })) as { metadata?: { resourceVersion?: string } };
    } catch (error) {
      // 409: the cache was behind, the newer Sandbox's event reconciles it again; 404: it is gone.
      const code = apiStatus(error);
      if (code !== 409 && code !== 404) throw error;
      return;
    }
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    log.info({ object: objectRef(sandbox), ready: ready?.status, reason: ready?.reason }, 'status written');
    for (const t of transitions(sandbox.status, status)) await this.recordEvent(sandbox, stored?.metadata?.resourceVersion, t, log);
  }

  /** A Kubernetes Event on the Sandbox for a condition transition. */
  private async recordEvent(sandbox: SandboxObject, resourceVersion: string | undefined, t: Transition, log: Logger): Promise<void> {
    const namespace = namespaceOf(sandbox);
    await this.postEvent(
      { apiVersion: sandbox.apiVersion, kind: sandbox.kind, name: sandbox.metadata.name, namespace, uid: serverMeta(sandbox).uid, resourceVersion },
      t.status === 'True' ? 'Normal' : 'Warning',
      t.reason,
      `${t.type}=${t.status}: ${t.message}`,
      log,
    );
  }

  /** Records a core/v1 Event about an object; a failure is logged, never retried. */
  private async postEvent(
    about: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string | undefined; resourceVersion?: string | undefined },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    log: Logger,
  ): Promise<void> {
    const now = this.now();
    try {
      await this.core.createNamespacedEvent({
        namespace: about.namespace,
        body: {
          metadata: { name: `${about.name}.${now.getTime().toString(16)}${randomBytes(2).toString('hex')}`, namespace: about.namespace },
          involvedObject: {
            apiVersion: about.apiVersion,
            kind: about.kind,
            name: about.name,
            namespace: about.namespace,
            ...(about.uid ? { uid: about.uid } : {}),
            ...(about.resourceVersion ? { resourceVersion: about.resourceVersion } : {}),
          },
          type,
          reason,
          message: message.slice(0, 1024),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: 'meshfork-controller' },
          reportingComponent: 'meshfork.dev/controller',
          reportingInstance: hostname(),
        },
      });
    } catch (error) {
      log.error({ reason, error: describeError(error) }, 'recording an Event failed');
    }
  }


  private async reconcileHost(namespace: string, service: string, hostLog: Logger): Promise<ReconcileResult> {
    const view = this.view();
    const closureNamespaces = new Set(hostClosure(view, { namespace, service }).map((h) => h.namespace));
    const verdicts = new Map<string, SandboxVerdict>();
    for (const sandbox of view.sandboxes) {
      if (!forkNamespaces(sandbox).some((ns) => closureNamespaces.has(ns))) continue;
      verdicts.set(objectRef(sandbox), planSandbox(sandbox, view, this.config));
    }
    const plan = planHost(view, { namespace, service }, verdicts, this.config);
    for (const problem of plan.excluded) hostLog.info({ object: problem.object, path: problem.path, problem: problem.message }, 'left out of the routes of a host');
    // Write lines name the Sandboxes routed by what is written.
    const log = hostLog.child({ sandboxes: plan.routed.map((s) => `${namespaceOf(s)}/${s.metadata.name}`) });
    const hosts = hostClosure(view, { namespace, service }).map((h) => serviceFqdn(h.service, h.namespace));
    // Sandboxes whose RoutingReady message reads the write failures of these hosts.
    const concerned = () => [...verdicts.values()].filter((v) => v.hosts.some((h) => hosts.includes(serviceFqdn(h.service, h.namespace))));
    let writing: KubeObject | undefined;
    try {
      for (const vs of plan.apply) {
        writing = vs;
        await this.applyOwned(this.digested(vs), view, log);
      }
      for (const vs of plan.update) {
        writing = vs;
        const cached = view.virtualServices.find((o) => objectRef(o) === objectRef(vs));
        if (cached !== undefined && userVirtualService(view, plan.input, cached, this.config) === undefined) continue;
        const { written } = await this.writer.update<KubernetesObject>(refOf(vs as KubernetesObject), (fresh) => userVirtualService(view, plan.input, fresh as KubeObject, this.config) as KubernetesObject | undefined);
        if (written) log.info({ object: objectRef(vs) }, 'updated the routes of a user VirtualService');
      }
      for (const vs of plan.delete) {
        writing = vs;
        await this.deleteAll([vs], log);
      }
    } catch (error) {
      const tooLarge = error instanceof TooLargeError;
      const message = tooLarge
        ? `${objectRef(writing!)} would be ${error.bytes} bytes with the routes of ${plan.routed.length} Sandbox${plan.routed.length === 1 ? '' : 'es'}, over the ${MAX_OBJECT_BYTES} the API server can store (etcd --max-request-bytes); it is left as it was: delete Sandboxes that fork this host, or split the VirtualService's routes over several VirtualServices`
        : `${objectRef(writing!)} could not be written: ${describeError(error)}`;
      if (hosts.some((h) => this.hostErrors.get(h) !== message)) {
        for (const h of hosts) this.hostErrors.set(h, message);
        for (const v of concerned()) this.queue.add(sandboxKey(namespaceOf(v.sandbox), v.sandbox.metadata.name));
      }
      // Retrying the same write cannot succeed: a change of a Sandbox or VirtualService of the host enqueues it again.
      if (tooLarge) {
        log.error({ object: objectRef(writing!), bytes: error.bytes, limit: MAX_OBJECT_BYTES }, 'VirtualService too large; not written');
        return {};
      }
      throw error;
    }
    if (hosts.some((h) => this.hostErrors.has(h))) {
      for (const h of hosts) this.hostErrors.delete(h);
      for (const v of concerned()) this.queue.add(sandboxKey(namespaceOf(v.sandbox), v.sandbox.metadata.name));
    }
    return {};
  }

  private digested(object: KubeObject): KubeObject {
    return { ...object, metadata: { ...object.metadata, annotations: { ...(object.metadata.annotations ?? {}), [APPLIED_DIGEST_ANNOTATION]: digest(object) } } };
  }
}

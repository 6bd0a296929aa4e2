/**
 * `meshfork doctor`: preflight checks against a live cluster, one line each (`ok`, `warn`,
 * `fail`) with what to do; exit 1 when any check fails.
 *  - the API server answers (its version);
 *  - Istio's networking CRDs are served (VirtualService, DestinationRule, EnvoyFilter);
 *  - meshfork's CRDs are installed and equal to this CLI's (`meshfork crds`);
 *  - a controller holds its Lease and renews it;
 *  - the admission webhooks the chart installs (if enabled) can be called: caBundle set, their
 *    Service has a ready endpoint (none installed: reported, not a failure);
 *  - every namespace Sandboxes fork into has sidecar injection or ambient mode on;
 *  - no host has two user VirtualServices for the mesh in one namespace (IST0109: sidecars use
 *    only the oldest, so meshfork's routes in the other are ignored).
 */
import { AdmissionregistrationV1Api, ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubernetesObjectApi, VersionApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { customResourceDefinitions } from '../../api/crd.js';
import { GROUP_VERSION } from '../../api/schema.js';
import { appliesToMesh, virtualServiceHosts } from '../../planner/virtual-service.js';
import { isManaged, type KubeObject } from '../../planner/kube.js';
import { escapeText } from '../../api/problem.js';

export type Verdict = 'ok' | 'warn' | 'fail';
export interface Check {
  readonly verdict: Verdict;
  readonly name: string;
  readonly detail: string;
}

export interface DoctorOptions {
  kubeConfig: KubeConfig;
  /** Namespace and name of the controller's Lease. */
  lease: { namespace: string; name: string };
  /** Namespaces to look at; undefined: every namespace. */
  namespaces?: readonly string[];
  now?: Date;
}

const ISTIO_KINDS = ['VirtualService', 'DestinationRule', 'EnvoyFilter'] as const;
/** A Lease not renewed for this long has no live holder (the controller renews every 2 s, lease 12 s). */
const LEASE_STALE_MS = 30_000;

function apiMessage(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      return (JSON.parse(String(error.body)) as { message?: string }).message ?? `HTTP ${error.code}`;
    } catch {
      return `HTTP ${error.code}`;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/** The labels that put a namespace's pods in the mesh (sidecar injection or ambient). */
export function meshMode(labels: Readonly<Record<string, string>> | undefined): string | undefined {
  if (labels?.['istio-injection'] === 'enabled') return 'istio-injection=enabled';
  if (labels?.['istio.io/rev'] !== undefined) return `istio.io/rev=${labels['istio.io/rev']}`;
  if (labels?.['istio.io/dataplane-mode'] === 'ambient') return 'istio.io/dataplane-mode=ambient';
  return undefined;
}

/**
 * Hosts with more than one user VirtualService for the mesh in one namespace, as
 * `host: ns/a, ns/b` (oldest first, as Istio picks the oldest).
 */
export function conflictingVirtualServices(virtualServices: readonly KubeObject[]): string[] {
  const byHost = new Map<string, KubeObject[]>();
  for (const vs of virtualServices.filter((v) => !isManaged(v) && appliesToMesh(v))) {
    for (const host of virtualServiceHosts(vs)) {
      const key = `${vs.metadata.namespace ?? 'default'} ${host}`;
      byHost.set(key, [...(byHost.get(key) ?? []), vs]);
    }
  }
  const created = (o: KubeObject) => String((o.metadata as { creationTimestamp?: string | Date }).creationTimestamp ?? '');
  return [...byHost]
    .filter(([, list]) => list.length > 1)
    .map(([key, list]) => `${key.split(' ')[1]}: ${[...list].sort((a, b) => new Date(created(a)).getTime() - new Date(created(b)).getTime() || a.metadata.name.localeCompare(b.metadata.name)).map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`).join(', ')}`)
    .sort();
}

/**
 * The first path at which `actual` lacks a field of `expected` or has another value (lists
 * element by element, same length), or undefined when it has them all.
 */
export function firstDifference(actual: unknown, expected: unknown, path = ''): string | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return path || '.';
    for (let i = 0; i < expected.length; i++) {
      const d = firstDifference(actual[i], expected[i], `${path}[${i}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return path || '.';
    for (const [k, v] of Object.entries(expected)) {
      const d = Object.hasOwn(actual, k) ? firstDifference((actual as Record<string, unknown>)[k], v, `${path}.${k}`) : `${path}.${k}`;
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return actual === expected ? undefined : path || '.';
}

/** A Mutating/ValidatingWebhookConfiguration as read (the fields the check needs). */
export interface WebhookConfigurationLike {
  readonly kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';
  readonly metadata: { readonly name: string };
  readonly webhooks?: ReadonlyArray<{
    readonly name: string;
    readonly failurePolicy?: string;
    readonly clientConfig: { readonly caBundle?: string; readonly url?: string; readonly service?: { readonly namespace: string; readonly name: string } };
  }>;
}

/** Ready endpoints of a Service, from its EndpointSlices; undefined when the Service does not exist. */
export type ServiceEndpoints = (namespace: string, name: string) => number | undefined;

/** The chart's webhook configurations are named `meshfork-*` (or `meshfork`), their webhooks `*.meshfork.dev`. */
export function isMeshforkWebhookConfiguration(configuration: WebhookConfigurationLike): boolean {
  const name = configuration.metadata.name;
  return name === 'meshfork' || name.startsWith('meshfork-') || (configuration.webhooks ?? []).some((w) => w.name.endsWith('.meshfork.dev'));
}

/**
 * The `webhooks` checks: for every webhook of meshfork's configurations, whether the API server can
 * call it (a caBundle to trust its certificate; its Service with a ready endpoint). A webhook
 * that cannot be called is `fail` when its failurePolicy is Fail (writes it covers are refused),
 * else `warn` (writes go through without it). No configurations: webhooks are disabled, `ok`.
 */
export function webhookChecks(configurations: readonly WebhookConfigurationLike[], endpoints: ServiceEndpoints): Check[] {
  const ours = configurations.filter(isMeshforkWebhookConfiguration);
  if (ours.length === 0) return [{ verdict: 'ok', name: 'webhooks', detail: 'no meshfork admission webhook configurations (webhooks disabled in the chart): nothing to reach' }];
  const checks: Check[] = [];
  for (const configuration of ours) {
    for (const webhook of configuration.webhooks ?? []) {
      const where = `${configuration.kind} ${configuration.metadata.name} webhook ${webhook.name}`;
      const problems: string[] = [];
      if (!webhook.clientConfig.caBundle) problems.push('no caBundle (the controller writes it once it runs; with cert-manager, its CA injector)');
      const service = webhook.clientConfig.service;
      let reach = webhook.clientConfig.url !== undefined ? `URL ${webhook.clientConfig.url}` : 'no Service or URL';
      if (service !== undefined) {
        const ready = endpoints(service.namespace, service.name);
        reach = `Service ${service.namespace}/${service.name}`;
        if (ready === undefined) problems.push(`its Service ${service.namespace}/${service.name} does not exist`);
        else if (ready === 0) problems.push(`its Service ${service.namespace}/${service.name} has no ready endpoint (is the controller running and ready?)`);
        else reach = `${reach} has ${ready} ready endpoint${ready === 1 ? '' : 's'}`;
      }
      if (problems.length === 0) {
        checks.push({ verdict: 'ok', name: 'webhooks', detail: `${where}: caBundle set, ${reach}` });
        continue;
      }
      const failing = webhook.failurePolicy === 'Fail';
      const effect = failing ? 'the writes it covers are refused (failurePolicy Fail)' : 'the writes it covers go through without it (failurePolicy Ignore)';
      checks.push({ verdict: failing ? 'fail' : 'warn', name: 'webhooks', detail: `${where}: ${problems.join('; ')}: ${effect}` });
    }
  }
  return checks;
}

/** Ready endpoints per Service, counted from EndpointSlices (`kubernetes.io/service-name`; ready unless said otherwise). */
async function serviceEndpoints(kubeConfig: KubeConfig, services: ReadonlyArray<{ namespace: string; name: string }>): Promise<ServiceEndpoints> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const counts = new Map<string, number | undefined>();
  for (const { namespace, name } of services) {
    const key = `${namespace}/${name}`;
    if (counts.has(key)) continue;
    try {
      await core.readNamespacedService({ namespace, name });
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) {
        counts.set(key, undefined);
        continue;
      }
      throw error;
    }
    const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${name}` });
    counts.set(key, slices.items.flatMap((slice) => slice.endpoints ?? []).filter((e) => e.conditions?.ready !== false).length);
  }
  return (namespace, name) => counts.get(`${namespace}/${name}`);
}

export async function doctor(options: DoctorOptions): Promise<Check[]> {
  const { kubeConfig } = options;
  const now = options.now ?? new Date();
  const checks: Check[] = [];
  const server = kubeConfig.getCurrentCluster()?.server ?? '<no cluster>';
  try {
    const version = await kubeConfig.makeApiClient(VersionApi).getCode();
    checks.push({ verdict: 'ok', name: 'cluster', detail: `${server} answers (Kubernetes ${version.gitVersion})` });
  } catch (error) {
    checks.push({ verdict: 'fail', name: 'cluster', detail: `${server} does not answer: ${apiMessage(error)}` });
    return checks;
  }
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);

  const missing: string[] = [];
  for (const kind of ISTIO_KINDS) {
    try {
      await objects.list(kind === 'EnvoyFilter' ? 'networking.istio.io/v1alpha3' : 'networking.istio.io/v1', kind, undefined, undefined, undefined, undefined, undefined, undefined, 1);
    } catch (error) {
      missing.push(`${kind} (${apiMessage(error)})`);
    }
  }
  checks.push(
    missing.length === 0
      ? { verdict: 'ok', name: 'istio', detail: 'networking.istio.io VirtualService, DestinationRule and EnvoyFilter are served' }
      : { verdict: 'fail', name: 'istio', detail: `not served: ${missing.join('; ')}; install Istio (its CRDs) first` },
  );

  // Read as plain JSON (the typed CRD model renames fields such as `enum` and `x-kubernetes-*`).
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  for (const expected of customResourceDefinitions() as Array<KubeObject & { spec: { versions: unknown } }>) {
    const name = expected.metadata.name;
    try {
      const live = (await custom.getClusterCustomObject({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', name })) as { spec?: { versions?: unknown } };
      // The API server fills in defaults, so the cluster's copy holds ours plus those.
      const difference = firstDifference(live.spec?.versions, expected.spec.versions, 'spec.versions');
      checks.push(
        difference === undefined
          ? { verdict: 'ok', name: 'crds', detail: `${name} matches this CLI` }
          : { verdict: 'warn', name: 'crds', detail: `${name} differs from this CLI's at ${difference}; upgrade the chart or the CLI so they agree` },
      );
    } catch (error) {
      checks.push({ verdict: 'fail', name: 'crds', detail: `${name}: ${apiMessage(error)}; install them: helm install meshfork charts/meshfork` });
    }
  }

  try {
    const lease = await kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease(options.lease);
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime === undefined ? undefined : new Date(lease.spec.renewTime as unknown as string);
    const ago = renewed === undefined ? undefined : Math.round((now.getTime() - renewed.getTime()) / 1000);
    checks.push(
      holder && ago !== undefined && ago * 1000 <= LEASE_STALE_MS
        ? { verdict: 'ok', name: 'controller', detail: `${holder} leads (Lease ${options.lease.namespace}/${options.lease.name} renewed ${ago}s ago)` }
        : { verdict: 'fail', name: 'controller', detail: `no controller renews Lease ${options.lease.namespace}/${options.lease.name}${holder ? ` (last holder ${holder}, ${ago}s ago)` : ''}; is the controller running?` },
    );
  } catch (error) {
    checks.push({ verdict: 'fail', name: 'controller', detail: `Lease ${options.lease.namespace}/${options.lease.name}: ${apiMessage(error)}; is the controller installed (helm install meshfork charts/meshfork)?` });
  }
  try {
    const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    const configurations: WebhookConfigurationLike[] = [
      ...(await admission.listMutatingWebhookConfiguration()).items.map((c) => ({ ...c, kind: 'MutatingWebhookConfiguration' as const })),
      ...(await admission.listValidatingWebhookConfiguration()).items.map((c) => ({ ...c, kind: 'ValidatingWebhookConfiguration' as const })),
    ] as unknown as WebhookConfigurationLike[];
    const services = configurations.filter(isMeshforkWebhookConfiguration).flatMap((c) => (c.webhooks ?? []).flatMap((w) => w.clientConfig.service ?? []));
    checks.push(...webhookChecks(configurations, await serviceEndpoints(kubeConfig, services)));
  } catch (error) {
    // Reading webhook configurations needs cluster-wide list rights a developer may not have.
    checks.push({ verdict: 'warn', name: 'webhooks', detail: `cannot check the admission webhooks: ${apiMessage(error)}` });
  }

  const inScope = (namespace: string | undefined) => options.namespaces === undefined || options.namespaces.includes(namespace ?? 'default');
  try {
    const sandboxes = (await objects.list(GROUP_VERSION, 'Sandbox')).items.filter((s) => inScope(s.metadata?.namespace)) as Array<KubernetesObject & { spec?: { forks?: Array<{ forkOf?: { namespace?: string } }> } }>;
    const forkNamespaces = [...new Set(sandboxes.flatMap((s) => (s.spec?.forks ?? []).map((f) => f.forkOf?.namespace ?? s.metadata?.namespace ?? 'default')))].sort();
    const core = kubeConfig.makeApiClient(CoreV1Api);
    for (const namespace of forkNamespaces) {
      const labels = (await core.readNamespace({ name: namespace })).metadata?.labels;
      const mode = meshMode(labels);
      checks.push(
        mode
          ? { verdict: 'ok', name: 'mesh', detail: `namespace ${namespace}: ${mode}` }
          : { verdict: 'warn', name: 'mesh', detail: `namespace ${namespace} has Sandboxes' forks but neither sidecar injection nor ambient mode (kubectl label namespace ${namespace} istio-injection=enabled): keys are not routed there` },
      );
    }
    if (forkNamespaces.length === 0) checks.push({ verdict: 'ok', name: 'mesh', detail: 'no Sandboxes yet' });
  } catch (error) {
    checks.push({ verdict: 'fail', name: 'mesh', detail: `reading Sandboxes and namespaces: ${apiMessage(error)}` });
  }

  try {
    const virtualServices = (await objects.list('networking.istio.io/v1', 'VirtualService')).items.filter((v) => inScope(v.metadata?.namespace)) as unknown as KubeObject[];
    const conflicts = conflictingVirtualServices(virtualServices);
    if (conflicts.length === 0) checks.push({ verdict: 'ok', name: 'virtualservices', detail: 'no host has two VirtualServices for the mesh in one namespace' });
    for (const conflict of conflicts) checks.push({ verdict: 'warn', name: 'virtualservices', detail: `IST0109 ${conflict}: sidecars use only the first (oldest); merge them` });
  } catch (error) {
    checks.push({ verdict: 'fail', name: 'virtualservices', detail: apiMessage(error) });
  }
  return checks;
}

export function formatChecks(checks: readonly Check[]): string {
  return checks.map((c) => escapeText(`${c.verdict.padEnd(4)} ${c.name}: ${c.detail}`)).join('\n') + '\n';
}

/**
 * The cluster half of the CLI: `apply`, `get`, `delete`, `status` against a live cluster, with
 * kubectl's conventions. Loaded only when one of these commands runs, so the offline commands
 * never load the Kubernetes client.
 */
import { ApiException, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { formatProblem, escapeText } from '../../api/problem.js';
import { GROUP_VERSION } from '../../api/schema.js';
import { contextNamespace, loadKubeConfig } from '../../cluster/kubeconfig.js';
import { loadInputs, withSources } from '../../manifests/load.js';
import { FORK_OF_SERVICE_LABEL, ROUTE_NAME_PREFIX, SANDBOX_LABEL } from '../../planner/kube.js';
import { DEFAULT_ROUTING_KEY_CONFIG } from '../../planner/routing-key.js';
import { toYamlDocuments } from '../yaml.js';
import { CommandFailed } from '../failed.js';
import type { RoutesFlags } from '../routes-flags.js';
import { progressLine, routeGroupTable, sandboxTable, statusReport, type ForkedService, type KeyedRoute, type RouteGroupLike, type SandboxLike } from './present.js';

export interface Output {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface ClusterFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  allNamespaces?: boolean;
  output?: 'table' | 'yaml' | 'json';
}

export { CommandFailed };

const KINDS = { sandboxes: 'Sandbox', routegroups: 'RouteGroup' } as const;
type KindName = keyof typeof KINDS;

/** `sandbox`, `sandboxes`, `sb`, `routegroup`, `routegroups`, `rg`. */
export function kindOf(text: string): KindName | undefined {
  const t = text.toLowerCase();
  if (['sandbox', 'sandboxes', 'sb'].includes(t)) return 'sandboxes';
  if (['routegroup', 'routegroups', 'rg'].includes(t)) return 'routegroups';
  return undefined;
}

interface Session {
  kubeConfig: KubeConfig;
  objects: KubernetesObjectApi;
  namespace: string;
  server: string;
}

function session(flags: ClusterFlags): Session {
  const kubeConfig = loadKubeConfig(flags);
  return {
    kubeConfig,
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
    namespace: flags.namespace ?? contextNamespace(kubeConfig),
    server: kubeConfig.getCurrentCluster()?.server ?? '<no cluster in the kubeconfig>',
  };
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EAI_AGAIN', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']);

/**
 * What went wrong talking to the cluster, in words a user can act on: the API server's own
 * message for a refused request (a 403 names the user, verb, resource and namespace), and the
 * server address when it cannot be reached.
 */
export function describeApiError(error: unknown, server: string, what: string): string {
  if (error instanceof ApiException) {
    let message = '';
    try {
      message = (JSON.parse(String(error.body)) as { message?: string }).message ?? '';
    } catch {
      message = String(error.body ?? '');
    }
    if (error.code === 403) return `${what}: forbidden: ${message} (ask for this permission, e.g. the meshfork-edit role through the namespace's edit role)`;
    if (error.code === 404 && /the server could not find the requested resource/.test(message)) return `${what}: the cluster does not serve ${GROUP_VERSION} (install meshfork's CRDs: helm install meshfork charts/meshfork)`;
    return `${what}: ${message || `HTTP ${error.code}`}`;
  }
  // A network failure is a `code` somewhere down the chain of causes (fetch wraps it twice).
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_ERRORS.has(code)) return `${what}: cannot reach the cluster at ${server} (${code})`;
  }
  return `${what}: ${error instanceof Error ? error.message : String(error)}`;
}

async function call<T>(s: Session, out: Output, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    out.stderr(`meshfork: ${escapeText(describeApiError(error, s.server, what))}\n`);
    throw new CommandFailed(1);
  }
}

async function readObject<T>(s: Session, kind: string, namespace: string, name: string): Promise<T | undefined> {
  try {
    return (await s.objects.read({ apiVersion: GROUP_VERSION, kind, metadata: { name, namespace } })) as T;
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `apply -f <files>`: server-side apply of the Sandboxes and RouteGroups in the files. */
export async function apply(flags: ClusterFlags & { file: string[]; wait?: number; pollMs?: number }, out: Output): Promise<void> {
  const s = session(flags);
  const input = loadInputs(flags.file, s.namespace);
  for (const note of input.notes) out.stderr(`note: ${formatProblem(note)}\n`);
  const problems = withSources(input.problems, input.sources);
  if (!input.complete || problems.length > 0) {
    for (const p of problems) out.stderr(`${formatProblem(p)}\n`);
    out.stderr(`meshfork: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing applied\n`);
    throw new CommandFailed(1);
  }
  const objects = [...input.routeGroups, ...input.sandboxes] as unknown as KubernetesObject[];
  const others = input.inventory.deployments.length + input.inventory.services.length + input.inventory.virtualServices.length + input.inventory.destinationRules.length;
  if (others > 0) out.stderr(`note: ${others} object${others === 1 ? '' : 's'} other than Sandboxes and RouteGroups not applied (apply them with kubectl)\n`);
  if (objects.length === 0) {
    out.stderr('meshfork: no Sandbox or RouteGroup in the files; nothing applied\n');
    throw new CommandFailed(1);
  }
  for (const object of objects) {
    const ref = `${object.kind?.toLowerCase()}/${object.metadata?.name}`;
    await call(s, out, `applying ${ref}`, () => s.objects.patch(object, undefined, undefined, 'meshfork-cli', false, PatchStrategy.ServerSideApply));
    out.stdout(`${ref} serverside-applied\n`);
  }
  if (flags.wait === undefined) return;
  const sandboxes = input.sandboxes.map((sb) => ({ name: sb.metadata.name, namespace: sb.metadata.namespace ?? s.namespace }));
  await waitReady(s, out, sandboxes, flags.wait, flags.pollMs ?? 1000);
}

/** Polls until every Sandbox is Ready for its current generation; one line per change. */
async function waitReady(s: Session, out: Output, sandboxes: ReadonlyArray<{ name: string; namespace: string }>, timeoutMs: number, pollMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const last = new Map<string, string>();
  const pending = new Map(sandboxes.map((sb) => [`${sb.namespace}/${sb.name}`, sb]));
  let latest = new Map<string, SandboxLike & { metadata: { generation?: number } }>();
  for (;;) {
    for (const [id, sb] of pending) {
      const object = await call(s, out, `reading sandbox/${sb.name}`, () => readObject<SandboxLike & { metadata: { generation?: number }; status?: { observedGeneration?: number } }>(s, 'Sandbox', sb.namespace, sb.name));
      if (object === undefined) {
        out.stderr(`meshfork: sandbox/${sb.name} was deleted while waiting\n`);
        throw new CommandFailed(1);
      }
      latest.set(id, object);
      const current = (object.status as { observedGeneration?: number } | undefined)?.observedGeneration === object.metadata.generation;
      const line = current ? progressLine(object) : `sandbox/${sb.name}: waiting for the controller to observe generation ${object.metadata.generation}`;
      if (last.get(id) !== line) {
        out.stdout(`${line}\n`);
        last.set(id, line);
      }
      if (current && object.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) pending.delete(id);
    }
    if (pending.size === 0) return;
    if (Date.now() >= deadline) {
      for (const [id, sb] of pending) {
        const object = latest.get(id);
        out.stderr(`meshfork: sandbox/${sb.name} not Ready after ${Math.round(timeoutMs / 1000)}s: ${object ? progressLine(object).replace(/^sandbox\/[^:]+: /, '') : 'not found'}\n`);
      }
      throw new CommandFailed(1);
    }
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
  }
}

/** `get [sandboxes|routegroups] [name]`. */
export async function get(flags: ClusterFlags & { kind: KindName; name?: string; now?: Date }, out: Output): Promise<void> {
  const s = session(flags);
  const kind = KINDS[flags.kind];
  const namespace = flags.allNamespaces ? undefined : s.namespace;
  let items: KubernetesObject[];
  if (flags.name !== undefined) {
    const object = await call(s, out, `reading ${kind.toLowerCase()}/${flags.name}`, () => readObject<KubernetesObject>(s, kind, s.namespace, flags.name!));
    if (object === undefined) {
      out.stderr(`meshfork: ${kind.toLowerCase()} "${escapeText(flags.name)}" not found in namespace "${s.namespace}"\n`);
      throw new CommandFailed(1);
    }
    items = [object];
  } else {
    const list = await call(s, out, `listing ${flags.kind}`, () => s.objects.list(GROUP_VERSION, kind, namespace));
    items = [...list.items].sort((a, b) => `${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(`${b.metadata?.namespace}/${b.metadata?.name}`));
  }
  const clean = items.map((o) => ({ ...o, apiVersion: GROUP_VERSION, kind }));
  if (flags.output === 'json') {
    out.stdout(`${JSON.stringify(flags.name !== undefined ? clean[0] : { apiVersion: 'v1', kind: 'List', items: clean }, null, 2)}\n`);
    return;
  }
  if (flags.output === 'yaml') {
    out.stdout(toYamlDocuments(clean));
    return;
  }
  if (items.length === 0) {
    out.stderr(`No ${flags.kind} found${namespace ? ` in ${namespace} namespace` : ''}.\n`);
    return;
  }
  const now = flags.now ?? new Date();
  out.stdout(flags.kind === 'sandboxes' ? sandboxTable(items as unknown as SandboxLike[], now, flags.allNamespaces === true) : routeGroupTable(items as unknown as RouteGroupLike[], now, flags.allNamespaces === true));
}

/** `delete [sandbox|routegroup] <name> [--wait]`. */
export async function remove(flags: ClusterFlags & { kind: KindName; name: string; wait?: number; pollMs?: number }, out: Output): Promise<void> {
  const s = session(flags);
  const kind = KINDS[flags.kind];
  const ref = `${kind.toLowerCase()}/${flags.name}`;
  const existing = await call(s, out, `reading ${ref}`, () => readObject<KubernetesObject>(s, kind, s.namespace, flags.name));
  if (existing === undefined) {
    out.stderr(`meshfork: ${kind.toLowerCase()} "${escapeText(flags.name)}" not found in namespace "${s.namespace}"\n`);
    throw new CommandFailed(1);
  }
  await call(s, out, `deleting ${ref}`, () => s.objects.delete({ apiVersion: GROUP_VERSION, kind, metadata: { name: flags.name, namespace: s.namespace } }));
  out.stdout(`${ref} deleted\n`);
  if (flags.wait === undefined) return;
  const deadline = Date.now() + flags.wait;
  let said = false;
  while ((await call(s, out, `reading ${ref}`, () => readObject<KubernetesObject>(s, kind, s.namespace, flags.name))) !== undefined) {
    if (Date.now() >= deadline) {
      out.stderr(`meshfork: ${ref} still present after ${Math.round(flags.wait / 1000)}s (its finalizer removes routes first, then forks: is the controller running?)\n`);
      throw new CommandFailed(1);
    }
    if (!said) out.stdout(`${ref}: waiting for the controller to remove its routes and forks\n`);
    said = true;
    await sleep(flags.pollMs ?? 1000);
  }
  out.stdout(`${ref} gone\n`);
}

interface HttpRouteLike {
  name?: string;
  route?: Array<{ destination?: { host?: string; subset?: string; port?: { number?: number } } }>;
}

/** `status <name>`: conditions, forks, the live routes that carry the key, and what to send. */
export async function status(flags: ClusterFlags & { name: string; keyName?: string; now?: Date }, out: Output): Promise<void> {
  const s = session(flags);
  const sandbox = await call(s, out, `reading sandbox/${flags.name}`, () => readObject<SandboxLike>(s, 'Sandbox', s.namespace, flags.name));
  if (sandbox === undefined) {
    out.stderr(`meshfork: sandbox "${escapeText(flags.name)}" not found in namespace "${s.namespace}"\n`);
    throw new CommandFailed(1);
  }
  // The fork Services of the Sandbox (in every namespace it forks into) and the routes that
  // name them: meshfork's routes are named meshfork-<sandbox>-<i>.
  const namespaces = [...new Set([s.namespace, ...(sandbox.status?.forks ?? []).map((f) => f.forkOf.split('/')[0] ?? s.namespace)])].sort();
  const services: ForkedService[] = [];
  const routes: KeyedRoute[] = [];
  for (const namespace of namespaces) {
    const forkServices = await call(s, out, `listing fork Services in ${namespace}`, () => s.objects.list('v1', 'Service', namespace, undefined, undefined, undefined, undefined, `${SANDBOX_LABEL}=${flags.name}`));
    for (const svc of forkServices.items as Array<KubernetesObject & { spec?: { ports?: Array<{ name?: string; port: number; appProtocol?: string }> } }>) {
      const baseline = svc.metadata?.labels?.[FORK_OF_SERVICE_LABEL];
      if (baseline !== undefined) services.push({ baseline, namespace, ports: svc.spec?.ports ?? [] });
    }
    const virtualServices = await call(s, out, `listing VirtualServices in ${namespace}`, () => s.objects.list('networking.istio.io/v1', 'VirtualService', namespace));
    for (const vs of virtualServices.items as Array<KubernetesObject & { spec?: { hosts?: string[]; http?: HttpRouteLike[] } }>) {
      for (const route of vs.spec?.http ?? []) {
        if (!route.name?.startsWith(`${ROUTE_NAME_PREFIX}${flags.name}-`)) continue;
        routes.push({
          virtualService: `${namespace}/${vs.metadata?.name}`,
          hosts: vs.spec?.hosts ?? [],
          route: route.name,
          destinations: (route.route ?? []).map((d) => `${d.destination?.host ?? '?'}${d.destination?.subset ? ` subset ${d.destination.subset}` : ''}${d.destination?.port?.number ? `:${d.destination.port.number}` : ''}`),
        });
      }
    }
  }
  services.sort((a, b) => `${a.namespace}/${a.baseline}`.localeCompare(`${b.namespace}/${b.baseline}`));
  if (flags.output === 'json' || flags.output === 'yaml') {
    const report = { sandbox: `${s.namespace}/${flags.name}`, routingKey: sandbox.status?.routingKey ?? sandbox.spec?.routingKey, conditions: sandbox.status?.conditions ?? [], forks: sandbox.status?.forks ?? [], routes, services };
    out.stdout(flags.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : toYamlDocuments([report]));
    return;
  }
  out.stdout(statusReport({ sandbox, routes, services, keyName: flags.keyName ?? DEFAULT_ROUTING_KEY_CONFIG.keyName, now: flags.now ?? new Date() }));
}

/** `doctor`: preflight checks; exit 1 when one fails. */
export async function runDoctor(flags: ClusterFlags & { leaseNamespace: string; leaseName: string }, out: Output): Promise<void> {
  const { doctor, formatChecks } = await import('./doctor.js');
  const kubeConfig = loadKubeConfig(flags);
  const checks = await doctor({ kubeConfig, lease: { namespace: flags.leaseNamespace, name: flags.leaseName }, ...(flags.namespace !== undefined ? { namespaces: [flags.namespace] } : {}) });
  if (flags.output === 'json') out.stdout(`${JSON.stringify(checks, null, 2)}\n`);
  else if (flags.output === 'yaml') out.stdout(toYamlDocuments([checks]));
  else out.stdout(formatChecks(checks));
  if (checks.some((c) => c.verdict === 'fail')) throw new CommandFailed(1);
}

/**
 * Lists `kind` in every namespace; when that is forbidden, in each of `fallback` (the
 * namespaces that matter most), saying so on stderr.
 */
async function listWide(s: Session, out: Output, apiVersion: string, kind: string, fallback: readonly string[]): Promise<KubernetesObject[]> {
  try {
    return (await s.objects.list(apiVersion, kind)).items;
  } catch (error) {
    if (!(error instanceof ApiException) || error.code !== 403) return call(s, out, `listing ${kind}s`, () => Promise.reject(error));
  }
  out.stderr(`note: cannot list ${kind}s in all namespaces (forbidden); reading them from ${fallback.join(', ')} only\n`);
  const items: KubernetesObject[] = [];
  for (const namespace of fallback) {
    const list = await call(s, out, `listing ${kind}s in ${namespace}`, () => s.objects.list(apiVersion, kind, namespace));
    items.push(...list.items);
  }
  return items;
}

/** `routes <host>`: the live route table of a host, or the route a request takes (../routes.ts). */
export async function routes(flags: ClusterFlags & RoutesFlags & { host: string }, out: Output): Promise<void> {
  const s = session(flags);
  const { printRoutes } = await import('../routes.js');
  const { hostFqdn, ROOT_NAMESPACE } = await import('../../routing/host-routes.js');
  const hostNamespace = hostFqdn(flags.host, s.namespace).split('.')[1] ?? s.namespace;
  const namespaces = [...new Set([s.namespace, hostNamespace, ROOT_NAMESPACE])];
  const virtualServices = await listWide(s, out, 'networking.istio.io/v1', 'VirtualService', namespaces);
  const destinationRules = await listWide(s, out, 'networking.istio.io/v1', 'DestinationRule', namespaces);
  const services = (await call(s, out, `listing Services in ${hostNamespace}`, () => s.objects.list('v1', 'Service', hostNamespace))).items;
  printRoutes({ virtualServices, destinationRules, services } as unknown as Parameters<typeof printRoutes>[0], flags.host, s.namespace, flags, out);
}

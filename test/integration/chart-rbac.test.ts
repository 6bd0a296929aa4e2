// The Helm chart against a real kube-apiserver (RBAC authorization, audit log on):
//  - everything `helm template` renders is accepted by a server-side dry-run;
//  - the chart's RBAC is sufficient: `meshfork controller`, started with the container args of
//    the chart's Deployment and a kubeconfig impersonating the chart's ServiceAccount, runs a
//    Sandbox (whose fork gets copies of a DENY AuthorizationPolicy and a NetworkPolicy) through
//    create -> Ready -> image update -> RouteGroup -> delete (on one host routed with a user
//    VirtualService, and one with a user HTTPRoute: a derived HTTPRoute is written, then deleted),
//    and a second Sandbox through TTL expiry, with no request refused (the audit log has no 403);
//  - and minimal: the verbs the chart grants that the scenario never used are exactly the ones
//    listed below, each with the reason it stays.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { requireTestbin, testbinPath, useControlPlane } from '../support/control-plane.js';
import { until, webDeployment } from './controller-support.js';

const hasBins = requireTestbin();
const REPO = new URL('../../', import.meta.url).pathname;
const RELEASE_NS = 'meshfork-system';
const SERVICE_ACCOUNT = `system:serviceaccount:${RELEASE_NS}:meshfork-controller`;
const NS = 'shop';
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

const auditDir = mkdtempSync(join(tmpdir(), 'meshfork-audit-'));
const auditLog = join(auditDir, 'audit.log');
// Audit policies see the authenticated user, not the impersonated one: log every request's
// metadata and pick the ServiceAccount's by `impersonatedUser`.
writeFileSync(join(auditDir, 'policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n');

type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown>; rules?: Rule[] };
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface AuditEvent {
  verb: string;
  stage: string;
  impersonatedUser?: { username: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code: number };
}

function render(...set: string[]): Obj[] {
  const args = ['template', 'mf', `${REPO}charts/meshfork`, '--namespace', RELEASE_NS, ...set.flatMap((s) => ['--set', s])];
  const r = spawnSync(testbinPath('helm'), args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')}: ${r.stderr}`);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

/** `group/resource[/subresource] verb`, the unit RBAC grants. */
const grant = (group: string, resource: string, verb: string) => `${group || 'core'}/${resource} ${verb}`;

function granted(objects: readonly Obj[]): Set<string> {
  const out = new Set<string>();
  for (const role of objects.filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && o.metadata?.name === 'meshfork-controller')) {
    for (const rule of role.rules ?? []) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) out.add(grant(g, r, v));
  }
  return out;
}

describe.skipIf(!hasBins)("the chart's RBAC, with the controller as the chart's ServiceAccount", () => {
  const cp = useControlPlane({
    crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'],
    gatewayApi: true,
    nodes: true,
    // clusterrole-aggregation fills the built-in edit/admin/view roles from labelled ClusterRoles.
    controllers: ['garbage-collector-controller', 'namespace-controller', 'clusterrole-aggregation-controller'],
    apiServerFlags: [`--audit-policy-file=${join(auditDir, 'policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-maxsize=0'],
  });
  let controller: ChildProcess | undefined;
  const stderr: string[] = [];
  afterAll(() => {
    if (controller?.exitCode === null) controller.kill('SIGKILL');
  });

  it('every rendered object passes a server-side dry-run', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    for (const name of [RELEASE_NS, 'istio-system']) await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
    const rendered = render('controller.metrics.serviceMonitor.enabled=false', 'ingressGuard.enabled=true');
    expect(rendered.map((o) => `${o.kind} ${o.metadata?.name}`).sort()).toEqual([
      'ClusterRole meshfork-controller',
      'ClusterRole meshfork-edit',
      'ClusterRole meshfork-view',
      'ClusterRoleBinding meshfork-controller',
      'ConfigMap meshfork-config',
      'Deployment meshfork-controller',
      'EnvoyFilter meshfork-ingress-guard',
      'MutatingWebhookConfiguration meshfork',
      'PodDisruptionBudget meshfork-controller',
      'Role meshfork-controller',
      'RoleBinding meshfork-controller',
      'Service meshfork-controller-metrics',
      'Service meshfork-webhook',
      'ServiceAccount meshfork-controller',
      'ValidatingWebhookConfiguration meshfork',
    ]);
    for (const object of rendered) {
      await objects.patch(object, undefined, 'All', 'meshfork-test', true, 'application/apply-patch+yaml' as never);
    }
  });

  it('runs the scenario as the ServiceAccount with no request refused; the unused grants are the listed ones', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const rendered = render();
    // Install what the controller needs to be allowed anything: its account, roles and config.
    for (const object of rendered.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ConfigMap'].includes(o.kind ?? ''))) {
      await objects.patch(object, undefined, undefined, 'meshfork-test', true, 'application/apply-patch+yaml' as never);
    }
    // The webhook configurations, whose caBundle the controller writes. Their Service has no
    // endpoints here: the calls fail and are ignored (failurePolicy Ignore).
    for (const object of rendered.filter((o) => o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration')) {
      await objects.patch(object, undefined, undefined, 'meshfork-test', true, 'application/apply-patch+yaml' as never);
    }

    // A kubeconfig acting as the chart's ServiceAccount.
    const impersonating = new KubeConfig();
    impersonating.loadFromOptions({
      clusters: kc.clusters,
      users: kc.users.map((u) => ({ ...u, impersonateUser: SERVICE_ACCOUNT })),
      contexts: kc.contexts,
      currentContext: kc.currentContext,
    });
    const kubeconfigPath = join(auditDir, 'kubeconfig-sa');
    writeFileSync(kubeconfigPath, impersonating.exportConfig());

    const deployment = rendered.find((o) => o.kind === 'Deployment')!;
    const container = (deployment.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0]!;
    const args = container.args.map((a) => (a.startsWith('--health-address=') ? '--health-address=127.0.0.1:0' : a.startsWith('--webhook-address=') ? '--webhook-address=127.0.0.1:0' : a));
    expect(args).toEqual([
      'controller',
      '--leader-elect',
      `--lease-namespace=${RELEASE_NS}`,
      '--lease-name=meshfork-controller',
      `--config-map=${RELEASE_NS}/meshfork-config`,
      '--workers=16',
      '--health-address=127.0.0.1:0',
      '--webhook-address=127.0.0.1:0',
      '--webhook-configuration=meshfork',
      `--webhook-hosts=meshfork-webhook.${RELEASE_NS}.svc`,
      `--webhook-secret=${RELEASE_NS}/meshfork-webhook-tls`,
    ]);

    // The baseline: a Deployment behind a Service and a user VirtualService.
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    await objects.create(webDeployment(NS) as Obj);
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } } as Obj);
    // A second Service in front of the same pods, with no user VirtualService: meshfork writes
    // its own for it. A third, routed by a user HTTPRoute attached to it: routing mode auto is
    // gatewayAPI there, each Sandbox gets a derived HTTPRoute. A DestinationRule: the fork gets one.
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-admin', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http-admin', port: 81, targetPort: 8080 }] } } as Obj);
    await objects.create({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'web', namespace: NS }, spec: { host: 'web', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } } as Obj);
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-api', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http-api', port: 82, targetPort: 8080 }] } } as Obj);
    const userRoute = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web-api', namespace: NS },
      spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web-api', port: 82 }], rules: [{ backendRefs: [{ name: 'web-api', port: 82 }] }] },
    } as Obj;
    const storedUserRoute = (await objects.create(userRoute)) as Obj;
    const userVs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web', namespace: NS }, spec: { hosts: ['web'], http: [{ name: 'all', route: [{ destination: { host: 'web' } }] }] } } as Obj;
    await objects.create(userVs);
    // Policies selecting web-v1: each fork gets copies of them (made, then deleted with its Sandbox).
    await objects.create({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'web-deny-admin', namespace: NS },
      spec: { selector: { matchLabels: { app: 'web', version: 'v1' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin/*'] } }] }] },
    } as Obj);
    // Raw JSON: client-node's typed serialization of NetworkPolicy drops `from` (src/cluster/wire.ts).
    const netpol = await cp().request('POST', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'web-ingress', namespace: NS },
      spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }] }] },
    });
    expect(netpol.status).toBe(201);

    controller = spawn(process.execPath, ['--import', 'tsx', `${REPO}src/bin/meshfork.ts`, ...args, '--kubeconfig', kubeconfigPath], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    controller.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));

    const sandbox = (name: string, image: string, ttl?: string): Obj =>
      ({
        apiVersion: 'meshfork.dev/v1alpha1',
        kind: 'Sandbox',
        metadata: { name, namespace: NS, labels: { team: 'web' } },
        spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' }, customizations: { images: [{ container: 'web', image }] } }], ...(ttl ? { ttl: { duration: ttl } } : {}) },
      }) as Obj;
    const read = async (apiVersion: string, kind: string, name: string) => {
      try {
        return (await objects.read({ apiVersion, kind, metadata: { name, namespace: NS } })) as Obj;
      } catch {
        return undefined;
      }
    };
    const ready = (name: string) => async () => {
      const s = await read('meshfork.dev/v1alpha1', 'Sandbox', name);
      const conditions = (s?.status?.['conditions'] ?? []) as Array<{ type: string; status: string }>;
      return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
    };
    const forkImage = async (name: string) => {
      const d = await read('apps/v1', 'Deployment', name);
      return (d?.spec as { template: { spec: { containers: Array<{ image: string }> } } } | undefined)?.template.spec.containers[0]?.image;
    };

    // A 1-minute TTL (the shortest a Sandbox can ask for) runs out while the rest goes on.
    await objects.create(sandbox('brief', 'registry.example.com/web:brief', '1m'));
    await objects.create(sandbox('one', 'registry.example.com/web:2'));
    await until('Sandbox one Ready', ready('one'), 90_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\ncontroller log tail:\n${stderr.join('').trim().split('\n').slice(-40).join('\n')}`);
    });
    await objects.patch({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'one', namespace: NS }, spec: sandbox('one', 'registry.example.com/web:3').spec } as Obj, undefined, undefined, 'meshfork-test', undefined, 'application/merge-patch+json' as never);
    await until('fork of one rolled to web:3', async () => (await forkImage('web-v1-one')) === 'registry.example.com/web:3', 60_000);
    expect((await read('gateway.networking.k8s.io/v1', 'HTTPRoute', 'web-api-one-82'))?.metadata?.labels).toMatchObject({ 'meshfork.dev/sandbox': 'one', 'meshfork.dev/sandbox-namespace': NS });
    expect((await read('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin-web-v1-one'))?.metadata?.labels).toMatchObject({ 'meshfork.dev/sandbox': 'one' });
    expect((await read('networking.k8s.io/v1', 'NetworkPolicy', 'web-ingress-web-v1-one'))?.metadata?.labels).toMatchObject({ 'meshfork.dev/sandbox': 'one' });
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'team', namespace: NS }, spec: { match: { label: { key: 'team', value: 'web' } } } } as Obj);
    await until('RouteGroup status', async () => ((await read('meshfork.dev/v1alpha1', 'RouteGroup', 'team'))?.status?.['routingKey'] as string | undefined) !== undefined, 60_000);
    await objects.delete({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'one', namespace: NS } } as Obj);
    await until('Sandbox one and its fork gone', async () => (await read('meshfork.dev/v1alpha1', 'Sandbox', 'one')) === undefined && (await read('apps/v1', 'Deployment', 'web-v1-one')) === undefined, 60_000);
    expect(await read('security.istio.io/v1', 'AuthorizationPolicy', 'web-deny-admin-web-v1-one')).toBeUndefined();
    expect(await read('networking.k8s.io/v1', 'NetworkPolicy', 'web-ingress-web-v1-one')).toBeUndefined();
    expect(await read('gateway.networking.k8s.io/v1', 'HTTPRoute', 'web-api-one-82')).toBeUndefined();
    await until('Sandbox brief deleted by its TTL', async () => (await read('meshfork.dev/v1alpha1', 'Sandbox', 'brief')) === undefined, 120_000);
    const restored = (await read('networking.istio.io/v1', 'VirtualService', 'web'))!;
    expect(restored.spec).toEqual(userVs.spec);
    expect((await read('gateway.networking.k8s.io/v1', 'HTTPRoute', 'web-api'))?.metadata?.resourceVersion).toBe(storedUserRoute.metadata?.resourceVersion);
    // The webhook certificate: issued into its Secret, its CA written into both configurations.
    const tls = (await objects.read({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'meshfork-webhook-tls', namespace: RELEASE_NS } })) as Obj & { data: Record<string, string> };
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const configuration = (await objects.read({ apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name: 'meshfork' } })) as Obj & { webhooks: Array<{ clientConfig: { caBundle?: string } }> };
      expect(configuration.webhooks.map((w) => w.clientConfig.caBundle)).toEqual(configuration.webhooks.map(() => tls.data['ca.crt']));
    }

    controller.kill('SIGTERM');
    await new Promise((resolve) => controller!.once('exit', resolve));

    const events = readFileSync(auditLog, 'utf8')
      .split('\n')
      .filter((line) => line.includes(SERVICE_ACCOUNT))
      .map((line) => JSON.parse(line) as AuditEvent)
      .filter((e) => e.impersonatedUser?.username === SERVICE_ACCOUNT && e.stage === 'ResponseComplete');
    const refused = events.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${JSON.stringify(e.objectRef)}`);
    expect(refused).toEqual([]);
    expect(stderr.join('')).not.toMatch(/forbidden/i);

    const used = new Set(events.map((e) => grant(e.objectRef?.apiGroup ?? '', e.objectRef?.subresource ? `${e.objectRef.resource}/${e.objectRef.subresource}` : (e.objectRef?.resource ?? ''), e.verb)));
    const unused = [...granted(rendered)].filter((g) => !used.has(g)).sort();
    // Granted and needed, though this scenario's requests do not show them:
    expect(unused).toEqual(UNUSED_BUT_NEEDED);
  }, 300_000);

  it("a developer bound to the built-in edit role in a namespace manages Sandboxes and RouteGroups there, and nothing more", async () => {
    const kc = cp().kubeConfig;
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const reviews = kc.makeApiClient(AuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: { metadata: { name: 'dev-edit' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'dev' }] },
    });
    const allowed = async (verb: string, resource: string, namespace: string, subresource?: string) =>
      (await reviews.createSubjectAccessReview({ body: { spec: { user: 'dev', resourceAttributes: { group: 'meshfork.dev', resource, verb, namespace, ...(subresource ? { subresource } : {}) } } } })).status?.allowed === true;
    const decisions = async () => {
      const out: string[] = [];
      for (const resource of ['sandboxes', 'routegroups']) {
        for (const verb of VERBS) if (await allowed(verb, resource, NS)) out.push(`${resource} ${verb}`);
        if (await allowed('update', resource, NS, 'status')) out.push(`${resource}/status update`);
        if (await allowed('get', resource, 'default')) out.push(`${resource} get in another namespace`);
      }
      return out;
    };
    const expected = ['sandboxes', 'routegroups'].flatMap((resource) => VERBS.map((verb) => `${resource} ${verb}`));
    // The aggregation controller fills `edit` shortly after the chart's ClusterRoles exist.
    await until('edit aggregates meshfork-edit', async () => (await decisions()).length === expected.length, 60_000);
    expect(await decisions()).toEqual(expected);
  });
});

/**
 * `create` on the generated kinds: a server-side apply that creates an object is one `patch`
 * request (the audit log shows only that verb), which the API server also authorizes as a
 * `create` of the object (k8s.io/apiserver endpoints/handlers/patch.go, createValidation).
 * `update` of the webhook certificate Secret: renewal (webhooks.test.ts covers it as another user).
 * `get` on sandboxes: the orphan check reads a Sandbox the cache does not have before deleting
 * what was generated for it (src/controller/reconciler.ts collectOrphans), a path this scenario
 * does not reach.
 * `get`, `patch`, `delete` of PeerAuthentications, RequestAuthentications, Sidecars, Telemetries
 * and WasmPlugins: the controller writes and deletes copies of them for forks exactly as it does
 * for the AuthorizationPolicy and NetworkPolicy of this scenario (src/planner/policy-copy.ts, one
 * code path for the seven kinds); the scenario has no baseline policy of those kinds.
 * `get`, `patch`, `delete` of GRPCRoutes: derived GRPCRoutes are written and deleted by the same
 * code as the HTTPRoute of this scenario (src/planner/http-route.ts makes both kinds; the
 * controller handles them as one, src/controller/gateway-routes.ts); the scenario has no user GRPCRoute.
 * `get` on the other workload kinds (StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods,
 * ReplicationControllers, Argo Rollouts, OpenShift DeploymentConfigs): read by name only for a
 * Sandbox whose fork names no Deployment, to say what the name is
 * (test/integration/controller-operations.test.ts); every Sandbox of this scenario is valid.
 */
const UNUSED_BUT_NEEDED: string[] = [
  'apps.openshift.io/deploymentconfigs get',
  'apps/daemonsets get',
  'apps/deployments create',
  'apps/replicasets get',
  'apps/statefulsets get',
  'argoproj.io/rollouts get',
  'batch/cronjobs get',
  'batch/jobs get',
  'core/pods get',
  'core/replicationcontrollers get',
  'core/secrets update',
  'core/services create',
  'extensions.istio.io/wasmplugins create',
  'extensions.istio.io/wasmplugins delete',
  'extensions.istio.io/wasmplugins get',
  'extensions.istio.io/wasmplugins patch',
  'gateway.networking.k8s.io/grpcroutes create',
  'gateway.networking.k8s.io/grpcroutes delete',
  'gateway.networking.k8s.io/grpcroutes get',
  'gateway.networking.k8s.io/grpcroutes patch',
  'gateway.networking.k8s.io/httproutes create',
  'meshfork.dev/sandboxes get',
  'networking.istio.io/destinationrules create',
  'networking.istio.io/envoyfilters create',
  'networking.istio.io/sidecars create',
  'networking.istio.io/sidecars delete',
  'networking.istio.io/sidecars get',
  'networking.istio.io/sidecars patch',
  'networking.istio.io/virtualservices create',
  'networking.k8s.io/networkpolicies create',
  'security.istio.io/authorizationpolicies create',
  'security.istio.io/peerauthentications create',
  'security.istio.io/peerauthentications delete',
  'security.istio.io/peerauthentications get',
  'security.istio.io/peerauthentications patch',
  'security.istio.io/requestauthentications create',
  'security.istio.io/requestauthentications delete',
  'security.istio.io/requestauthentications get',
  'security.istio.io/requestauthentications patch',
  'telemetry.istio.io/telemetries create',
  'telemetry.istio.io/telemetries delete',
  'telemetry.istio.io/telemetries get',
  'telemetry.istio.io/telemetries patch',
];

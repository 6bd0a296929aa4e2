// The cluster half of the CLI (`meshfork apply|get|list|delete|status|routes`), run as the real
// executable against a real kube-apiserver with the controller running (KWOK makes the forks
// Available): what a user sees on stdout/stderr and the exit status, for success, invalid input,
// a Sandbox that never becomes Ready, a missing permission and an unreachable cluster.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts, requireTestbin, useControlPlane } from '../support/control-plane.js';
import { runClusterCli } from '../../src/cli/cluster/command.js';
import { webDeployment } from './controller-support.js';

const hasBins = requireTestbin();
const REPO = new URL('../../', import.meta.url).pathname;
const NS = 'shop';
const dir = mkdtempSync(join(tmpdir(), 'meshfork-cli-'));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The cluster commands in-process (the executable's wiring is run once, below). */
async function meshfork(args: readonly string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runClusterCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

/** The real executable, as a process. */
function meshforkProcess(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', `${REPO}src/bin/meshfork.ts`, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const SANDBOX = `apiVersion: meshfork.dev/v1alpha1
kind: Sandbox
metadata:
  name: one
  labels: {team: web}
spec:
  routingKey: k1one
  forks:
    - forkOf: {kind: Deployment, name: web-v1}
      customizations:
        images: [{container: web, image: registry.example.com/web:2}]
`;

describe.skipIf(!hasBins)('meshfork apply/get/delete/status/routes against a cluster', () => {
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], nodes: true });
  let controller: ChildProcess | undefined;
  afterAll(() => {
    if (controller?.exitCode === null) controller.kill('SIGKILL');
  });
  const k = () => ['--kubeconfig', cp().kubeconfigPath, '-n', NS];

  it('applies, waits until Ready, lists, explains, shows its routes and deletes a Sandbox', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    await objects.create(webDeployment(NS) as KubernetesObject);
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'grpc', port: 9090, targetPort: 9090 }] } } as KubernetesObject);
    controller = spawn(process.execPath, ['--import', 'tsx', `${REPO}src/bin/meshfork.ts`, 'controller', '--kubeconfig', cp().kubeconfigPath, '--namespaces', NS, '--health-address', 'off', '--leader-elect', '--lease-namespace', NS], { cwd: REPO, stdio: 'ignore' });

    const applied = await meshfork(['apply', ...k(), '-f', file('one.yaml', SANDBOX), '--wait=90s']);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const lines = applied.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('sandbox/one serverside-applied');
    expect(lines.at(-1)).toBe('sandbox/one: Ready (key k1one)');
    // One line per change, never the same line twice in a row.
    expect(lines.filter((l, i) => l === lines[i - 1])).toEqual([]);

    const listed = await meshfork(['get', ...k()]);
    expect(listed.code).toBe(0);
    const [header, row, ...rest] = listed.stdout.trimEnd().split('\n');
    expect(header?.split(/\s+/)).toEqual(['NAME', 'READY', 'KEY', 'FORKS', 'AGE', 'EXPIRES']);
    expect(row?.split(/\s+/).filter((_, i) => i !== 4)).toEqual(['one', 'True', 'k1one', `${NS}/web-v1`, '-']);
    expect(rest).toEqual([]);
    const all = await meshfork(['list', 'sandboxes', '--kubeconfig', cp().kubeconfigPath, '-A', '-o', 'json']);
    expect(all.code).toBe(0);
    const list = JSON.parse(all.stdout) as { kind: string; items: Array<{ kind: string; metadata: { name: string; namespace: string } }> };
    expect([list.kind, list.items.map((i) => `${i.kind} ${i.metadata.namespace}/${i.metadata.name}`)]).toEqual(['List', [`Sandbox ${NS}/one`]]);

    const status = await meshfork(['status', ...k(), 'one']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout.replace(/age: [^,]+/, 'age: X')).toBe(
      [
        `Sandbox ${NS}/one`,
        '  routing key: k1one',
        '  age: X, expires: -',
        'Conditions:',
        ...(await conditionLines(objects)),
        'Forks:',
        `  ${NS}/web-v1 -> Deployment web-v1-one: available`,
        'Routes carrying the key:',
        // web has two ports: one route per port (ADR 0020).
        `  VirtualService ${NS}/web-meshfork (web.${NS}.svc.cluster.local) route meshfork-one-0 -> web-one.${NS}.svc.cluster.local:80`,
        `  VirtualService ${NS}/web-meshfork (web.${NS}.svc.cluster.local) route meshfork-one-1 -> web-one.${NS}.svc.cluster.local:9090`,
        'Send:',
        '  baggage: meshfork-routing-key=k1one',
        `  curl -H 'baggage: meshfork-routing-key=k1one' http://web.${NS}:80/`,
        `  grpcurl -plaintext -H 'baggage: meshfork-routing-key=k1one' web.${NS}:9090 list`,
        '',
      ].join('\n'),
    );

    // The live route table of the forked host, and where a keyed and an unkeyed request land.
    // web has two ports: meshfork's own VirtualService has a keyed and a baseline route per port (ADR 0020).
    const keyed = (port: number) =>
      `baggage has meshfork-routing-key=k1one and port ${port} or tracestate has meshfork-routing-key=k1one and not baggage present and port ${port} or baggage lacks meshfork-routing-key and tracestate has meshfork-routing-key=k1one and port ${port}`;
    const heading = `Host web.${NS}.svc.cluster.local: VirtualService ${NS}/web-meshfork, as sidecars of namespace ${NS} use it`;
    const routes = await meshfork(['routes', ...k(), 'web']);
    expect([routes.code, routes.stderr]).toEqual([0, '']);
    expect(routes.stdout).toBe(
      [
        heading,
        `#   ${'ROUTE'.padEnd(17)}   ${'OWNER'.padEnd(17)}   ${'DESTINATIONS'.padEnd(45)}   MATCH`,
        `0   ${'meshfork-one-0'.padEnd(17)}   ${'sandbox one'.padEnd(17)}   ${`web-one.${NS}.svc.cluster.local port 80 100%`.padEnd(45)}   ${keyed(80)}`,
        `1   meshfork-baseline   meshfork baseline   ${`web.${NS}.svc.cluster.local port 80 100%`.padEnd(45)}   port 80`,
        `2   ${'meshfork-one-1'.padEnd(17)}   ${'sandbox one'.padEnd(17)}   ${`web-one.${NS}.svc.cluster.local port 9090 100%`.padEnd(45)}   ${keyed(9090)}`,
        `3   meshfork-baseline   meshfork baseline   ${`web.${NS}.svc.cluster.local port 9090 100%`.padEnd(45)}   port 9090`,
        '',
      ].join('\n'),
    );
    const portless = await meshfork(['routes', ...k(), 'web', '--header', 'baggage: meshfork-routing-key=k1one']);
    expect([portless.code, portless.stderr]).toEqual([1, `meshfork: VirtualService ${NS}/web-meshfork: spec.http[0].match[0].port is set: the request must give port: give --port\n`]);
    const traced = await meshforkProcess(['routes', ...k(), `web.${NS}.svc.cluster.local`, '--port', '80', '--header', 'baggage: a=1, meshfork-routing-key=k1one']);
    expect([traced.code, traced.stderr]).toEqual([0, '']);
    expect(traced.stdout).toBe(
      [heading, 'Request: any method / port 80, baggage: a=1, meshfork-routing-key=k1one', 'Takes route 0 meshfork-one-0 (sandbox one), match[0]: baggage has meshfork-routing-key=k1one and port 80', `  -> web-one.${NS}.svc.cluster.local port 80 100%`, ''].join('\n'),
    );
    const other = await meshfork(['routes', ...k(), 'web', '--port', '9090', '--header', 'baggage=meshfork-routing-key=k2two']);
    expect(other.stdout.split('\n').slice(2)).toEqual(['Takes route 3 meshfork-baseline (meshfork baseline), match[0]: port 9090', `  -> web.${NS}.svc.cluster.local port 9090 100%`, '']);
    const unknown = await meshfork(['routes', ...k(), 'nowhere']);
    expect([unknown.code, unknown.stdout, unknown.stderr]).toEqual([
      1,
      '',
      `meshfork: unknown host "nowhere": no VirtualService for nowhere.${NS}.svc.cluster.local applies to sidecars of namespace ${NS} and no Service has that host; check the host, --namespace (the client's namespace) and --gateway\n`,
    ]);

    const deleted = await meshfork(['delete', ...k(), 'one', '--wait=60s']);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout.split('\n')[0]).toBe('sandbox/one deleted');
    expect(deleted.stdout.trimEnd().split('\n').at(-1)).toBe('sandbox/one gone');
    const empty = await meshfork(['get', ...k()]);
    expect([empty.code, empty.stdout, empty.stderr]).toEqual([0, '', `No sandboxes found in ${NS} namespace.\n`]);
  });

  it('refuses invalid input naming the field and applies nothing', async () => {
    const bad = file('bad.yaml', SANDBOX.replace('name: one', 'name: two').replace('routingKey: k1one', 'routingKey: "NOT A KEY"'));
    const r = await meshfork(['apply', ...k(), '-f', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: Sandbox ${NS}/two: spec\\.routingKey: `));
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('meshfork: 1 problem; nothing applied');
    expect((await meshfork(['get', ...k(), 'sandbox', 'two'])).stderr).toBe(`meshfork: sandbox "two" not found in namespace "${NS}"\n`);
  });

  it('--wait gives up with the failing condition when a Sandbox cannot become Ready', async () => {
    const missing = file('missing.yaml', SANDBOX.replace('name: one', 'name: lost').replace('routingKey: k1one', 'routingKey: k1lost').replace('name: web-v1', 'name: nowhere'));
    const r = await meshfork(['apply', ...k(), '-f', missing, '--wait=15s']);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n')[0]).toBe('sandbox/lost serverside-applied');
    expect(r.stderr).toBe('meshfork: sandbox/lost not Ready after 15s: Ready=False InvalidSpec: spec.forks[0].forkOf.name: Deployment "nowhere" not found in namespace "shop"\n');
    expect((await meshfork(['delete', ...k(), 'lost', '--wait'])).code).toBe(0);
  });

  it('says which permission is missing, and which cluster it cannot reach', async () => {
    const kc = cp().kubeConfig;
    const asNobody = new KubeConfig();
    asNobody.loadFromOptions({ clusters: kc.clusters, users: kc.users.map((u) => ({ ...u, impersonateUser: 'nobody' })), contexts: kc.contexts, currentContext: kc.currentContext });
    const forbidden = await meshforkProcess(['get', '--kubeconfig', file('nobody.kubeconfig', asNobody.exportConfig()), '-n', NS]);
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toBe(
      `meshfork: listing sandboxes: forbidden: sandboxes.meshfork.dev is forbidden: User "nobody" cannot list resource "sandboxes" in API group "meshfork.dev" in the namespace "${NS}" (ask for this permission, e.g. the meshfork-edit role through the namespace's edit role)\n`,
    );
    // A port nothing listens on (fetch refuses some low ports outright).
    const [port] = await freePorts(1);
    const nowhere = new KubeConfig();
    nowhere.loadFromOptions({ clusters: [{ name: 'gone', server: `https://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'c', cluster: 'gone', user: 'u' }], currentContext: 'c' });
    const unreachable = await meshfork(['status', '--kubeconfig', file('nowhere.kubeconfig', nowhere.exportConfig()), 'one']);
    expect([unreachable.code, unreachable.stderr]).toEqual([1, `meshfork: reading sandbox/one: cannot reach the cluster at https://127.0.0.1:${port} (ECONNREFUSED)\n`]);
  });
});

describe.skipIf(!hasBins)('meshfork doctor', () => {
  // Runs after the suite above in the same file, on its own control plane.
  const cp = useControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'] });
  let controller: ChildProcess | undefined;
  afterAll(() => {
    if (controller?.exitCode === null) controller.kill('SIGKILL');
  });

  it('checks the cluster, Istio and meshfork CRDs, the controller, its webhooks, fork namespaces and conflicting VirtualServices', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await objects.create(webDeployment(NS) as KubernetesObject);
    await objects.create({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'one', namespace: NS }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' } }] } } as KubernetesObject);
    for (const name of ['web-a', 'web-b']) {
      await objects.create({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: NS }, spec: { hosts: ['web'], http: [{ route: [{ destination: { host: 'web' } }] }] } } as KubernetesObject);
      await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has one-second resolution
    }
    const k = ['--kubeconfig', cp().kubeconfigPath, '--lease-namespace', NS];
    const normalise = (text: string) => text.replace(/Kubernetes v[^)\s]+/, 'Kubernetes vX').replace(/https:\/\/127\.0\.0\.1:\d+/, 'https://127.0.0.1:P');

    const before = await meshfork(['doctor', ...k]);
    expect(before.code).toBe(1);
    expect(normalise(before.stdout)).toBe(
      [
        'ok   cluster: https://127.0.0.1:P answers (Kubernetes vX)',
        'ok   istio: networking.istio.io VirtualService, DestinationRule and EnvoyFilter are served',
        'ok   crds: sandboxes.meshfork.dev matches this CLI',
        'ok   crds: routegroups.meshfork.dev matches this CLI',
        `fail controller: Lease ${NS}/meshfork-controller: leases.coordination.k8s.io "meshfork-controller" not found; is the controller installed (helm install meshfork charts/meshfork)?`,
        'ok   webhooks: no meshfork admission webhook configurations (webhooks disabled in the chart): nothing to reach',
        `warn mesh: namespace ${NS} has Sandboxes' forks but neither sidecar injection nor ambient mode (kubectl label namespace ${NS} istio-injection=enabled): keys are not routed there`,
        `warn virtualservices: IST0109 web.${NS}.svc.cluster.local: ${NS}/web-a, ${NS}/web-b: sidecars use only the first (oldest); merge them`,
        '',
      ].join('\n'),
    );

    controller = spawn(process.execPath, ['--import', 'tsx', `${REPO}src/bin/meshfork.ts`, 'controller', '--kubeconfig', cp().kubeconfigPath, '--namespaces', NS, '--health-address', 'off', '--leader-elect', '--lease-namespace', NS], { cwd: REPO, stdio: 'ignore' });
    await objects.patch({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'istio-injection': 'enabled' } } } as KubernetesObject, undefined, undefined, 'meshfork-test', undefined, PatchStrategy.MergePatch);
    await objects.delete({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'web-b', namespace: NS } } as KubernetesObject);
    let after: Run | undefined;
    for (let i = 0; i < 60 && after?.code !== 0; i++) {
      after = await meshfork(['doctor', ...k, '-o', 'json']);
      if (after.code !== 0) await new Promise((r) => setTimeout(r, 1000));
    }
    const checks = JSON.parse(after!.stdout) as Array<{ verdict: string; name: string; detail: string }>;
    expect(checks.map((c) => `${c.verdict} ${c.name}`)).toEqual(['ok cluster', 'ok istio', 'ok crds', 'ok crds', 'ok controller', 'ok webhooks', 'ok mesh', 'ok virtualservices']);
    expect(checks[4]?.detail).toMatch(new RegExp(`^\\S+ leads \\(Lease ${NS}/meshfork-controller renewed \\d+s ago\\)$`));
    expect(checks[6]?.detail).toBe(`namespace ${NS}: istio-injection=enabled`);

    // The chart's webhook configurations, first not callable (no caBundle, no Service), then
    // callable. A namespaceSelector no namespace matches keeps the API server from calling them.
    const never = { namespaceSelector: { matchLabels: { 'meshfork.dev/doctor-test': 'never' } } };
    const clientConfig = { service: { namespace: 'meshfork-system', name: 'meshfork-webhook', path: '/x' } };
    const webhook = (name: string, failurePolicy: string, resource: string, group: string) => ({
      name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy,
      clientConfig,
      rules: [{ apiGroups: [group], apiVersions: ['*'], resources: [resource], operations: ['CREATE'] }],
      ...never,
    });
    await objects.create({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'meshfork-virtualservices' }, webhooks: [webhook('virtualservices.meshfork.dev', 'Ignore', 'virtualservices', 'networking.istio.io')] } as KubernetesObject);
    await objects.create({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'meshfork-sandboxes' }, webhooks: [webhook('sandboxes.meshfork.dev', 'Fail', 'sandboxes', 'meshfork.dev')] } as KubernetesObject);
    const webhookLines = async () => (await meshfork(['doctor', ...k])).stdout.split('\n').filter((l) => l.includes(' webhooks: '));
    expect(await webhookLines()).toEqual([
      'warn webhooks: MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: no caBundle (the controller writes it once it runs; with cert-manager, its CA injector); its Service meshfork-system/meshfork-webhook does not exist: the writes it covers go through without it (failurePolicy Ignore)',
      'fail webhooks: ValidatingWebhookConfiguration meshfork-sandboxes webhook sandboxes.meshfork.dev: no caBundle (the controller writes it once it runs; with cert-manager, its CA injector); its Service meshfork-system/meshfork-webhook does not exist: the writes it covers are refused (failurePolicy Fail)',
    ]);
    await core.createNamespace({ body: { metadata: { name: 'meshfork-system' } } });
    await objects.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'meshfork-webhook', namespace: 'meshfork-system' }, spec: { ports: [{ name: 'https-webhook', port: 443, targetPort: 9443 }] } } as KubernetesObject);
    const slice = (ready: boolean) =>
      ({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: { name: 'meshfork-webhook-x', namespace: 'meshfork-system', labels: { 'kubernetes.io/service-name': 'meshfork-webhook' } },
        addressType: 'FQDN',
        endpoints: [{ addresses: ['meshfork-webhook.invalid'], conditions: { ready } }],
        ports: [{ name: 'https-webhook', port: 9443, protocol: 'TCP' }],
      }) as KubernetesObject;
    await objects.create(slice(false));
    expect((await webhookLines())[0]).toBe(
      'warn webhooks: MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: no caBundle (the controller writes it once it runs; with cert-manager, its CA injector); its Service meshfork-system/meshfork-webhook has no ready endpoint (is the controller running and ready?): the writes it covers go through without it (failurePolicy Ignore)',
    );
    const sliceRef = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'meshfork-webhook-x', namespace: 'meshfork-system' } };
    await objects.replace({ ...slice(true), metadata: { ...slice(true).metadata, resourceVersion: (await objects.read(sliceRef)).metadata?.resourceVersion } } as KubernetesObject);
    const caBundle = Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const name = kind.startsWith('Mutating') ? 'meshfork-virtualservices' : 'meshfork-sandboxes';
      const live = (await objects.read({ apiVersion: 'admissionregistration.k8s.io/v1', kind, metadata: { name } })) as KubernetesObject & { webhooks: Array<{ clientConfig: Record<string, unknown> }> };
      await objects.replace({ ...live, webhooks: live.webhooks.map((w) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle } })) } as KubernetesObject);
    }
    expect(await webhookLines()).toEqual([
      'ok   webhooks: MutatingWebhookConfiguration meshfork-virtualservices webhook virtualservices.meshfork.dev: caBundle set, Service meshfork-system/meshfork-webhook has 1 ready endpoint',
      'ok   webhooks: ValidatingWebhookConfiguration meshfork-sandboxes webhook sandboxes.meshfork.dev: caBundle set, Service meshfork-system/meshfork-webhook has 1 ready endpoint',
    ]);
  });
});

/** The conditions of Sandbox one as the controller wrote them, as `status` prints them. */
async function conditionLines(objects: KubernetesObjectApi): Promise<string[]> {
  const sandbox = (await objects.read({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'one', namespace: NS } })) as { status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } };
  const conditions = sandbox.status?.conditions ?? [];
  expect(conditions.map((c) => `${c.type}=${c.status}`).sort()).toEqual(['Ready=True', 'RoutingReady=True', 'WorkloadsReady=True']);
  return conditions.map((c) => `  ${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`);
}

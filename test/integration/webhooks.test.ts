// The controller's admission webhooks against a real kube-apiserver and the real kubectl, with the
// chart's webhook configurations (clientConfig switched from the Service to the controller's
// 127.0.0.1 address) and the API server's audit log on:
//  - two Sandboxes route through a user VirtualService kept in "Git"; 20 syncs of the Git version
//    alternate `kubectl apply` (client-side), `kubectl apply --server-side --force-conflicts
//    --field-manager argocd-controller` and `kubectl replace`; after each the live object is
//    exactly plan() of the Git version with both Sandboxes (every user route unchanged and in
//    order, every sandbox route), each write was mutated by the webhook (audit annotation), and the
//    controller sent no write of its own (audit log, its impersonated user);
//  - with the controller stopped the same writes succeed (failurePolicy Ignore) without the
//    sandbox routes, and the routes return once it runs again;
//  - the webhook certificate, deleted or expired, is issued again, served, and written into the
//    caBundle of both configurations;
//  - `kubectl apply` of invalid Sandboxes and RouteGroups is refused with the planner's message; a
//    Sandbox forking a missing Deployment is created with a kubectl warning.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, RbacAuthorizationV1Api, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { RouteGroupObject, SandboxObject } from '../../src/api/schema.js';
import { plan } from '../../src/planner/plan.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { canonicalJson } from '../../src/controller/view.js';
import { issueCertificates } from '../../src/controller/certificates.js';
import { freePorts, requireTestbin, testbinPath, useControlPlane } from '../support/control-plane.js';
import { readObject, startControllerProcess, until, webDeployment, type ControllerProcess } from './controller-support.js';

const hasBins = requireTestbin();
const REPO = new URL('../../', import.meta.url).pathname;
const NS = 'gitops';
const ELSEWHERE = 'elsewhere';
const SYSTEM = 'meshfork-system';
const SECRET = 'meshfork-webhook-tls';
const CONTROLLER_USER = 'meshfork-controller-under-test';
const SANDBOX_API = 'meshfork.dev/v1alpha1' as const;
const VS_API = 'networking.istio.io/v1';
const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const SYNC_MODES = ['apply', 'apply --server-side', 'replace'] as const;

const dir = mkdtempSync(join(tmpdir(), 'meshfork-webhooks-'));
const auditLog = join(dir, 'audit.log');
writeFileSync(join(dir, 'policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n  - level: Metadata\n');
// maxSandboxesPerNamespace: 2, so a third Sandbox in a namespace is refused at apply time.
const configFile = join(dir, 'config.yaml');
writeFileSync(configFile, 'policy:\n  maxSandboxesPerNamespace: 2\n');

type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown>; data?: Record<string, string>; webhooks?: Array<{ name: string; clientConfig: { url?: string; caBundle?: string; service?: { path: string } } }> };
interface AuditEvent {
  verb: string;
  stage: string;
  user?: { username: string };
  impersonatedUser?: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  annotations?: Record<string, string>;
}
type Http = Array<{ name?: string; [k: string]: unknown }>;

/** The VirtualService as the team keeps it in Git; sync `i` sets the default route's timeout to `i+1`s. */
function gitVirtualService(i: number): Obj {
  const to = { destination: { host: 'web', port: { number: 80 } } };
  return {
    apiVersion: VS_API,
    kind: 'VirtualService',
    metadata: { name: 'web', namespace: NS, labels: { team: 'web' } },
    spec: {
      hosts: ['web'],
      http: [
        { name: 'canary', match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [to], timeout: '3s' },
        { name: 'api', match: [{ uri: { prefix: '/api' } }], route: [to], retries: { attempts: 3, perTryTimeout: '1s' }, rewrite: { uri: '/v2/api' } },
        { name: 'default', route: [to], timeout: `${i + 1}s` },
      ],
    },
  };
}

function sandbox(name: string, namespace: string, fork: string, extra: Record<string, unknown> = {}, labels: Record<string, string> = { team: 'web' }): Obj {
  return { apiVersion: SANDBOX_API, kind: 'Sandbox', metadata: { name, namespace, labels }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: fork } }], ...extra } };
}

function renderWebhookConfigurations(port: number): Obj[] {
  const r = spawnSync(testbinPath('helm'), ['template', 'mf', `${REPO}charts/meshfork`, '--namespace', SYSTEM], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`helm template: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null && (o.kind === 'MutatingWebhookConfiguration' || o.kind === 'ValidatingWebhookConfiguration'))
    .map((o) => ({ ...o, webhooks: o.webhooks!.map((w) => ({ ...w, clientConfig: { url: `https://127.0.0.1:${port}${w.clientConfig.service!.path}` } })) }));
}

function auditEvents(): AuditEvent[] {
  return readFileSync(auditLog, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === 'ResponseComplete');
}

/** The certificate 127.0.0.1:`port` presents (SHA-256 fingerprint). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolve(fingerprint);
    });
    socket.on('error', reject);
  });
}

describe.skipIf(!hasBins)('admission webhooks with kubectl as Argo CD uses it', () => {
  const cp = useControlPlane({
    crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'],
    apiServerFlags: [`--audit-policy-file=${join(dir, 'policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-maxsize=0'],
  });
  let objects: KubernetesObjectApi;
  let apps: AppsV1Api;
  let port = 0;
  let kubeconfigPath = '';
  let controller: ControllerProcess | undefined;
  const report: string[] = [];

  const startController = () => {
    controller = startControllerProcess(kubeconfigPath, [
      '--config', configFile,
      '--health-address', '127.0.0.1:0',
      '--webhook-address', `127.0.0.1:${port}`,
      '--webhook-hosts', '127.0.0.1',
      '--webhook-secret', `${SYSTEM}/${SECRET}`,
      '--webhook-configuration', 'meshfork',
      '--webhook-cert-check', '1',
    ]);
    return controller;
  };
  const stopController = async () => {
    controller!.child.kill('SIGTERM');
    expect(await controller!.exited).toBe(0);
  };
  const logTail = () => (controller?.stderr.join('') ?? '').trim().split('\n').slice(-20).join('\n');
  /** until(), with the controller's last log lines in the error (the machine may be loaded: generous limits). */
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined | false>, ms = 120_000): Promise<T> => {
    try {
      return await until(what, probe, ms);
    } catch (error) {
      throw new Error(`${String(error)}\ncontroller log tail:\n${logTail()}`);
    }
  };

  const kubectl = async (args: string[], input?: Obj) => cp().exec('kubectl', args, input === undefined ? {} : { input: JSON.stringify(input) });
  const sync = async (mode: (typeof SYNC_MODES)[number], i: number) => {
    const args = mode === 'apply' ? ['apply', '-f', '-'] : mode === 'replace' ? ['replace', '-f', '-'] : ['apply', '--server-side', '--force-conflicts', '--field-manager', 'argocd-controller', '-f', '-'];
    const r = await kubectl(args, gitVirtualService(i));
    expect(r.code, `kubectl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  };
  const liveVs = async () => (await readObject<Obj>(objects, VS_API, 'VirtualService', NS, 'web'))!;
  /** plan() of the Git version with the Sandboxes now stored: the VirtualService as it must be. */
  const expectedVs = async (i: number) => {
    const sandboxes = (await objects.list(SANDBOX_API, 'Sandbox', NS)).items as unknown as SandboxObject[];
    const inventory = {
      deployments: [webDeployment(NS) as unknown as KubeObject],
      services: [webService() as unknown as KubeObject],
      virtualServices: [gitVirtualService(i) as unknown as KubeObject],
      destinationRules: [],
    };
    const planned = plan({ inventory, sandboxes: sandboxes.map((s) => ({ ...s, apiVersion: SANDBOX_API, kind: 'Sandbox' })) });
    expect(planned.problems).toEqual([]);
    return planned.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'web')!;
  };
  const routeNames = (vs: Obj) => ((vs.spec?.['http'] ?? []) as Http).map((r) => r.name);
  const userRoutes = (vs: Obj) => ((vs.spec?.['http'] ?? []) as Http).filter((r) => !String(r.name).startsWith('meshfork-'));
  /** Marks a fork Deployment available, as the deployment controller would once its pods run. */
  const markAvailable = async (name: string) => {
    const d = await apps.readNamespacedDeployment({ name, namespace: NS });
    await apps.replaceNamespacedDeploymentStatus({ name, namespace: NS, body: { ...d, status: { observedGeneration: d.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1 } } as V1Deployment });
  };
  const routedAsPlanned = async (i: number) => canonicalJson((await liveVs()).spec) === canonicalJson((await expectedVs(i)).spec);

  beforeAll(async () => {
    const kc = cp().kubeConfig;
    objects = KubernetesObjectApi.makeApiClient(kc);
    apps = kc.makeApiClient(AppsV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [NS, ELSEWHERE, SYSTEM]) await core.createNamespace({ body: { metadata: { name } } });
    // The controller runs as a user of its own (all rights), so the audit log tells its requests apart.
    await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: { metadata: { name: 'controller-under-test' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: CONTROLLER_USER }] },
    });
    const impersonating = new KubeConfig();
    impersonating.loadFromOptions({ clusters: kc.clusters, users: kc.users.map((u) => ({ ...u, impersonateUser: CONTROLLER_USER })), contexts: kc.contexts, currentContext: kc.currentContext });
    kubeconfigPath = join(dir, 'kubeconfig-controller');
    writeFileSync(kubeconfigPath, impersonating.exportConfig());
    [port] = (await freePorts(1)) as [number];
    for (const configuration of renderWebhookConfigurations(port)) await objects.create(configuration);

    await objects.create(webDeployment(NS) as Obj);
    await objects.create(webService());
    await sync('apply', 0);
    startController();
    for (const name of ['alice', 'bob']) {
      const r = await kubectl(['apply', '-f', '-'], sandbox(name, NS, 'web-v1'));
      expect(r.code, r.stderr).toBe(0);
    }
    for (const name of ['web-v1-alice', 'web-v1-bob']) {
      await waitFor(`fork ${name}`, async () => (await readObject(objects, 'apps/v1', 'Deployment', NS, name)) !== undefined);
      await markAvailable(name);
    }
    await waitFor('both Sandboxes routed in the user VirtualService', () => routedAsPlanned(0));
    // The API server calls the webhook once the controller wrote the caBundle and the API server saw it.
    await waitFor('caBundle in both configurations', async () => {
      for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
        const c = await readObject<Obj>(objects, 'admissionregistration.k8s.io/v1', kind, '', 'meshfork');
        if (!c?.webhooks?.every((w) => (w.clientConfig.caBundle ?? '') !== '')) return false;
      }
      return true;
    });
  }, 240_000);

  afterAll(() => {
    if (controller !== undefined && controller.child.exitCode === null) controller.child.kill('SIGKILL');
    if (report.length > 0) console.log(`webhooks:\n  ${report.join('\n  ')}`);
  });

  it('20 syncs of the Git version (client-side apply, server-side apply as argocd-controller, replace) keep every user and sandbox route, by the webhook alone', async () => {
    // The first sync after the caBundle is in place may still reach the API server's older
    // configuration (no caBundle: the call fails, Ignore): sync until a write comes back mutated.
    await waitFor('a sync mutated by the webhook', async () => {
      await sync('replace', 0);
      return routedAsPlanned(0);
    });
    // Converged: both Sandboxes Ready and the controller idle (its status writes and Events done).
    for (const name of ['alice', 'bob']) {
      await waitFor(`Sandbox ${name} Ready`, async () => ((await readObject<Obj>(objects, SANDBOX_API, 'Sandbox', NS, name))?.status?.['conditions'] as Array<{ type: string; status: string }> | undefined)?.some((c) => c.type === 'Ready' && c.status === 'True'));
    }
    await waitFor('the controller idle', async () => (await controllerMetrics()).queued === 0);
    const metricsBefore = await controllerMetrics();
    const mark = auditEvents().length;
    for (let i = 1; i <= 20; i++) {
      await sync(SYNC_MODES[i % 3]!, i);
      const live = await liveVs();
      expect(userRoutes(live), `sync ${i}`).toEqual((gitVirtualService(i).spec!['http'] as Http));
      expect(canonicalJson(live.spec), `sync ${i} (${SYNC_MODES[i % 3]})`).toBe(canonicalJson((await expectedVs(i)).spec));
    }
    expect(routeNames(await liveVs())).toEqual(['meshfork-alice-0', 'meshfork-bob-0', 'canary', 'meshfork-alice-1', 'meshfork-bob-1', 'api', 'meshfork-alice-2', 'meshfork-bob-2', 'default']);

    // The controller saw every change (its Host key reconciled after the last one) and wrote nothing.
    await waitFor('the controller reconciled the host after the syncs', async () => {
      const m = await controllerMetrics();
      return m.hostReconciles > metricsBefore.hostReconciles && m.queued === 0;
    });
    const events = auditEvents().slice(mark);
    const controllerWrites = events.filter((e) => e.impersonatedUser?.username === CONTROLLER_USER && WRITE_VERBS.has(e.verb)).map((e) => `${e.verb} ${JSON.stringify(e.objectRef)}`);
    expect(controllerWrites).toEqual([]);
    // kubectl's writes: one per sync, and with --server-side after a client-side apply also the
    // patch that moves the client-side apply's managed fields to the SSA manager (kubectl's
    // csaupgrade; it leaves the routes in place, so the webhook answers without a patch). Every
    // one was answered by the webhook (none failed open), and the 20 that carried the Git
    // version's spec.http were mutated.
    const syncWrites = events.filter((e) => e.impersonatedUser === undefined && e.objectRef?.resource === 'virtualservices' && WRITE_VERBS.has(e.verb));
    const answers = syncWrites.map((e) => Object.entries(e.annotations ?? {}).filter(([k]) => k.includes('webhook.admission.k8s.io/')).map(([k, v]) => `${k.split('/')[0]} ${v}`));
    const mutated = `mutation.webhook.admission.k8s.io ${JSON.stringify({ configuration: 'meshfork', webhook: 'virtualservices.meshfork.dev', mutated: true })}`;
    const unchanged = mutated.replace('"mutated":true', '"mutated":false');
    for (const a of answers) expect([[mutated], [unchanged]]).toContainEqual(a);
    expect(answers.filter((a) => a[0] === mutated).length).toBeGreaterThanOrEqual(20);
    expect(syncWrites.filter((e) => e.verb === 'update')).toHaveLength(7); // the 7 replaces
    report.push(`20 syncs: ${syncWrites.length} kubectl writes, all answered by the webhook, ${answers.filter((a) => a[0] === mutated).length} of them mutated; ${controllerWrites.length} writes by the controller; ${(await controllerMetrics()).hostReconciles - metricsBefore.hostReconciles} Host reconciles`);
  }, 300_000);

  it('with the controller stopped the syncs succeed without the sandbox routes (failurePolicy Ignore); they return once it runs again', async () => {
    await stopController();
    const mark = auditEvents().length;
    for (let i = 21; i <= 23; i++) {
      await sync(SYNC_MODES[i % 3]!, i);
      expect((await liveVs()).spec).toEqual(gitVirtualService(i).spec);
    }
    // Each write called the webhook, failed to reach it and went on (failurePolicy Ignore).
    const writes = auditEvents().slice(mark).filter((e) => e.impersonatedUser === undefined && e.objectRef?.resource === 'virtualservices' && WRITE_VERBS.has(e.verb));
    expect(writes.length).toBeGreaterThanOrEqual(3);
    for (const e of writes) expect(e.annotations?.['failed-open.mutation.webhook.admission.k8s.io/round_0_index_0']).toBe('virtualservices.meshfork.dev');
    const t0 = Date.now();
    const restarted = startController();
    await waitFor('routes back after the restart', () => routedAsPlanned(23));
    const back = Date.now();
    const logged = (msg: string) => restarted.stderr.join('').split('\n').filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => Date.parse((JSON.parse(l) as { time: string }).time))[0];
    const serving = logged('serving admission webhooks');
    report.push(`routes back ${back - t0} ms after the controller process was started again (${serving === undefined ? '?' : back - serving} ms after it logged 'serving admission webhooks')`);
  });

  it('a deleted or expired serving certificate is issued again, served and written into both caBundles', async () => {
    const readTls = async () => {
      const s = await readObject<Obj>(objects, 'v1', 'Secret', SYSTEM, SECRET);
      const decode = (k: string) => (s?.data?.[k] === undefined ? undefined : Buffer.from(s.data[k]!, 'base64').toString('utf8'));
      return { cert: decode('tls.crt'), caCert: decode('ca.crt'), caKey: decode('ca.key'), previousCa: decode('ca-previous.crt') };
    };
    const caBundles = async () =>
      Promise.all(['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].map(async (kind) => (await readObject<Obj>(objects, 'admissionregistration.k8s.io/v1', kind, '', 'meshfork'))!.webhooks!.map((w) => w.clientConfig.caBundle)));
    /**
     * Waits until the Secret holds a certificate other than `old`, 127.0.0.1:port serves it and both
     * caBundles hold its CA (followed by `previousCa` when given).
     */
    const reissued = async (what: string, old: string, previousCa?: string) =>
      waitFor(what, async () => {
        const tls = await readTls();
        if (tls.cert === undefined || tls.cert === old) return false;
        if ((await servedFingerprint(port)) !== new X509Certificate(tls.cert).fingerprint256) return false;
        const pem = previousCa === undefined ? tls.caCert! : `${tls.caCert!.trimEnd()}\n${previousCa.trimEnd()}\n`;
        const bundle = Buffer.from(pem).toString('base64');
        return (await caBundles()).flat().every((b) => b === bundle) ? tls : false;
      });

    const first = await readTls();
    expect(await servedFingerprint(port)).toBe(new X509Certificate(first.cert!).fingerprint256);

    await objects.delete({ apiVersion: 'v1', kind: 'Secret', metadata: { name: SECRET, namespace: SYSTEM } });
    const second = await reissued('certificate re-issued after the Secret was deleted', first.cert!);
    expect(second.caCert).not.toBe(first.caCert); // the CA went with the Secret: a new one, in the caBundles

    // An expired certificate signed by the current CA.
    const expired = issueCertificates({ hosts: ['127.0.0.1'], now: new Date(), ca: { cert: second.caCert!, key: second.caKey! }, servingLifetimeMs: -60_000, notBeforeOffsetMs: -86_400_000 });
    const secret = (await readObject<Obj>(objects, 'v1', 'Secret', SYSTEM, SECRET))!;
    await objects.replace({ ...secret, data: { ...secret.data, 'tls.crt': Buffer.from(expired.cert).toString('base64'), 'tls.key': Buffer.from(expired.key).toString('base64') } } as Obj);
    const third = await reissued('certificate re-issued after it expired', expired.cert);
    expect(third.caCert).toBe(second.caCert); // same CA: the caBundle the API server holds stays valid
    expect(new Date(new X509Certificate(third.cert!).validTo).getTime()).toBeGreaterThan(Date.now());

    // A CA with less than a year left is replaced; the old one stays trusted (Secret and both
    // caBundles, after the new CA) while replicas may still serve a certificate it signed.
    const ageing = issueCertificates({ hosts: ['127.0.0.1'], now: new Date(), caLifetimeMs: 200 * 86_400_000 });
    const current = (await readObject<Obj>(objects, 'v1', 'Secret', SYSTEM, SECRET))!;
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    await objects.replace({ ...current, data: { 'ca.crt': b64(ageing.caCert), 'ca.key': b64(ageing.caKey), 'tls.crt': b64(ageing.cert), 'tls.key': b64(ageing.key) } } as Obj);
    const fourth = await reissued('a new CA, the ageing one kept in the caBundles', ageing.cert, ageing.caCert);
    expect(fourth.caCert).not.toBe(ageing.caCert);
    expect(fourth.previousCa).toBe(ageing.caCert);

    // The API server trusts the new certificate: a sync is still mutated.
    await waitFor('a sync mutated with the new certificate', async () => {
      await sync('replace', 24);
      return routedAsPlanned(24);
    });
  }, 180_000);

  it('kubectl apply of invalid Sandboxes and RouteGroups is refused with the planner\'s message; a missing baseline is a warning', async () => {
    const alice = (await readObject<Obj>(objects, SANDBOX_API, 'Sandbox', NS, 'alice'))!;
    const aliceKey = alice.status!['routingKey'] as string;
    expect(aliceKey).toMatch(/^[a-z0-9]+$/);

    // Over the namespace quota (config: 2 per namespace).
    const third = await kubectl(['apply', '-f', '-'], sandbox('carol', NS, 'web-v1', {}, {}));
    expect(third.code).not.toBe(0);
    expect(third.stderr.trim()).toBe(
      `The request is invalid: error when creating "STDIN": admission webhook "sandboxes.meshfork.dev" denied the request: Sandbox ${NS}/carol: metadata.namespace: namespace "${NS}" holds 3 Sandboxes and at most 2 are served (policy.maxSandboxesPerNamespace); the oldest 2 are, this one is number 3: delete a Sandbox of the namespace or raise the quota`,
    );

    // A routing key another Sandbox holds, in another namespace; its baseline is missing too (a warning).
    const missing = plan({ inventory: { deployments: [], services: [], virtualServices: [], destinationRules: [] }, sandboxes: [sandbox('dup', ELSEWHERE, 'api-v1') as unknown as SandboxObject] }).problems.find((p) => p.code === 'BaselineNotFound')!;
    const dup = await kubectl(['apply', '-f', '-'], sandbox('dup', ELSEWHERE, 'api-v1', { routingKey: aliceKey }));
    expect(dup.code).not.toBe(0);
    expect(dup.stderr).toContain(`admission webhook "sandboxes.meshfork.dev" denied the request: Sandbox ${ELSEWHERE}/dup: spec.routingKey: routing key "${aliceKey}" is already used by Sandbox ${NS}/alice\n`);
    expect(dup.stderr).toContain(`Warning: Sandbox ${ELSEWHERE}/dup: ${missing.path}: ${missing.message} (the Sandbox waits for it)\n`);
    expect(await readObject(objects, SANDBOX_API, 'Sandbox', ELSEWHERE, 'dup')).toBeUndefined();

    // A missing baseline alone: created, with kubectl's warning.
    const solo = await kubectl(['apply', '-f', '-'], sandbox('solo', ELSEWHERE, 'api-v1'));
    expect(solo.code, solo.stderr).toBe(0);
    expect(solo.stderr).toBe(`Warning: Sandbox ${ELSEWHERE}/solo: ${missing.path}: ${missing.message.replaceAll('dup', 'solo')} (the Sandbox waits for it)\n`);
    expect(solo.stdout.trim()).toBe('sandbox.meshfork.dev/solo created');

    // A RouteGroup whose members (alice, bob) both fork web-v1.
    const group: Obj = { apiVersion: SANDBOX_API, kind: 'RouteGroup', metadata: { name: 'team', namespace: NS }, spec: { match: { label: { key: 'team', value: 'web' } } } };
    const sandboxes = ((await objects.list(SANDBOX_API, 'Sandbox', NS)).items as unknown as SandboxObject[]).map((s) => ({ ...s, apiVersion: SANDBOX_API, kind: 'Sandbox' as const }));
    const refusal = plan({
      inventory: { deployments: [webDeployment(NS) as unknown as KubeObject], services: [webService() as unknown as KubeObject], virtualServices: [], destinationRules: [] },
      sandboxes,
      routeGroups: [group as unknown as RouteGroupObject],
    }).problems.filter((p) => p.object === `RouteGroup ${NS}/team`);
    expect(refusal).toHaveLength(1);
    const grouped = await kubectl(['apply', '-f', '-'], group);
    expect(grouped.code).not.toBe(0);
    expect(grouped.stderr.trim()).toBe(`The request is invalid: error when creating "STDIN": admission webhook "routegroups.meshfork.dev" denied the request: RouteGroup ${NS}/team: ${refusal[0]!.path}: ${refusal[0]!.message}`);
  });

  /** The controller's Host reconciles so far and the keys waiting or in progress, from its /metrics. */
  async function controllerMetrics(): Promise<{ hostReconciles: number; queued: number }> {
    const line = controller!.stderr.join('').split('\n').find((l) => l.includes('serving /metrics'));
    if (line === undefined) throw new Error(`the controller has not logged its health address yet:\n${logTail()}`);
    const address = (JSON.parse(line) as { address: string }).address;
    const text = await (await fetch(`http://${address}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    return {
      hostReconciles: value(/^meshfork_reconcile_total\{kind="Host",result="success"\} (\d+)/m),
      queued: value(/^meshfork_workqueue_depth\{state="waiting"\} (\d+)/m) + value(/^meshfork_workqueue_depth\{state="processing"\} (\d+)/m),
    };
  }
});

function webService(): Obj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: NS }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } };
}

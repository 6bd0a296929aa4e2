// `meshfork controller` as real processes, run as the image runs it (the bundle of the bin
// dispatcher that scripts/bundle.mjs makes from the current sources, ADR 0022) against a real
// kube-apiserver: two replicas with --leader-elect, exactly one reconciling; /healthz, /readyz and
// the leader's /metrics; SIGTERM makes the leader finish, release the Lease and exit 0, and the
// standby takes over at its next retry.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';
import { until } from './controller-support.js';

const hasBins = requireTestbin();
const NS = 'proc';
const REPO = new URL('../../', import.meta.url).pathname;

interface Replica {
  child: ChildProcess;
  stderr: string[];
  exited: Promise<number | null>;
}


describe.skipIf(!hasBins)('meshfork controller processes', () => {
  const cp = useSharedControlPlane();
  const replicas: Replica[] = [];
  let bundleDir = '';
  beforeAll(() => {
    bundleDir = mkdtempSync(join(tmpdir(), 'meshfork-bundle-'));
    execFileSync(process.execPath, [`${REPO}scripts/bundle.mjs`, bundleDir], { cwd: REPO, stdio: 'pipe' });
  });

  function start(): Replica {
    const child = spawn(
      process.execPath,
      [join(bundleDir, 'meshfork.mjs'), 'controller', '--kubeconfig', cp().kubeconfigPath, '--namespaces', NS, '--leader-elect', '--lease-namespace', NS, '--health-address', '127.0.0.1:0'],
      { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const stderr: string[] = [];
    child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const replica = { child, stderr, exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))) };
    replicas.push(replica);
    return replica;
  }

  afterAll(async () => {
    for (const r of replicas) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    if (bundleDir !== '') rmSync(bundleDir, { recursive: true, force: true });
  });

  const sandbox = (name: string): KubernetesObject =>
    ({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace: NS }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'web-v1' } }] } }) as KubernetesObject;

  it('one leader reconciles; SIGTERM releases the Lease and exits 0; the standby takes over', async () => {
    const kc = cp().kubeConfig;
    const objects = KubernetesObjectApi.makeApiClient(kc);
    const leases = kc.makeApiClient(CoordinationV1Api);
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    await objects.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web-v1', namespace: NS, labels: { app: 'web' } },
      spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'registry.example.com/web:1' }] } } },
    } as KubernetesObject);
    const forkExists = (name: string) => async () => {
      try {
        return (await objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS } })) !== undefined;
      } catch {
        return false;
      }
    };

    const a = start();
    const b = start();
    const leading = (r: Replica) => r.stderr.join('').includes('"msg":"started leading"');
    const records = (r: Replica) => r.stderr.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const addressOf = (r: Replica) => records(r).find((l) => l['msg'] === 'serving /metrics, /healthz, /readyz')?.['address'];
    const campaigning = (r: Replica) => r.stderr.join('').includes('"msg":"campaigning for the Lease"');
    // Each process starts on its own clock: on a loaded machine
    // one replica can lead and reconcile before the other has logged anything.
    await until('both replicas serve health and campaign', async () => [a, b].every((r) => addressOf(r) !== undefined && campaigning(r)), 60_000);
    await until('a leader', async () => leading(a) || leading(b), 60_000);
    await objects.create(sandbox('one'));
    await until('fork of one', forkExists('web-v1-one'), 60_000);
    expect([leading(a), leading(b)].filter(Boolean)).toHaveLength(1);
    const [leader, standby] = leading(a) ? [a, b] : [b, a];

    // /healthz, /readyz (a standby is ready too) and the leader's /metrics.
    const http = async (r: Replica, path: string) => {
      const res = await fetch(`http://${addressOf(r)}${path}`);
      return { status: res.status, body: await res.text() };
    };
    for (const r of [leader, standby]) {
      expect(await http(r, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
      expect(await http(r, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
    }
    // A reconcile is counted when it returns (src/controller/reconciler.ts), after it wrote the
    // fork and the Sandbox's status: wait for the count rather than race it.
    const metrics = await until(
      'the leader counts a successful Sandbox reconcile',
      async () => {
        const body = (await http(leader, '/metrics')).body;
        return /^meshfork_reconcile_total\{kind="Sandbox",result="success"\} [1-9]/m.test(body) && body;
      },
      30_000,
    );
    const sample = (name: string) => Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN);
    expect(sample('meshfork_reconcile_total{kind="Sandbox",result="success"}')).toBeGreaterThanOrEqual(1);
    expect(sample('meshfork_managed_objects{kind="Deployment"}')).toBe(1);
    expect(sample('meshfork_managed_objects{kind="Service"}')).toBe(0);
    expect(sample('meshfork_workqueue_depth{state="processing"}')).toBeGreaterThanOrEqual(0);
    expect(metrics).toContain('meshfork_reconcile_duration_seconds_bucket{le="0.005",kind="Sandbox",result="success"}');
    expect(metrics).toContain('meshfork_workqueue_queue_duration_seconds_count{kind="Sandbox"}');
    expect((await http(standby, '/metrics')).body).not.toContain('meshfork_reconcile_total{');
    const holder = (await leases.readNamespacedLease({ name: 'meshfork-controller', namespace: NS })).spec?.holderIdentity;
    expect(leader.stderr.join('')).toContain(`"identity":"${holder}"`);

    leader.child.kill('SIGTERM');
    const stoppedAt = Date.now();
    expect(await leader.exited).toBe(0);
    expect(leader.stderr.join('')).toContain('"msg":"stopped leading"');
    await until('the standby leads', async () => leading(standby), 15_000);
    // Released, so the standby takes over at its next retry (2 s plus jitter), not after 12 s.
    expect(Date.now() - stoppedAt).toBeLessThan(8_000);
    await objects.create(sandbox('two'));
    await until('fork of two (reconciled by the new leader)', forkExists('web-v1-two'), 30_000);

    standby.child.kill('SIGTERM');
    expect(await standby.exited).toBe(0);
    const released = await leases.readNamespacedLease({ name: 'meshfork-controller', namespace: NS });
    expect(released.spec?.holderIdentity ?? undefined).toBeUndefined();
    const errors = [...a.stderr, ...b.stderr].join('').split('\n').filter((l) => l.includes('"level":"error"'));
    expect(errors).toEqual([]);
  });
});

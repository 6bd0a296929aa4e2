/**
 * Issue 9 items 1 (delegates) and 6 (exportTo) through real istiod and proxyless gRPC clients
 * (@grpc/grpc-js-xds): istiod merges delegates into their roots and picks, per client namespace,
 * the VirtualService a sidecar uses (src/planner/virtual-service-placement.ts cites where).
 *
 * The e2e inventory (test/e2e/fixtures/inventory.yaml) with two changes, and Sandbox alpha
 * (forks greeter-v1 and catalog-v1):
 *  - greeter is routed by a root VirtualService whose only route delegates to `greeter-routes`
 *    (no hosts), which holds the route: meshfork merges its copies into the delegate;
 *  - the user's catalog VirtualService is exported only to its namespace (`exportTo: ["."]`):
 *    clients in e2e use it (merged), clients in namespace `other` (a Deployment there makes it
 *    known) use meshfork's own, exported to `other` only.
 * Keyed and unkeyed RPCs from a client in e2e and one in other, for each service.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { applyObjects, startIstiod, type Istiod, type KubeObj } from '../support/istiod.js';
import { xdsBootstrap, xdsEchoClient, type EchoClient } from '../support/xds-client.js';
import { cli } from '../support/cli.js';
import { fqdn, loadYaml, INVENTORY, Mesh, NS, parseYamlDocs, PORT, sandboxFile } from './mesh.js';

const hasBins = requireTestbin();

const OTHER = 'other';
const KEYED = { baggage: 'meshfork-routing-key=alpha01' };
const N = 20;
const CONVERGE_MS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Service = 'greeter' | 'catalog';

/** The e2e inventory with greeter behind a root + delegate and catalog's VirtualService scoped to e2e. */
function inventory(): KubeObj[] {
  const base = loadYaml(INVENTORY).map((o) =>
    o.kind === 'VirtualService' && o.metadata.name === 'catalog' ? { ...o, spec: { ...(o['spec'] as object), exportTo: ['.'] } } : o,
  );
  const vs = (name: string, spec: Record<string, unknown>): KubeObj => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: NS }, spec });
  const client: KubeObj = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'client', namespace: OTHER },
    spec: { selector: { matchLabels: { app: 'client' } }, template: { metadata: { labels: { app: 'client' } }, spec: { containers: [{ name: 'c', image: 'registry.example.com/client:1' }] } } },
  };
  return [
    ...base,
    vs('greeter', { hosts: ['greeter'], http: [{ name: 'all', delegate: { name: 'greeter-routes', namespace: NS } }] }),
    vs('greeter-routes', { http: [{ name: 'v1', route: [{ destination: { host: 'greeter', port: { number: PORT } } }] }] }),
    client,
  ];
}

describe.skipIf(!hasBins)('delegates and exportTo through real istiod and proxyless gRPC', () => {
  let cp: ControlPlane | undefined;
  let istiod: Istiod | undefined;
  let mesh: Mesh | undefined;
  let desired: KubeObj[] = [];
  const clients = new Map<string, EchoClient>();
  const client = (s: Service, ns: string) => clients.get(`${s}@${ns}`)!;

  beforeAll(async () => {
    cp = await startControlPlane();
    istiod = await startIstiod(cp);
    mesh = new Mesh(cp, istiod);
    const objects = inventory();
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-e2e-placement-'));
    writeFileSync(join(dir, 'inventory.yaml'), objects.map((o) => stringify(o)).join('---\n'));
    const r = cli('synth', '-f', join(dir, 'inventory.yaml'), '-f', sandboxFile('alpha'));
    if (r.code !== 0 || r.stderr.split('\n').some((l) => l !== '' && !l.startsWith('note: '))) throw new Error(`meshfork synth failed (${r.code}):\n${r.stderr}`);
    desired = parseYamlDocs(r.stdout, 'synth output');
    const deployments = [...objects, ...desired].filter((o) => o.kind === 'Deployment');
    const standIns = await Promise.all(deployments.map((d) => mesh!.standIn(d)));
    const namespaces = [NS, OTHER].map((name): KubeObj => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
    const merged = new Set(desired.filter((o) => o.kind === 'VirtualService').map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
    const userLeft = objects.filter((o) => o.kind !== 'VirtualService' || !merged.has(`${o.metadata.namespace}/${o.metadata.name}`));
    const order = ['Namespace', 'Deployment', 'WorkloadEntry', 'Service', 'DestinationRule', 'EnvoyFilter', 'VirtualService'];
    await applyObjects(cp, [...namespaces, ...userLeft, ...standIns, ...desired].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind)));
    for (const s of ['greeter', 'catalog'] as const) {
      for (const ns of [NS, OTHER]) {
        const c = xdsEchoClient(`xds:///${fqdn(s)}:${PORT}`, xdsBootstrap({ xdsAddress: istiod.xdsAddress, namespace: ns, app: `${s}-placement` }));
        clients.set(`${s}@${ns}`, c);
      }
    }
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await mesh?.close();
    await istiod?.stop();
    await cp?.stop();
  });

  it('synth merged the delegate and the scoped VirtualService, and exported its own catalog VirtualService to the other namespace only', () => {
    const vs = (name: string) => desired.find((o) => o.kind === 'VirtualService' && o.metadata.name === name);
    expect(vs('greeter')).toBeUndefined();
    expect(vs('greeter-meshfork')).toBeUndefined();
    expect(JSON.stringify(vs('greeter-routes')?.['spec'])).toContain('greeter-alpha.e2e.svc.cluster.local');
    expect(JSON.stringify(vs('catalog')?.['spec'])).toContain('catalog-alpha.e2e.svc.cluster.local');
    expect((vs('catalog-meshfork')?.['spec'] as { exportTo?: unknown }).exportTo).toEqual([OTHER]);
  });

  /** Waits until a keyed RPC reaches `first` (istiod's push), then counts N RPCs. */
  async function rpcs(s: Service, ns: string, md: Record<string, string>, first: string): Promise<Record<string, number>> {
    const t0 = Date.now();
    let last = '';
    for (;;) {
      const r = await client(s, ns).who(md);
      last = r.ok ? r.backend : `error ${r.code} ${r.details}`;
      if (r.ok && r.backend === first) break;
      if (Date.now() - t0 > CONVERGE_MS) throw new Error(`RPCs to ${s} from namespace ${ns} (${JSON.stringify(md)}): expected ${first}, still ${last} after ${CONVERGE_MS}ms`);
      await sleep(50);
    }
    return Object.fromEntries(await client(s, ns).tally(N, md));
  }

  for (const ns of [NS, OTHER]) {
    it(`delegate: from namespace ${ns}, keyed RPCs reach greeter's fork and unkeyed ones the baseline, ${N} of ${N}`, async () => {
      expect(await rpcs('greeter', ns, KEYED, 'greeter-v1-alpha')).toEqual({ 'greeter-v1-alpha': N });
      expect(await rpcs('greeter', ns, {}, 'greeter-v1')).toEqual({ 'greeter-v1': N });
    });
  }

  it(`exportTo: from the VirtualService's namespace, the merged user routes: keyed -> catalog fork, jason stays on v2, unkeyed -> v1`, async () => {
    expect(await rpcs('catalog', NS, KEYED, 'catalog-v1-alpha')).toEqual({ 'catalog-v1-alpha': N });
    expect(await rpcs('catalog', NS, { ...KEYED, 'end-user': 'jason' }, 'catalog-v2')).toEqual({ 'catalog-v2': N });
    expect(await rpcs('catalog', NS, {}, 'catalog-v1')).toEqual({ 'catalog-v1': N });
  });

  it(`exportTo: from namespace ${OTHER} (no user VirtualService visible), meshfork's own: keyed -> catalog fork, unkeyed -> the baseline Service`, async () => {
    expect(await rpcs('catalog', OTHER, KEYED, 'catalog-v1-alpha')).toEqual({ 'catalog-v1-alpha': N });
    const unkeyed = await rpcs('catalog', OTHER, {}, 'catalog-v2');
    // No user VirtualService applies there: the Service's endpoints, both versions, never a fork.
    expect(Object.keys(unkeyed).every((b) => b === 'catalog-v1' || b === 'catalog-v2'), JSON.stringify(unkeyed)).toBe(true);
    const nacks = (istiod?.logTail(100_000) ?? '').split('\n').filter((l) => l.includes('ACK ERROR'));
    expect(nacks, 'a proxyless gRPC client rejected xDS generated from meshfork objects').toEqual([]);
  });
});

/**
 * VirtualService `sourceLabels` through real istiod and proxyless gRPC clients: istiod matches
 * `sourceLabels` against each client's labels (here the proxy metadata LABELS, as for a workload
 * without a pod: pilot/pkg/model/context.go SetWorkloadLabels) and leaves the block out of that
 * client's routes when they do not match (route.go sourceMatchHTTP).
 *
 * The user's catalog VirtualService sends calls from greeter to catalog v2 and everything else to
 * v1. Sandbox `sb` forks greeter-v1 (the client) and catalog-v2. A client carrying the labels of
 * the fork's pods (read from the synthesized fork Deployment) must be routed as greeter is: before
 * meshfork's objects are applied it reaches v1 (its selector labels are rewritten), after them
 * v2, and its keyed calls reach the fork of catalog v2. Other clients: as before.
 *
 * Mirrors are tested in weights-subsets.test.ts at tier 1 (istiod's request_mirror_policies):
 * proxyless gRPC ignores them (@grpc/grpc-js-xds 1.14 build/src reads no mirror field; grpc-go 1.82
 * internal/xds/xdsclient/xdsresource/unmarshal_rds.go neither), so a mirror never reaches them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { inventoryOf, podTemplateLabels } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { applyObjects, startIstiod, type Istiod, type KubeObj } from '../support/istiod.js';
import { startEchoBackend, xdsBootstrap, xdsEchoClient, type EchoBackend, type EchoClient } from '../support/xds-client.js';

const hasBins = requireTestbin();

const NS = 'src-labels';
const PORT = 7070;
const KEY = 'srclab01';
const N = 20;
/** Bound on how long a route change may take to reach a client (istiod debounce + push). */
const CONVERGE_MS = 20_000;
const keyed = { baggage: `meshfork-routing-key=${KEY}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deployment(name: string, labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'server', image: `registry.example.com/${name}:1`, ports: [{ containerPort: PORT, name: 'grpc' }] }] } },
    },
  };
}
function service(app: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: NS }, spec: { selector: { app }, ports: [{ name: 'grpc', port: PORT, targetPort: PORT, appProtocol: 'grpc' }] } };
}
const GREETER = deployment('greeter-v1', { app: 'greeter', version: 'v1' });
const INVENTORY: KubeObject[] = [
  GREETER,
  service('greeter'),
  deployment('catalog-v1', { app: 'catalog', version: 'v1' }),
  deployment('catalog-v2', { app: 'catalog', version: 'v2' }),
  service('catalog'),
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'catalog', namespace: NS },
    spec: { host: 'catalog', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'catalog', namespace: NS },
    spec: {
      hosts: ['catalog'],
      http: [
        { name: 'from-greeter', match: [{ sourceLabels: { app: 'greeter' } }], route: [{ destination: { host: 'catalog', subset: 'v2' } }] },
        { name: 'rest', route: [{ destination: { host: 'catalog', subset: 'v1' } }] },
      ],
    },
  },
];
const SANDBOX: SandboxObject = {
  apiVersion: 'meshfork.dev/v1alpha1',
  kind: 'Sandbox',
  metadata: { name: 'sb', namespace: NS },
  spec: { routingKey: KEY, forks: [{ forkOf: { kind: 'Deployment', name: 'greeter-v1' } }, { forkOf: { kind: 'Deployment', name: 'catalog-v2' } }] },
};
const APPLY_ORDER = ['Namespace', 'Deployment', 'WorkloadEntry', 'Service', 'DestinationRule', 'EnvoyFilter', 'VirtualService'];

describe.skipIf(!hasBins)('sourceLabels select the fork as they select its baseline (istiod + proxyless gRPC)', () => {
  let cp: ControlPlane | undefined;
  let istiod: Istiod | undefined;
  const backends: EchoBackend[] = [];
  const clients = new Map<string, EchoClient>();
  const planned = plan({ inventory: inventoryOf(INVENTORY), sandboxes: [SANDBOX] });
  const forkLabels = podTemplateLabels(planned.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'greeter-v1-sb') ?? GREETER);

  /** A WorkloadEntry at 127.0.0.1 with a Deployment's pod labels, served by an echo backend named after it. */
  async function standIn(d: KubeObject): Promise<KubeObj> {
    const backend = await startEchoBackend(d.metadata.name);
    backends.push(backend);
    const labels = podTemplateLabels(d);
    return { apiVersion: 'networking.istio.io/v1', kind: 'WorkloadEntry', metadata: { name: d.metadata.name, namespace: NS, labels }, spec: { address: '127.0.0.1', labels, ports: { grpc: backend.port } } };
  }
  async function apply(objects: readonly KubeObject[]): Promise<void> {
    const standIns = await Promise.all(objects.filter((o) => o.kind === 'Deployment' && !o.metadata.name.startsWith('greeter')).map(standIn));
    const all = [...objects, ...standIns] as KubeObj[];
    await applyObjects(cp!, all.sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind)));
  }
  /** A proxyless client of catalog whose workload has `labels`. */
  function client(app: string, labels: Record<string, string>): EchoClient {
    let c = clients.get(app);
    if (c === undefined) {
      c = xdsEchoClient(`xds:///catalog.${NS}.svc.cluster.local:${PORT}`, xdsBootstrap({ xdsAddress: istiod!.xdsAddress, namespace: NS, app, labels }));
      clients.set(app, c);
    }
    return c;
  }
  /** RPCs from `c` with `md` reach `backend`, N of N, once istiod's push has reached the client. */
  async function reaches(c: EchoClient, what: string, md: Record<string, string>, backend: string): Promise<void> {
    const deadline = Date.now() + CONVERGE_MS;
    for (let r = await c.who(md); !(r.ok && r.backend === backend); r = await c.who(md)) {
      if (Date.now() > deadline) throw new Error(`${what}: expected ${backend}, still got ${r.ok ? r.backend : `error ${r.code} ${r.details}`} after ${CONVERGE_MS}ms`);
      await sleep(50);
    }
    expect(Object.fromEntries(await c.tally(N, md)), what).toEqual({ [backend]: N });
  }

  beforeAll(async () => {
    cp = await startControlPlane();
    istiod = await startIstiod(cp);
    await apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }, ...INVENTORY]);
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await Promise.all(backends.map((b) => b.close()));
    await istiod?.stop();
    await cp?.stop();
  });

  it('the plan has a meshfork-source copy selecting the fork of greeter-v1', () => {
    expect(planned.problems).toEqual([]);
    expect(forkLabels).toMatchObject({ app: 'greeter-sb', version: 'v1-sb', 'meshfork.dev/sandbox': 'sb' });
    const vs = planned.objects.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'catalog')!;
    expect((vs.spec as { http: Array<{ name?: string }> }).http.map((r) => r.name)).toEqual(['meshfork-sb-0', 'meshfork-source-0', 'from-greeter', 'meshfork-sb-1', 'rest']);
  });

  it("baseline only: greeter's calls reach catalog v2, others v1, and a client with the fork's labels falls through to v1", async () => {
    await reaches(client('greeter', { app: 'greeter', version: 'v1' }), 'greeter', {}, 'catalog-v2');
    await reaches(client('other', { app: 'other' }), 'other client', {}, 'catalog-v1');
    await reaches(client('greeter-fork', forkLabels), "greeter's fork before meshfork's objects", {}, 'catalog-v1');
  });

  it("with the sandbox: the fork is routed as greeter is, its keyed calls reach the fork of catalog v2; other clients as before", async () => {
    await apply(planned.objects);
    const fork = client('greeter-fork', forkLabels);
    await reaches(fork, "greeter's fork", {}, 'catalog-v2');
    await reaches(fork, "greeter's fork, keyed", keyed, 'catalog-v2-sb');
    const greeter = client('greeter', { app: 'greeter', version: 'v1' });
    await reaches(greeter, 'greeter', {}, 'catalog-v2');
    await reaches(greeter, 'greeter, keyed', keyed, 'catalog-v2-sb');
    const other = client('other', { app: 'other' });
    await reaches(other, 'other client', {}, 'catalog-v1');
    await reaches(other, 'other client, keyed (catalog-v1 is not forked)', keyed, 'catalog-v1');
    const nacks = (istiod?.logTail(100_000) ?? '').split('\n').filter((l) => l.includes('ACK ERROR'));
    expect(nacks, 'a proxyless gRPC client rejected xDS generated from meshfork objects').toEqual([]);
  });
});

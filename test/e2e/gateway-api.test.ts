/**
 * Gateway API mode through real istiod and proxyless gRPC (issue 11, docs/adr/0014): the user's
 * HTTPRoute attached to Service `shop` ("GAMMA", test/e2e/fixtures/gateway-api/inventory.yaml)
 * plus the derived routes of sandboxes alpha (forks shop-v1 and shop-v2) and beta (forks shop-v1
 * only), on a control plane serving Gateway API's standard-channel CRDs.
 *
 * istiod's Gateway API controller turns every HTTPRoute attached to a Service into a mesh
 * VirtualService, merging all routes of one namespace/port/host into one rule list sorted by
 * Gateway API precedence (pilot/pkg/config/kube/gateway route_collections.go HTTPRouteCollection
 * and mergeHTTPRoutes, conversion.go sortHTTPRoutes). Proxyless gRPC clients get it like
 * sidecars: grpcgen's RDS is core.BuildSidecarOutboundVirtualHosts (grpcgen/rds.go).
 *
 *  - tier 1: istiod accepted every route (status), and the RDS each client gets is exactly the
 *    Gateway API merge of the user's and the derived routes ({@link meshRouteOrder}), each copy
 *    carrying its original's filters and timeouts;
 *  - tier 2: RPCs reach the expected backend, N of N: keyed requests the fork of each copied rule's
 *    backend, unkeyed ones the user's routing (including the header-matched rule to shop-v2);
 *  - then the user's route is deleted and re-created, so it is newer than the derived routes:
 *    the creation-time tie-break reorders tied rules (tier 1 shows it) and no request changes
 *    destination (tier 2).
 *
 * Everything meshfork writes comes from `meshfork synth --routing-mode gatewayAPI` (so the forked
 * Services without a user route, shop-v1 and shop-v2, get derived routes too).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { applyObjects, deleteObject, listObjects, startIstiod, type Istiod, type KubeObj } from '../support/istiod.js';
import { proxyIdOf, xdsBootstrap, xdsEchoClient, type EchoClient } from '../support/xds-client.js';
import { envoyRouteSummary, formatMeshRoutes, GATEWAY_API_V1, meshRouteOrder, type MeshRoute } from '../support/gateway-api-routes.js';
import { FIXTURES, fqdn, loadYaml, Mesh, NS, PORT, snakeKeys, synthFiles } from './mesh.js';

const hasBins = requireTestbin();

const GW = `${FIXTURES}gateway-api/`;
const INVENTORY = `${GW}inventory.yaml`;
const KEY_NAME = 'meshfork-routing-key';
const KEYS = { alpha: 'alpha01', beta: 'beta02' } as const;
const bag = (key: string) => ({ baggage: `${KEY_NAME}=${key}` });
const N = 25;
const CONVERGE_MS = 30_000;
type Service = 'shop' | 'shop-v1';
const SERVICES: readonly Service[] = ['shop', 'shop-v1'];
const clientApp = (s: Service) => `${s}-gwclient`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `meshfork synth --routing-mode gatewayAPI` of the inventory and both sandboxes. */
function desired(): KubeObj[] {
  const out = synthFiles([INVENTORY, `${GW}sandboxes/alpha.yaml`, `${GW}sandboxes/beta.yaml`], NS, ['--routing-mode', 'gatewayAPI']);
  const vs = out.filter((o) => o.kind === 'VirtualService').map((o) => o.metadata.name);
  if (vs.length > 0) throw new Error(`synth --routing-mode gatewayAPI wrote VirtualServices: ${vs.join(', ')}`);
  return out;
}

describe.skipIf(!hasBins)('Gateway API routes through real istiod and proxyless gRPC', () => {
  let cp: ControlPlane | undefined;
  let istiod: Istiod | undefined;
  let mesh: Mesh | undefined;
  const clients = new Map<Service, EchoClient>();
  const client = (s: Service) => clients.get(s)!;
  const report: string[] = [];
  const userRoute = () => mesh!.inventory.find((o) => o.kind === 'HTTPRoute' && o.metadata.name === 'shop')!;

  beforeAll(async () => {
    const t0 = Date.now();
    cp = await startControlPlane({ gatewayApi: true });
    istiod = await startIstiod(cp);
    mesh = new Mesh(cp, istiod, SERVICES.map((s) => ({ proxyId: proxyIdOf({ namespace: NS, app: clientApp(s) }), service: s })), loadYaml(INVENTORY));
    await mesh.installBaseline();
    // creationTimestamp has one-second resolution: the derived routes strictly newer than the
    // user's, as the first tier-1 order below assumes (a tie goes by generated name instead).
    await sleep(1_100);
    const sync = await mesh.sync(desired());
    for (const s of SERVICES) {
      const c = xdsEchoClient(`xds:///${fqdn(s)}:${PORT}`, xdsBootstrap({ xdsAddress: istiod.xdsAddress, namespace: NS, app: clientApp(s) }));
      clients.set(s, c);
      const deadline = Date.now() + CONVERGE_MS;
      for (let r = await c.who(); !r.ok; r = await c.who()) {
        if (Date.now() > deadline) throw new Error(`tier 2 (RPCs to ${s}): no answer through xDS after ${CONVERGE_MS}ms: ${r.code} ${r.details}`);
        await sleep(100);
      }
    }
    report.push(`control plane ${(cp.startupMs / 1000).toFixed(1)}s, istiod ${(istiod.startupMs / 1000).toFixed(1)}s, applied ${sync.applied.length} objects, setup ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await mesh?.close();
    await istiod?.stop();
    await cp?.stop();
    if (report.length > 0) console.log(`Gateway API e2e:\n  ${report.join('\n  ')}`);
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => console.error(`--- istiod log (last 80 lines) ---\n${istiod?.logTail(80) ?? '(istiod not started)'}`));
  });

  /** Every HTTPRoute in the namespace as the API server holds it (creationTimestamp, status). */
  const storedRoutes = async () => {
    const r = await cp!.request('GET', `/apis/${GATEWAY_API_V1}/namespaces/${NS}/httproutes`);
    if (r.status !== 200) throw new Error(`list HTTPRoutes: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
    return (JSON.parse(r.body) as { items: KubeObj[] }).items.map((o): KubeObj => ({ ...o, apiVersion: GATEWAY_API_V1, kind: 'HTTPRoute' }));
  };

  /** The Envoy routes istiod generates for the client of `s` (its RDS), reduced. */
  const rds = async (s: Service) => {
    const rc = await mesh!.routeConfig(proxyIdOf({ namespace: NS, app: clientApp(s) }), s);
    return ((rc?.virtual_hosts?.[0]?.routes ?? []) as unknown[]).map((r) => snakeKeys(r) as Parameters<typeof envoyRouteSummary>[0] & { name?: string });
  };

  /** Tier 1: waits until istiod's RDS for the client of `s` is the Gateway API merge of the stored routes. */
  async function tier1(s: Service): Promise<{ expected: MeshRoute[]; ms: number }> {
    const t0 = Date.now();
    let expected: MeshRoute[] = [];
    let actual = '';
    for (;;) {
      expected = meshRouteOrder(await storedRoutes(), NS, s, PORT);
      actual = formatMeshRoutes((await rds(s)).map(envoyRouteSummary), Object.values(KEYS));
      if (actual === formatMeshRoutes(expected, Object.values(KEYS))) return { expected, ms: Date.now() - t0 };
      if (Date.now() - t0 > CONVERGE_MS) break;
      await sleep(100);
    }
    expect(actual, `tier 1 (istiod's RDS for ${fqdn(s)}:${PORT}): the Gateway API merge of ${expected.map((e) => e.from).filter((v, i, a) => a.indexOf(v) === i).join(', ')}`).toBe(
      formatMeshRoutes(expected, Object.values(KEYS)),
    );
    return { expected, ms: Date.now() - t0 };
  }

  /** Tier 2: `n` of `n` RPCs with `md` reach `backend` (after at most CONVERGE_MS for a push). */
  async function tier2(s: Service, md: Record<string, string>, backend: string): Promise<void> {
    const t0 = Date.now();
    let counts = new Map<string, number>();
    for (;;) {
      counts = await client(s).tally(N, md);
      if (counts.get(backend) === N || Date.now() - t0 > CONVERGE_MS) break;
      await sleep(200);
    }
    expect(Object.fromEntries(counts), `tier 2 (RPCs to ${s}) with ${JSON.stringify(md)}`).toEqual({ [backend]: N });
  }

  it('tier 1: istiod accepted the user route and every derived route on its Service parent (status Accepted, ResolvedRefs)', async () => {
    const want = ['shop', 'shop-alpha-7070', 'shop-beta-7070', 'shop-v1-alpha', 'shop-v1-beta', 'shop-v2-alpha'];
    let seen = '';
    const t0 = Date.now();
    for (;;) {
      const routes = await storedRoutes();
      seen = routes
        .map((r) => {
          const parents = ((r['status'] as { parents?: Array<{ parentRef: { name: string }; controllerName: string; conditions: Array<{ type: string; status: string }> }> } | undefined)?.parents ?? []);
          const cond = parents.flatMap((p) => p.conditions.filter((c) => c.type === 'Accepted' || c.type === 'ResolvedRefs').map((c) => `${p.controllerName} ${p.parentRef.name} ${c.type}=${c.status}`));
          return `${r.metadata.name}: ${cond.sort().join(', ')}`;
        })
        .sort()
        .join('\n');
      const ok = want.every((n) => seen.includes(`${n}: istio.io/gateway-controller `)) && !seen.includes('=False') && !seen.includes('=Unknown');
      if (ok || Date.now() - t0 > CONVERGE_MS) break;
      await sleep(200);
    }
    expect(seen, 'tier 1 (HTTPRoute status written by istiod)').toBe(
      want
        .map((n) => {
          const parent = n.startsWith('shop-v1-') ? 'shop-v1' : n.startsWith('shop-v2-') ? 'shop-v2' : 'shop';
          return `${n}: istio.io/gateway-controller ${parent} Accepted=True, istio.io/gateway-controller ${parent} ResolvedRefs=True`;
        })
        .sort()
        .join('\n'),
    );
  });

  it("tier 1: each client's RDS is the Gateway API merge of the user's and the derived routes; every copy ranks just above its original", async () => {
    for (const s of SERVICES) {
      const { expected, ms } = await tier1(s);
      report.push(`tier 1 ${s}: ${expected.length} routes as merged by Gateway API precedence after ${ms}ms`);
    }
    // The user route is older than the derived ones. Each copy has two matches: the key in
    // baggage (.0), or in tracestate with a baggage header holding no key-name member (.1, one
    // header more). The tie of the user's `jason` (1 header) with the baggage copies of
    // `default` (1 header) goes to the older route: `jason` first.
    const shop = meshRouteOrder(await storedRoutes(), NS, 'shop', PORT).map((r) => r.from);
    expect(shop).toEqual([
      // Exact path (canary), by header count: 3, 2, 1
      'e2e/shop-alpha-7070#1.1', 'e2e/shop-beta-7070#1.1', 'e2e/shop-alpha-7070#1.0', 'e2e/shop-beta-7070#1.0', 'e2e/shop#1.0',
      // PathPrefix / (as defaulted), by header count: 3
      'e2e/shop-alpha-7070#0.1', 'e2e/shop-beta-7070#0.1',
      // 2: route age, then rule and match order
      'e2e/shop-alpha-7070#0.0', 'e2e/shop-alpha-7070#2.1', 'e2e/shop-beta-7070#0.0', 'e2e/shop-beta-7070#2.1',
      // 1: the oldest route first
      'e2e/shop#0.0', 'e2e/shop-alpha-7070#2.0', 'e2e/shop-beta-7070#2.0',
      // the catch-all
      'e2e/shop#2.0',
    ]);
    const nacks = (istiod?.logTail(100_000) ?? '').split('\n').filter((l) => l.includes('ACK ERROR'));
    expect(nacks, 'a proxyless gRPC client rejected xDS istiod generated from the routes').toEqual([]);
  });

  it("tier 1: a copy keeps its original's filters, timeouts and retries (Envoy route equal but for the key header and the forked cluster)", async () => {
    const routes = await rds('shop');
    const strip = (r: (typeof routes)[number]) => {
      const { match, route, name: _name, metadata: _metadata, decorator: _decorator, ...rest } = r as Record<string, unknown> & { match?: { headers?: Array<{ name: string }> }; route?: Record<string, unknown> };
      return { ...rest, match: { ...match, headers: (match?.headers ?? []).filter((h) => h.name !== 'baggage' && h.name !== 'tracestate') }, route: { ...route, cluster: undefined } };
    };
    const canary = routes.filter((r) => r.name === 'canary');
    expect(canary.map((r) => envoyRouteSummary(r).clusters[0]), 'tier 1: the canary rule and its copies (tracestate and baggage alternatives of alpha, beta)').toEqual([
      `outbound|${PORT}||shop-v2-alpha.e2e.svc.cluster.local`,
      `outbound|${PORT}||shop-v2.e2e.svc.cluster.local`,
      `outbound|${PORT}||shop-v2-alpha.e2e.svc.cluster.local`,
      `outbound|${PORT}||shop-v2.e2e.svc.cluster.local`,
      `outbound|${PORT}||shop-v2.e2e.svc.cluster.local`,
    ]);
    const original = JSON.stringify(strip(canary[4]!));
    expect(original).toContain('x-shop-canary');
    expect(original).toContain('"timeout":"5s"');
    for (const copy of canary.slice(0, 4)) expect(JSON.stringify(strip(copy)), 'tier 1: a copy of the canary rule').toBe(original);
  });

  const cases: Array<[Service, string, Record<string, string>, string]> = [
    ['shop', 'unkeyed: the default rule', {}, 'shop-v1'],
    ['shop', 'unkeyed: the jason rule sends it to another backend', { 'end-user': 'jason' }, 'shop-v2'],
    ['shop', 'unkeyed: the canary rule (exact path + header)', { 'x-canary': 'on' }, 'shop-v2'],
    ['shop', 'key alpha: the copy of default -> fork of shop-v1', bag(KEYS.alpha), 'shop-v1-alpha'],
    ['shop', 'key alpha + jason: the copy of jason -> fork of shop-v2', { ...bag(KEYS.alpha), 'end-user': 'jason' }, 'shop-v2-alpha'],
    ['shop', 'key alpha + canary: the copy of canary -> fork of shop-v2', { ...bag(KEYS.alpha), 'x-canary': 'on' }, 'shop-v2-alpha'],
    ['shop', 'key beta: the copy of default -> fork of shop-v1', bag(KEYS.beta), 'shop-v1-beta'],
    ['shop', 'key beta + jason: the copy keeps shop-v2 (beta does not fork it)', { ...bag(KEYS.beta), 'end-user': 'jason' }, 'shop-v2'],
    ['shop', 'key beta + canary: the copy keeps shop-v2', { ...bag(KEYS.beta), 'x-canary': 'on' }, 'shop-v2'],
    ['shop', 'a near-miss key (alpha01x): unkeyed', { baggage: `${KEY_NAME}=${KEYS.alpha}x` }, 'shop-v1'],
    ['shop', 'alpha then beta in baggage: the last member (beta) wins', { baggage: `${KEY_NAME}=${KEYS.alpha},${KEY_NAME}=${KEYS.beta}`, 'end-user': 'jason' }, 'shop-v2'],
    ['shop', 'key alpha in tracestate, baggage without a key member: the tracestate copy', { baggage: 'foo=1', tracestate: `${KEY_NAME}=${KEYS.alpha}`, 'end-user': 'jason' }, 'shop-v2-alpha'],
    ['shop', 'key alpha in tracestate and no baggage header: unkeyed (positive-only matches, ADR 0013)', { tracestate: `${KEY_NAME}=${KEYS.alpha}` }, 'shop-v1'],
    ['shop-v1', 'no user route: unkeyed -> the Service (the baseline rule)', {}, 'shop-v1'],
    ['shop-v1', 'no user route: key alpha -> its fork', bag(KEYS.alpha), 'shop-v1-alpha'],
  ];

  for (const [s, what, md, backend] of cases) {
    it(`tier 2: ${s}: ${what} -> ${backend}, ${N} of ${N}`, async () => {
      await tier2(s, md, backend);
    });
  }

  it('the user route re-created after the sandboxes: the creation-time tie-break reorders tied rules (tier 1) and no request changes destination (tier 2)', async () => {
    const before = (await storedRoutes()).find((r) => r.metadata.name === 'shop')!;
    await deleteObject(cp!, userRoute());
    const t0 = Date.now();
    while ((await listObjects(cp!, GATEWAY_API_V1, 'HTTPRoute', NS, '')).some((r) => r.metadata.name === 'shop' && r.metadata.uid === before.metadata.uid)) {
      if (Date.now() - t0 > CONVERGE_MS) throw new Error('the user HTTPRoute was not deleted');
      await sleep(100);
    }
    // creationTimestamp has one-second resolution: make the new route strictly newer.
    await sleep(1_100);
    await applyObjects(cp!, [userRoute()]);
    const after = (await storedRoutes()).find((r) => r.metadata.name === 'shop')!;
    const created = (o: KubeObj) => String((o.metadata as { creationTimestamp?: string }).creationTimestamp);
    const derivedCreated = (await storedRoutes()).filter((r) => r.metadata.name !== 'shop').map(created);
    expect(derivedCreated.every((c) => c < created(after)), `user route ${created(after)} newer than the derived ones ${derivedCreated.join(', ')}`).toBe(true);

    const { ms } = await tier1('shop');
    // Every request first, then the order that shows why nothing moved.
    for (const [s, what, md, backend] of cases) {
      await tier2(s, md, backend).catch((e: unknown) => {
        throw new Error(`after re-creating the user route: ${what}: ${String(e)}`);
      });
    }
    const shop = meshRouteOrder(await storedRoutes(), NS, 'shop', PORT).map((r) => r.from);
    // The tie between jason (1 header) and the baggage copies of default now goes to the copies (older).
    expect(shop).toEqual([
      'e2e/shop-alpha-7070#1.1', 'e2e/shop-beta-7070#1.1', 'e2e/shop-alpha-7070#1.0', 'e2e/shop-beta-7070#1.0', 'e2e/shop#1.0',
      'e2e/shop-alpha-7070#0.1', 'e2e/shop-beta-7070#0.1',
      'e2e/shop-alpha-7070#0.0', 'e2e/shop-alpha-7070#2.1', 'e2e/shop-beta-7070#0.0', 'e2e/shop-beta-7070#2.1',
      'e2e/shop-alpha-7070#2.0', 'e2e/shop-beta-7070#2.0', 'e2e/shop#0.0',
      'e2e/shop#2.0',
    ]);
    report.push(`re-created user route: tier 1 converged after ${ms}ms; tied rules reordered as the spec says`);
  });
});

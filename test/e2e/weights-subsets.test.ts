/**
 * Weights and subsets in sandbox copies (docs/adr/0001, src/planner/virtual-service.ts) through
 * real istiod and proxyless gRPC clients (@grpc/grpc-js-xds), on Bookinfo's reviews with Istio's
 * own DestinationRule and VirtualServices read from the Go module cache
 * (samples/bookinfo/networking: destination-rule-reviews.yaml, virtual-service-reviews-90-10.yaml,
 * virtual-service-reviews-jason-v2-v3.yaml) and test/e2e/fixtures/reviews/.
 *
 * One cluster, five phases in order, as a user changing their VirtualService:
 *  1. 90/10 over subsets v1/v2 of `reviews`, sandbox canary-subsets forks reviews-v2;
 *  2. the same 90/10 written over the Services reviews-v1/reviews-v2, sandbox canary-services
 *     forks reviews-v2;
 *  3. jason -> v2 / everyone else -> v3, sandbox stars forks reviews-v2 and reviews-v3;
 *  4. every request to v1 mirrored to v2 (virtual-service-reviews-mirror-v2.yaml), sandbox shadow
 *     forks reviews-v2, the mirror target;
 *  5. the same VirtualService, sandbox primary forks reviews-v1, the primary.
 * Each phase: tier 1 (istiod's RDS for the client is exactly the VirtualService synth wrote, and
 * the sandbox copy names only the cluster it must), then tier 2 (RPC counts): keyed RPCs reach the
 * fork every time, unkeyed RPCs go where the user's routes send them. Each sandbox has its own
 * key and fork backends, so a client still on the previous phase's routes cannot pass a check.
 *
 * Mirrors are proven at tier 1 only: istiod gives proxyless gRPC clients the same
 * `request_mirror_policies` as sidecars (grpcgen/rds.go builds the routes with
 * core.BuildSidecarOutboundVirtualHosts; route.go translates `mirror`/`mirrors`), but gRPC does not
 * mirror: gRFC A28 (xDS traffic splitting and routing) lists the RouteAction fields gRPC reads
 * (cluster, weighted_clusters, cluster_header) and "the fields not covered by this section will all
 * be ignored", and @grpc/grpc-js-xds 1.14.1 (src/resolver-xds.ts) reads only those, timeouts,
 * retry_policy and hash_policy. Tier 2 therefore shows the primary of every keyed RPC and that no
 * mirror copy is sent (the mirror backends serve nothing), which is gRPC's behaviour, not meshfork's.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { istioSample, requireIstioSamples } from '../support/istio-samples.js';
import { startIstiod, type Istiod, type KubeObj } from '../support/istiod.js';
import { proxyIdOf, xdsBootstrap, xdsEchoClient, type EchoClient } from '../support/xds-client.js';
import { clusterName, expectedRoutes, snakeKeys, FIXTURES, formatRoutes, fqdn, loadYaml, Mesh, NS, PORT, summarizeRoutes, synthFiles, type RouteSummary } from './mesh.js';

const hasBins = requireTestbin();
const hasSamples = hasBins && requireIstioSamples();

const KEY_NAME = 'meshfork-routing-key';
const bag = (key: string) => ({ baggage: `${KEY_NAME}=${key}` });
const JASON = { 'end-user': 'jason' };
/** Keyed RPCs per check: every one must reach the fork. */
const KEYED = 50;
/**
 * Unkeyed RPCs through a 90/10 split: both baseline versions must appear and nothing else.
 * Seeing no v2 in 200 has probability 0.9^200 ~ 7e-10; v2 at least as often as v1 is as unlikely.
 */
const UNKEYED = 200;
/** Bound on how long a route change may take to reach the client (istiod debounce + push). */
const CONVERGE_MS = 20_000;
const CLIENT_APP = 'reviews-client';
const REVIEWS = `${FIXTURES}reviews/`;
const INVENTORY_FILE = `${REVIEWS}inventory.yaml`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bookinfoNetworking = (file: string) => istioSample(`bookinfo/networking/${file}`);
/** Istio's samples name no namespace: applied in NS, as `kubectl apply -n e2e` would. */
const inNamespace = (objects: KubeObj[]) => objects.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? NS } }));

describe.skipIf(!hasSamples)('weights, subsets and mirrors in sandbox copies through real istiod and proxyless gRPC', () => {
  let cp: ControlPlane | undefined;
  let istiod: Istiod | undefined;
  let mesh: Mesh | undefined;
  let client: EchoClient;
  const report: string[] = [];
  const proxyId = proxyIdOf({ namespace: NS, app: CLIENT_APP });

  beforeAll(async () => {
    const t0 = Date.now();
    cp = await startControlPlane();
    istiod = await startIstiod(cp);
    const inventory = [...loadYaml(INVENTORY_FILE), ...inNamespace(loadYaml(bookinfoNetworking('destination-rule-reviews.yaml')))];
    mesh = new Mesh(cp, istiod, [{ proxyId, service: 'reviews' }], inventory);
    await mesh.installBaseline();
    client = xdsEchoClient(`xds:///${fqdn('reviews')}:${PORT}`, xdsBootstrap({ xdsAddress: istiod.xdsAddress, namespace: NS, app: CLIENT_APP }));
    // The channel is lazy: the first RPC starts its ADS stream.
    const deadline = Date.now() + CONVERGE_MS;
    for (let r = await client.who(); !r.ok; r = await client.who()) {
      if (Date.now() > deadline) throw new Error(`tier 2 (RPCs to reviews): no answer through xDS after ${CONVERGE_MS}ms: ${r.code} ${r.details}`);
      await sleep(100);
    }
    report.push(`setup (control plane + istiod + baseline) ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  });

  afterAll(async () => {
    client?.close();
    await mesh?.close();
    await istiod?.stop();
    await cp?.stop();
    if (report.length > 0) console.log(`weights and subsets e2e:\n  ${report.join('\n  ')}`);
  });

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      console.error(`--- istiod log (last 80 lines) ---\n${istiod?.logTail(80) ?? '(istiod not started)'}`);
    });
  });

  /**
   * Synthesizes the inventory + Istio's DestinationRule + the user's VirtualService + one Sandbox,
   * syncs it, and waits until istiod's RDS for the client is exactly the merged VirtualService
   * (tier 1) whose first route, the sandbox copy, names `copyCluster` alone.
   */
  async function phase(userVirtualService: string, sandbox: string, copyCluster: string): Promise<void> {
    const t0 = Date.now();
    const desired = synthFiles([INVENTORY_FILE, bookinfoNetworking('destination-rule-reviews.yaml'), userVirtualService, `${REVIEWS}${sandbox}.yaml`]);
    const merged = desired.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'reviews');
    if (merged === undefined) throw new Error(`synth wrote no VirtualService reviews for ${sandbox}`);
    await mesh!.sync(desired);
    const expected = expectedRoutes(merged);
    expect(expected[0]?.clusters, `the sandbox copy of ${sandbox} (VirtualService reviews, first route) names only ${copyCluster}`).toEqual([copyCluster]);
    let actual: RouteSummary[] = [];
    while (Date.now() - t0 < CONVERGE_MS) {
      actual = summarizeRoutes(await mesh!.routeConfig(proxyId, 'reviews'));
      if (JSON.stringify(actual) === JSON.stringify(expected)) break;
      await sleep(100);
    }
    expect(formatRoutes(actual), `tier 1 (istiod's RDS for ${CLIENT_APP}.${NS}, route ${clusterName('reviews')})`).toBe(formatRoutes(expected));
    report.push(`${sandbox}: synth + sync + tier 1 in ${Date.now() - t0}ms`);
  }

  /** Tier 2: waits (bounded) until an RPC with `md` reaches `backend`, then `n` of `n` must. */
  async function every(what: string, md: Record<string, string>, backend: string, n = KEYED): Promise<void> {
    const t0 = Date.now();
    for (let r = await client.who(md); !(r.ok && r.backend === backend); r = await client.who(md)) {
      if (Date.now() - t0 > CONVERGE_MS) throw new Error(`tier 2 (RPCs to reviews): ${what}: expected ${backend}, still got ${r.ok ? r.backend : `error ${r.code}`} after ${CONVERGE_MS}ms`);
      await sleep(50);
    }
    const counts = await client.tally(n, md);
    expect(Object.fromEntries(counts), `tier 2 (RPCs to reviews): ${what}: ${n} of ${n} to ${backend} (metadata ${JSON.stringify(md)})`).toEqual({ [backend]: n });
  }

  /** Tier 2: unkeyed RPCs through the user's 90/10 split reach both baseline versions, mostly v1, and nothing else. */
  async function split9010(what: string): Promise<string> {
    const counts = await client.tally(UNKEYED, {});
    const seen = JSON.stringify(Object.fromEntries(counts));
    expect([...counts.keys()].sort(), `tier 2 (RPCs to reviews): ${what}: ${UNKEYED} unkeyed RPCs reach both baseline versions and nothing else: ${seen}`).toEqual(['reviews-v1', 'reviews-v2']);
    expect(counts.get('reviews-v1')!, `tier 2 (RPCs to reviews): ${what}: 90/10 means v1 more often than v2: ${seen}`).toBeGreaterThan(counts.get('reviews-v2')!);
    return seen;
  }

  function noNacks(): void {
    const nacks = (istiod?.logTail(100_000) ?? '').split('\n').filter((l) => l.includes('ACK ERROR'));
    expect(nacks, 'a proxyless gRPC client rejected (NACKed) xDS istiod generated from meshfork objects').toEqual([]);
  }

  it(`weights over subsets: Istio's 90 v1 / 10 v2 with reviews-v2 forked -> keyed ${KEYED} of ${KEYED} to the fork, unkeyed to both baseline versions`, async () => {
    await phase(bookinfoNetworking('virtual-service-reviews-90-10.yaml'), 'sandbox-canary-subsets', clusterName('reviews-canary-subsets', 'v2'));
    await every('keyed (canary01)', bag('canary01'), 'reviews-v2-canary-subsets');
    const unkeyed = await split9010('no key');
    noNacks();
    report.push(`90/10 over subsets: keyed ${KEYED}/${KEYED} to reviews-v2-canary-subsets, unkeyed ${unkeyed}`);
  });

  it(`weights over Services: 90 reviews-v1 / 10 reviews-v2 with reviews-v2 forked -> the same: keyed ${KEYED} of ${KEYED} to the fork, unkeyed to both`, async () => {
    await phase(`${REVIEWS}virtual-service-reviews-services-90-10.yaml`, 'sandbox-canary-services', clusterName('reviews-v2-canary-services'));
    await every('keyed (canary02)', bag('canary02'), 'reviews-v2-canary-services');
    // canary-subsets was removed with this sync: its key is an unknown member now, so its RPCs
    // follow the user's split (only baseline versions; 50 RPCs may all land on v1).
    const gone = await client.tally(KEYED, bag('canary01'));
    expect([...gone.keys()].filter((b) => b !== 'reviews-v1' && b !== 'reviews-v2'), `tier 2 (RPCs to reviews): the removed sandbox's key reaches only baseline versions: ${JSON.stringify(Object.fromEntries(gone))}`).toEqual([]);
    const unkeyed = await split9010('no key');
    noNacks();
    report.push(`90/10 over Services: keyed ${KEYED}/${KEYED} to reviews-v2-canary-services, unkeyed ${unkeyed}`);
  });

  it("subsets: a sandbox forking reviews-v2 and reviews-v3 keeps Istio's jason -> v2 / rest -> v3 split inside the sandbox", async () => {
    await phase(bookinfoNetworking('virtual-service-reviews-jason-v2-v3.yaml'), 'sandbox-stars', clusterName('reviews-stars', 'v2'));
    await every('keyed + jason', { ...JASON, ...bag('stars003') }, 'reviews-v2-stars');
    await every('keyed, no end-user', bag('stars003'), 'reviews-v3-stars');
    await every('keyed, another end-user', { 'end-user': 'alice', ...bag('stars003') }, 'reviews-v3-stars');
    await every('unkeyed jason', JASON, 'reviews-v2');
    await every('unkeyed', {}, 'reviews-v3');
    await every('jason + the key of a removed sandbox', { ...JASON, ...bag('canary02') }, 'reviews-v2');
    noNacks();
    report.push(`jason v2 / rest v3 with v2 and v3 forked: keyed+jason -> reviews-v2-stars, keyed -> reviews-v3-stars, unkeyed jason -> reviews-v2, unkeyed -> reviews-v3 (${KEYED}/${KEYED} each)`);
  });
  /**
   * Tier 1 of a mirror: each route of istiod's RDS for the client as
   * `<route name> [<headers>] -> <clusters> mirror <cluster> <numerator>/<denominator>`
   * (Envoy RouteAction.request_mirror_policies, runtime_fraction.default_value).
   */
  async function mirroredRoutes(): Promise<string[]> {
    const rc = snakeKeys(await mesh!.routeConfig(proxyId, 'reviews')) as {
      virtual_hosts?: Array<{ routes?: Array<{ name?: string; route?: { cluster?: string; request_mirror_policies?: Array<{ cluster?: string; runtime_fraction?: { default_value?: { numerator?: number; denominator?: string } } }> } }> }>;
    };
    const summaries = summarizeRoutes(rc as Parameters<typeof summarizeRoutes>[0]);
    return (rc.virtual_hosts?.[0]?.routes ?? []).map((r, i) => {
      const mirrors = (r.route?.request_mirror_policies ?? []).map((m) => `${m.cluster} ${m.runtime_fraction?.default_value?.numerator ?? 0}/${m.runtime_fraction?.default_value?.denominator ?? 'HUNDRED'}`);
      return `${summaries[i]!.name || '(unnamed)'} ${summaries[i]!.headers.length > 0 ? 'keyed' : 'any'} -> ${summaries[i]!.clusters.join(', ')} mirror ${mirrors.join(', ') || 'none'}`;
    });
  }

  /** RPCs each backend has served so far, for the backends named. */
  const served = (...backends: string[]) => Object.fromEntries(backends.map((b) => [b, mesh!.backends.get(b)?.served() ?? 0]));

  const MIRROR_VS = `${REVIEWS}virtual-service-reviews-mirror-v2.yaml`;
  const FULL = `1000000/MILLION`;

  it(`mirrors: forking reviews-v2 (the mirror target) -> keyed RPCs keep the primary v1, istiod mirrors them to the fork; unkeyed as before`, async () => {
    await phase(MIRROR_VS, 'sandbox-shadow', clusterName('reviews', 'v1'));
    const copy = `meshfork-shadow-0 keyed -> ${clusterName('reviews', 'v1')} mirror ${clusterName('reviews-shadow', 'v2')} ${FULL}`;
    expect(await mirroredRoutes(), "tier 1: istiod's RDS for the proxyless client carries the mirror of the sandbox copy to the fork's subset cluster, the user's mirror unchanged").toEqual([
      copy,
      copy,
      copy,
      `(unnamed) any -> ${clusterName('reviews', 'v1')} mirror ${clusterName('reviews', 'v2')} ${FULL}`,
    ]);
    const before = served('reviews-v2', 'reviews-v2-shadow');
    await every('keyed (shadow04)', bag('shadow04'), 'reviews-v1');
    await every('unkeyed', {}, 'reviews-v1');
    // Proxyless gRPC ignores request_mirror_policies (gRFC A28): no mirror copy reaches either v2.
    expect(served('reviews-v2', 'reviews-v2-shadow'), 'tier 2: gRPC sends no mirror copies').toEqual(before);
    noNacks();
    report.push(`mirror target forked: RDS mirrors the keyed copy to ${clusterName('reviews-shadow', 'v2')}; keyed and unkeyed ${KEYED}/${KEYED} to reviews-v1; gRPC sent no mirror copy`);
  });

  it(`mirrors: forking reviews-v1 (the primary) -> keyed RPCs reach the fork, still mirrored to the baseline v2; unkeyed as before`, async () => {
    await phase(MIRROR_VS, 'sandbox-primary', clusterName('reviews-primary', 'v1'));
    const copy = `meshfork-primary-0 keyed -> ${clusterName('reviews-primary', 'v1')} mirror ${clusterName('reviews', 'v2')} ${FULL}`;
    expect(await mirroredRoutes(), "tier 1: istiod's RDS for the proxyless client: the sandbox copy goes to the fork and keeps the user's mirror to v2").toEqual([
      copy,
      copy,
      copy,
      `(unnamed) any -> ${clusterName('reviews', 'v1')} mirror ${clusterName('reviews', 'v2')} ${FULL}`,
    ]);
    await every('keyed (primary5)', bag('primary5'), 'reviews-v1-primary');
    await every('unkeyed', {}, 'reviews-v1');
    await every('the key of the removed shadow sandbox', bag('shadow04'), 'reviews-v1');
    noNacks();
    report.push(`primary forked: keyed ${KEYED}/${KEYED} to reviews-v1-primary, RDS keeps the mirror to ${clusterName('reviews', 'v2')}; unkeyed to reviews-v1`);
  });
});

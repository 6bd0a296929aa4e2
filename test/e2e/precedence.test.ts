/**
 * The routing-key precedence rule through real istiod and proxyless gRPC (@grpc/grpc-js-xds):
 * sandboxes alpha, beta, gamma (in RouteGroup checkout) and ab (25% split) from
 * test/e2e/fixtures/sandboxes/, synthesized and applied together. Requests with several keys, a
 * key of a sandbox that does not fork the host, or an invalid deciding member must reach exactly
 * the backend the rule names, N of N; those must never be split. Tier 1 checks first that istiod
 * turned every match block (inverted presence matchers and the member regexes included) into the
 * routes the VirtualServices say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { startIstiod, type Istiod } from '../support/istiod.js';
import { proxyIdOf, xdsBootstrap, xdsEchoClient, type EchoClient } from '../support/xds-client.js';
import { clusterName, expectedRoutes, formatRoutes, fqdn, Mesh, NS, PORT, summarizeRoutes, synth, type RouteSummary } from './mesh.js';

const hasBins = requireTestbin();

const K = 'meshfork-routing-key';
const KEYS = { alpha: 'alpha01', beta: 'beta02', gamma: 'gamma03', group: 'group04', ab: 'abtest05' } as const;
const N = 25;
const CONVERGE_MS = 20_000;
type Service = 'greeter' | 'catalog';
const SERVICES: readonly Service[] = ['greeter', 'catalog'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!hasBins)('routing-key precedence through real istiod and proxyless gRPC', () => {
  let cp: ControlPlane | undefined;
  let istiod: Istiod | undefined;
  let mesh: Mesh | undefined;
  const clients = new Map<Service, EchoClient>();
  const client = (s: Service) => clients.get(s) as EchoClient;
  const vs = new Map<Service, Parameters<typeof expectedRoutes>[0]>();

  beforeAll(async () => {
    cp = await startControlPlane();
    istiod = await startIstiod(cp);
    mesh = new Mesh(cp, istiod, SERVICES.map((s) => ({ proxyId: proxyIdOf({ namespace: NS, app: `${s}-pclient` }), service: s })));
    await mesh.installBaseline();
    const desired = synth(['alpha', 'beta', 'gamma', 'split']);
    await mesh.sync(desired);
    for (const [s, name] of [['greeter', 'greeter-meshfork'], ['catalog', 'catalog']] as const) {
      const found = desired.find((o) => o.kind === 'VirtualService' && o.metadata.name === name);
      if (found === undefined) throw new Error(`synth wrote no VirtualService ${name}`);
      vs.set(s, found);
      const c = xdsEchoClient(`xds:///${fqdn(s)}:${PORT}`, xdsBootstrap({ xdsAddress: istiod.xdsAddress, namespace: NS, app: `${s}-pclient` }));
      clients.set(s, c);
      const deadline = Date.now() + CONVERGE_MS;
      for (let r = await c.who(); !r.ok; r = await c.who()) {
        if (Date.now() > deadline) throw new Error(`no answer from ${s} through xDS after ${CONVERGE_MS}ms: ${r.code} ${r.details}`);
        await sleep(100);
      }
    }
  });

  afterAll(async () => {
    for (const c of clients.values()) c.close();
    await mesh?.close();
    await istiod?.stop();
    await cp?.stop();
  });

  it("tier 1: istiod's RDS for each client is exactly the synthesized VirtualService, presence matchers included", async () => {
    for (const s of SERVICES) {
      const expected = expectedRoutes(vs.get(s)!);
      expect(expected.some((r) => r.headers.some((h) => h.endsWith(' !present'))), `${s}: the VirtualService has inverted presence matches`).toBe(true);
      let actual: RouteSummary[] = [];
      const t0 = Date.now();
      while (Date.now() - t0 < CONVERGE_MS) {
        actual = summarizeRoutes(await mesh!.routeConfig(proxyIdOf({ namespace: NS, app: `${s}-pclient` }), s));
        if (JSON.stringify(actual) === JSON.stringify(expected)) break;
        await sleep(100);
      }
      expect(formatRoutes(actual), `tier 1 (istiod's RDS for ${s}, ${clusterName(s)})`).toBe(formatRoutes(expected));
    }
    const nacks = (istiod?.logTail(100_000) ?? '').split('\n').filter((l) => l.includes('ACK ERROR'));
    expect(nacks, 'a proxyless gRPC client rejected xDS generated from meshfork objects').toEqual([]);
  });

  const cases: Array<[Service, string, Record<string, string | string[]>, string]> = [
    ['greeter', 'the last baggage member wins', { baggage: `${K}=${KEYS.alpha},${K}=${KEYS.beta}` }, 'greeter-v1-beta'],
    ['greeter', 'the last baggage member wins (other order, OWS, property)', { baggage: `${K}=${KEYS.beta}, ${K} = ${KEYS.alpha} ;p=1` }, 'greeter-v1-alpha'],
    ['greeter', 'two baggage headers: joined in order, the last wins', { baggage: [`${K}=${KEYS.alpha}`, `${K}=${KEYS.beta}`] }, 'greeter-v1-beta'],
    ['greeter', 'baggage before tracestate', { baggage: `${K}=${KEYS.alpha}`, tracestate: `${K}=${KEYS.beta}` }, 'greeter-v1-alpha'],
    ['greeter', 'the last tracestate member wins', { tracestate: `${K}=${KEYS.beta},${K}=${KEYS.alpha}` }, 'greeter-v1-alpha'],
    ['greeter', 'the last tracestate member wins (other order, two headers)', { tracestate: [`${K}=${KEYS.alpha}`, `v=1, ${K}=${KEYS.beta}`] }, 'greeter-v1-beta'],
    ['greeter', 'an invalid last tracestate member: untagged, no fallback, not split', { tracestate: `${K}=${KEYS.alpha},${K}=NOPE` }, 'greeter-v1'],
    ['greeter', 'tracestate when baggage holds no key-name member', { baggage: 'foo=1', tracestate: `v=1,${K}=${KEYS.alpha}` }, 'greeter-v1-alpha'],
    ['greeter', 'an invalid last baggage member: untagged, no fallback, not split', { baggage: `${K}=${KEYS.alpha},${K}=NOPE`, tracestate: `${K}=${KEYS.beta}` }, 'greeter-v1'],
    ['greeter', 'a key of a sandbox that does not fork greeter: baseline, not split', { baggage: `${K}=${KEYS.gamma}` }, 'greeter-v1'],
    ['greeter', 'a RouteGroup key no member of which forks greeter: baseline, not split', { tracestate: `${K}=${KEYS.group}` }, 'greeter-v1'],
    // C forks catalog-v2, the subset of the jason route; A forks only catalog-v1, so its copy of
    // that route stays on catalog-v2 (subsets survive, ADR 0001).
    ['catalog', 'user route 0 (jason) with two keys: the copy for the last one', { 'end-user': 'jason', baggage: `${K}=${KEYS.alpha},${K}=${KEYS.gamma}` }, 'catalog-v2-gamma'],
    ['catalog', 'user route 0 (jason) with two keys, other order: the copy for the last one (A: subset v2 not forked)', { 'end-user': 'jason', baggage: `${K}=${KEYS.gamma},${K}=${KEYS.alpha}` }, 'catalog-v2'],
    ['catalog', 'user route 0 with a key of a sandbox elsewhere: the user route, not split', { 'end-user': 'jason', baggage: `${K}=${KEYS.beta}` }, 'catalog-v2'],
    ['catalog', 'the group key in tracestate (jason route, subset v2 forked by C)', { 'end-user': 'jason', baggage: 'foo=1', tracestate: `${K}=${KEYS.group}` }, 'catalog-v2-gamma'],
    ['catalog', 'the group key in tracestate (default route, subset v1 not forked by C)', { baggage: 'foo=1', tracestate: `${K}=${KEYS.group}` }, 'catalog-v1'],
  ];
  for (const [s, what, md, backend] of cases) {
    it(`tier 2: ${s}: ${what} -> ${backend}, ${N} of ${N}`, async () => {
      const counts = await client(s).tally(N, md);
      expect(Object.fromEntries(counts), `tier 2 (RPCs to ${s}) with ${JSON.stringify(md)}`).toEqual({ [backend]: N });
    });
  }

  it('tier 2: requests holding no key-name member are split (both backends seen, nothing else)', async () => {
    for (const [s, md, base, fork] of [
      ['greeter', {}, 'greeter-v1', 'greeter-v1-ab'],
      ['greeter', { baggage: `foo=1,x${K}=${KEYS.alpha}` }, 'greeter-v1', 'greeter-v1-ab'],
      ['catalog', { 'end-user': 'jason' }, 'catalog-v2', 'catalog-v1-ab'],
    ] as Array<[Service, Record<string, string>, string, string]>) {
      // 100 RPCs at 25%: both sides appear unless something is wrong (0.75^100 ~ 3e-13).
      const counts = await client(s).tally(100, md);
      expect([...counts.keys()].sort(), `tier 2 (RPCs to ${s}) with ${JSON.stringify(md)}: ${JSON.stringify(Object.fromEntries(counts))}`).toEqual([base, fork].sort());
    }
  });
});

// The controller on Gateway API hosts: the inventory it hands the planner (user HTTPRoutes,
// GRPCRoutes, Namespaces), the derived routes a Sandbox reconcile applies (exactly the planner's,
// only once the forks behind them are available) and removes first (invalid, deleted, no longer
// planned), the keys a user route or a Namespace enqueues, and RoutingReady.
import { describe, expect, it } from 'vitest';
import { LonePlanMemo, planSandbox } from '../../src/controller/sandbox-plan.js';
import { eligibility, isRouted, planDerivedRoutes, planHost, unroutedHosts } from '../../src/controller/routing.js';
import { computeStatus } from '../../src/controller/status.js';
import { keysForObject } from '../../src/controller/keys.js';
import { SANDBOX_NAMESPACE_LABEL, inventoryOfView, type ClusterView } from '../../src/controller/view.js';
import { plan } from '../../src/planner/plan.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { NS, baseView, sandbox, withApplied, withVirtualServices } from './fixtures.js';

const CART = `cart.${NS}.svc.cluster.local`;

/** A user HTTPRoute attached to Service cart: /api with a timeout, everything else to cart. */
const userCartRoute: KubeObject = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'cart', namespace: NS, creationTimestamp: '2026-11-30T08:00:00Z' },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'cart', port: 8080 }],
    rules: [
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'cart', port: 8080 }], timeouts: { request: '3s' } },
      { backendRefs: [{ name: 'cart', port: 8080 }] },
    ],
  },
};

const ambient = (labels: Record<string, string> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'istio.io/dataplane-mode': 'ambient', ...labels } } });

/** The view with derived routes stored as the controller writes them (its labels). */
function withRoutes(view: ClusterView, routes: readonly KubeObject[]): ClusterView {
  const stored = routes.map((r) => ({ ...structuredClone(r), metadata: { ...structuredClone(r.metadata), labels: { ...r.metadata.labels, [SANDBOX_NAMESPACE_LABEL]: NS } } }));
  return { ...view, gatewayRoutes: [...(view.gatewayRoutes ?? []), ...stored] };
}

/** What `meshfork synth` writes for the same inventory and Sandbox: HTTPRoutes and VirtualServices. */
function synthRoutes(view: ClusterView, s: SandboxObject): KubeObject[] {
  const result = plan({ inventory: inventoryOfView(view), sandboxes: [s], routeGroups: [] });
  expect(result.problems).toEqual([]);
  return result.objects.filter((o) => o.kind === 'HTTPRoute' || o.kind === 'VirtualService');
}

const names = (objects: readonly KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);

describe('the inventory handed to the planner', () => {
  const alice = sandbox('alice', ['cart-v1']);

  it('a host with a user HTTPRoute (auto): a derived HTTPRoute and no VirtualService; without the route in the view, a VirtualService', () => {
    const view = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute] });
    expect(inventoryOfView(view).gatewayRoutes).toEqual([userCartRoute]);
    expect(names(synthRoutes(view, alice))).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    expect(names(planSandbox(alice, view, undefined).objects.filter((o) => o.kind === 'HTTPRoute'))).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    // What the controller planned before it watched HTTPRoutes: a VirtualService next to the user's HTTPRoute.
    expect(names(synthRoutes(baseView({ sandboxes: [alice] }), alice))).toEqual([`VirtualService ${NS}/cart-meshfork`]);
  });

  it("an ambient namespace: no EnvoyFilter, a derived route with the baseline rule; without a waypoint, the planner's problem", () => {
    const withWaypoint = baseView({ sandboxes: [alice], namespaces: [ambient({ 'istio.io/use-waypoint': 'waypoint' })] });
    const verdict = planSandbox(alice, withWaypoint, undefined);
    expect(verdict.problems).toEqual([]);
    expect(names(verdict.objects)).toEqual([`Deployment ${NS}/cart-v1-alice`, `Service ${NS}/cart-alice`, `HTTPRoute ${NS}/cart-alice`]);
    const route = verdict.objects.find((o) => o.kind === 'HTTPRoute')!;
    expect((route.spec as { rules: unknown[] }).rules[1]).toEqual({ backendRefs: [{ name: 'cart', port: 8080 }] });
    const noWaypoint = baseView({ sandboxes: [alice], namespaces: [ambient()] });
    expect(planSandbox(alice, noWaypoint, undefined).problems).toEqual([
      {
        object: `Sandbox ${NS}/alice`,
        path: 'spec.forks[0].forkOf.name',
        message: `Service ${NS}/cart is in the ambient namespace "${NS}" and has no waypoint (label istio.io/use-waypoint on the Service or its Namespace): routes apply only at waypoints, so keyed requests would silently reach the baseline; enroll a waypoint for it`,
      },
    ]);
  });

  it("a user's HTTPRoute holding a derived route's name is a problem of the Sandbox, never replaced", () => {
    const squatter: KubeObject = { ...userCartRoute, metadata: { name: 'cart-alice-8080', namespace: NS, creationTimestamp: '2026-11-30T09:00:00Z' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'pay', port: 8080 }], rules: [] } };
    const view = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute, squatter] });
    expect(planSandbox(alice, view, undefined).problems).toEqual([
      { object: `Sandbox ${NS}/alice`, path: 'spec.forks[0].forkOf.name', message: `would replace HTTPRoute ${NS}/cart-alice-8080, which already exists and is not meshfork's output for this Sandbox` },
    ]);
  });

  it("another Sandbox's derived route under the name is a conflict", () => {
    const view = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute] });
    const route = planSandbox(alice, view, undefined).objects.find((o) => o.kind === 'HTTPRoute')!;
    const taken = withRoutes(view, [{ ...route, metadata: { ...route.metadata, labels: { ...route.metadata.labels, [SANDBOX_NAMESPACE_LABEL]: 'other' } } }]);
    // withRoutes sets the label back to NS: set it to the other namespace afterwards.
    const foreign = { ...taken, gatewayRoutes: taken.gatewayRoutes!.map((r) => (r.metadata.name === 'cart-alice-8080' ? { ...r, metadata: { ...r.metadata, labels: { ...r.metadata.labels, [SANDBOX_NAMESPACE_LABEL]: 'other' } } } : r)) };
    expect(planSandbox(alice, foreign, undefined).problems).toEqual([
      { object: `Sandbox ${NS}/alice`, path: 'metadata.name', message: `generated HTTPRoute ${NS}/cart-alice-8080 already exists for Sandbox other/alice; rename this Sandbox` },
    ]);
  });
});

describe('derived routes: make before break', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const base = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute] });

  it('none before the fork Service exists and the fork is available; then exactly the planner\'s', () => {
    expect(planDerivedRoutes(planSandbox(alice, base, undefined), base, undefined)).toEqual({ apply: [], stale: [] });
    const starting = withApplied(base, alice, 0);
    expect(eligibility(planSandbox(alice, starting, undefined), starting, CART)).toEqual({ eligible: false, reason: `waiting for Deployment ${NS}/cart-v1-alice to have an available replica` });
    expect(planDerivedRoutes(planSandbox(alice, starting, undefined), starting, undefined)).toEqual({ apply: [], stale: [] });
    const up = withApplied(base, alice, 1);
    const { apply, stale } = planDerivedRoutes(planSandbox(alice, up, undefined), up, undefined);
    expect(stale).toEqual([]);
    expect(apply).toEqual(synthRoutes(base, alice));
    const spec = apply[0]!.spec as { parentRefs: unknown[]; rules: Array<{ matches: Array<{ path?: unknown; headers: Array<{ name: string }> }>; backendRefs: unknown[]; timeouts?: unknown }> };
    expect(apply[0]!.metadata).toEqual({ name: 'cart-alice-8080', namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'alice', 'meshfork.dev/fork-of-service': 'cart' } });
    expect(spec.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'cart', port: 8080 }]);
    expect(spec.rules.map((r) => [r.matches.map((m) => [m.path, m.headers.map((h) => h.name)]), r.backendRefs, r.timeouts])).toEqual([
      [[[{ type: 'PathPrefix', value: '/api' }, ['baggage']], [{ type: 'PathPrefix', value: '/api' }, ['tracestate', 'baggage']]], [{ name: 'cart-alice', port: 8080 }], { request: '3s' }],
      [[[undefined, ['baggage']], [undefined, ['tracestate', 'baggage']]], [{ name: 'cart-alice', port: 8080 }], undefined],
    ]);
  });

  it('a routed Sandbox keeps its route when its fork loses its replicas; the host reconcile writes no VirtualService for it', () => {
    const up = withApplied(base, alice, 1);
    const routed = withRoutes(up, planDerivedRoutes(planSandbox(alice, up, undefined), up, undefined).apply);
    const down = { ...routed, deployments: routed.deployments.map((d) => (d.metadata.name === 'cart-v1-alice' ? { ...d, status: { availableReplicas: 0, observedGeneration: 1 } } : d)) };
    expect(eligibility(planSandbox(alice, down, undefined), down, CART)).toEqual({ eligible: true, reason: `keeps its routes although Deployment ${NS}/cart-v1-alice has no available replica` });
    expect(names(planDerivedRoutes(planSandbox(alice, down, undefined), down, undefined).apply)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    const host = planHost(down, { namespace: NS, service: 'cart' }, new Map([['alice', planSandbox(alice, down, undefined)]]), undefined);
    expect([host.apply, host.update, host.delete]).toEqual([[], [], []]);
  });

  it('a routed Sandbox that adds a fork gets routes to it only once it is available', () => {
    // pay gets a user HTTPRoute too; alice forks cart (routed) and then pay-v1 (not available yet).
    const payRoute: KubeObject = { ...userCartRoute, metadata: { name: 'pay', namespace: NS, creationTimestamp: '2026-11-30T08:00:00Z' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'pay', port: 8080 }], rules: [{ backendRefs: [{ name: 'pay', port: 8080 }] }] } };
    const view0 = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute, payRoute], virtualServices: [] });
    const up = withApplied(view0, alice, 1);
    const routed = withRoutes(up, planDerivedRoutes(planSandbox(alice, up, undefined), up, undefined).apply);
    const after = { ...alice, spec: { ...alice.spec, forks: [...alice.spec.forks, { forkOf: { kind: 'Deployment' as const, name: 'pay-v1' }, customizations: {} }] } };
    const applied = withApplied({ ...routed, sandboxes: [after] }, after, 0);
    const view = { ...applied, deployments: applied.deployments.filter((d, i, all) => all.findIndex((o) => o.metadata.name === d.metadata.name) === i), services: applied.services.filter((d, i, all) => all.findIndex((o) => o.metadata.name === d.metadata.name) === i) };
    const verdict = planSandbox(after, view, undefined);
    expect(names(verdict.objects.filter((o) => o.kind === 'HTTPRoute'))).toEqual([`HTTPRoute ${NS}/cart-alice-8080`, `HTTPRoute ${NS}/pay-alice-8080`]);
    expect(names(planDerivedRoutes(verdict, view, undefined).apply)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    // The same with the inventory of the controller's LonePlanMemo (its own routes stripped, reused across reconciles).
    expect(planDerivedRoutes(verdict, view, undefined, new LonePlanMemo().inventoryOf(view))).toEqual(planDerivedRoutes(verdict, view, undefined));
    const available = { ...view, deployments: view.deployments.map((d) => (d.metadata.name === 'pay-v1-alice' ? { ...d, status: { observedGeneration: 1, availableReplicas: 1, updatedReplicas: 1, replicas: 1 } } : d)) };
    expect(names(planDerivedRoutes(planSandbox(after, available, undefined), available, undefined).apply)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`, `HTTPRoute ${NS}/pay-alice-8080`]);
  });

  it('removed first: routes of a Sandbox being deleted or invalid are stale, and hold up the deletion of its forks while cached', () => {
    const up = withApplied(base, alice, 1);
    const routes = planDerivedRoutes(planSandbox(alice, up, undefined), up, undefined).apply;
    const routed = withRoutes(up, routes);
    const deleting = sandbox('alice', ['cart-v1'], { deleting: true });
    const view = { ...routed, sandboxes: [deleting] };
    expect(names(planDerivedRoutes(planSandbox(deleting, view, undefined), view, undefined).stale)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    expect(isRouted(view, deleting)).toBe(true);
    expect(isRouted({ ...view, gatewayRoutes: [userCartRoute] }, deleting)).toBe(false);
    const invalid = sandbox('alice', ['cart-v9']);
    const invalidView = { ...routed, sandboxes: [invalid] };
    expect(planDerivedRoutes(planSandbox(invalid, invalidView, undefined), invalidView, undefined)).toEqual({ apply: [], stale: routed.gatewayRoutes!.filter((r) => r.metadata.name === 'cart-alice-8080') });
    // The user's route is removed from cart: the derived route is no longer planned (a VirtualService is, by the host reconcile).
    const noUserRoute = { ...routed, gatewayRoutes: routed.gatewayRoutes!.filter((r) => r !== userCartRoute) };
    expect(names(planDerivedRoutes(planSandbox(alice, noUserRoute, undefined), noUserRoute, undefined).stale)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
  });
});

describe('derived routes of consumer routes (a user route in another namespace attached to a forked Service)', () => {
  const alice = sandbox('alice', ['cart-v1']);
  /** A route of namespace `namespace` attached to Service NS/cart, as its clients there write it. */
  const consumerRoute = (namespace: string, service = NS): KubeObject => ({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: 'cart-for-clients', namespace, creationTimestamp: '2026-11-30T08:30:00Z' },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: 'cart', namespace: service, port: 8080 }], rules: [{ backendRefs: [{ name: 'cart', namespace: service, port: 8080 }] }] },
  });
  /** An object of `meshfork synth` applied by a GitOps tool in `namespace`: it claims the namespace (ADR 0016). */
  const gitOpsFork = (namespace: string): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web-v1-pr-9', namespace, labels: { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'pr-9' } },
    spec: {},
  });

  it("name the Service with its namespace (<service>.<namespace>-<sandbox>): Services of one name in two namespaces keep apart in a third", () => {
    const view = withApplied(baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute, consumerRoute('clients')] }), alice, 1);
    expect(names(planDerivedRoutes(planSandbox(alice, view, undefined), view, undefined).apply)).toEqual([`HTTPRoute clients/cart.${NS}-alice-8080`, `HTTPRoute ${NS}/cart-alice-8080`]);
  });

  it('are neither written nor deleted in a namespace of the GitOps path, and hold up nothing there', () => {
    const view = withApplied(baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute, consumerRoute('clients')] }), alice, 1);
    const claimed = { ...view, deployments: [...view.deployments, gitOpsFork('clients')] };
    const { apply } = planDerivedRoutes(planSandbox(alice, claimed, undefined), claimed, undefined);
    expect(names(apply)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    // A derived route the controller wrote there before the namespace was claimed stays, and is no longer the Sandbox's to delete or wait for.
    const earlier = planDerivedRoutes(planSandbox(alice, view, undefined), view, undefined).apply;
    const routed = withRoutes(claimed, earlier);
    const deleting = sandbox('alice', ['cart-v1'], { deleting: true });
    const deletingView = { ...routed, sandboxes: [deleting] };
    expect(names(planDerivedRoutes(planSandbox(deleting, deletingView, undefined), deletingView, undefined).stale)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
  });
});

describe('a host that moves from VirtualService to Gateway API routing (a user HTTPRoute appears)', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const hostOf = (view: ClusterView) => planHost(view, { namespace: NS, service: 'cart' }, new Map([['alice', planSandbox(alice, view, undefined)]]), undefined);

  it('keeps its owned VirtualService until the derived route exists, then deletes it (make before break across the two APIs)', () => {
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const owned = hostOf(up).apply;
    expect(names(owned)).toEqual([`VirtualService ${NS}/cart-meshfork`]);
    const switched = { ...withVirtualServices(up, owned), gatewayRoutes: [userCartRoute] };
    expect(hostOf(switched).delete).toEqual([]);
    const derived = planDerivedRoutes(planSandbox(alice, switched, undefined), switched, undefined).apply;
    expect(names(derived)).toEqual([`HTTPRoute ${NS}/cart-alice-8080`]);
    expect(names(hostOf(withRoutes(switched, derived)).delete)).toEqual([`VirtualService ${NS}/cart-meshfork`]);
  });
});

describe('RoutingReady on a Gateway API host', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const base = baseView({ sandboxes: [alice], gatewayRoutes: [userCartRoute] });
  const routing = (view: ClusterView) => computeStatus(planSandbox(alice, view, undefined), view, new Date('2026-11-30T10:10:00Z')).conditions?.find((c) => c.type === 'RoutingReady');

  it('pending until the derived route exists, then routed', () => {
    const up = withApplied(base, alice, 1);
    expect(unroutedHosts(up, planSandbox(alice, up, undefined))).toEqual([CART]);
    expect(routing(up)).toMatchObject({ status: 'False', reason: 'RoutesPending', message: `no routes yet for ${CART} (its forks are up; its derived routes are being applied)` });
    const routed = withRoutes(up, planDerivedRoutes(planSandbox(alice, up, undefined), up, undefined).apply);
    expect(routing(routed)).toMatchObject({ status: 'True', reason: 'Routed', message: 'routes for 1 host installed' });
  });
});

describe('keys of Gateway API routes and Namespaces', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const bob = sandbox('bob', ['pay-v1']);
  const view = withApplied(withApplied(baseView({ sandboxes: [alice, bob], gatewayRoutes: [userCartRoute] }), alice, 1), bob, 1);

  it("a user route: the hosts it is attached to and the Sandboxes forking into its namespaces; a derived route: its Sandbox and the hosts it is attached to", () => {
    expect(keysForObject('HTTPRoute', userCartRoute, view)).toEqual([`Host/${NS}/cart`, `Sandbox/${NS}/alice`, `Sandbox/${NS}/bob`]);
    const elsewhere: KubeObject = { ...userCartRoute, metadata: { name: 'cart', namespace: 'other' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web', port: 80 }], rules: [] } };
    expect(keysForObject('GRPCRoute', { ...elsewhere, kind: 'GRPCRoute' }, view)).toEqual(['Host/other/web']);
    const derived = withRoutes(view, planDerivedRoutes(planSandbox(alice, view, undefined), view, undefined).apply);
    expect(keysForObject('HTTPRoute', derived.gatewayRoutes![1]!, derived)).toEqual([`Host/${NS}/cart`, `Sandbox/${NS}/alice`]);
  });

  it('a Namespace: the Sandboxes forking into it and its forked hosts', () => {
    expect(keysForObject('Namespace', ambient(), view)).toEqual([`Host/${NS}/cart`, `Host/${NS}/pay`, `Sandbox/${NS}/alice`, `Sandbox/${NS}/bob`]);
    expect(keysForObject('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } }, view)).toEqual([]);
  });
});

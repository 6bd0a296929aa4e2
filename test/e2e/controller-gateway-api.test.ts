/**
 * The controller on a Gateway API host, routed by real istiod to proxyless gRPC clients (the
 * scenario of controller-routing-scenario.ts): Service greeter is routed by a user HTTPRoute
 * attached to it, so the controller writes Sandbox alpha's derived HTTPRoute (ADR 0021) there,
 * and its VirtualService routes on catalog (the user's VirtualService). `kubectl apply` -> keyed
 * RPCs reach both forks; `kubectl delete` -> the baselines; RPCs with and without the key never
 * fail in between (derived route applied after the fork is available, deleted before it); the
 * user's HTTPRoute is never written.
 */
import type { KubeObj } from '../support/istiod.js';
import { controllerRoutingScenario } from './controller-routing-scenario.js';
import { NS, PORT } from './mesh.js';

const greeterRoute: KubeObj = {
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'greeter', namespace: NS },
  // No path match: a PathPrefix other than "/" is refused by proxyless gRPC clients (ADR 0014).
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'greeter', port: PORT }], rules: [{ name: 'all', backendRefs: [{ name: 'greeter', port: PORT }] }] },
} as KubeObj;

controllerRoutingScenario({
  title: 'meshfork controller on a Gateway API host routed by real istiod (proxyless gRPC)',
  userRoutes: [greeterRoute],
  expectedRoutes: [`HTTPRoute greeter-alpha-${PORT}`],
});

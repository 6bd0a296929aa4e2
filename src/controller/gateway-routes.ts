/**
 * The derived Gateway API routes (HTTPRoutes/GRPCRoutes, src/planner/http-route.ts) as the
 * controller sees them (pure). A derived route belongs to one Sandbox, like its forks: it is
 * planned by the Sandbox's lone plan, server-side applied by the Sandbox reconcile with the
 * Sandbox's labels and owner reference, and deleted with it. Unlike the forks it is a route: it
 * is applied only once the forks it sends requests to are available, and removed before them
 * (docs/adr/0021-controller-gateway-api-routes.md).
 */
import type { SandboxObject } from '../api/schema.js';
import type { KubeObject } from '../planner/kube.js';
import { namespaceOf, serviceFqdn } from '../planner/inventory.js';
import { GATEWAY_API_GROUP, ROUTE_KINDS, backendServices, serviceParents } from '../planner/http-route.js';
import { generatedFor, gitOpsNamespaces, idOf, type ClusterView } from './view.js';

/** Whether `object` is a Gateway API HTTPRoute or GRPCRoute. */
export function isGatewayRoute(object: KubeObject): boolean {
  return (ROUTE_KINDS as readonly string[]).includes(object.kind) && object.apiVersion.startsWith(`${GATEWAY_API_GROUP}/`);
}

/**
 * Cached derived routes the controller wrote for the Sandbox, outside namespaces of the GitOps
 * path (ADR 0016: the controller writes and deletes nothing there, and what is there holds up
 * nothing).
 */
export function derivedRoutesOf(view: ClusterView, sandbox: SandboxObject): KubeObject[] {
  const claimed = gitOpsNamespaces(view);
  return generatedFor(view, idOf(sandbox)).filter((o) => isGatewayRoute(o) && !claimed.has(namespaceOf(o)));
}

/** Whether a route sends requests (backendRefs, RequestMirror) to one of `services`. */
export function sendsTo(route: KubeObject, services: readonly KubeObject[] | ReadonlySet<string>): boolean {
  const targets = serviceTargets(services);
  return backendServices(route).some((s) => targets.has(s));
}

/** `namespace/name` of each Service (a set given is used as it is). */
export function serviceTargets(services: readonly KubeObject[] | ReadonlySet<string>): ReadonlySet<string> {
  return services instanceof Set ? services : new Set((services as readonly KubeObject[]).map((s) => `${namespaceOf(s)}/${s.metadata.name}`));
}

/** FQDNs of the Services a route is attached to (its Service parentRefs). */
export function parentHosts(route: KubeObject): string[] {
  return serviceParents(route).map((p) => serviceFqdn(p.name, p.namespace));
}

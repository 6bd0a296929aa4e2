/**
 * How the sandbox routes of one forked host are written: `virtualService` (meshfork's own or the
 * merged user VirtualService, virtual-service.ts) or `gatewayAPI` (derived HTTPRoutes/GRPCRoutes
 * attached to the Service, http-route.ts). `auto` (the default) picks `gatewayAPI` for a host that
 * has user routes attached to its Service, or whose namespace is ambient
 * (`istio.io/dataplane-mode: ambient` on the Namespace: there EnvoyFilters are ignored and
 * VirtualServices on waypoints are alpha), and `virtualService` otherwise. Config key
 * `routing.mode` (all hosts) and `routing.hosts["<service>.<namespace>"].mode` (one host), flag
 * `--routing-mode`.
 *
 * meshfork never mixes the two APIs for one host ("mixing VirtualService and HTTPRoute for one
 * workload is undefined" in Istio): a host with both user VirtualServices and user routes, or a
 * mode that would write the other kind next to the user's, is a problem naming the objects.
 */
import { namespaceOf, resolveHost } from './inventory.js';
import { ownValue, type KubeObject } from './kube.js';

export const ROUTING_MODES = ['auto', 'virtualService', 'gatewayAPI'] as const;
export type RoutingMode = (typeof ROUTING_MODES)[number];

export interface RoutingModeConfig {
  /** Mode of every host without its own. @default 'auto' */
  readonly mode?: RoutingMode;
  /** Mode per host, keyed `<service>.<namespace>` (or the FQDN). @default {} */
  readonly hosts?: Readonly<Record<string, { readonly mode: RoutingMode }>>;
}

/** Namespace (or pod) label that puts workloads in Istio's ambient data plane. */
export const DATAPLANE_MODE_LABEL = 'istio.io/dataplane-mode';
/** Service or Namespace label naming the waypoint that serves it (Istio ambient). */
export const USE_WAYPOINT_LABEL = 'istio.io/use-waypoint';

export function isAmbient(namespace: KubeObject | undefined): boolean {
  return ownValue(namespace?.metadata.labels, DATAPLANE_MODE_LABEL) === 'ambient';
}

/**
 * Whether a Service is served by a waypoint: its own `istio.io/use-waypoint` label, or else its
 * Namespace's; a value that is empty or `none` (any case) means no waypoint (istiod
 * pilot/pkg/config/kube/gateway conversion.go `waypointConfigured`; the Service's label is read
 * first, the Namespace's only when the Service has none).
 */
export function hasWaypoint(service: KubeObject, namespace: KubeObject | undefined): boolean {
  const own = ownValue(service.metadata.labels, USE_WAYPOINT_LABEL);
  const value = own ?? ownValue(namespace?.metadata.labels, USE_WAYPOINT_LABEL);
  return value !== undefined && value !== '' && value.toLowerCase() !== 'none';
}

/** The configured mode of a host (FQDN) and the setting it came from. */
export function configuredMode(config: RoutingModeConfig | undefined, host: string): { mode: RoutingMode; setting: string } {
  for (const [key, value] of Object.entries(config?.hosts ?? {})) {
    if (resolveHost(key, 'default') === host) return { mode: value.mode, setting: `routing.hosts["${key}"].mode` };
  }
  return { mode: config?.mode ?? 'auto', setting: 'routing.mode' };
}

export interface HostModeInput {
  readonly host: string;
  readonly service: KubeObject;
  readonly namespace: KubeObject | undefined;
  /** User HTTPRoutes/GRPCRoutes with a Service parentRef naming the host's Service. */
  readonly userRoutes: readonly KubeObject[];
  /** User VirtualServices that name the host in `spec.hosts`. */
  readonly userVirtualServices: readonly KubeObject[];
  readonly config: RoutingModeConfig | undefined;
}

export interface HostMode {
  readonly mode: 'virtualService' | 'gatewayAPI';
  /** Why the host cannot be routed with either mode; set means nothing is planned for it. */
  readonly problem?: string;
}

const ref = (o: KubeObject) => `${o.kind} ${namespaceOf(o)}/${o.metadata.name}`;

export function hostMode(input: HostModeInput): HostMode {
  const { mode, setting } = configuredMode(input.config, input.host);
  const service = `Service ${namespaceOf(input.service)}/${input.service.metadata.name}`;
  const routes = input.userRoutes.map(ref).join(', ');
  const virtualServices = input.userVirtualServices.map(ref).join(', ');
  if (input.userRoutes.length > 0 && input.userVirtualServices.length > 0) {
    return {
      mode: 'gatewayAPI',
      problem: `${service} is routed both by ${virtualServices} and by ${routes} (attached to it); Istio leaves mixing VirtualService and Gateway API routes for one host undefined, so meshfork routes neither: keep one of them`,
    };
  }
  const resolved = mode === 'auto' ? (input.userRoutes.length > 0 || isAmbient(input.namespace) ? 'gatewayAPI' : 'virtualService') : mode;
  if (resolved === 'virtualService' && input.userRoutes.length > 0) {
    return { mode: resolved, problem: `${setting} is virtualService, but ${routes} is attached to ${service}; meshfork does not write a VirtualService for a host the user routes with Gateway API: use gatewayAPI or auto` };
  }
  if (resolved === 'gatewayAPI' && input.userVirtualServices.length > 0) {
    return { mode: resolved, problem: `${setting} is gatewayAPI, but ${virtualServices} routes ${service}; meshfork does not write Gateway API routes for a host the user routes with a VirtualService: use virtualService or auto` };
  }
  return { mode: resolved };
}

/**
 * EnvoyFilters meshfork generates: the per-fork affinity filter and the mesh-wide ingress guard.
 * Both insert one Envoy HTTP Lua filter (src/lua/*.lua) right before the router. Pure functions,
 * deterministic output (fixed key order, sorted label maps). See docs/adr/0003-lua-filters.md.
 */
import { forkAffinityLua, ingressGuardLua } from '../lua/index.js';
import { managedLabels, SANDBOX_LABEL, setOwn, type KubeObject } from './kube.js';

export const ENVOY_FILTER_API_VERSION = 'networking.istio.io/v1alpha3';
export const LUA_FILTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua';
/** Envoy filter names of meshfork's Lua filters, unique so other EnvoyFilters can refer to them. */
export const FORK_AFFINITY_FILTER_NAME = 'meshfork.fork_affinity';
export const INGRESS_GUARD_FILTER_NAME = 'meshfork.ingress_guard';

/**
 * `spec.priority` of meshfork's EnvoyFilters. Any explicit priority satisfies `istioctl analyze`
 * IST0151 (a relative operation such as INSERT_BEFORE without a priority). Istio applies the
 * patches of one context in ascending priority (negative before the default 0, positive after;
 * equal priorities by creation time, which is not stable across re-creation), so a positive value applies
 * our INSERT_BEFORE router after every default-priority filter: our Lua filter ends up last before
 * the router and sees the headers other filters produced. 100 leaves room above for operators
 * who must run after meshfork.
 */
export const MESHFORK_ENVOY_FILTER_PRIORITY = 100;

/** Default name, namespace and gateway selector of the ingress guard. */
export const INGRESS_GUARD_DEFAULT_NAME = 'meshfork-ingress-guard';
export const INGRESS_GUARD_DEFAULT_NAMESPACE = 'istio-system';
export const INGRESS_GUARD_DEFAULT_SELECTOR: Readonly<Record<string, string>> = Object.freeze({
  istio: 'ingressgateway',
});

/** A copy with keys in sorted order; every key an own data property (`__proto__` too). */
function sortedLabels(labels: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(labels).sort()) setOwn(out, key, labels[key] as string);
  return out;
}

/** One configPatch inserting a Lua filter before the router of every HTTP connection manager. */
function luaBeforeRouterPatch(context: 'SIDECAR_OUTBOUND' | 'GATEWAY', filterName: string, lua: string) {
  return {
    applyTo: 'HTTP_FILTER',
    match: {
      context,
      listener: {
        filterChain: {
          filter: {
            name: 'envoy.filters.network.http_connection_manager',
            subFilter: { name: 'envoy.filters.http.router' },
          },
        },
      },
    },
    patch: {
      operation: 'INSERT_BEFORE',
      value: {
        name: filterName,
        typed_config: {
          '@type': LUA_FILTER_TYPE_URL,
          default_source_code: { inline_string: lua },
        },
      },
    },
  };
}

export interface ForkAffinityEnvoyFilterArgs {
  /** EnvoyFilter name, e.g. `<fork deployment>-affinity`. */
  readonly name: string;
  /** Namespace of the fork workload. */
  readonly namespace: string;
  /** Sandbox owning the fork. */
  readonly sandbox: string;
  /** Labels of the fork's pods; must include `meshfork.dev/sandbox=<sandbox>` (never a baseline pod). */
  readonly podLabels: Readonly<Record<string, string>>;
  /** Baggage key name of the routing key. */
  readonly keyName: string;
  /** Routing key the fork's outbound requests carry. */
  readonly routingKey: string;
}

/**
 * EnvoyFilter for one fork workload: its sidecar adds `<keyName>=<routingKey>` to the baggage of
 * outbound requests that carry no member with that key, so the fork's calls stay in its sandbox.
 */
export function forkAffinityEnvoyFilter(args: ForkAffinityEnvoyFilterArgs): KubeObject {
  // A selector that misses the sandbox label could match baseline pods and pull production
  // traffic into a sandbox; an empty one would select every workload in the namespace.
  if (args.podLabels[SANDBOX_LABEL] !== args.sandbox) {
    throw new Error(
      `forkAffinityEnvoyFilter ${args.namespace}/${args.name}: podLabels must include ${SANDBOX_LABEL}=${args.sandbox}`,
    );
  }
  return {
    apiVersion: ENVOY_FILTER_API_VERSION,
    kind: 'EnvoyFilter',
    metadata: { name: args.name, namespace: args.namespace, labels: managedLabels(args.sandbox) },
    spec: {
      workloadSelector: { labels: sortedLabels(args.podLabels) },
      priority: MESHFORK_ENVOY_FILTER_PRIORITY,
      configPatches: [
        luaBeforeRouterPatch(
          'SIDECAR_OUTBOUND',
          FORK_AFFINITY_FILTER_NAME,
          forkAffinityLua({ keyName: args.keyName, routingKey: args.routingKey }),
        ),
      ],
    },
  };
}

export interface IngressGuardEnvoyFilterArgs {
  /** @default 'meshfork-ingress-guard' */
  readonly name?: string;
  /** @default 'istio-system' (Istio's config root namespace: applies to gateways in every namespace) */
  readonly namespace?: string;
  /** Labels of the gateway pods. @default { istio: 'ingressgateway' } */
  readonly gatewaySelector?: Readonly<Record<string, string>>;
  /** Every routing-key name in use (baggage and tracestate member keys). */
  readonly keyNames: readonly string[];
  /** Extra routing-key headers removed entirely (plain and legacy carriers). */
  readonly headers: readonly string[];
  /** Hex SHA-256 digests of preview tokens (`x-meshfork-preview-token`) allowed to keep routing keys. */
  readonly tokenSha256: readonly string[];
}

/**
 * Mesh-wide EnvoyFilter for ingress gateways: removes routing keys from requests arriving from
 * outside unless they carry a valid preview token, so outsiders cannot choose a sandbox.
 */
export function ingressGuardEnvoyFilter(args: IngressGuardEnvoyFilterArgs): KubeObject {
  const selector = args.gatewaySelector ?? INGRESS_GUARD_DEFAULT_SELECTOR;
  if (Object.keys(selector).length === 0) {
    throw new Error('ingressGuardEnvoyFilter: gatewaySelector must not be empty (it would patch every gateway, egress gateways included)');
  }
  return {
    apiVersion: ENVOY_FILTER_API_VERSION,
    kind: 'EnvoyFilter',
    metadata: {
      name: args.name ?? INGRESS_GUARD_DEFAULT_NAME,
      namespace: args.namespace ?? INGRESS_GUARD_DEFAULT_NAMESPACE,
      labels: managedLabels(),
    },
    spec: {
      workloadSelector: { labels: sortedLabels(selector) },
      priority: MESHFORK_ENVOY_FILTER_PRIORITY,
      configPatches: [
        luaBeforeRouterPatch(
          'GATEWAY',
          INGRESS_GUARD_FILTER_NAME,
          ingressGuardLua({ keyNames: args.keyNames, headers: args.headers, tokenSha256: args.tokenSha256 }),
        ),
      ],
    },
  };
}

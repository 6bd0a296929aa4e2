/**
 * EnvoyFilters meshfork generates: the per-fork affinity filter and the mesh-wide ingress guard.
 * Both insert one Envoy HTTP Lua filter (src/lua/*.lua) right before the router. Pure functions,
 * deterministic output (fixed key order, sorted label maps). See docs/adr/0003-lua-filters.md.
 */
import { describeValue } from '../api/problem.js';
import { DNS_LABEL_PATTERN, LABEL_KEY_PATTERN } from '../api/schema.js';
import { forkAffinityLua, ingressGuardLua } from '../lua/index.js';
import { NAMESPACE_RULE } from './inventory.js';
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

const LABEL_KEY = new RegExp(LABEL_KEY_PATTERN);
/** Kubernetes label value: empty, or at most 63 of [A-Za-z0-9._-] beginning and ending alphanumeric. */
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const DNS_LABEL = new RegExp(DNS_LABEL_PATTERN);
/** Longest DNS-subdomain prefix of a label key (`<prefix>/<name>`). */
const MAX_LABEL_PREFIX = 253;

/** A setting of the ingress guard that is wrong: `path` is relative to the `ingressGuard` settings. */
export interface IngressGuardSettingProblem {
  readonly path: string;
  readonly message: string;
}

/**
 * What is wrong with the ingress guard's placement settings, the same rules as the chart's
 * values.schema.json: the gateway selector names at least one label (an empty selector would
 * patch every gateway, egress gateways included) with valid Kubernetes label keys and values,
 * and the namespace is a DNS label.
 */
export function ingressGuardSettingProblems(settings: { readonly gatewaySelector?: unknown; readonly namespace?: unknown }): IngressGuardSettingProblem[] {
  const problems: IngressGuardSettingProblem[] = [];
  const selector = settings.gatewaySelector;
  if (selector !== undefined) {
    if (selector === null || typeof selector !== 'object' || Array.isArray(selector)) {
      problems.push({ path: 'gatewaySelector', message: 'must be a map of gateway pod labels' });
    } else if (Object.keys(selector).length === 0) {
      problems.push({
        path: 'gatewaySelector',
        message: 'must name at least one label of the ingress gateway pods; an empty selector would patch every gateway, egress gateways included',
      });
    } else {
      for (const [key, value] of Object.entries(selector)) {
        const path = `gatewaySelector[${JSON.stringify(key)}]`;
        const slash = key.indexOf('/');
        if (!LABEL_KEY.test(key) || slash > MAX_LABEL_PREFIX) {
          problems.push({
            path,
            message: `${JSON.stringify(key)} is not a Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters (letters, digits, "-", "_", "."), beginning and ending with a letter or digit`,
          });
        }
        if (typeof value !== 'string' || !LABEL_VALUE.test(value)) {
          problems.push({
            path,
            message: `${describeValue(value)} is not a Kubernetes label value: at most 63 characters (letters, digits, "-", "_", "."), beginning and ending with a letter or digit, or empty`,
          });
        }
      }
    }
  }
  const namespace = settings.namespace;
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))) {
    problems.push({ path: 'namespace', message: `${NAMESPACE_RULE}, not ${describeValue(namespace)}` });
  }
  return problems;
}

/**
 * Mesh-wide EnvoyFilter for ingress gateways: removes routing keys from requests arriving from
 * outside unless they carry a valid preview token, so outsiders cannot choose a sandbox.
 * Settings that ingressGuardSettingProblems reports are a programming error here (configuration
 * is checked before planning): it throws.
 */
export function ingressGuardEnvoyFilter(args: IngressGuardEnvoyFilterArgs): KubeObject {
  const selector = args.gatewaySelector ?? INGRESS_GUARD_DEFAULT_SELECTOR;
  const wrong = ingressGuardSettingProblems({ gatewaySelector: selector, namespace: args.namespace });
  if (wrong.length > 0) throw new Error(`ingressGuardEnvoyFilter: ${wrong.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
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

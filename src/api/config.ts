/**
 * meshfork's configuration file (`meshfork synth --config meshfork.yaml`): routing-key carriers,
 * the ingress guard and the policy on what Sandboxes may ask for. Command-line flags override the
 * file; the file overrides the defaults.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { fieldPath, type Problem } from './problem.js';
import {
  COMPAT_PRESETS,
  DEFAULT_ROUTING_KEY_CONFIG,
  HEADER_NAME_PATTERN,
  KEY_NAME_PATTERN,
  RESERVED_HEADER_NAMES,
  type RoutingKeyConfig,
} from '../planner/routing-key.js';
import type { PlanConfig } from '../planner/plan.js';
import { DEFAULT_FORK_POLICY, resolveForkPolicy } from '../planner/fork-policy.js';
import { ingressGuardSettingProblems } from '../planner/envoy-filter.js';
import { setOwn } from '../planner/kube.js';
import { DNS_LABEL_PATTERN, Ttl } from './schema.js';
import { ROUTING_MODES, type RoutingMode, type RoutingModeConfig } from '../planner/routing-mode.js';

/**
 * A host in `routing.hosts`: `<service>.<namespace>`, optionally completed to the Service's FQDN
 * (`.svc` or `.svc.cluster.local`), the names istiod and meshfork resolve the same way.
 */
export const ROUTING_HOST_PATTERN = '^[a-z]([-a-z0-9]*[a-z0-9])?\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.svc(\\.cluster\\.local)?)?$';
const ROUTING_MODE_DESCRIPTION =
  'auto: gatewayAPI for a host with user HTTPRoutes/GRPCRoutes attached to its Service or in an ambient namespace, else virtualService; virtualService: VirtualService routes; gatewayAPI: derived HTTPRoutes/GRPCRoutes attached to the Service.';
const RoutingModeSchema = (description: string) => Type.Unsafe<RoutingMode>({ type: 'string', enum: [...ROUTING_MODES], description: `${description} ${ROUTING_MODE_DESCRIPTION}` });

/**
 * A routing-key header name as given in the file or with `--header`: HTTP field names are
 * case-insensitive (RFC 9110 section 5.1), so upper-case ASCII letters are accepted and
 * lower-cased (headerName) to the form Istio's header matches require (HEADER_NAME_PATTERN).
 */
const HEADER_NAME_INPUT_PATTERN = '^[A-Za-z0-9][A-Za-z0-9-]{0,126}$';

/**
 * `name` with its ASCII letters lower-cased and nothing else changed. Never String#toLowerCase:
 * it maps non-ASCII letters onto ASCII ones (the Kelvin sign U+212A becomes "k"), which would let
 * a name that is not a header name pass as one.
 */
export function headerName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * A gateway in `routing.gateways`: `<namespace>/<name>`, as istiod resolves the names in a
 * VirtualService's `gateways` (a namespace label, a Gateway name).
 */
const GATEWAY_NAME_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$';
const GATEWAYS_RULE = `must be "all", "none" or a list of distinct gateway names <namespace>/<name> (e.g. istio-system/ingressgateway)`;

const allowFlag = (description: string) => Type.Optional(Type.Boolean({ default: false, description: `${description} Default false.` }));

/** `policy`: what a Sandbox may ask for. Everything it leaves out takes the safe default. */
export const PolicyConfig = Type.Object(
  {
    forkNamespaces: Type.Optional(
      Type.Array(Type.String({ pattern: DNS_LABEL_PATTERN, maxLength: 63 }), {
        description: 'Namespaces besides its own that a Sandbox may fork Deployments from. Default none.',
        uniqueItems: true,
      }),
    ),
    maxSplitWeight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 100,
        default: DEFAULT_FORK_POLICY.maxSplitWeight,
        description: `Largest spec.split.weight (percent of untagged traffic) a Sandbox may ask for. Default ${DEFAULT_FORK_POLICY.maxSplitWeight}.`,
      }),
    ),
    defaultTtl: Type.Optional(
      Type.Object(Ttl.properties, {
        additionalProperties: false,
        description: 'Lifetime of a Sandbox without its own spec.ttl (the same shape); the controller deletes it then. Default none.',
      }),
    ),
    maxSandboxesPerNamespace: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Most Sandboxes served per namespace, oldest first; the others get Ready=False. Default no limit.' }),
    ),
    maxForksPerSandbox: Type.Optional(Type.Integer({ minimum: 1, description: 'Most entries in a Sandbox\'s spec.forks. Default no limit.' })),
    allow: Type.Optional(
      Type.Object(
        {
          serviceAccountName: allowFlag('Forks may change serviceAccountName/serviceAccount and turn automountServiceAccountToken on.'),
          hostNamespaces: allowFlag('Forks may turn on hostNetwork, hostPID and hostIPC.'),
          privileged: allowFlag('Forks may turn on privileged, allowPrivilegeEscalation and Windows hostProcess.'),
          capabilities: allowFlag("Fork containers may add capabilities beyond (and drop fewer than) the baseline container's."),
          hostPath: allowFlag('Forks may add or change hostPath volumes.'),
          podMetadata: allowFlag(
            'Forks may change their pod-template labels beyond the planner\'s rewrites and set, change or remove pod annotations of the istio.io, kubernetes.io and k8s.io domains (e.g. sidecar.istio.io/inject).',
          ),
        },
        { additionalProperties: false, description: "Fork changes allowed beyond the baseline's own settings." },
      ),
    ),
  },
  { additionalProperties: false, description: 'What Sandboxes may ask for.' },
);

export const MeshforkConfig = Type.Object(
  {
    routing: Type.Optional(
      Type.Object(
        {
          compat: Type.Optional(Type.Unsafe<'signadot'>({ type: 'string', enum: Object.keys(COMPAT_PRESETS), description: 'Start from a compatibility preset.' })),
          keyName: Type.Optional(Type.String({ pattern: KEY_NAME_PATTERN, description: 'Baggage/tracestate member key.' })),
          tracestate: Type.Optional(Type.Boolean({ description: 'Also match the tracestate member.' })),
          headers: Type.Optional(
            Type.Array(Type.String({ pattern: HEADER_NAME_INPUT_PATTERN }), {
              description: 'Plain headers holding the key; names are case-insensitive and lower-cased (ASCII letters only).',
              maxItems: 8,
            }),
          ),
          legacyHeaders: Type.Optional(Type.Boolean({ description: 'Also match uberctx-<key> and ot-baggage-<key>.' })),
          mode: Type.Optional(RoutingModeSchema('How forked hosts are routed. Default auto.')),
          hosts: Type.Optional(
            Type.Record(Type.String({ pattern: ROUTING_HOST_PATTERN }), Type.Object({ mode: RoutingModeSchema('How this host is routed.') }, { additionalProperties: false }), {
              description: 'Settings per forked host, keyed <service>.<namespace> (or the FQDN); they override routing.mode.',
              additionalProperties: false,
            }),
          ),
          gateways: Type.Optional(
            Type.Union([Type.Literal('all'), Type.Literal('none'), Type.Array(Type.String({ pattern: GATEWAY_NAME_PATTERN }), { uniqueItems: true })], {
              description:
                'Gateway-bound VirtualServices that get sandbox copies (whoever reaches the gateway may then pick a sandbox): all, none, or gateway names <namespace>/<name>. Default all when ingressGuard.enabled, else none.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    ingressGuard: Type.Optional(
      Type.Object(
        {
          enabled: Type.Boolean({ description: 'Emit the ingress guard EnvoyFilter.' }),
          tokenSha256: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-f]{64}$' }), { description: 'SHA-256 of preview tokens.' })),
          gatewaySelector: Type.Optional(
            Type.Record(Type.String(), Type.String(), {
              description: 'Labels of the ingress gateway pods (valid Kubernetes label keys and values); never empty. Default istio: ingressgateway.',
            }),
          ),
          namespace: Type.Optional(Type.String({ description: 'Namespace of the EnvoyFilter (a DNS label). Default istio-system.' })),
        },
        { additionalProperties: false },
      ),
    ),
    policy: Type.Optional(PolicyConfig),
  },
  { additionalProperties: false },
);
export type MeshforkConfigT = Static<typeof MeshforkConfig>;

const validateConfig = new Ajv({ allErrors: true }).compile<MeshforkConfigT>(MeshforkConfig);

export interface RoutingOverrides {
  compat?: string;
  keyName?: string;
  headers?: string[];
  /** `--routing-mode`: overrides routing.mode. */
  mode?: string;
  /** `--host-routing-mode <service>.<namespace>=<mode>`: override routing.hosts entries. */
  hostModes?: string[];
}

/** Why a reserved header (RESERVED_HEADER_NAMES) cannot be a plain routing-key header. */
function reservedHeaderMessage(header: string): string {
  const why =
    header === 'baggage' || header === 'tracestate'
      ? `meshfork reads the routing key from its "<keyName>=<key>" member (routing.keyName${header === 'tracestate' ? ', routing.tracestate' : ''}), never from the whole header`
      : header === 'x-meshfork-preview-token'
        ? "it is the ingress guard's preview credential"
        : 'every request needs it as it is';
  return `"${header}" cannot be a plain routing-key header: ${why}; not allowed: ${RESERVED_HEADER_NAMES.join(', ')}`;
}

/** Resolves file + flag settings to a PlanConfig, or the problems with them. */
export function resolveConfig(file: unknown, overrides: RoutingOverrides): { config?: PlanConfig; problems: Problem[] } {
  const problems: Problem[] = [];
  const raw = file ?? {};
  if (!validateConfig(raw)) {
    // routing.gateways is one of three shapes: one problem naming the field (and the entry) instead
    // of one per shape it is not.
    let gatewaysReported = false;
    for (const e of validateConfig.errors ?? []) {
      if (e.instancePath === '/routing/gateways' || e.instancePath.startsWith('/routing/gateways/')) {
        if (gatewaysReported) continue;
        gatewaysReported = true;
        const given = (raw as { routing?: { gateways?: unknown } }).routing?.gateways;
        const bad = Array.isArray(given) ? given.findIndex((g) => typeof g !== 'string' || !new RegExp(GATEWAY_NAME_PATTERN).test(g)) : -1;
        problems.push(
          bad >= 0
            ? { path: fieldPath(['routing', 'gateways', bad]), message: `${JSON.stringify((given as unknown[])[bad])} is not a gateway name <namespace>/<name>; routing.gateways ${GATEWAYS_RULE}` }
            : { path: 'routing.gateways', message: GATEWAYS_RULE },
        );
        continue;
      }
      const segments = e.instancePath.split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      if (e.instancePath === '/routing/hosts' && e.keyword === 'additionalProperties') {
        const host = (e.params as { additionalProperty: string }).additionalProperty;
        problems.push({ path: `routing.hosts[${JSON.stringify(host)}]`, message: `"${host}" is not a host <service>.<namespace> (or its FQDN <service>.<namespace>.svc.cluster.local)` });
        continue;
      }
      if (segments[0] === 'routing' && (segments[1] === 'mode' || (segments[1] === 'hosts' && segments.length >= 3))) {
        // Host keys hold dots: routing.hosts["reviews.default"].mode.
        const at = segments[1] === 'mode' ? 'routing.mode' : `routing.hosts[${JSON.stringify(segments[2])}]${segments.length > 3 ? `.${segments.slice(3).join('.')}` : ''}`;
        const extra = e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '';
        const message = e.keyword === 'enum' ? `must be one of ${ROUTING_MODES.join(', ')}` : e.keyword === 'additionalProperties' ? 'unknown field' : e.message ?? e.keyword;
        problems.push({ path: at + extra, message });
        continue;
      }
      if (e.keyword === 'additionalProperties') segments.push((e.params as { additionalProperty: string }).additionalProperty);
      problems.push({ path: fieldPath(segments), message: e.keyword === 'additionalProperties' ? 'unknown field' : e.message ?? e.keyword });
    }
    return { problems };
  }
  const compat = overrides.compat ?? raw.routing?.compat;
  let routing: RoutingKeyConfig = DEFAULT_ROUTING_KEY_CONFIG;
  if (compat !== undefined) {
    const preset = COMPAT_PRESETS[compat];
    if (preset === undefined) return { problems: [{ path: '--compat', message: `unknown preset "${compat}"; known: ${Object.keys(COMPAT_PRESETS).join(', ')}` }] };
    routing = preset;
  }
  const keyName = overrides.keyName ?? raw.routing?.keyName ?? routing.keyName;
  if (!new RegExp(KEY_NAME_PATTERN).test(keyName)) problems.push({ path: '--key-name', message: `must match ${KEY_NAME_PATTERN}` });
  const fromFlags = overrides.headers !== undefined;
  const given = overrides.headers ?? raw.routing?.headers ?? [...routing.headers];
  given.forEach((h, i) => {
    const path = fromFlags ? '--header' : fieldPath(['routing', 'headers', i]);
    const name = headerName(h);
    if (!new RegExp(HEADER_NAME_PATTERN).test(name)) problems.push({ path, message: `"${h}" must match ${HEADER_NAME_INPUT_PATTERN} (letters are lower-cased)` });
    else if (RESERVED_HEADER_NAMES.includes(name)) problems.push({ path, message: reservedHeaderMessage(name) });
  });
  // Names that differ only in case are one header.
  const headers = [...new Set(given.map(headerName))];
  for (const p of ingressGuardSettingProblems(raw.ingressGuard ?? {})) problems.push({ path: `ingressGuard.${p.path}`, message: p.message });
  const routingModes = routingModesOf(raw.routing?.mode, raw.routing?.hosts, overrides, problems);
  if (problems.length > 0) return { problems };
  return {
    config: {
      routing: {
        keyName,
        tracestate: raw.routing?.tracestate ?? routing.tracestate,
        headers,
        legacyHeaders: raw.routing?.legacyHeaders ?? routing.legacyHeaders,
      },
      ...(raw.ingressGuard ? { ingressGuard: raw.ingressGuard } : {}),
      ...(raw.routing?.gateways !== undefined ? { gateways: raw.routing.gateways } : {}),
      policy: resolveForkPolicy(raw.policy),
      ...(routingModes !== undefined ? { routingModes } : {}),
    },
    problems,
  };
}

const isRoutingMode = (value: string): value is RoutingMode => (ROUTING_MODES as readonly string[]).includes(value);

/** routing.mode and routing.hosts, with the flags applied over them; undefined when all is default. */
function routingModesOf(
  mode: RoutingMode | undefined,
  hosts: Readonly<Record<string, { mode: RoutingMode }>> | undefined,
  overrides: RoutingOverrides,
  problems: Problem[],
): RoutingModeConfig | undefined {
  let resolvedMode = mode;
  if (overrides.mode !== undefined) {
    if (isRoutingMode(overrides.mode)) resolvedMode = overrides.mode;
    else problems.push({ path: '--routing-mode', message: `"${overrides.mode}" is not a routing mode; one of ${ROUTING_MODES.join(', ')}` });
  }
  const resolvedHosts: Record<string, { mode: RoutingMode }> = {};
  for (const [host, setting] of Object.entries(hosts ?? {})) setOwn(resolvedHosts, host, { mode: setting.mode });
  for (const given of overrides.hostModes ?? []) {
    const at = given.lastIndexOf('=');
    const host = at < 0 ? given : given.slice(0, at);
    const value = at < 0 ? '' : given.slice(at + 1);
    if (!new RegExp(ROUTING_HOST_PATTERN).test(host)) problems.push({ path: '--host-routing-mode', message: `"${given}": "${host}" is not a host <service>.<namespace>; give <service>.<namespace>=<mode>` });
    else if (!isRoutingMode(value)) problems.push({ path: '--host-routing-mode', message: `"${given}": "${value}" is not a routing mode; one of ${ROUTING_MODES.join(', ')}` });
    else setOwn(resolvedHosts, host, { mode: value });
  }
  if (resolvedMode === undefined && Object.keys(resolvedHosts).length === 0) return undefined;
  return { ...(resolvedMode !== undefined ? { mode: resolvedMode } : {}), ...(Object.keys(resolvedHosts).length > 0 ? { hosts: resolvedHosts } : {}) };
}

/**
 * The baseline the planner reads: Deployments, Services, VirtualServices, DestinationRules,
 * EnvoyFilters, label-selected policies (POLICY_KINDS) and the other objects that select pods by
 * labels, each with its namespace filled in. Hosts are compared as fully qualified names.
 * EnvoyFilters are read only for their identity (kind, namespace, name) and labels: a generated
 * EnvoyFilter must not replace one meshfork did not make.
 */
import { describeValue, type Problem } from '../api/problem.js';
import { PROTOTYPE_KEYS, asList, asRecord, ownValue, type KubeObject } from './kube.js';
import { GATEWAY_API_GROUP, GATEWAY_API_VERSION, ROUTE_KINDS } from './http-route.js';

export const CLUSTER_DOMAIN = 'cluster.local';

export interface Inventory {
  readonly deployments: readonly KubeObject[];
  readonly services: readonly KubeObject[];
  readonly virtualServices: readonly KubeObject[];
  readonly destinationRules: readonly KubeObject[];
  /** networking.istio.io EnvoyFilters; absent reads as none. */
  readonly envoyFilters?: readonly KubeObject[];
  /** Objects of the POLICY_KINDS, which forks get copies of (policy-copy.ts); absent reads as none. */
  readonly policies?: readonly KubeObject[];
  /**
   * Every other object with a label selector (`spec.selector`, `spec.podSelector`,
   * `spec.workloadSelector`): PodDisruptionBudgets, PodMonitors, ServiceMonitors, EnvoyFilters
   * and DestinationRules with a workloadSelector, kinds meshfork does not know. meshfork does not
   * copy them; a note names each one that treats a fork otherwise than its baseline. Absent reads as none.
   */
  readonly labelSelecting?: readonly KubeObject[];
  /**
   * Workloads meshfork does not fork (WORKLOAD_KINDS: StatefulSets, DaemonSets, Argo Rollouts,
   * Deployments of another API group, ...), identity only (apiVersion, kind, namespace, name), so
   * that a `forkOf` naming one is told what it names. Absent reads as none.
   */
  readonly workloads?: readonly KubeObject[];
  /**
   * Gateway API HTTPRoutes and GRPCRoutes (`gateway.networking.k8s.io`), whose Service parentRefs
   * decide a host's routing mode and which meshfork copies per sandbox (http-route.ts). Absent
   * reads as none.
   */
  readonly gatewayRoutes?: readonly KubeObject[];
  /** Namespaces, for their labels (`istio.io/dataplane-mode`, `istio.io/use-waypoint`). Absent reads as none. */
  readonly namespaces?: readonly KubeObject[];
}

/**
 * Kinds of label-selected policy that a fork gets copies of, and where each selects pods:
 * Istio's WorkloadSelector `spec.selector.matchLabels` (absent or empty: every workload of the
 * namespace), the Sidecar's `spec.workloadSelector.labels` (the same), and NetworkPolicy's
 * `spec.podSelector` (a metav1.LabelSelector; empty: every pod of the namespace).
 * https://istio.io/latest/docs/reference/config/type/workload-selector/
 * https://istio.io/latest/docs/reference/config/networking/sidecar/#WorkloadSelector
 * https://kubernetes.io/docs/concepts/services-networking/network-policies/
 */
export const POLICY_KINDS = [
  { kind: 'NetworkPolicy', group: 'networking.k8s.io', selector: 'podSelector' },
  { kind: 'PeerAuthentication', group: 'security.istio.io', selector: 'workload' },
  { kind: 'RequestAuthentication', group: 'security.istio.io', selector: 'workload' },
  { kind: 'AuthorizationPolicy', group: 'security.istio.io', selector: 'workload' },
  { kind: 'Sidecar', group: 'networking.istio.io', selector: 'sidecar' },
  { kind: 'Telemetry', group: 'telemetry.istio.io', selector: 'workload' },
  { kind: 'WasmPlugin', group: 'extensions.istio.io', selector: 'workload' },
] as const;

export type PolicyKind = (typeof POLICY_KINDS)[number];

function groupOf(object: KubeObject): string {
  return typeof object.apiVersion === 'string' && object.apiVersion.includes('/') ? object.apiVersion.split('/')[0]! : '';
}

/** The POLICY_KINDS entry of an object, by kind and API group. */
export function policyKindOf(object: KubeObject): PolicyKind | undefined {
  return POLICY_KINDS.find((k) => k.kind === object.kind && k.group === groupOf(object));
}

/** Fields under `spec` where objects of other kinds select pods (or, for ServiceMonitor, Services) by labels. */
export const SELECTOR_FIELDS = ['selector', 'podSelector', 'workloadSelector'] as const;
/** Kinds whose selectors the planner already reads for what they are (Deployment, Service). */
const PLANNED_SELECTORS = new Set(['apps/Deployment', '/Service']);

function hasLabelSelector(object: KubeObject): boolean {
  const group = groupOf(object);
  if (PLANNED_SELECTORS.has(`${group}/${object.kind}`) || group === 'meshfork.dev' || policyKindOf(object) !== undefined) return false;
  const spec = object['spec'];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return false;
  return SELECTOR_FIELDS.some((field) => Object.hasOwn(spec, field) && typeof (spec as Record<string, unknown>)[field] === 'object');
}

/**
 * Kinds that run pods besides apps/v1 Deployments, keyed by kind, with the apiVersion they are
 * served at (the controller reads one by name with it): Kubernetes' workload resources, Argo
 * Rollouts and OpenShift DeploymentConfigs. A `Deployment` of any group other than `apps` is
 * kept as well.
 */
export const WORKLOAD_KINDS: Readonly<Record<string, string>> = {
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  ReplicaSet: 'apps/v1',
  Job: 'batch/v1',
  CronJob: 'batch/v1',
  Pod: 'v1',
  ReplicationController: 'v1',
  Rollout: 'argoproj.io/v1alpha1',
  DeploymentConfig: 'apps.openshift.io/v1',
};


/** Sorts a mixed list of objects into an Inventory; other kinds are ignored. */
export function inventoryOf(objects: readonly KubeObject[]): Inventory {
  const of = (kind: string, group: string) => objects.filter((o) => o.kind === kind && groupOf(o) === group);
  const isOtherWorkload = (o: KubeObject) => (o.kind === 'Deployment' ? groupOf(o) !== 'apps' : Object.hasOwn(WORKLOAD_KINDS, o.kind));
  return {
    deployments: of('Deployment', 'apps'),
    services: of('Service', ''),
    virtualServices: of('VirtualService', 'networking.istio.io'),
    destinationRules: of('DestinationRule', 'networking.istio.io'),
    envoyFilters: of('EnvoyFilter', 'networking.istio.io'),
    policies: objects.filter((o) => policyKindOf(o) !== undefined),
    labelSelecting: objects.filter(hasLabelSelector),
    gatewayRoutes: objects.filter((o) => groupOf(o) === GATEWAY_API_GROUP && (ROUTE_KINDS as readonly string[]).includes(o.kind)),
    namespaces: of('Namespace', ''),
    workloads: objects.filter(isOtherWorkload).map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: { name: o.metadata.name, ...(o.metadata.namespace !== undefined ? { namespace: o.metadata.namespace } : {}) },
    })),
  };
}

export function namespaceOf(object: KubeObject): string {
  return object.metadata.namespace ?? 'default';
}

export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/**
 * Resolves a host as Istio does for VirtualService/DestinationRule hosts: a short name is
 * relative to the config's namespace (`reviews` in `default` is reviews.default.svc.cluster.local),
 * `name.ns` and `name.ns.svc` are completed with the cluster domain.
 */
export function resolveHost(host: string, configNamespace: string): string {
  const parts = host.split('.');
  if (host.includes('*')) return host;
  if (parts.length === 1) return serviceFqdn(host, configNamespace);
  if (parts.length === 2) return `${host}.svc.${CLUSTER_DOMAIN}`;
  if (parts.length === 3 && parts[2] === 'svc') return `${host}.${CLUSTER_DOMAIN}`;
  return host;
}

export function selectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => ownValue(labels, k) === v);
}

/**
 * `spec.selector` of a Service (a plain label map); none for an ExternalName Service, which is a
 * DNS alias and selects no pods whatever its spec says ("ExternalName Services do not specify
 * selectors", https://kubernetes.io/docs/concepts/services-networking/service/#externalname;
 * the EndpointSlice controller skips them).
 */
export function serviceSelector(service: KubeObject): Record<string, string> | undefined {
  const spec = service.spec as { selector?: Record<string, string>; type?: unknown } | undefined;
  return spec?.type === 'ExternalName' ? undefined : spec?.selector;
}

/** A Service's port numbers (`spec.ports[].port`), in its order; none when it has no ports. */
export function servicePortNumbers(service: KubeObject): number[] {
  return asList(asRecord(service.spec)?.['ports']).flatMap((p) => {
    const port = asRecord(p)?.['port'];
    return typeof port === 'number' ? [port] : [];
  });
}

/** Labels of a Deployment's pod template. */
export function podTemplateLabels(deployment: KubeObject): Record<string, string> {
  const spec = deployment.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined;
  return spec?.template?.metadata?.labels ?? {};
}

export function deploymentSelector(deployment: KubeObject): { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } {
  return (deployment.spec as { selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } } | undefined)?.selector ?? {};
}

/**
 * Shapes of the inventory fields the planner reads (forked-deployment.ts, fork-service.ts,
 * destination-rule.ts, virtual-service.ts, fork-policy.ts), checked before planning so that a
 * malformed object is a problem naming the field, never an exception or a silent misreading
 * (e.g. `gateways: mesh` as a string, which would otherwise read as "no gateways", i.e. mesh).
 * Pure; fields the planner copies without reading are not checked (the API server checks them).
 */
export function inventoryProblems(inventory: Inventory): Problem[] {
  const problems: Problem[] = [];
  const check = (object: KubeObject, kind: keyof typeof SPEC_CHECKS) => {
    const metadata = asRecord(object.metadata);
    const ref = `${String(object.kind)} ${String(metadata?.['namespace'] ?? 'default')}/${String(metadata?.['name'])}`;
    const c = new ShapeChecker(ref, problems);
    c.metadata(object.metadata, kind === 'services' ? 'service' : 'subdomain');
    SPEC_CHECKS[kind](c, object['spec'], object);
  };
  for (const kind of Object.keys(SPEC_CHECKS) as Array<keyof typeof SPEC_CHECKS>) for (const object of inventory[kind] ?? []) check(object, kind);
  return problems;
}

/** What namespaces must be, as said in problems. */
export const NAMESPACE_RULE = 'must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters)';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Service names are RFC 1035 labels (they become DNS names): a letter first. */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;


/** Records one problem per malformed field of one object; each method returns whether the shape holds. */
class ShapeChecker {
  constructor(
    private readonly object: string,
    private readonly problems: Problem[],
  ) {}

  fail(path: string, expected: string, value: unknown): false {
    const message = value === undefined ? `required field is missing (${expected})` : `must be ${expected}, not ${describeValue(value)}`;
    this.problems.push({ object: this.object, path, message });
    return false;
  }

  /** An object (map); `required` refuses a missing one. */
  record(value: unknown, path: string, required = false): value is Record<string, unknown> {
    if (value === undefined && !required) return false;
    return asRecord(value) !== undefined || this.fail(path, 'an object', value);
  }

  list(value: unknown, path: string, what: string): value is unknown[] {
    if (value === undefined) return false;
    return Array.isArray(value) || this.fail(path, `a list of ${what}`, value);
  }

  string(value: unknown, path: string, required = false): void {
    if (value === undefined && !required) return;
    if (typeof value !== 'string' || value === '') this.fail(path, 'a non-empty string', value);
  }

  stringList(value: unknown, path: string, what: string): void {
    if (!this.list(value, path, what)) return;
    value.forEach((item, i) => {
      if (typeof item !== 'string') this.fail(`${path}[${i}]`, 'a string', item);
    });
  }

  /** Labels, annotations, selectors: string keys to string values. */
  stringMap(value: unknown, path: string): void {
    if (!this.record(value, path)) return;
    for (const [key, item] of Object.entries(value)) {
      // Not a valid label or annotation key (they start with an alphanumeric character), and a
      // key that would read or write an object's prototype.
      if (PROTOTYPE_KEYS.has(key)) this.problems.push({ object: this.object, path: `${path}["${key}"]`, message: 'is not a valid label or annotation key' });
      else if (typeof item !== 'string') this.fail(`${path}["${key}"]`, 'a string (label maps and selectors map strings to strings)', item);
    }
  }

  /** A string that may be empty (an API group: "" is the core group). */
  text(value: unknown, path: string, required = false): void {
    if (value === undefined && !required) return;
    if (typeof value !== 'string') this.fail(path, 'a string', value);
  }

  integer(value: unknown, path: string, min: number, max: number, required = false): void {
    if (value === undefined && !required) return;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) this.fail(path, `an integer from ${min} to ${max}`, value);
  }

  objects(value: unknown, path: string, what: string, each: (item: Record<string, unknown>, path: string) => void): void {
    if (!this.list(value, path, what)) return;
    value.forEach((item, i) => {
      if (this.record(item, `${path}[${i}]`, true)) each(item, `${path}[${i}]`);
    });
  }

  /** A metav1.LabelSelector: matchLabels and matchExpressions with known operators. */
  labelSelector(value: unknown, path: string): void {
    if (!this.record(value, path)) return;
    this.stringMap(value['matchLabels'], `${path}.matchLabels`);
    this.objects(value['matchExpressions'], `${path}.matchExpressions`, 'label selector requirements', (e, at) => {
      this.string(e['key'], `${at}.key`, true);
      const operator = e['operator'];
      if (!SELECTOR_OPERATORS.includes(operator)) this.fail(`${at}.operator`, `one of ${SELECTOR_OPERATORS.join(', ')}`, operator);
      this.stringList(e['values'], `${at}.values`, 'label values');
    });
  }

  metadata(value: unknown, names: 'service' | 'subdomain'): void {
    if (!this.record(value, 'metadata', true)) return;
    const name = value['name'];
    if (typeof name !== 'string' || name === '') this.fail('metadata.name', 'a non-empty string', name);
    else if (names === 'service' && (name.length > 63 || !DNS_1035_LABEL.test(name))) {
      this.problems.push({ object: this.object, path: 'metadata.name', message: 'must be an RFC 1035 label (a-z, 0-9 and -, a letter first, at most 63 characters), as Service names are' });
    } else if (names === 'subdomain' && (name.length > 253 || !DNS_SUBDOMAIN.test(name))) {
      this.problems.push({ object: this.object, path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters)' });
    }
    const namespace = value['namespace'];
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))) {
      this.problems.push({ object: this.object, path: 'metadata.namespace', message: NAMESPACE_RULE });
    }
    this.stringMap(value['labels'], 'metadata.labels');
    this.stringMap(value['annotations'], 'metadata.annotations');
  }
}

const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
/** Label selector operators (metav1.LabelSelectorRequirement). */
const SELECTOR_OPERATORS: readonly unknown[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

/** A Gateway API object reference (ParentReference, BackendObjectReference): group may be "" (core). */
function objectReference(c: ShapeChecker, ref: Record<string, unknown>, at: string): void {
  c.text(ref['group'], `${at}.group`);
  c.string(ref['kind'], `${at}.kind`);
  c.string(ref['name'], `${at}.name`, true);
  c.string(ref['namespace'], `${at}.namespace`);
  c.integer(ref['port'], `${at}.port`, 1, 65535);
}

/** Gateway API route filters: the type, and the RequestMirror backendRef that http-route.ts retargets. */
function routeFilters(c: ShapeChecker, filters: unknown, at: string): void {
  c.objects(filters, at, 'route filters', (filter, filterAt) => {
    c.string(filter['type'], `${filterAt}.type`, true);
    if (c.record(filter['requestMirror'], `${filterAt}.requestMirror`) && c.record(filter['requestMirror']['backendRef'], `${filterAt}.requestMirror.backendRef`, true)) {
      objectReference(c, filter['requestMirror']['backendRef'], `${filterAt}.requestMirror.backendRef`);
    }
  });
}

/** Header match types of HTTPHeaderMatch and GRPCHeaderMatch. */
const HEADER_MATCH_TYPES: readonly unknown[] = ['Exact', 'RegularExpression'];

const SPEC_CHECKS: Record<
  'deployments' | 'services' | 'virtualServices' | 'destinationRules' | 'envoyFilters' | 'policies' | 'gatewayRoutes' | 'namespaces',
  (c: ShapeChecker, spec: unknown, object: KubeObject) => void
> = {
  deployments(c: ShapeChecker, spec: unknown): void {
    if (!c.record(spec, 'spec', true)) return;
    c.labelSelector(spec['selector'], 'spec.selector');
    if (!c.record(spec['template'], 'spec.template')) return;
    const template = spec['template'];
    if (c.record(template['metadata'], 'spec.template.metadata')) {
      c.stringMap(template['metadata']['labels'], 'spec.template.metadata.labels');
      c.stringMap(template['metadata']['annotations'], 'spec.template.metadata.annotations');
    }
    if (!c.record(template['spec'], 'spec.template.spec')) return;
    const pod = template['spec'];
    for (const listName of CONTAINER_LISTS) {
      c.objects(pod[listName], `spec.template.spec.${listName}`, 'containers', (container, at) => {
        c.string(container['name'], `${at}.name`, true);
        c.string(container['image'], `${at}.image`);
        c.stringList(container['command'], `${at}.command`, 'strings');
        c.stringList(container['args'], `${at}.args`, 'strings');
        c.objects(container['env'], `${at}.env`, 'environment variables', (env, envAt) => c.string(env['name'], `${envAt}.name`, true));
      });
    }
  },

  services(c: ShapeChecker, spec: unknown): void {
    if (!c.record(spec, 'spec')) return;
    c.stringMap(spec['selector'], 'spec.selector');
    c.objects(spec['ports'], 'spec.ports', 'ports', (port, at) => {
      c.integer(port['port'], `${at}.port`, 1, 65535, true);
      for (const field of ['name', 'protocol', 'appProtocol']) c.string(port[field], `${at}.${field}`);
      const target = port['targetPort'];
      if (typeof target === 'string') c.string(target, `${at}.targetPort`);
      else c.integer(target, `${at}.targetPort`, 1, 65535);
    });
  },

  virtualServices(c: ShapeChecker, spec: unknown): void {
    if (!c.record(spec, 'spec')) return;
    c.stringList(spec['hosts'], 'spec.hosts', 'host names');
    c.stringList(spec['gateways'], 'spec.gateways', 'gateway names (e.g. [mesh])');
    c.objects(spec['http'], 'spec.http', 'HTTP routes', (route, at) => {
      c.string(route['name'], `${at}.name`);
      c.objects(route['match'], `${at}.match`, 'match blocks', (match, matchAt) => {
        // Both maps get the routing-key conditions merged in (virtual-service.ts andMatch).
        for (const field of ['headers', 'withoutHeaders']) {
          const headers = match[field];
          if (!c.record(headers, `${matchAt}.${field}`)) continue;
          for (const [header, matcher] of Object.entries(headers)) c.record(matcher, `${matchAt}.${field}["${header}"]`, true);
        }
      });
      c.objects(route['route'], `${at}.route`, 'destinations', (destination, destAt) => {
        if (c.record(destination['destination'], `${destAt}.destination`, true)) {
          const d = destination['destination'];
          c.string(d['host'], `${destAt}.destination.host`, true);
          c.string(d['subset'], `${destAt}.destination.subset`);
          if (c.record(d['port'], `${destAt}.destination.port`)) c.integer(d['port']['number'], `${destAt}.destination.port.number`, 1, 65535, true);
        }
        c.integer(destination['weight'], `${destAt}.weight`, 0, 100);
      });
    });
  },

  destinationRules(c: ShapeChecker, spec: unknown): void {
    if (!c.record(spec, 'spec')) return;
    c.string(spec['host'], 'spec.host');
    c.record(spec['trafficPolicy'], 'spec.trafficPolicy');
    c.stringList(spec['exportTo'], 'spec.exportTo', 'namespaces');
    c.objects(spec['subsets'], 'spec.subsets', 'subsets', (subset, at) => {
      c.string(subset['name'], `${at}.name`, true);
      c.stringMap(subset['labels'], `${at}.labels`);
      c.record(subset['trafficPolicy'], `${at}.trafficPolicy`);
    });
  },

  /** Only metadata is read (the collision check); the spec is never looked at. */
  envoyFilters(c: ShapeChecker, spec: unknown): void {
    c.record(spec, 'spec');
  },

  /** Only the labels are read (metadata, checked for every object). */
  namespaces(c: ShapeChecker, spec: unknown): void {
    c.record(spec, 'spec');
  },

  /**
   * What routing-mode.ts and http-route.ts read of an HTTPRoute/GRPCRoute: its version, creation
   * time, parentRefs, hostnames, and per rule the matches' headers (the key match is added to them),
   * backendRefs and filters (Service references are retargeted). The rest is copied unread.
   */
  gatewayRoutes(c: ShapeChecker, spec: unknown, object: KubeObject): void {
    // The CRDs serve these versions with one schema (HTTPRoute v1beta1, GRPCRoute v1alpha2 are
    // the same types as v1); derived routes are written in v1.
    const versions = object.kind === 'HTTPRoute' ? [GATEWAY_API_VERSION, `${GATEWAY_API_GROUP}/v1beta1`] : [GATEWAY_API_VERSION, `${GATEWAY_API_GROUP}/v1alpha2`];
    if (!versions.includes(object.apiVersion)) c.fail('apiVersion', `one of ${versions.join(', ')} (the versions meshfork reads ${object.kind}s in)`, object.apiVersion);
    c.string(object.metadata?.creationTimestamp, 'metadata.creationTimestamp');
    if (!c.record(spec, 'spec', true)) return;
    c.objects(spec['parentRefs'], 'spec.parentRefs', 'parent references', (ref, at) => {
      objectReference(c, ref, at);
      c.string(ref['sectionName'], `${at}.sectionName`);
    });
    c.stringList(spec['hostnames'], 'spec.hostnames', 'host names');
    c.objects(spec['rules'], 'spec.rules', 'route rules', (rule, at) => {
      c.string(rule['name'], `${at}.name`);
      c.objects(rule['matches'], `${at}.matches`, 'matches', (match, matchAt) => {
        c.objects(match['headers'], `${matchAt}.headers`, 'header matches', (header, headerAt) => {
          c.string(header['name'], `${headerAt}.name`, true);
          c.text(header['value'], `${headerAt}.value`, true);
          if (header['type'] !== undefined && !HEADER_MATCH_TYPES.includes(header['type'])) c.fail(`${headerAt}.type`, `one of ${HEADER_MATCH_TYPES.join(', ')}`, header['type']);
        });
      });
      routeFilters(c, rule['filters'], `${at}.filters`);
      c.objects(rule['backendRefs'], `${at}.backendRefs`, 'backend references', (ref, refAt) => {
        objectReference(c, ref, refAt);
        c.integer(ref['weight'], `${refAt}.weight`, 0, 1000000);
        routeFilters(c, ref['filters'], `${refAt}.filters`);
      });
    });
  },

  /**
   * The selectors policy-copy.ts reads and replaces: Istio's `selector.matchLabels`, the Sidecar's
   * `workloadSelector.labels`, `targetRef(s)`, and NetworkPolicy's `podSelector` and the
   * `podSelector` / `namespaceSelector` of its ingress `from` and egress `to` peers. The rest of
   * the spec is copied without being read.
   */
  policies(c: ShapeChecker, spec: unknown, object: KubeObject): void {
    if (!c.record(spec, 'spec', object.kind === 'NetworkPolicy')) return;
    if (object.kind === 'NetworkPolicy') {
      c.labelSelector(spec['podSelector'], 'spec.podSelector');
      for (const [direction, peers] of [['ingress', 'from'], ['egress', 'to']] as const) {
        c.objects(spec[direction], `spec.${direction}`, 'NetworkPolicy rules', (rule, at) => {
          c.objects(rule[peers], `${at}.${peers}`, 'NetworkPolicy peers', (peer, peerAt) => {
            c.labelSelector(peer['podSelector'], `${peerAt}.podSelector`);
            c.labelSelector(peer['namespaceSelector'], `${peerAt}.namespaceSelector`);
          });
        });
      }
      return;
    }
    const [field, labels] = object.kind === 'Sidecar' ? ['workloadSelector', 'labels'] : ['selector', 'matchLabels'];
    if (c.record(spec[field], `spec.${field}`)) c.stringMap(spec[field][labels], `spec.${field}.${labels}`);
    c.record(spec['targetRef'], 'spec.targetRef');
    c.objects(spec['targetRefs'], 'spec.targetRefs', 'policy target references', () => undefined);
  },
};

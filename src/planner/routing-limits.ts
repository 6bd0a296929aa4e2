/**
 * Where meshfork cannot keep the routing promise for a fork, said as notes (or, when nothing can
 * be planned, a problem) that name the object, the field and what to do. Pure; each function
 * reads the inventory objects it is given and returns messages, the planner places them.
 *
 * - A Service whose every port Istio treats as TCP, TLS or another opaque protocol: sidecars
 *   proxy its connections at L4 and never read the key (serviceProtocolNote).
 * - A fork without an Envoy sidecar: no meshfork EnvoyFilter applies to it, so its outbound calls
 *   stay in the sandbox only as far as the app itself propagates the key (dataplaneNote).
 * - NodePort / LoadBalancer Services and externalIPs in front of a forked workload: requests
 *   entering through them reach pods without passing a client sidecar (entryPointNotes).
 * - A queue consumer: its fork reads the baseline's queues (queueConsumerNote; heuristic in
 *   docs/adr/0011-what-cannot-be-routed.md).
 * - A `forkOf` naming something that is not a Deployment of that namespace (baselineNotFound).
 */
import { namespaceOf } from './inventory.js';
import { asList as list, asRecord as record, objectRef as ref, ownValue, type KubeObject } from './kube.js';

/** A note or problem about an object other than the Sandbox: `<Kind> <namespace>/<name>`, a field path and the message. */
export interface ObjectNote {
  readonly object: string;
  readonly path: string;
  readonly message: string;
}

// ---------------------------------------------------------------------------------------------
// Protocols

/** Protocols whose requests Envoy parses as HTTP, so a VirtualService `http` route (and the key) applies. */
const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['HTTP', 'HTTP2', 'HTTP_PROXY', 'GRPC', 'GRPC-Web']);
/** Istio's protocol names by lower-case port name prefix (istio.io/istio pkg/config/protocol `Parse`). */
const PROTOCOLS: Readonly<Record<string, string>> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};
/** Ports Istio never sniffs: SMTP, DNS, MySQL, MongoDB (pkg/config/kube/conversion.go `wellKnownPorts`). */
const WELL_KNOWN_PORTS: ReadonlySet<number> = new Set([25, 53, 3306, 27017]);

/**
 * The protocol Istio gives a Service port, as istio.io/istio pkg/config/kube/conversion.go
 * `ConvertProtocol` computes it (istio.io "Protocol Selection",
 * https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/):
 * Kubernetes `protocol: UDP` is UDP; else `appProtocol` (with `kubernetes.io/h2c` = HTTP2,
 * `kubernetes.io/ws` = HTTP, `kubernetes.io/wss` = HTTPS), else the port name, read as
 * `<protocol>[-<suffix>]` (`grpc-web` first). `undefined` means automatic detection (sniffing;
 * HTTP is detected), except on the well-known ports, which are TCP.
 */
export function istioPortProtocol(port: { name?: unknown; port?: unknown; protocol?: unknown; appProtocol?: unknown }): string | undefined {
  if (port.protocol === 'UDP') return 'UDP';
  let name = typeof port.name === 'string' ? port.name : '';
  if (typeof port.appProtocol === 'string') {
    name = port.appProtocol;
    const standard = { 'kubernetes.io/h2c': 'HTTP2', 'kubernetes.io/ws': 'HTTP', 'kubernetes.io/wss': 'HTTPS' }[name];
    if (standard !== undefined) return standard;
  }
  if (name.toLowerCase().startsWith('grpc-web')) return 'GRPC-Web';
  const dash = name.indexOf('-');
  const prefix = (dash >= 0 ? name.slice(0, dash) : name).toLowerCase();
  const protocol = ownValue(PROTOCOLS, prefix);
  if (protocol !== undefined) return protocol;
  return typeof port.port === 'number' && WELL_KNOWN_PORTS.has(port.port) ? 'TCP' : undefined;
}

/**
 * A note when every port of `service` (a Service in front of a forked workload) has a protocol
 * Istio proxies without parsing HTTP: a keyed request to it is never matched by a VirtualService
 * `http` route, so it reaches the baseline. Ports left to automatic detection can carry HTTP and
 * are not "only TCP"; a Service without ports says nothing.
 */
export function serviceProtocolNote(service: KubeObject, sandbox: string, forkService: string): ObjectNote | undefined {
  const ports = list(record(service.spec)?.['ports']).map((p) => record(p) ?? {});
  if (ports.length === 0) return undefined;
  const protocols = ports.map(istioPortProtocol);
  if (protocols.some((p) => p === undefined || HTTP_PROTOCOLS.has(p))) return undefined;
  const described = ports.map((p, i) => `${typeof p['name'] === 'string' ? `"${p['name']}"` : 'unnamed'} ${String(p['port'])}: ${protocols[i]}`).join(', ');
  return {
    object: ref(service),
    path: 'spec.ports',
    message:
      `every port is TCP, TLS or opaque to Istio (${described}; by appProtocol or the port name prefix, istio.io "Protocol Selection"): ` +
      `sidecars forward its connections without reading HTTP headers, so requests with the routing key of ${sandbox} reach the baseline, never the fork Service "${forkService}"; ` +
      `if a port carries HTTP or gRPC, name it http-<suffix> or grpc-<suffix> (or set appProtocol: http, http2 or grpc)`,
  };
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Service types whose addresses lead into the cluster from outside the mesh. */
const ENTRY_POINT_TYPES: readonly unknown[] = ['NodePort', 'LoadBalancer'];

/**
 * Notes for a Service in front of a forked workload that is also an entry point from outside the
 * mesh (type NodePort or LoadBalancer, or `externalIPs`): a request arriving on those addresses
 * is delivered to a selected pod by the node (kube-proxy), with no client sidecar to match the
 * routing key, so keyed requests through it reach the baseline (only requests from meshed
 * clients, or through an Istio ingress gateway, are routed). Its fork Service is ClusterIP
 * (fork-service.ts): meshfork never opens a way into the cluster.
 */
export function entryPointNotes(service: KubeObject, workload: string, sandbox: string): ObjectNote[] {
  const spec = record(service.spec) ?? {};
  const type = spec['type'];
  const externalIPs = list(spec['externalIPs']).filter((ip) => typeof ip === 'string');
  const bypass = `reach a pod of Deployment ${workload} without a client sidecar to match the routing key, so keyed requests through them reach the baseline, never the fork of ${sandbox}; send keyed requests through an Istio ingress gateway or from a meshed client`;
  const notes: ObjectNote[] = [];
  if (ENTRY_POINT_TYPES.includes(type)) {
    notes.push({ object: ref(service), path: 'spec.type', message: `is ${String(type)}: requests from outside the mesh through its ${type === 'NodePort' ? 'node ports' : 'load balancer and node ports'} ${bypass}` });
  }
  if (externalIPs.length > 0) {
    notes.push({ object: ref(service), path: 'spec.externalIPs', message: `requests from outside the mesh to ${externalIPs.join(', ')} ${bypass}` });
  }
  return notes;
}

// ---------------------------------------------------------------------------------------------
// Data plane

const INJECT = 'sidecar.istio.io/inject';
const TEMPLATES = 'inject.istio.io/templates';
const DATAPLANE_MODE = 'istio.io/dataplane-mode';

/**
 * A note when the fork's pod template says its pods get no Envoy sidecar
 * (https://istio.io/latest/docs/setup/additional-setup/sidecar-injection/, "Controlling the
 * injection policy"; https://istio.io/latest/docs/ambient/usage/add-workloads/):
 *
 * - `sidecar.istio.io/inject: "false"` (the label, else the older annotation: the label wins, as
 *   in istio.io/istio pkg/kube/inject/inject.go `injectRequired`): the pod is outside the
 *   mesh. Keyed requests from meshed clients still reach the fork (the client's sidecar routes),
 *   but the fork's own outbound calls pass no sidecar at all: no route sends them to other forks
 *   and the affinity EnvoyFilter never adds the key;
 * - `inject.istio.io/templates: grpc-agent` (proxyless gRPC): the app's gRPC xDS client applies
 *   the VirtualService routes to its gRPC calls, but EnvoyFilters (the affinity filter) do not
 *   apply, so its calls stay in the sandbox only if the app propagates the key;
 * - `istio.io/dataplane-mode: ambient` on the pod template: ztunnel and waypoints carry its
 *   traffic; EnvoyFilters are ignored there and VirtualService routing happens only at a
 *   waypoint, so its calls stay in the sandbox only if the app propagates the key and the called
 *   Services have a waypoint.
 *
 * Only the pod template is read: injection disabled or ambient mode set on the namespace is not
 * visible in manifests.
 */
export function dataplaneNote(fork: KubeObject): string | undefined {
  const metadata = record(record(record(fork.spec)?.['template'])?.['metadata']) ?? {};
  const labels = (record(metadata['labels']) ?? {}) as Record<string, unknown>;
  const annotations = (record(metadata['annotations']) ?? {}) as Record<string, unknown>;
  const name = `the fork Deployment "${fork.metadata.name}"`;
  const injectLabel = ownValue(labels, INJECT);
  const inject = injectLabel ?? ownValue(annotations, INJECT);
  if (inject === 'false') {
    const where = injectLabel !== undefined ? 'label' : 'annotation';
    return (
      `${name} runs without an Envoy sidecar (pod template ${where} ${INJECT}: "false"): keyed requests from meshed clients reach it, ` +
      `but its own outbound calls pass no sidecar, so none is routed to another fork of the sandbox and the affinity EnvoyFilter never adds the routing key to them`
    );
  }
  const templates = ownValue(annotations, TEMPLATES);
  if (typeof templates === 'string' && templates.split(',').map((t) => t.trim()).includes('grpc-agent')) {
    return (
      `${name} is a proxyless gRPC workload (pod template annotation ${TEMPLATES}: ${templates}): its gRPC client applies the sandbox routes, ` +
      `but EnvoyFilters do not apply to it, so its calls stay in the sandbox only if the app propagates the routing key (baggage) from each request to the calls it causes`
    );
  }
  if (ownValue(labels, DATAPLANE_MODE) === 'ambient') {
    return (
      `${name} runs in ambient mode (pod template label ${DATAPLANE_MODE}: ambient), without an Envoy sidecar: EnvoyFilters are ignored and routes apply only at waypoints, ` +
      `so its calls stay in the sandbox only if the app propagates the routing key (baggage) and the Services it calls have a waypoint`
    );
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Queue consumers

/**
 * Words that name a message broker or queue service, as a whole `_`-separated word of an
 * environment variable name (KAFKA_BROKER_ADDR, AMQP_URL, NATS_SERVERS, SQS_QUEUE_URL,
 * PUBSUB_SUBSCRIPTION, CELERY_BROKER_URL).
 */
const BROKER_WORDS: ReadonlySet<string> = new Set([
  'KAFKA',
  'AMQP',
  'RABBITMQ',
  'NATS',
  'JETSTREAM',
  'SQS',
  'PUBSUB',
  'PULSAR',
  'KINESIS',
  'EVENTHUB',
  'EVENTHUBS',
  'SERVICEBUS',
  'ACTIVEMQ',
  'MQTT',
  'NSQ',
  'BROKER',
  'BROKERS',
]);
/** Values that address a broker: its URL schemes, and the AWS SQS, Google Pub/Sub and Azure Service Bus endpoints. */
const BROKER_VALUES = /^(amqps?|nats|tls\+nats|kafka|pulsar(\+ssl)?|mqtts?|stomp):\/\/|(^|[/.])sqs\.[a-z0-9-]+\.amazonaws\.com|(^|[/.])pubsub\.googleapis\.com|\.servicebus\.windows\.net/i;

/**
 * A note for a forked workload that no Service selects (the caller checks; it takes no requests
 * and does its work from somewhere else) when it looks like a queue consumer: a container's environment names a
 * message broker (a literal `env` entry whose name has a BROKER_WORDS word or whose value
 * matches BROKER_VALUES). Its fork then reads the same topics and queues as the baseline: in the
 * baseline's consumer group it takes messages away from the baseline, in its own group it
 * processes every message a second time, and the routing key decides nothing unless the app
 * filters messages by it. Deliberately conservative (docs/adr/0011-what-cannot-be-routed.md):
 * `envFrom`, `valueFrom`, arguments and config files are not read, and a consumer that also
 * serves requests behind a Service is not detected.
 */
export function queueConsumerNote(baseline: KubeObject): string | undefined {
  const containers = list(record(record(record(baseline.spec)?.['template'])?.['spec'])?.['containers']);
  for (const container of containers) {
    const c = record(container) ?? {};
    for (const env of list(c['env'])) {
      const e = record(env) ?? {};
      const name = e['name'];
      const value = e['value'];
      if (typeof name !== 'string') continue;
      const byName = name.toUpperCase().split(/[^A-Z0-9]+/).some((word) => BROKER_WORDS.has(word));
      const byValue = typeof value === 'string' && BROKER_VALUES.test(value);
      if (!byName && !byValue) continue;
      return (
        `Deployment ${namespaceOf(baseline)}/${baseline.metadata.name} looks like a queue consumer (no Service selects its pods, and env ${name} of container "${String(c['name'])}" names a message broker): ` +
        `its fork reads the baseline's topics and queues, taking messages from the baseline (same consumer group) or processing each one again (its own group), whatever their routing key; ` +
        `give the fork its own topic, queue or subscription with an env customization, or have the app skip messages whose baggage carries another sandbox's key`
      );
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// forkOf naming something else

/** What to do instead, by kind of the workload a `forkOf` names. */
const KIND_HINTS: Readonly<Record<string, string>> = {
  StatefulSet:
    'a StatefulSet keeps stable pod names and volumes that a copy would share or contend for; fork the Deployments that use it (an env customization can point a fork at a separate instance)',
  DaemonSet: 'a DaemonSet runs one pod per node, not a service behind a Service; fork the Deployments that call it',
  ReplicaSet: 'a ReplicaSet is normally owned by a Deployment; fork that Deployment',
  Job: 'a Job runs to completion and serves no requests, so there is nothing to route to a fork; run a Job of your own',
  CronJob: 'a CronJob runs Jobs that serve no requests, so there is nothing to route to a fork; run a Job of your own',
  Pod: 'a bare Pod has no template to copy; manage it with a Deployment, then fork that',
  ReplicationController: 'a ReplicationController is the older form of a ReplicaSet; manage the pods with a Deployment, then fork that',
  Rollout: "an Argo Rollout manages its own pods and traffic; if it runs a Deployment's template (spec.workloadRef), fork that Deployment",
  DeploymentConfig: 'an OpenShift DeploymentConfig is not an apps/v1 Deployment; fork an apps/v1 Deployment',
};

/**
 * The message for a `forkOf` whose Deployment `<namespace>/<name>` is not in the inventory,
 * saying what the name is instead: a workload of another kind (or a Deployment of another API
 * group) in that namespace, and Deployments of that name in other namespaces, with the field to
 * set (and the policy needed) to fork one of them.
 */
export function baselineNotFound(args: {
  name: string;
  namespace: string;
  forkPath: string;
  workloads: readonly KubeObject[];
  deployments: readonly KubeObject[];
  forkNamespaces: readonly string[];
  sandboxNamespace: string;
}): string {
  const { name, namespace } = args;
  const parts = [`Deployment "${name}" not found in namespace "${namespace}"`];
  const others = args.workloads.filter((w) => w.metadata.name === name && namespaceOf(w) === namespace);
  for (const other of others) {
    const hint = other.kind === 'Deployment' ? `meshfork forks apps/v1 Deployments only; convert it to apps/v1` : (ownValue(KIND_HINTS, other.kind) ?? 'meshfork forks Deployments only');
    parts.push(`${namespace}/${name} is a ${other.kind} (${other.apiVersion}): ${hint}`);
  }
  const elsewhere = [...new Set(args.deployments.filter((d) => d.metadata.name === name && namespaceOf(d) !== namespace).map(namespaceOf))].sort();
  if (elsewhere.length > 0) {
    const needsPolicy = elsewhere.filter((n) => n !== args.sandboxNamespace && !args.forkNamespaces.includes(n));
    const set = elsewhere.length === 1 ? `set ${args.forkPath}.forkOf.namespace: ${elsewhere[0]}` : `set ${args.forkPath}.forkOf.namespace to one of them`;
    const policy = needsPolicy.length > 0 ? ` (forking from another namespace also needs it in policy.forkNamespaces, which an administrator sets)` : '';
    parts.push(`a Deployment "${name}" exists in namespace ${elsewhere.map((n) => `"${n}"`).join(', ')}: to fork it, ${set}${policy}`);
  }
  return parts.join('; ');
}

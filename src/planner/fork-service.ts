/**
 * Fork Service `<service>-<sandbox>`: one per baseline Service that selects the baseline pods,
 * with a selector that only the fork pods match. Without a route to it, no baseline traffic ever
 * reaches a fork.
 *
 * A fork Service behaves like its baseline inside the mesh, and is never an entry point of its own.
 *
 * Copied from the baseline (semantics from the Kubernetes ServiceSpec reference,
 * https://kubernetes.io/docs/reference/kubernetes-api/service-resources/service-v1/):
 * - `ports`: name, port, protocol, appProtocol and targetPort of each port (never `nodePort`);
 *   a baseline without ports gives a fork without ports;
 * - headlessness: `clusterIP: None` (or `clusterIPs: [None]`) gives `clusterIP: None`, so DNS
 *   still answers with the pod addresses and StatefulSet-style clients keep working. With a note:
 *   Istio's sidecars send requests for a headless host to the address the client connected to
 *   (an ORIGINAL_DST cluster; only gateways, or istiod with PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES,
 *   use the endpoints: `convertResolution` in istio pilot/pkg/networking/core/cluster.go), so a
 *   route to the fork host still delivers keyed requests from sidecars to the baseline pod the
 *   client resolved;
 * - `ipFamilyPolicy` and `ipFamilies` (dual-stack and IPv6-only Services stay so);
 * - `sessionAffinity`, and `sessionAffinityConfig` when the affinity is `ClientIP` (the API server
 *   refuses the config with any other affinity);
 * - `publishNotReadyAddresses`, `internalTrafficPolicy`, `trafficDistribution`;
 * - labels, and the Istio annotations that Istio reads on a Service and that keep meaning on a
 *   ClusterIP Service (istio.io/api annotation/annotations.gen.go): `networking.istio.io/exportTo`
 *   (the fork is visible exactly where its baseline is, never more) and
 *   `networking.istio.io/traffic-distribution`.
 *
 * Never copied:
 * - `clusterIP` / `clusterIPs` values other than `None`: a fixed IP belongs to the baseline (two
 *   Services cannot share it); the fork gets its own from the cluster;
 * - `type`: fork Services are ClusterIP (the default, not written) or headless. A NodePort or
 *   LoadBalancer baseline gets a ClusterIP fork: meshfork never opens a new way into the cluster,
 *   and keyed requests reach the fork only through the mesh (routing-limits.ts `entryPointNotes`
 *   says so for the baseline's entry points). Hence also never
 *   `nodePort`, `externalTrafficPolicy`, `healthCheckNodePort`, `allocateLoadBalancerNodePorts`,
 *   `loadBalancerIP`, `loadBalancerClass`, `loadBalancerSourceRanges`;
 * - `externalIPs` (traffic to those IPs belongs to the baseline) and `externalName`;
 * - `status`, other annotations (cloud load-balancer settings, tool bookkeeping), and the other
 *   metadata.
 *
 * Kubernetes requires ports on every Service except headless and ExternalName ones: a baseline
 * without ports that is not headless is a problem (its fork would be refused), never a Service
 * the API server refuses.
 */
import { FORK_OF_SERVICE_LABEL, SANDBOX_LABEL, asRecord as record, cloneData, managedLabels, ownValue, setOwn, type KubeObject } from './kube.js';
import { namespaceOf } from './inventory.js';

interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
}

/** Service annotations copied to the fork (see the module comment). */
const COPIED_ANNOTATIONS = ['networking.istio.io/exportTo', 'networking.istio.io/traffic-distribution'] as const;
/** Fields copied as they are written when the baseline has them. */
const COPIED_FIELDS = ['ipFamilyPolicy', 'ipFamilies'] as const;
const COPIED_AFTER_PORTS = ['publishNotReadyAddresses', 'internalTrafficPolicy', 'trafficDistribution'] as const;

export function forkServiceName(serviceName: string, sandbox: string): string {
  return `${serviceName}-${sandbox}`;
}

export interface ForkServiceResult {
  /** Undefined when there are problems. */
  readonly service?: KubeObject;
  /** Why the baseline cannot be copied as a valid Service. */
  readonly problems: string[];
  /** What the fork does differently from its baseline. */
  readonly notes: string[];
}

/** Whether a Service is headless (`clusterIP: None`, or `clusterIPs` starting with `None`). */
export function isHeadless(service: KubeObject): boolean {
  const spec = specOf(service);
  const clusterIPs = ownValue(spec, 'clusterIPs');
  return ownValue(spec, 'clusterIP') === 'None' || (Array.isArray(clusterIPs) && clusterIPs[0] === 'None');
}

export function forkService(baseline: KubeObject, sandbox: string, labelRewrites: Record<string, string>): ForkServiceResult {
  const spec = specOf(baseline);
  const name = forkServiceName(baseline.metadata.name, sandbox);
  const headless = isHeadless(baseline);
  const basePorts = ownValue(spec, 'ports');
  const ports = (Array.isArray(basePorts) ? (basePorts as ServicePort[]) : []).map((p) => {
    const port: ServicePort = { port: p.port };
    if (p.name !== undefined) port.name = p.name;
    if (p.protocol !== undefined) port.protocol = p.protocol;
    if (p.appProtocol !== undefined) port.appProtocol = p.appProtocol;
    if (p.targetPort !== undefined) port.targetPort = p.targetPort;
    return port;
  });
  if (ports.length === 0 && !headless) {
    return {
      problems: [
        `Service "${baseline.metadata.name}" selects the baseline pods but has no spec.ports and is not headless; Kubernetes requires ports on such a Service, so its fork "${name}" cannot be made (add its ports, or clusterIP: None)`,
      ],
      notes: [],
    };
  }
  const notes: string[] = [];
  if (headless) {
    notes.push(
      `Service "${baseline.metadata.name}" is headless: Istio's sidecars send its requests to the pod address the client resolved (unless istiod runs with PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES=true), so keyed requests from sidecars keep reaching the baseline pods; gateways route them to the fork Service "${name}"`,
    );
  }

  const selector: Record<string, string> = {};
  for (const [key, value] of Object.entries((ownValue(spec, 'selector') as Record<string, string> | undefined) ?? {})) {
    setOwn(selector, key, ownValue(labelRewrites, key) ?? value);
  }
  selector[SANDBOX_LABEL] = sandbox;

  const forkSpec: Record<string, unknown> = {};
  if (headless) forkSpec['clusterIP'] = 'None';
  copyFields(spec, forkSpec, COPIED_FIELDS);
  forkSpec['selector'] = selector;
  if (ports.length > 0) forkSpec['ports'] = ports;
  const affinity = ownValue(spec, 'sessionAffinity');
  if (affinity !== undefined) {
    forkSpec['sessionAffinity'] = affinity;
    if (affinity === 'ClientIP') copyFields(spec, forkSpec, ['sessionAffinityConfig']);
  }
  copyFields(spec, forkSpec, COPIED_AFTER_PORTS);
  const annotations: Record<string, unknown> = {};
  copyFields(baseline.metadata.annotations ?? {}, annotations, COPIED_ANNOTATIONS);
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name,
        namespace: namespaceOf(baseline),
        labels: forkServiceLabels(baseline, sandbox),
        ...(Object.keys(annotations).length > 0 ? { annotations: annotations as Record<string, string> } : {}),
      },
      spec: forkSpec,
    },
    problems: [],
    notes,
  };
}

/** Labels of the fork Service of `baseline`: the baseline Service's own, and meshfork's. */
export function forkServiceLabels(baseline: KubeObject, sandbox: string): Record<string, string> {
  return { ...(baseline.metadata.labels ?? {}), ...managedLabels(sandbox), [FORK_OF_SERVICE_LABEL]: baseline.metadata.name };
}

/**
 * Service ports whose target the baseline's pods offer and the fork's pods no longer do (after
 * customizations), one message each; `prefix` says what changed them (e.g. `after the patch `).
 *
 * Kubernetes semantics (EndpointSlice controller, `FindPort` in k8s.io/endpointslice utils.go):
 * - a named `targetPort` resolves to the container port of that name and the Service port's
 *   protocol (default TCP on both sides) in the pod's containers or its sidecar containers
 *   (init containers with `restartPolicy: Always`); a pod without one gets no endpoint for that
 *   Service port, so the fork Service would send that port nowhere;
 * - a numeric `targetPort` (or none: it defaults to `port`) is used as written; Kubernetes does
 *   not require a container to declare it (`containerPort` is informational). It is a problem
 *   only when the baseline's containers declare that port and protocol and the fork's no longer
 *   do: the customization then moved or dropped the port the Service sends traffic to.
 *
 * A target the baseline's pods do not offer either (a Service that selects several Deployments,
 * only some of which serve each port) is the baseline's own behaviour, copied, never a problem.
 */
export function lostTargetPorts(service: KubeObject, at: { baseline: KubeObject; fork: KubeObject; sandbox: string; prefix: string }): string[] {
  const { baseline, fork, sandbox, prefix } = at;
  const ports = ownValue(specOf(service), 'ports');
  if (!Array.isArray(ports)) return [];
  const offered = containerPorts(baseline);
  const kept = containerPorts(fork);
  const messages: string[] = [];
  for (const p of ports as ServicePort[]) {
    const protocol = p.protocol ?? 'TCP';
    const target = p.targetPort ?? p.port;
    const key = `${typeof target === 'string' ? 'name' : 'number'}:${String(target)}/${protocol}`;
    if (!offered.has(key) || kept.has(key)) continue;
    const servicePort = p.name === undefined ? `port ${p.port}` : `port "${p.name}" (${p.port})`;
    const forkService = forkServiceName(service.metadata.name, sandbox);
    messages.push(
      typeof target === 'string'
        ? `${prefix}no container of the fork Deployment "${fork.metadata.name}" has a port named "${target}" (${protocol}), which Service "${service.metadata.name}" ${servicePort} targets and the baseline's containers have; its fork Service "${forkService}" would not reach the fork on that port`
        : `${prefix}no container of the fork Deployment "${fork.metadata.name}" declares containerPort ${target} (${protocol}), which Service "${service.metadata.name}" ${servicePort} targets and the baseline's containers declare; its fork Service "${forkService}" would send that port where the fork no longer listens`,
    );
  }
  return messages;
}

/** `name:<name>/<protocol>` and `number:<containerPort>/<protocol>` of every port of the pod template's containers and sidecar containers. */
function containerPorts(deployment: KubeObject): Set<string> {
  const pod = record(record(record(deployment.spec)?.['template'])?.['spec']);
  const out = new Set<string>();
  const add = (containers: unknown, sidecarsOnly: boolean) => {
    if (!Array.isArray(containers)) return;
    for (const container of containers) {
      const c = record(container);
      if (c === undefined || (sidecarsOnly && c['restartPolicy'] !== 'Always')) continue;
      const ports = c['ports'];
      if (!Array.isArray(ports)) continue;
      for (const port of ports) {
        const p = record(port);
        if (p === undefined) continue;
        const protocol = typeof p['protocol'] === 'string' ? p['protocol'] : 'TCP';
        if (typeof p['name'] === 'string') out.add(`name:${p['name']}/${protocol}`);
        if (typeof p['containerPort'] === 'number') out.add(`number:${p['containerPort']}/${protocol}`);
      }
    }
  };
  add(pod?.['containers'], false);
  add(pod?.['initContainers'], true);
  return out;
}

function specOf(service: KubeObject): Record<string, unknown> {
  return record(service.spec) ?? {};
}

/** Copies each present field as own data (no value shared between fork Services of different Sandboxes). */
function copyFields(from: Record<string, unknown>, to: Record<string, unknown>, fields: readonly string[]): void {
  for (const field of fields) {
    const value = ownValue(from, field);
    if (value !== undefined) to[field] = cloneData(value);
  }
}

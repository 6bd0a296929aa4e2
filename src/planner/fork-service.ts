/**
 * Fork Service `<service>-<sandbox>`: one per baseline Service that selects the baseline pods,
 * with the same ports (names, protocol, appProtocol, targetPort) and a selector that only the
 * fork pods match. Without a route to it, no baseline traffic ever reaches a fork.
 */
import { SANDBOX_LABEL, managedLabels, ownValue, setOwn, type KubeObject } from './kube.js';
import { namespaceOf } from './inventory.js';

interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
  appProtocol?: string;
  targetPort?: number | string;
}

export function forkServiceName(serviceName: string, sandbox: string): string {
  return `${serviceName}-${sandbox}`;
}

export function forkService(baseline: KubeObject, sandbox: string, labelRewrites: Record<string, string>): KubeObject {
  const spec = (baseline.spec ?? {}) as { selector?: Record<string, string>; ports?: ServicePort[] };
  const selector: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.selector ?? {})) setOwn(selector, key, ownValue(labelRewrites, key) ?? value);
  selector[SANDBOX_LABEL] = sandbox;
  const ports = (spec.ports ?? []).map((p) => {
    const port: ServicePort = { port: p.port };
    if (p.name !== undefined) port.name = p.name;
    if (p.protocol !== undefined) port.protocol = p.protocol;
    if (p.appProtocol !== undefined) port.appProtocol = p.appProtocol;
    if (p.targetPort !== undefined) port.targetPort = p.targetPort;
    return port;
  });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: forkServiceName(baseline.metadata.name, sandbox),
      namespace: namespaceOf(baseline),
      labels: { ...(baseline.metadata.labels ?? {}), ...managedLabels(sandbox), 'meshfork.dev/fork-of-service': baseline.metadata.name },
    },
    spec: { selector, ports },
  };
}

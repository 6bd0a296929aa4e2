/**
 * DestinationRule for a fork host, copying the traffic policy of the baseline host's
 * DestinationRule (TLS mode, connection pool, outlier detection, load balancer, port-level
 * settings) so the fork behaves like its baseline. Subsets are not copied: the fork Service
 * selects only the fork pods, so the baseline's version subsets have no meaning for it.
 * mTLS is never turned off: a missing policy stays missing (Istio's auto mTLS applies).
 */
import { managedLabels, type KubeObject } from './kube.js';
import { namespaceOf, resolveHost } from './inventory.js';

/** The DestinationRule whose host is `fqdn`, preferring one in the Service's own namespace. */
export function baselineDestinationRule(rules: readonly KubeObject[], fqdn: string, serviceNamespace: string): KubeObject | undefined {
  const matching = rules
    .filter((r) => {
      const host = (r.spec as { host?: string } | undefined)?.host;
      return host !== undefined && resolveHost(host, namespaceOf(r)) === fqdn;
    })
    .sort((a, b) => Number(namespaceOf(b) === serviceNamespace) - Number(namespaceOf(a) === serviceNamespace) || a.metadata.name.localeCompare(b.metadata.name));
  return matching[0];
}

/** The fork host's DestinationRule, or undefined when the baseline has no traffic policy to copy. */
export function forkDestinationRule(args: {
  baselineRule: KubeObject | undefined;
  name: string;
  namespace: string;
  forkHost: string;
  sandbox: string;
}): KubeObject | undefined {
  const spec = args.baselineRule?.spec as { trafficPolicy?: unknown; exportTo?: string[] } | undefined;
  if (spec?.trafficPolicy === undefined) return undefined;
  const out: Record<string, unknown> = { host: args.forkHost, trafficPolicy: structuredClone(spec.trafficPolicy) };
  if (spec.exportTo !== undefined) out['exportTo'] = [...spec.exportTo];
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: args.name, namespace: args.namespace, labels: managedLabels(args.sandbox) },
    spec: out,
  };
}

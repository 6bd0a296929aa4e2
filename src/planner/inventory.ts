/**
 * The baseline the planner reads: Deployments, Services, VirtualServices and DestinationRules,
 * each with its namespace filled in. Hosts are compared as fully qualified names.
 */
import type { KubeObject } from './kube.js';

export const CLUSTER_DOMAIN = 'cluster.local';

export interface Inventory {
  readonly deployments: readonly KubeObject[];
  readonly services: readonly KubeObject[];
  readonly virtualServices: readonly KubeObject[];
  readonly destinationRules: readonly KubeObject[];
}

/** Sorts a mixed list of objects into an Inventory; other kinds are ignored. */
export function inventoryOf(objects: readonly KubeObject[]): Inventory {
  const of = (kind: string, group: string) =>
    objects.filter((o) => o.kind === kind && (o.apiVersion.split('/')[0] === group || (group === '' && !o.apiVersion.includes('/'))));
  return {
    deployments: of('Deployment', 'apps'),
    services: of('Service', ''),
    virtualServices: of('VirtualService', 'networking.istio.io'),
    destinationRules: of('DestinationRule', 'networking.istio.io'),
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
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/** `spec.selector` of a Service (a plain label map). */
export function serviceSelector(service: KubeObject): Record<string, string> | undefined {
  return (service.spec as { selector?: Record<string, string> } | undefined)?.selector;
}

/** Labels of a Deployment's pod template. */
export function podTemplateLabels(deployment: KubeObject): Record<string, string> {
  const spec = deployment.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined;
  return spec?.template?.metadata?.labels ?? {};
}

export function deploymentSelector(deployment: KubeObject): { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } {
  return (deployment.spec as { selector?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] } } | undefined)?.selector ?? {};
}

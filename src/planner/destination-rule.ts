/**
 * DestinationRule for a fork host, copying the baseline host's DestinationRule so the fork
 * behaves like its baseline: the traffic policy (TLS mode, connection pool, outlier detection,
 * load balancer, port-level settings), `exportTo`, and the subsets that select forked pods.
 * mTLS is never turned off: a missing policy stays missing (Istio's auto mTLS applies).
 *
 * Subsets. A subset selects, among the endpoints of its host (the pods the Service selects), the
 * pods whose labels include the subset's `labels` (istio.io, DestinationRule reference: "Subset"
 * - "Labels apply a filter over the endpoints of a service in the service registry"). The fork
 * host's endpoints are the sandbox's fork pods only, whose labels are the baseline pod labels
 * with the fork's label rewrites applied (src/planner/forked-deployment.ts). So a baseline subset
 * is *forked* when a workload this sandbox forks behind the host had baseline pod labels
 * including the subset's labels; the fork DestinationRule then has a subset of the same name
 * (and the same traffic policy) whose labels are the subset's labels rewritten as on those fork
 * pods. Example: Bookinfo's `reviews` subsets v1/v2/v3 (`version: vN`), a sandbox `sb` forking
 * reviews-v2 and reviews-v3 (fork pods `version: v2-sb` / `v3-sb`): the fork DestinationRule for
 * `reviews-sb` has subsets v2 (`version: v2-sb`) and v3 (`version: v3-sb`), and no v1: a route
 * to subset v1 reaches no fork, so its sandbox copy stays on `reviews` subset v1
 * (src/planner/virtual-service.ts). A label key that the forks of one subset carry with
 * different values is left out of that subset's labels: the subset then selects all of those
 * forks (still only forks of this sandbox behind this host).
 */
import { cloneData, managedLabels, ownValue, setOwn, type KubeObject } from './kube.js';
import { namespaceOf, resolveHost } from './inventory.js';

/** DestinationRules by the host they apply to (resolved as Istio does), each list in input order. */
export function destinationRulesByHost(rules: readonly KubeObject[]): Map<string, KubeObject[]> {
  const byHost = new Map<string, KubeObject[]>();
  for (const rule of rules) {
    const host = (rule.spec as { host?: string } | undefined)?.host;
    if (host === undefined) continue;
    const fqdn = resolveHost(host, namespaceOf(rule));
    const list = byHost.get(fqdn);
    if (list === undefined) byHost.set(fqdn, [rule]);
    else list.push(rule);
  }
  return byHost;
}

/** The DestinationRule whose host is `fqdn`, preferring one in the Service's own namespace. */
export function baselineDestinationRule(rulesByHost: ReadonlyMap<string, readonly KubeObject[]>, fqdn: string, serviceNamespace: string): KubeObject | undefined {
  const matching = [...(rulesByHost.get(fqdn) ?? [])]
    .sort((a, b) => Number(namespaceOf(b) === serviceNamespace) - Number(namespaceOf(a) === serviceNamespace) || a.metadata.name.localeCompare(b.metadata.name));
  return matching[0];
}

/** A workload forked behind the host: its baseline pod labels and the fork's label rewrites. */
export interface ForkedPods {
  readonly baselineLabels: Readonly<Record<string, string>>;
  readonly labelRewrites: Readonly<Record<string, string>>;
}

interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: unknown;
  [field: string]: unknown;
}

function includesLabels(labels: Readonly<Record<string, string>>, required: Readonly<Record<string, string>>): boolean {
  return Object.entries(required).every(([k, v]) => ownValue(labels, k) === v);
}

/** The subset's labels as the fork pods of `forks` carry them; undefined when no fork is in it. */
function forkSubsetLabels(labels: Readonly<Record<string, string>>, forks: readonly ForkedPods[]): Record<string, string> | undefined {
  const inSubset = forks.filter((f) => includesLabels(f.baselineLabels, labels));
  if (inSubset.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    const values = new Set(inSubset.map((f) => ownValue(f.labelRewrites, key) ?? value));
    const [only] = values;
    if (values.size === 1 && only !== undefined) setOwn(out, key, only);
  }
  return out;
}

/**
 * The fork host's DestinationRule (undefined when the baseline has neither a traffic policy nor
 * a subset selecting a fork) and the names of the baseline subsets it defines for the forks.
 */
export function forkDestinationRule(args: {
  baselineRule: KubeObject | undefined;
  name: string;
  namespace: string;
  forkHost: string;
  sandbox: string;
  /** The workloads this sandbox forks whose baseline pods the host's Service selects. */
  forks: readonly ForkedPods[];
}): { rule?: KubeObject; forkedSubsets: string[] } {
  const spec = args.baselineRule?.spec as { trafficPolicy?: unknown; exportTo?: string[]; subsets?: Subset[] } | undefined;
  const subsets: Subset[] = [];
  for (const subset of spec?.subsets ?? []) {
    const labels = forkSubsetLabels(subset.labels ?? {}, args.forks);
    if (labels === undefined) continue;
    const copy: Subset = { ...cloneData(subset), name: subset.name };
    if (Object.keys(labels).length > 0) copy.labels = labels;
    else delete copy.labels;
    subsets.push(copy);
  }
  const forkedSubsets = subsets.map((s) => s.name);
  if (spec?.trafficPolicy === undefined && subsets.length === 0) return { forkedSubsets };
  const out: Record<string, unknown> = { host: args.forkHost };
  if (spec?.trafficPolicy !== undefined) out['trafficPolicy'] = cloneData(spec.trafficPolicy);
  if (subsets.length > 0) out['subsets'] = subsets;
  if (spec?.exportTo !== undefined) out['exportTo'] = [...spec.exportTo];
  return {
    rule: {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: args.name, namespace: args.namespace, labels: managedLabels(args.sandbox) },
      spec: out,
    },
    forkedSubsets,
  };
}

/**
 * How the integration suites judge `istioctl analyze` findings on meshfork's output: what is
 * new compared with the inventory alone, what cannot be decided without running pods, and the
 * warnings that are expected.
 */
import type { AnalyzeMessage } from '../support/istioctl.js';

/**
 * Findings that cannot be decided without running Pods, and why. Each entry is as narrow as the
 * reason: a code plus the resource kind and message it applies to.
 *
 * In file mode (`--use-kube=false`) the analyzers that need Pods never run: analyze skips every
 * analyzer one of whose input collections is not in the snapshot, and at the pinned version the
 * file source holds no core kinds (`istioctl analyze -v` lists them under "Skipped analyzers").
 * Against the test API server they do run, but nothing creates Pods there (no kubelet, no
 * ReplicaSet controller), and these analyzers look at gvk.Pod and nothing else (istio.io/istio
 * at the pinned version):
 *  - IST0173 DestinationRuleSubsetNotSelectPods (Error), analyzers/destinationrule/subset.go
 *    (PodNotSelectedAnalyzer): "The Subset %s defined in the DestinationRule does not select any
 *    pods" for every subset of every DestinationRule, since no Pod exists to match.
 *  - IST0101 ReferencedResourceNotFound "selector" on a Gateway (Error),
 *    analyzers/gateway/gateway.go (IngressGatewayPortAnalyzer): no Pod matches the Gateway's
 *    workload selector (the ingress gateway pods, e.g. istio=ingressgateway). IST0101 for any
 *    other reference (a VirtualService host, a DestinationRule subset, a gateway name) stays an
 *    error: those are decided from the configuration.
 */
export const NEEDS_PODS: ReadonlyArray<{ code: string; origin: RegExp; message: RegExp }> = [
  { code: 'IST0173', origin: /^DestinationRule /, message: /does not select any pods/ },
  { code: 'IST0101', origin: /^Gateway /, message: /^Referenced selector not found/ },
];

export function needsPods(m: AnalyzeMessage): boolean {
  return NEEDS_PODS.some((a) => a.code === m.code && a.origin.test(m.origin ?? '') && a.message.test(m.message));
}

/** Error-level findings, without the ones only running Pods could decide. */
export const errors = (ms: readonly AnalyzeMessage[]) => ms.filter((m) => m.level === 'Error' && !needsPods(m));

/**
 * The warning every EnvoyFilter gets, whatever it holds: ValidateEnvoyFilter (istio.io/istio
 * pkg/config/validation/envoyfilter/envoyfilter.go) starts with `AppendWarningf("EnvoyFilter
 * exposes internal implementation details that may change at any time. ...")` before looking at
 * the object. `istioctl validate` prints it as a warning of the file; `istioctl analyze` reports
 * it as IST0133 (Warning, "Schema validation warning: ...").
 */
export const ENVOYFILTER_NOTICE = 'EnvoyFilter exposes internal implementation details that may change at any time.';

/**
 * IST0127 "No matching workloads for this resource with the following labels: ..." on a copy of a
 * label-selected policy (src/planner/policy-copy.ts), whose selector is a fork's (it names
 * `meshfork.dev/sandbox=`): the analyzer looks for running Pods, and a cluster without kubelets
 * runs none, for the fork as for the baseline (whose policy gets the same finding in the
 * inventory alone).
 */
function forkPolicyWithoutPods(m: AnalyzeMessage): boolean {
  return m.code === 'IST0127' && m.message.startsWith('No matching workloads for this resource with the following labels: ') && /(^|[ ,:])meshfork\.dev\/sandbox=/.test(m.message);
}

/** Whether a non-error finding meshfork's output adds is one of the expected ones above. */
export function expectedWarning(_caseName: string, m: AnalyzeMessage): boolean {
  return (m.code === 'IST0133' && (m.origin?.startsWith('EnvoyFilter ') ?? false) && m.message.includes(ENVOYFILTER_NOTICE)) || forkPolicyWithoutPods(m);
}

/** Identity of a finding across runs: code, resource and text (not the file line). */
export const findingKey = (m: AnalyzeMessage) => `${m.code}|${m.origin ?? ''}|${m.message}`;

/** Findings of `after` that `before` (the inventory alone) does not have. */
export function newFindings(before: readonly AnalyzeMessage[], after: readonly AnalyzeMessage[]): AnalyzeMessage[] {
  const old = new Set(before.map(findingKey));
  return after.filter((m) => !old.has(findingKey(m)));
}

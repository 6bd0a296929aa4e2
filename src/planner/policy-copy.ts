/**
 * Label-selected policy follows the fork (docs/adr/0010-policy-copies-follow-forks.md). The
 * planner rewrites the fork pods' selector labels so that no baseline Service or Deployment
 * selects them; a policy that selects the baseline pods by those labels would then miss the fork.
 * For each fork, every policy (inventory.ts POLICY_KINDS) of the fork's namespace that selects the
 * baseline pods and not the fork pods gets a copy whose selector is the fork Deployment's own
 * selector (exactly the fork's pods): same spec otherwise, DENY and ALLOW alike, named
 * `<policy>-<fork>`, with meshfork's labels. A policy that already selects both (no selector: the
 * whole namespace; a label the planner keeps) needs no copy.
 *
 * NetworkPolicy also names pods as peers (`ingress[].from[]`, `egress[].to[]`): a peer whose
 * `podSelector` selects the baseline pods gets a sibling peer selecting the fork pods (same
 * `namespaceSelector`, same ports), so the fork may reach where its baseline may and is reachable
 * from where its baseline is. A policy with such peers gets a copy `<policy>-<sandbox>-peers`
 * (same `podSelector`) holding them, and each `<policy>-<fork>` copy holds them too.
 *
 * What cannot be kept is said, never guessed:
 * - a policy that selects the fork pods but not the baseline pods (a `NotIn`/`DoesNotExist` on a
 *   label the planner rewrites) is a problem: meshfork cannot take the fork out of it;
 * - an Istio policy of the root namespace (`istio-system`) whose selector picks the baseline
 *   pods in every namespace, and a NetworkPolicy of another namespace whose peers select them,
 *   get a note (meshfork writes no copy outside the fork's namespace);
 * - an Istio policy whose `targetRef(s)` names a baseline Service applies through that
 *   Service's waypoint: a note (the fork Service gets no copy);
 * - other objects with a label selector (PodDisruptionBudget, PodMonitor, ServiceMonitor,
 *   EnvoyFilter and DestinationRule `workloadSelector`, unknown kinds) that treat the fork
 *   otherwise than its baseline get a note naming each.
 */
import { fieldPath } from '../api/problem.js';
import { asRecord as asObject, managedLabels, objectRef as ref, ownValue, type KubeObject } from './kube.js';
import { namespaceOf, policyKindOf, SELECTOR_FIELDS, type PolicyKind } from './inventory.js';
import { labelSelectorVerdict, serviceSelectorSelects, type LabelSelector, type SelectorVerdict } from './label-selector.js';

/** Istio's default config root namespace: its selector policies apply in every namespace. */
export const ISTIO_ROOT_NAMESPACE = 'istio-system';
/** Annotation on a copy naming the object it was copied from (`<Kind>/<name>`). */
export const COPY_OF_ANNOTATION = 'meshfork.dev/copy-of';
/** Names of Kubernetes objects of these kinds are DNS subdomains. */
const MAX_NAME = 253;

/** One fork as the policy copies see it. */
export interface ForkedWorkload {
  readonly namespace: string;
  /** Baseline and fork Deployment names. */
  readonly baseline: string;
  readonly fork: string;
  readonly baselineLabels: Readonly<Record<string, string>>;
  readonly podLabels: Readonly<Record<string, string>>;
  /** The fork Deployment's `spec.selector.matchLabels`: exactly the fork's pods. */
  readonly selector: Readonly<Record<string, string>>;
  /** Baseline Services selecting the baseline pods, and the labels of their fork Services. */
  readonly services: ReadonlyArray<{ readonly baseline: KubeObject; readonly forkLabels: Readonly<Record<string, string>> }>;
  /** Sandbox field problems and notes about this fork name. */
  readonly path: string;
}

export interface PolicyCopies {
  readonly copies: ReadonlyArray<{ readonly object: KubeObject; readonly path: string }>;
  readonly problems: ReadonlyArray<{ readonly path: string; readonly message: string }>;
  readonly notes: ReadonlyArray<{ readonly path: string; readonly message: string }>;
}

type Obj = Record<string, unknown>;

/** An Istio WorkloadSelector-like label map: absent or empty selects every workload of the namespace. */
function workloadMapVerdict(map: unknown, labels: Readonly<Record<string, string>>): SelectorVerdict {
  if (map === undefined || map === null) return { selects: true };
  const record = asObject(map);
  if (record === undefined) return { unknown: 'the label map is not a map' };
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== 'string') return { unknown: `label ${JSON.stringify(key)} is not a string` };
    if (ownValue(labels, key) !== value) return { selects: false };
  }
  return { selects: true };
}

/** Where a policy selects workloads, and the spec with that selector replaced. */
function policySelector(kind: PolicyKind, spec: Obj): { field: string; verdict: (labels: Readonly<Record<string, string>>) => SelectorVerdict; replaced: (selector: Readonly<Record<string, string>>) => Obj } {
  switch (kind.selector) {
    case 'podSelector':
      // NetworkPolicySpec.podSelector is a required, non-pointer LabelSelector: absent reads as
      // empty, which selects every pod of the namespace.
      return {
        field: 'spec.podSelector',
        verdict: (labels) => labelSelectorVerdict((spec['podSelector'] ?? {}) as LabelSelector, labels),
        replaced: (selector) => ({ ...spec, podSelector: { matchLabels: { ...selector } } }),
      };
    case 'sidecar':
      return {
        field: 'spec.workloadSelector.labels',
        verdict: (labels) => workloadMapVerdict(asObject(spec['workloadSelector'])?.['labels'], labels),
        replaced: (selector) => ({ ...spec, workloadSelector: { labels: { ...selector } } }),
      };
    case 'workload':
      return {
        field: 'spec.selector.matchLabels',
        verdict: (labels) => workloadMapVerdict(asObject(spec['selector'])?.['matchLabels'], labels),
        replaced: (selector) => ({ ...spec, selector: { matchLabels: { ...selector } } }),
      };
  }
}

/** `targetRef` and `targetRefs` of an Istio policy (they exclude `selector`). */
function targetRefs(spec: Obj): Obj[] {
  const single = asObject(spec['targetRef']);
  const list = Array.isArray(spec['targetRefs']) ? spec['targetRefs'].map(asObject).filter((r): r is Obj => r !== undefined) : [];
  return single === undefined ? list : [single, ...list];
}

/** A copy of `policy` with `spec`, named `name`, labelled as meshfork's for `sandbox`. */
function copyOf(policy: KubeObject, name: string, sandbox: string, spec: Obj): KubeObject {
  return {
    apiVersion: policy.apiVersion,
    kind: policy.kind,
    metadata: {
      name,
      namespace: namespaceOf(policy),
      labels: managedLabels(sandbox),
      annotations: { [COPY_OF_ANNOTATION]: `${policy.kind}/${policy.metadata.name}` },
    },
    spec: structuredClone(spec),
  };
}

/** What one selector makes of a baseline's labels and of its fork's: both verdicts, or why it cannot be read. */
function compareSelection(
  verdict: (labels: Readonly<Record<string, string>>) => SelectorVerdict,
  baselineLabels: Readonly<Record<string, string>>,
  forkLabels: Readonly<Record<string, string>>,
): { baseline: boolean; fork: boolean } | { unknown: string } {
  const baseline = verdict(baselineLabels);
  const fork = verdict(forkLabels);
  if ('unknown' in baseline) return baseline;
  if ('unknown' in fork) return fork;
  return { baseline: baseline.selects, fork: fork.selects };
}

const RULE_PEERS = [
  ['ingress', 'from'],
  ['egress', 'to'],
] as const;

/**
 * `spec` with a fork peer added after each peer whose `podSelector` selects the baseline pods of
 * one of `forks` and not the fork pods; undefined when no peer does. Peers that select a fork's
 * pods but not its baseline's, or cannot be read, are reported through `problem`.
 */
function withForkPeers(spec: Obj, forks: readonly ForkedWorkload[], problem: (fork: ForkedWorkload, path: string, message: string) => void): Obj | undefined {
  let added = false;
  const out: Obj = { ...spec };
  for (const [direction, peersField] of RULE_PEERS) {
    const rules = spec[direction];
    if (!Array.isArray(rules)) continue;
    out[direction] = rules.map((rule: unknown, r) => {
      const ruleObject = asObject(rule);
      const peers = ruleObject?.[peersField];
      if (ruleObject === undefined || !Array.isArray(peers)) return rule;
      const nextPeers: unknown[] = [];
      peers.forEach((peer: unknown, p) => {
        nextPeers.push(peer);
        const podSelector = asObject(peer)?.['podSelector'];
        if (podSelector === undefined) return;
        for (const fork of forks) {
          const at = `spec.${direction}[${r}].${peersField}[${p}].podSelector`;
          const selection = compareSelection((labels) => labelSelectorVerdict(podSelector as LabelSelector, labels), fork.baselineLabels, fork.podLabels);
          if ('unknown' in selection) {
            problem(fork, at, `cannot tell whether it selects the pods of Deployment ${fork.namespace}/${fork.baseline}: ${selection.unknown}`);
            continue;
          }
          const { baseline: selectsBaseline, fork: selectsFork } = selection;
          if (selectsFork && !selectsBaseline) {
            problem(fork, at, `selects the pods of fork ${fork.fork} but not those of its baseline Deployment ${fork.baseline}: the fork would reach or be reached where its baseline is not`);
          }
          if (!selectsBaseline || selectsFork) continue;
          const namespaceSelector = asObject(peer)?.['namespaceSelector'];
          nextPeers.push({ ...(namespaceSelector !== undefined ? { namespaceSelector: structuredClone(namespaceSelector) } : {}), podSelector: { matchLabels: { ...fork.selector } } });
          added = true;
        }
      });
      return { ...ruleObject, [peersField]: nextPeers };
    });
  }
  return added ? out : undefined;
}

/** Whether a NetworkPolicy has a peer with a `namespaceSelector` (it may select pods of other namespaces). */
function peersOfOtherNamespaces(spec: Obj): boolean {
  return RULE_PEERS.some(([direction, peersField]) =>
    (Array.isArray(spec[direction]) ? (spec[direction] as unknown[]) : []).some((rule) => {
      const peers = asObject(rule)?.[peersField];
      return Array.isArray(peers) && peers.some((peer) => asObject(peer)?.['namespaceSelector'] !== undefined && asObject(peer)?.['podSelector'] !== undefined);
    }),
  );
}

/**
 * The copies of label-selected policies one Sandbox's forks need, the problems that keep a fork
 * from being treated as its baseline, and notes naming what meshfork leaves as it is. Pure;
 * `policies` and `others` are baseline objects (meshfork's own excluded), in any namespace.
 */
export function policyCopies(args: { sandbox: string; forks: readonly ForkedWorkload[]; policies: readonly KubeObject[]; others: readonly KubeObject[] }): PolicyCopies {
  const copies: Array<{ object: KubeObject; path: string }> = [];
  const problems: Array<{ path: string; message: string }> = [];
  const notes: Array<{ path: string; message: string }> = [];
  const problemAt = (fork: ForkedWorkload, policy: KubeObject, field: string, message: string) =>
    problems.push({ path: fork.path, message: `${ref(policy)} ${field} ${message}` });
  const named = (policy: KubeObject, suffix: string, fork: ForkedWorkload): string | undefined => {
    const name = `${policy.metadata.name}-${suffix}`;
    if (name.length <= MAX_NAME) return name;
    problems.push({ path: fork.path, message: `the copy of ${ref(policy)} for the fork would be named "${name}", longer than ${MAX_NAME} characters; shorten the policy or sandbox name` });
    return undefined;
  };

  for (const policy of args.policies) {
    const kind = policyKindOf(policy);
    const spec = asObject(policy['spec']) ?? {};
    if (kind === undefined) continue;
    const namespace = namespaceOf(policy);
    const targets = kind.kind === 'NetworkPolicy' ? [] : targetRefs(spec);
    if (targets.length > 0) {
      for (const fork of args.forks.filter((f) => f.namespace === namespace)) {
        for (const { baseline } of fork.services) {
          if (!targets.some((t) => t['kind'] === 'Service' && ['', 'core'].includes(String(t['group'] ?? '')) && t['name'] === baseline.metadata.name)) continue;
          notes.push({ path: fork.path, message: `${ref(policy)} targets Service ${baseline.metadata.name} (spec.targetRef/targetRefs), which applies through its waypoint; meshfork makes no copy for the fork Service, so the policy does not apply to requests the fork receives through it` });
        }
      }
      continue;
    }
    const selector = policySelector(kind, spec);
    const sameNamespace = args.forks.filter((f) => f.namespace === namespace);
    const root = kind.kind !== 'NetworkPolicy' && namespace === ISTIO_ROOT_NAMESPACE;
    for (const fork of args.forks.filter((f) => f.namespace === namespace || (root && f.namespace !== namespace))) {
      const selection = compareSelection(selector.verdict, fork.baselineLabels, fork.podLabels);
      if ('unknown' in selection) {
        problemAt(fork, policy, selector.field, `cannot be read: ${selection.unknown}`);
        continue;
      }
      const { baseline: selectsBaseline, fork: selectsFork } = selection;
      if (selectsFork && !selectsBaseline) {
        problemAt(fork, policy, selector.field, `selects the pods of fork ${fork.fork} but not those of its baseline Deployment ${fork.baseline} (the fork's labels differ in the selected keys), so the fork would not be treated as its baseline; make the selector name labels the fork keeps`);
        continue;
      }
      if (!selectsBaseline || selectsFork) continue;
      if (root) {
        notes.push({ path: fork.path, message: `${ref(policy)} (Istio's root namespace) selects the pods of Deployment ${fork.namespace}/${fork.baseline} in every namespace but not those of its fork ${fork.fork}; meshfork writes no copy in ${ISTIO_ROOT_NAMESPACE}, so it does not apply to the fork` });
        continue;
      }
      const name = named(policy, fork.fork, fork);
      if (name === undefined) continue;
      // Peer problems are reported once, for the `-peers` copy below.
      const replaced = selector.replaced(fork.selector);
      const copySpec = kind.kind === 'NetworkPolicy' ? (withForkPeers(replaced, sameNamespace, () => undefined) ?? replaced) : replaced;
      copies.push({ object: copyOf(policy, name, args.sandbox, copySpec), path: fork.path });
    }
    if (kind.kind !== 'NetworkPolicy') continue;
    // Peers: the fork may reach, and be reached from, where its baseline may.
    if (sameNamespace.length > 0) {
      const peered = withForkPeers(spec, sameNamespace, (fork, at, message) => problemAt(fork, policy, at, message));
      if (peered !== undefined) {
        const first = sameNamespace[0]!;
        const name = named(policy, `${args.sandbox}-peers`, first);
        if (name !== undefined) copies.push({ object: copyOf(policy, name, args.sandbox, peered), path: first.path });
      }
    }
    if (peersOfOtherNamespaces(spec)) {
      for (const fork of args.forks.filter((f) => f.namespace !== namespace)) {
        if (withForkPeers(spec, [fork], () => undefined) === undefined) continue;
        notes.push({ path: fork.path, message: `${ref(policy)} names the pods of Deployment ${fork.namespace}/${fork.baseline} as peers from namespace ${namespace}; meshfork writes no copy there, so its fork ${fork.fork} is not allowed the same traffic` });
      }
    }
  }

  for (const object of args.others) notes.push(...otherSelectorNotes(object, args.forks));
  return { copies, problems, notes };
}

/** How an object of another kind selects, as a LabelSelector or a plain label map, and at which field. */
function otherSelectors(object: KubeObject): Array<{ field: string; verdict: (labels: Readonly<Record<string, string>>) => SelectorVerdict }> {
  const spec = asObject(object['spec']) ?? {};
  const out: Array<{ field: string; verdict: (labels: Readonly<Record<string, string>>) => SelectorVerdict }> = [];
  for (const field of SELECTOR_FIELDS) {
    const value = asObject(ownValue(spec, field));
    if (value === undefined) continue;
    for (const mapField of ['labels', 'matchLabels'] as const) {
      // Istio's workloadSelector: `labels` (EnvoyFilter, Sidecar) or `matchLabels` (DestinationRule).
      if (field === 'workloadSelector' && Object.hasOwn(value, mapField)) out.push({ field: fieldPath(['spec', field, mapField]), verdict: (labels) => workloadMapVerdict(value[mapField], labels) });
    }
    if (field === 'workloadSelector') continue;
    if (Object.hasOwn(value, 'matchLabels') || Object.hasOwn(value, 'matchExpressions') || Object.keys(value).length === 0) {
      out.push({ field: fieldPath(['spec', field]), verdict: (labels) => labelSelectorVerdict(value as LabelSelector, labels) });
    } else {
      // A plain label map (a Service-like selector).
      out.push({ field: fieldPath(['spec', field]), verdict: (labels) => ({ selects: serviceSelectorSelects(value, labels) }) });
    }
  }
  return out;
}

/**
 * Notes for one object meshfork does not copy: where it selects a baseline's pods and not its
 * fork's (or the reverse), or cannot be read. A ServiceMonitor selects Services: it is compared on
 * the baseline Services and their fork Services (which carry the baseline Service's labels).
 */
function otherSelectorNotes(object: KubeObject, forks: readonly ForkedWorkload[]): Array<{ path: string; message: string }> {
  const notes: Array<{ path: string; message: string }> = [];
  const selectsServices = object.kind === 'ServiceMonitor';
  for (const fork of forks.filter((f) => f.namespace === namespaceOf(object))) {
    const pairs = selectsServices
      ? fork.services.map((s) => ({ what: `Service ${s.baseline.metadata.name}`, baseline: s.baseline.metadata.labels ?? {}, forked: s.forkLabels }))
      : [{ what: `the pods of Deployment ${fork.baseline}`, baseline: fork.baselineLabels, forked: fork.podLabels }];
    for (const { field, verdict } of otherSelectors(object)) {
      for (const pair of pairs) {
        const selection = compareSelection(verdict, pair.baseline, pair.forked);
        if ('unknown' in selection) {
          notes.push({ path: fork.path, message: `cannot tell whether ${ref(object)} (${field}) selects ${pair.what} or its fork: ${selection.unknown}` });
          continue;
        }
        const { baseline: selectsBaseline, fork: selectsFork } = selection;
        if (selectsBaseline === selectsFork) continue;
        notes.push({
          path: fork.path,
          message: selectsBaseline
            ? `${ref(object)} selects ${pair.what} (${field}) but not its fork ${selectsServices ? 'Service' : fork.fork}; meshfork does not copy ${object.kind} objects, so it does not apply to the fork`
            : `${ref(object)} selects the fork ${selectsServices ? 'Service' : fork.fork} (${field}) but not ${pair.what}; meshfork does not change ${object.kind} objects, so it applies to the fork only`,
        });
      }
    }
  }
  return notes;
}

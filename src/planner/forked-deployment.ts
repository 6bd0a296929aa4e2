/**
 * Forked Deployment `<baseline>-<sandbox>`: a deep copy of the baseline with the sandbox's
 * customizations, whose pods no baseline Service or Deployment selects.
 *
 * Isolation: for the baseline Deployment's selector and for every Service selecting the baseline
 * pods, the selector's label values are rewritten to `<value>-<sandbox>` on the fork (labels that
 * name the app for telemetry are rewritten only when a selector has nothing else), and the fork
 * adds `meshfork.dev/sandbox=<sandbox>`.
 *
 * Telemetry: the fork's pods always carry `service.istio.io/canonical-name` = the baseline's
 * canonical name (so Istio telemetry groups the fork with its service even where `app` was
 * rewritten, or where the name would otherwise fall back to the fork's own Deployment name) and
 * `service.istio.io/canonical-revision` = `<baseline revision>-<sandbox>` (canonical-service.ts).
 * Both are the planner's own: a patch may change them only with policy.allow.podMetadata
 * (fork-policy.ts compares them with the planned fork like every other pod label).
 *
 * Containers: an `images`/`env`/`command`/`args` customization without `container` applies to
 * the pod's default container as kubectl picks it (k8s.io/kubectl pkg/cmd/util/podcmd
 * `FindOrDefaultContainerByName`, KEP-2227; https://kubernetes.io/docs/reference/labels-annotations-taints/#kubectl-kubernetes-io-default-container):
 * the container the pod template's `kubectl.kubernetes.io/default-container` annotation names,
 * else the first container. When the pod has more than one container a note names the one
 * chosen; an annotation naming no container of the pod is a problem (kubectl refuses it too).
 */
import type { ForkT } from '../api/schema.js';
import { fieldPath, type Problem } from '../api/problem.js';
import { FORK_OF_LABEL, SANDBOX_LABEL, cloneData, managedLabels, ownValue, setOwn, type KubeObject } from './kube.js';
import { deploymentSelector, namespaceOf, podTemplateLabels, serviceSelector } from './inventory.js';
import { applyCustomPatch, PatchError, prototypeKeyErrors, prototypeKeyPaths } from './patch.js';
import { forkPolicyViolations, type ForkPolicy } from './fork-policy.js';
import { labelSelectorVerdict, serviceSelectorSelects, type LabelSelector, type SelectorCandidates } from './label-selector.js';
import { CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL, canonicalName, canonicalRevision } from './canonical-service.js';

export const ROUTING_KEY_ANNOTATION = 'meshfork.dev/routing-key';
/** Pod-template annotation naming the container kubectl (and customizations without `container`) default to. */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';
/** Labels that name the application; kept unless a selector holds nothing else. */
const APP_NAME_LABELS = ['app', 'app.kubernetes.io/name', CANONICAL_NAME_LABEL];
const MAX_LABEL_VALUE = 63;
const MAX_DNS_LABEL = 63;

export interface ForkContext {
  readonly sandbox: string;
  readonly sandboxNamespace: string;
  readonly routingKey: string;
  readonly fork: ForkT;
  /** Field path of the fork in the Sandbox, e.g. `spec.forks[0]`. */
  readonly forkPath: string;
  readonly baseline: KubeObject;
  /**
   * Services and Deployments in the baseline's namespace, by the labels their selectors require
   * (a LabelIndex): each fork evaluates only the selectors that may select its pods.
   */
  readonly services: SelectorCandidates<KubeObject>;
  readonly deployments: SelectorCandidates<KubeObject>;
  /** What the customizations may change beyond the baseline. */
  readonly policy: ForkPolicy;
}

export interface ForkedDeployment {
  readonly deployment: KubeObject;
  /** Labels of the fork's pods (what fork Services and EnvoyFilters select). */
  readonly podLabels: Record<string, string>;
  /** Baseline selector label -> fork value. */
  readonly labelRewrites: Record<string, string>;
  /** Services selecting the baseline pods, in name order. */
  readonly baselineServices: readonly KubeObject[];
}

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  [field: string]: unknown;
}

export function forkName(baselineName: string, sandbox: string): string {
  return `${baselineName}-${sandbox}`;
}

function selectorKeysToRewrite(selector: Record<string, string>): string[] {
  const keys = Object.keys(selector);
  const others = keys.filter((k) => !APP_NAME_LABELS.includes(k));
  return others.length > 0 ? others : keys;
}

export function forkDeployment(ctx: ForkContext): { result?: ForkedDeployment; problems: Problem[]; notes: Problem[] } {
  const problems: Problem[] = [];
  const notes: Problem[] = [];
  const at = (...segments: Array<string | number>) => (segments.length ? `${ctx.forkPath}.${fieldPath(segments)}` : ctx.forkPath);
  const baselineName = ctx.baseline.metadata.name;
  const name = forkName(baselineName, ctx.sandbox);
  if (name.length > MAX_DNS_LABEL) {
    problems.push({ path: at('forkOf', 'name'), message: `fork name "${name}" is longer than ${MAX_DNS_LABEL} characters; shorten the sandbox name` });
  }

  const baselineLabels = podTemplateLabels(ctx.baseline);
  const selector = deploymentSelector(ctx.baseline);
  const matchLabels = selector.matchLabels ?? {};
  const baselineServices = ctx.services
    .candidates(baselineLabels)
    .filter((s) => serviceSelectorSelects(serviceSelector(s), baselineLabels))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

  const rewriteKeys = new Set(selectorKeysToRewrite(matchLabels));
  for (const service of baselineServices) for (const key of selectorKeysToRewrite(serviceSelector(service) ?? {})) rewriteKeys.add(key);
  if (selector.matchExpressions?.length) {
    problems.push({ path: at('forkOf', 'name'), message: `Deployment "${baselineName}" selects pods with matchExpressions, which meshfork cannot rewrite for isolation` });
  }

  const labelRewrites: Record<string, string> = {};
  for (const key of [...rewriteKeys].sort()) {
    const value = `${ownValue(baselineLabels, key) ?? ownValue(matchLabels, key) ?? ''}-${ctx.sandbox}`;
    if (value.length > MAX_LABEL_VALUE) {
      problems.push({ path: at('forkOf', 'name'), message: `label ${key}=${value} of the fork pods is longer than ${MAX_LABEL_VALUE} characters; shorten the sandbox name` });
    }
    setOwn(labelRewrites, key, value);
  }
  const podLabels: Record<string, string> = { ...baselineLabels, ...labelRewrites, [SANDBOX_LABEL]: ctx.sandbox };
  // Telemetry keeps grouping the fork with its baseline and tells it apart by revision. A
  // selector made of the canonical name alone had it rewritten for isolation, which comes first.
  if (ownValue(labelRewrites, CANONICAL_NAME_LABEL) === undefined) setOwn(podLabels, CANONICAL_NAME_LABEL, canonicalName(baselineLabels, baselineName));
  setOwn(podLabels, CANONICAL_REVISION_LABEL, `${canonicalRevision(baselineLabels)}-${ctx.sandbox}`);
  for (const key of [CANONICAL_NAME_LABEL, CANONICAL_REVISION_LABEL]) {
    const value = podLabels[key]!;
    if (value.length > MAX_LABEL_VALUE) {
      problems.push({ path: at('forkOf', 'name'), message: `label ${key}=${value} of the fork pods is longer than ${MAX_LABEL_VALUE} characters; shorten the sandbox name or set a shorter ${key} on the baseline pods` });
    }
  }

  const deployment = cloneData(ctx.baseline) as KubeObject & { spec: Record<string, unknown> };
  delete deployment.status;
  deployment.metadata = {
    name,
    namespace: namespaceOf(ctx.baseline),
    labels: {
      ...rewriteLabels(ctx.baseline.metadata.labels ?? {}, labelRewrites),
      ...managedLabels(ctx.sandbox),
      [FORK_OF_LABEL]: baselineName,
    },
    annotations: { [ROUTING_KEY_ANNOTATION]: ctx.routingKey },
  };
  const spec = deployment.spec;
  spec['replicas'] = ctx.fork.customizations?.replicas ?? 1;
  spec['selector'] = { matchLabels: { ...rewriteLabels(matchLabels, labelRewrites), [SANDBOX_LABEL]: ctx.sandbox } };
  const template = (spec['template'] ?? {}) as { metadata?: Record<string, unknown>; spec?: { containers?: Container[] } };
  const templateMeta = { ...(template.metadata ?? {}) };
  delete templateMeta['creationTimestamp'];
  templateMeta['labels'] = podLabels;
  templateMeta['annotations'] = { ...((templateMeta['annotations'] as Record<string, string> | undefined) ?? {}), [ROUTING_KEY_ANNOTATION]: ctx.routingKey };
  template.metadata = templateMeta;
  spec['template'] = template;

  const containers = template.spec?.containers ?? [];
  applyContainerCustomizations(ctx, { containers, annotations: (templateMeta['annotations'] ?? {}) as Record<string, string> }, at, problems, notes);
  for (const container of containers) {
    container.env = upsertEnv(container.env ?? [], [
      { name: 'MESHFORK_SANDBOX', valueFrom: { fieldRef: { fieldPath: `metadata.labels['${SANDBOX_LABEL}']` } } },
      { name: 'MESHFORK_ROUTING_KEY', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${ROUTING_KEY_ANNOTATION}']` } } },
    ]);
  }

  let result: KubeObject = deployment;
  const patch = ctx.fork.customizations?.patch;
  if (patch !== undefined) {
    const patchProblem = (e: PatchError): Problem => {
      const base = at('customizations', 'patch', 'value');
      return { path: e.path ? `${base}${e.path.startsWith('[') ? '' : '.'}${e.path}` : base, message: e.message };
    };
    const refused = prototypeKeyErrors(patch.type, patch.value);
    if (refused.length > 0) return { problems: [...problems, ...refused.map(patchProblem)], notes };
    try {
      result = applyCustomPatch(deployment, patch.type, patch.value);
    } catch (e) {
      if (!(e instanceof PatchError)) throw e;
      return { problems: [...problems, patchProblem(e)], notes };
    }
    const policyPath = at('customizations', 'patch');
    for (const message of forkPolicyViolations({ policy: ctx.policy, baseline: ctx.baseline, planned: deployment, fork: result })) {
      problems.push({ path: policyPath, message });
    }
  }
  // Customizations other than the patch cannot change labels, but the check costs little and
  // also covers a baseline whose relabelled pods some other selector still reaches.
  const isolationPath = patch !== undefined ? at('customizations', 'patch', 'value') : at('forkOf', 'name');
  const prefix = patch !== undefined ? 'after the patch ' : '';
  const forkPodLabels = podTemplateLabels(result);
  const isolation = podsSelectedBy(result, ctx.services.candidates(forkPodLabels), ctx.deployments.candidates(forkPodLabels), prefix, (o) => `baseline ${o.kind} "${o.metadata.name}"`);
  if (!labelSelectorSelects(deploymentSpecSelector(result), podTemplateLabels(result))) isolation.unshift(`${prefix}the fork selector no longer matches its pod labels`);
  problems.push(...isolation.map((message) => ({ path: isolationPath, message })));
  if (problems.length > 0) return { problems, notes };
  return { result: { deployment: result, podLabels: podTemplateLabels(result), labelRewrites, baselineServices }, problems, notes };
}

/** A Deployment's `spec.selector` as written: absent selects nothing, empty selects everything. */
function deploymentSpecSelector(deployment: KubeObject): LabelSelector | undefined {
  return (deployment.spec as { selector?: LabelSelector } | undefined)?.selector;
}

function labelSelectorSelects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  const verdict = labelSelectorVerdict(selector, labels);
  return 'selects' in verdict && verdict.selects;
}

/**
 * Which of `services` / `deployments` select the pods of `fork` (Deployments by their full label
 * selector: matchLabels and matchExpressions), one message each. A selector that cannot be read
 * is reported, not guessed.
 */
export function podsSelectedBy(
  fork: KubeObject,
  services: readonly KubeObject[],
  deployments: readonly KubeObject[],
  prefix: string,
  describe: (object: KubeObject) => string,
): string[] {
  const labels = podTemplateLabels(fork);
  const messages: string[] = [];
  for (const service of services) {
    if (serviceSelectorSelects(serviceSelector(service), labels)) messages.push(`${prefix}${describe(service)} selects the fork pods`);
  }
  for (const deployment of deployments) {
    const verdict = labelSelectorVerdict(deploymentSpecSelector(deployment), labels);
    if ('unknown' in verdict) messages.push(`${prefix}cannot tell whether ${describe(deployment)} selects the fork pods: in its spec.selector, ${verdict.unknown}`);
    else if (verdict.selects) messages.push(`${prefix}${describe(deployment)} selects the fork pods`);
  }
  return messages;
}

function rewriteLabels(labels: Record<string, string>, rewrites: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) setOwn(out, k, ownValue(rewrites, k) ?? v);
  return out;
}

type EnvVar = { name: string; value?: string; valueFrom?: unknown };

function upsertEnv(env: EnvVar[], vars: EnvVar[]): EnvVar[] {
  const out = [...env];
  for (const v of vars) {
    const i = out.findIndex((e) => e.name === v.name);
    if (i >= 0) out[i] = v;
    else out.push(v);
  }
  return out;
}

function applyContainerCustomizations(
  ctx: ForkContext,
  pod: { containers: Container[]; annotations: Readonly<Record<string, string>> },
  at: (...segments: Array<string | number>) => string,
  problems: Problem[],
  notes: Problem[],
): void {
  const c = ctx.fork.customizations;
  if (c === undefined) return;
  const { containers } = pod;
  const names = containers.map((k) => k.name);
  const deployment = `Deployment "${ctx.baseline.metadata.name}"`;
  const pick = (container: string | undefined, path: string): Container | undefined => {
    if (container === undefined) {
      const chosen = defaultContainer(pod);
      if ('problem' in chosen) problems.push({ path: `${path}.container`, message: `not given, and ${deployment} has no default container: ${chosen.problem}` });
      else if (containers.length > 1) notes.push({ path: `${path}.container`, message: `not given: applies to container "${chosen.container.name}" of ${deployment} (containers: ${names.join(', ')}), ${chosen.why}` });
      return 'container' in chosen ? chosen.container : undefined;
    }
    const found = containers.find((k) => k.name === container);
    if (found === undefined) {
      problems.push({ path: `${path}.container`, message: `container "${container}" not found in ${deployment} (containers: ${names.join(', ')})` });
    }
    return found;
  };
  c.images?.forEach((item, i) => {
    const target = pick(item.container, at('customizations', 'images', i));
    if (target) target.image = item.image;
  });
  c.env?.forEach((item, i) => {
    const target = pick(item.container, at('customizations', 'env', i));
    if (!target) return;
    if ((item.operation ?? 'upsert') === 'delete') {
      target.env = (target.env ?? []).filter((e) => e.name !== item.name);
    } else {
      if (item.valueFrom !== undefined) {
        const refused = prototypeKeyPaths(item.valueFrom, ['valueFrom']);
        for (const e of refused) problems.push({ path: `${at('customizations', 'env', i)}.${e.path}`, message: e.message });
        if (refused.length > 0) return;
      }
      // A copy: the fork never shares an object with the Sandbox.
      const envVar: EnvVar = item.valueFrom !== undefined ? { name: item.name, valueFrom: cloneData(item.valueFrom) } : { name: item.name, value: item.value ?? '' };
      target.env = upsertEnv(target.env ?? [], [envVar]);
    }
  });
  c.command?.forEach((item, i) => {
    const target = pick(item.container, at('customizations', 'command', i));
    if (target) target.command = [...item.value];
  });
  c.args?.forEach((item, i) => {
    const target = pick(item.container, at('customizations', 'args', i));
    if (target) target.args = [...item.value];
  });
}

/**
 * The container kubectl defaults to in a pod (see the module comment): the one the
 * `kubectl.kubernetes.io/default-container` annotation names, else the first; `why` says which
 * rule chose it.
 */
function defaultContainer(pod: { containers: Container[]; annotations: Readonly<Record<string, string>> }): { container: Container; why: string } | { problem: string } {
  const named = ownValue(pod.annotations, DEFAULT_CONTAINER_ANNOTATION);
  const names = pod.containers.map((k) => k.name).join(', ');
  if (named !== undefined && named !== '') {
    const container = pod.containers.find((k) => k.name === named);
    if (container === undefined) return { problem: `its pod template annotation ${DEFAULT_CONTAINER_ANNOTATION} names "${named}", which is not one of its containers (${names || 'none'}); name the container` };
    return { container, why: `the default container its pod template annotation ${DEFAULT_CONTAINER_ANNOTATION} names, as kubectl picks it` };
  }
  const first = pod.containers[0];
  if (first === undefined) return { problem: 'its pod template has no containers' };
  return { container: first, why: `its first container, as kubectl picks it without a ${DEFAULT_CONTAINER_ANNOTATION} annotation; name the container to choose another` };
}

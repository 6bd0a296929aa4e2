/**
 * Forked Deployment `<baseline>-<sandbox>`: a deep copy of the baseline with the sandbox's
 * customizations, whose pods no baseline Service or Deployment selects.
 *
 * Isolation: for the baseline Deployment's selector and for every Service selecting the baseline
 * pods, the selector's label values are rewritten to `<value>-<sandbox>` on the fork (labels that
 * name the app for telemetry are rewritten only when a selector has nothing else), and the fork
 * adds `meshfork.dev/sandbox=<sandbox>`. `service.istio.io/canonical-name` keeps the original app
 * name so Istio telemetry still groups the fork with its service.
 */
import type { ForkT } from '../api/schema.js';
import { fieldPath, type Problem } from '../api/problem.js';
import { FORK_OF_LABEL, SANDBOX_LABEL, managedLabels, type KubeObject } from './kube.js';
import { deploymentSelector, namespaceOf, podTemplateLabels, selectorMatches, serviceSelector } from './inventory.js';
import { applyCustomPatch, PatchError } from './patch.js';

export const ROUTING_KEY_ANNOTATION = 'meshfork.dev/routing-key';
export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
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
  /** Services and Deployments in the baseline's namespace. */
  readonly services: readonly KubeObject[];
  readonly deployments: readonly KubeObject[];
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

export function forkDeployment(ctx: ForkContext): { result?: ForkedDeployment; problems: Problem[] } {
  const problems: Problem[] = [];
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
    .filter((s) => selectorMatches(serviceSelector(s), baselineLabels))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));

  const rewriteKeys = new Set(selectorKeysToRewrite(matchLabels));
  for (const service of baselineServices) for (const key of selectorKeysToRewrite(serviceSelector(service) ?? {})) rewriteKeys.add(key);
  if (selector.matchExpressions?.length) {
    problems.push({ path: at('forkOf', 'name'), message: `Deployment "${baselineName}" selects pods with matchExpressions, which meshfork cannot rewrite for isolation` });
  }

  const labelRewrites: Record<string, string> = {};
  for (const key of [...rewriteKeys].sort()) {
    const value = `${baselineLabels[key] ?? matchLabels[key] ?? ''}-${ctx.sandbox}`;
    if (value.length > MAX_LABEL_VALUE) {
      problems.push({ path: at('forkOf', 'name'), message: `label ${key}=${value} of the fork pods is longer than ${MAX_LABEL_VALUE} characters; shorten the sandbox name` });
    }
    labelRewrites[key] = value;
  }
  const podLabels: Record<string, string> = { ...baselineLabels, ...labelRewrites, [SANDBOX_LABEL]: ctx.sandbox };
  // Telemetry tells the fork from its baseline by revision (Istio reads this label before `version`).
  const revision = baselineLabels[CANONICAL_REVISION_LABEL];
  podLabels[CANONICAL_REVISION_LABEL] = revision === undefined ? ctx.sandbox : `${revision}-${ctx.sandbox}`;
  if (podLabels[CANONICAL_NAME_LABEL] === undefined) {
    const appName = baselineLabels['app.kubernetes.io/name'] ?? baselineLabels['app'];
    if (appName !== undefined && (labelRewrites['app'] !== undefined || labelRewrites['app.kubernetes.io/name'] !== undefined)) {
      podLabels[CANONICAL_NAME_LABEL] = appName;
    }
  }

  const deployment = structuredClone(ctx.baseline) as KubeObject & { spec: Record<string, unknown> };
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
  applyContainerCustomizations(ctx, containers, at, problems);
  for (const container of containers) {
    container.env = upsertEnv(container.env ?? [], [
      { name: 'MESHFORK_SANDBOX', valueFrom: { fieldRef: { fieldPath: `metadata.labels['${SANDBOX_LABEL}']` } } },
      { name: 'MESHFORK_ROUTING_KEY', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${ROUTING_KEY_ANNOTATION}']` } } },
    ]);
  }

  let result: KubeObject = deployment;
  const patch = ctx.fork.customizations?.patch;
  if (patch !== undefined) {
    try {
      result = applyCustomPatch(deployment, patch.type, patch.value);
    } catch (e) {
      if (!(e instanceof PatchError)) throw e;
      const base = at('customizations', 'patch', 'value');
      problems.push({ path: e.path ? `${base}${e.path.startsWith('[') ? '' : '.'}${e.path}` : base, message: e.message });
      return { problems };
    }
    problems.push(...isolationProblems(ctx, result, at('customizations', 'patch', 'value')));
  }
  if (problems.length > 0) return { problems };
  return { result: { deployment: result, podLabels: podTemplateLabels(result), labelRewrites, baselineServices }, problems };
}

/** A patch may touch labels and selectors; the fork must still be selected only by itself. */
function isolationProblems(ctx: ForkContext, fork: KubeObject, path: string): Problem[] {
  const labels = podTemplateLabels(fork);
  const selector = deploymentSelector(fork).matchLabels;
  const problems: Problem[] = [];
  if (!selectorMatches(selector, labels)) {
    problems.push({ path, message: 'after the patch the fork selector no longer matches its pod labels' });
  }
  for (const service of ctx.services) {
    if (selectorMatches(serviceSelector(service), labels)) {
      problems.push({ path, message: `after the patch baseline Service "${service.metadata.name}" selects the fork pods` });
    }
  }
  for (const deployment of ctx.deployments) {
    if (selectorMatches(deploymentSelector(deployment).matchLabels, labels)) {
      problems.push({ path, message: `after the patch baseline Deployment "${deployment.metadata.name}" selects the fork pods` });
    }
  }
  return problems;
}

function rewriteLabels(labels: Record<string, string>, rewrites: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) out[k] = rewrites[k] ?? v;
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
  containers: Container[],
  at: (...segments: Array<string | number>) => string,
  problems: Problem[],
): void {
  const c = ctx.fork.customizations;
  if (c === undefined) return;
  const names = containers.map((k) => k.name);
  const pick = (container: string | undefined, path: string): Container | undefined => {
    if (container === undefined) {
      if (containers.length === 1) return containers[0];
      problems.push({ path: `${path}.container`, message: `required: Deployment "${ctx.baseline.metadata.name}" has containers ${names.join(', ')}` });
      return undefined;
    }
    const found = containers.find((k) => k.name === container);
    if (found === undefined) {
      problems.push({ path: `${path}.container`, message: `container "${container}" not found in Deployment "${ctx.baseline.metadata.name}" (containers: ${names.join(', ')})` });
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
      const envVar: EnvVar = item.valueFrom !== undefined ? { name: item.name, valueFrom: item.valueFrom } : { name: item.name, value: item.value ?? '' };
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

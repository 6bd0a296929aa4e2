/**
 * What a fork may differ in from its baseline. Whoever may create a Sandbox may run code with the
 * baseline's identities and nothing more: a fork keeps the apiVersion, kind, name, namespace,
 * selector and meshfork labels the planner gives it, and, unless the administrator's policy
 * allows it, the baseline's service account, host namespaces, privileges, capabilities and
 * hostPath volumes, and the pod-template labels and mesh/cluster annotations the planner gives it
 * (label-selected policies must treat the fork as they treat its baseline; an annotation such as
 * `sidecar.istio.io/inject: "false"` would take it out of the mesh). What the baseline already
 * has is kept (the fork is a copy); only what the Sandbox's customizations add is checked.
 *
 * The privilege fields follow the Pod API (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/)
 * and the Pod Security Standards' "baseline" controls (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
 * `allowPrivilegeEscalation` unset means allowed, so turning it from false to unset turns it on;
 * `automountServiceAccountToken` unset means the ServiceAccount's setting, so false -> unset and
 * unset -> true both turn it on; capabilities are compared without the `CAP_` prefix and case.
 * A container is compared with the baseline container of the same name in the same list
 * (containers, initContainers, ephemeralContainers). A container with no such namesake (added,
 * or renamed by the patch) is compared with every baseline container of the pod, and refused
 * if it turns on anything relative to any one of them: it is at most as open as the most
 * restrictive baseline container, so renaming `app` to `app2` cannot shed `app`'s
 * `allowPrivilegeEscalation: false` or `capabilities.drop`. (A pod with no container at all is
 * compared with a container that sets nothing.)
 */
import { asList as list, asRecord as asObject, ownValue, type KubeObject } from './kube.js';

/** Which of the checked fork changes the administrator allows. All default to false. */
export interface ForkPolicyAllow {
  /** A fork may change `serviceAccountName` / `serviceAccount` and turn `automountServiceAccountToken` on. @default false */
  readonly serviceAccountName: boolean;
  /** A fork may turn on `hostNetwork`, `hostPID` and `hostIPC`. @default false */
  readonly hostNamespaces: boolean;
  /** A fork may turn on `privileged`, `allowPrivilegeEscalation` and Windows `hostProcess`. @default false */
  readonly privileged: boolean;
  /** A fork's containers may add capabilities beyond (and drop fewer than) the baseline container's. @default false */
  readonly capabilities: boolean;
  /** A fork may add or change `hostPath` volumes. @default false */
  readonly hostPath: boolean;
  /**
   * A fork may change its pod-template labels (beyond the planner's own rewrites) and set, change
   * or remove pod-template annotations of the istio.io, kubernetes.io and k8s.io domains. @default false
   */
  readonly podMetadata: boolean;
}

/** What Sandboxes may ask of the planner (`policy` in meshfork's configuration). */
export interface ForkPolicy {
  /** Namespaces besides its own that a Sandbox may fork Deployments from. @default [] */
  readonly forkNamespaces: readonly string[];
  /** Largest `spec.split.weight` (percent of untagged traffic) a Sandbox may ask for, 1 to 100. @default 50 */
  readonly maxSplitWeight: number;
  /** Fork changes allowed beyond the baseline's own settings. @default all false */
  readonly allow: ForkPolicyAllow;
  /** Most Sandboxes served per namespace, oldest first (sandbox-quota.ts). @default no limit */
  readonly maxSandboxesPerNamespace?: number;
  /** Most entries in a Sandbox's spec.forks. @default no limit */
  readonly maxForksPerSandbox?: number;
  /** Lifetime of a Sandbox without its own spec.ttl (the controller deletes it then). @default none */
  readonly defaultTtl?: { readonly duration: string; readonly offsetFrom?: 'createdAt' | 'updatedAt' };
}

export interface ForkPolicyInput {
  readonly forkNamespaces?: readonly string[];
  readonly maxSplitWeight?: number;
  readonly allow?: Partial<ForkPolicyAllow>;
  readonly maxSandboxesPerNamespace?: number;
  readonly maxForksPerSandbox?: number;
  readonly defaultTtl?: ForkPolicy['defaultTtl'];
}

export const DEFAULT_FORK_POLICY: ForkPolicy = Object.freeze({
  forkNamespaces: Object.freeze([]) as readonly string[],
  maxSplitWeight: 50,
  allow: Object.freeze({ serviceAccountName: false, hostNamespaces: false, privileged: false, capabilities: false, hostPath: false, podMetadata: false }),
});

/** A complete policy from a partial one, missing fields taking their defaults. */
export function resolveForkPolicy(input: ForkPolicyInput | undefined): ForkPolicy {
  const allow = input?.allow ?? {};
  const defaults = DEFAULT_FORK_POLICY.allow;
  return {
    forkNamespaces: [...(input?.forkNamespaces ?? DEFAULT_FORK_POLICY.forkNamespaces)],
    maxSplitWeight: input?.maxSplitWeight ?? DEFAULT_FORK_POLICY.maxSplitWeight,
    allow: {
      serviceAccountName: allow.serviceAccountName ?? defaults.serviceAccountName,
      hostNamespaces: allow.hostNamespaces ?? defaults.hostNamespaces,
      privileged: allow.privileged ?? defaults.privileged,
      capabilities: allow.capabilities ?? defaults.capabilities,
      hostPath: allow.hostPath ?? defaults.hostPath,
      podMetadata: allow.podMetadata ?? defaults.podMetadata,
    },
    ...(input?.maxSandboxesPerNamespace !== undefined ? { maxSandboxesPerNamespace: input.maxSandboxesPerNamespace } : {}),
    ...(input?.maxForksPerSandbox !== undefined ? { maxForksPerSandbox: input.maxForksPerSandbox } : {}),
    ...(input?.defaultTtl !== undefined ? { defaultTtl: input.defaultTtl } : {}),
  };
}

type Obj = Record<string, unknown>;

function get(value: unknown, ...keys: string[]): unknown {
  let current = value;
  for (const key of keys) current = ownValue(asObject(current), key);
  return current;
}

function show(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

/** Stable JSON (sorted keys) for comparing plain data. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    const object = asObject(v);
    return object === undefined ? v : Object.fromEntries(Object.keys(object).sort().map((k) => [k, object[k]]));
  });
}

/** `would set <field> to <after> (<was>)`; `was` defaults to what the baseline has. */
function change(field: string, before: unknown, after: unknown, was = `the baseline has ${show(before)}`): string {
  return `${after === undefined ? `would remove ${field}` : `would set ${field} to ${show(after)}`} (${was})`;
}

const allowedOnly = (flag: keyof ForkPolicyAllow) => `allowed only with policy.allow.${flag}`;

/** meshfork's own labels and annotations, which identityProblems keeps as planned. */
function isMeshforkKey(key: string): boolean {
  return key.startsWith('meshfork.dev/') || key === 'app.kubernetes.io/managed-by';
}

/** Fields of a Deployment the planner decides; no customization may change them. */
function identityProblems(planned: KubeObject, fork: KubeObject): string[] {
  const messages: string[] = [];
  const fixed = '; a fork keeps the apiVersion, kind, name, namespace, selector and meshfork labels the planner gives it';
  const same = (field: string, before: unknown, after: unknown) => {
    if (canonical(before) !== canonical(after)) messages.push(`${change(field, before, after, `the planned fork has ${show(before)}`)}${fixed}`);
  };
  same('apiVersion', planned.apiVersion, fork.apiVersion);
  same('kind', planned.kind, fork.kind);
  same('metadata.name', planned.metadata.name, get(fork, 'metadata', 'name'));
  same('metadata.namespace', planned.metadata.namespace, get(fork, 'metadata', 'namespace'));
  same('spec.selector', get(planned, 'spec', 'selector'), get(fork, 'spec', 'selector'));
  // meshfork's own labels and annotations, on the Deployment and on its pods.
  for (const at of [['metadata'], ['spec', 'template', 'metadata']]) {
    for (const field of ['labels', 'annotations']) {
      const plannedMap = asObject(get(planned, ...at, field)) ?? {};
      for (const key of Object.keys(plannedMap).filter(isMeshforkKey)) {
        same(`${[...at, field].join('.')}["${key}"]`, plannedMap[key], get(fork, ...at, field, key));
      }
    }
  }
  const metadata = asObject(fork.metadata) ?? {};
  for (const key of Object.keys(metadata).filter((k) => !['name', 'namespace', 'labels', 'annotations'].includes(k)).sort()) {
    messages.push(`would set metadata.${key}; a fork's metadata holds only name, namespace, labels and annotations`);
  }
  return messages;
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

function normalizeCapability(capability: unknown): string {
  return String(capability).toUpperCase().replace(/^CAP_/, '');
}

/** The baseline container a fork container is compared with, and how a message names it. */
interface Reference {
  readonly container: unknown;
  /** `the baseline container "app" has false`, with `verb` and `what` filled in. */
  was(verb: string, what: string): string;
}

/**
 * One privilege check of a fork container against a reference container: the message when the
 * fork turns something on that the reference has off, else undefined.
 */
type ContainerCheck = (at: string, fork: unknown, reference: Reference) => string | undefined;

function turnedOnCheck(keys: readonly string[], flag: keyof ForkPolicyAllow, isOn: (before: unknown, after: unknown) => boolean): { flag: keyof ForkPolicyAllow; check: ContainerCheck } {
  return {
    flag,
    check: (at, fork, reference) => {
      const before = get(reference.container, 'securityContext', ...keys);
      const after = get(fork, 'securityContext', ...keys);
      if (!isOn(before, after)) return undefined;
      return `${change(`${at}.${keys.join('.')}`, before, after, reference.was('has', show(before)))}; ${allowedOnly(flag)}`;
    },
  };
}

const CONTAINER_CHECKS: ReadonlyArray<{ flag: keyof ForkPolicyAllow; check: ContainerCheck }> = [
  turnedOnCheck(['privileged'], 'privileged', (before, after) => after === true && before !== true),
  // Unset means allowed (as true does): only an explicit false keeps escalation off.
  turnedOnCheck(['allowPrivilegeEscalation'], 'privileged', (before, after) => before === false && after !== false),
  turnedOnCheck(['windowsOptions', 'hostProcess'], 'privileged', (before, after) => after === true && before !== true),
  {
    flag: 'capabilities',
    check: (at, fork, reference) => {
      const baselineAdd = new Set(list(get(reference.container, 'securityContext', 'capabilities', 'add')).map(normalizeCapability));
      const added = list(get(fork, 'securityContext', 'capabilities', 'add'))
        .map(normalizeCapability)
        .filter((c) => !baselineAdd.has(c) && !baselineAdd.has('ALL'));
      if (added.length === 0) return undefined;
      const had = reference.was('adds', baselineAdd.size ? [...baselineAdd].join(', ') : 'none');
      return `would add capabilities ${[...new Set(added)].join(', ')} in ${at}.capabilities.add (${had}); ${allowedOnly('capabilities')}`;
    },
  },
  {
    flag: 'capabilities',
    check: (at, fork, reference) => {
      const forkDrop = new Set(list(get(fork, 'securityContext', 'capabilities', 'drop')).map(normalizeCapability));
      const undropped = list(get(reference.container, 'securityContext', 'capabilities', 'drop'))
        .map(normalizeCapability)
        .filter((c) => !forkDrop.has(c) && !forkDrop.has('ALL'));
      if (undropped.length === 0) return undefined;
      return `would no longer drop capabilities ${[...new Set(undropped)].join(', ')} in ${at}.capabilities.drop (${reference.was('drops', 'them')}); ${allowedOnly('capabilities')}`;
    },
  },
];

function containerProblems(policy: ForkPolicy, baselinePod: unknown, forkPod: unknown): string[] {
  const messages: string[] = [];
  const checks = CONTAINER_CHECKS.filter((c) => !policy.allow[c.flag]);
  for (const listName of CONTAINER_LISTS) {
    const sameList = list(get(baselinePod, listName));
    // Every baseline container of the pod, those of the same list first.
    const everyBaseline = [...sameList, ...CONTAINER_LISTS.filter((l) => l !== listName).flatMap((l) => list(get(baselinePod, l)))];
    list(get(forkPod, listName)).forEach((container, index) => {
      const name = get(container, 'name');
      const at = `spec.template.spec.${listName}[${index}].securityContext`;
      const sameName = sameList.find((c) => get(c, 'name') === name);
      const named = (c: unknown, prefix = ''): Reference => ({ container: c, was: (verb, what) => `${prefix}the baseline container ${show(get(c, 'name'))} ${verb} ${what}` });
      let references: Reference[];
      if (sameName !== undefined) references = [named(sameName)];
      else if (everyBaseline.length > 0) references = everyBaseline.map((c) => named(c, `the baseline has no container ${show(name)}; `));
      else references = [{ container: undefined, was: () => `the baseline has no container ${show(name)}` }];
      // Each check reports against the first reference the fork container is more open than.
      for (const { check } of checks) {
        for (const reference of references) {
          const message = check(at, container, reference);
          if (message === undefined) continue;
          messages.push(message);
          break;
        }
      }
    });
  }
  return messages;
}

function podProblems(policy: ForkPolicy, baselinePod: unknown, forkPod: unknown): string[] {
  const messages: string[] = [];
  const at = 'spec.template.spec';
  if (!policy.allow.serviceAccountName) {
    for (const field of ['serviceAccountName', 'serviceAccount']) {
      const before = get(baselinePod, field);
      const after = get(forkPod, field);
      if (before !== after) messages.push(`${change(`${at}.${field}`, before, after)}; ${allowedOnly('serviceAccountName')}`);
    }
    // false < unset (the ServiceAccount decides) < true.
    const rank = (v: unknown) => (v === false ? 0 : v === true ? 2 : 1);
    const before = get(baselinePod, 'automountServiceAccountToken');
    const after = get(forkPod, 'automountServiceAccountToken');
    if (rank(after) > rank(before)) {
      messages.push(`${change(`${at}.automountServiceAccountToken`, before, after)}; ${allowedOnly('serviceAccountName')}`);
    }
  }
  if (!policy.allow.hostNamespaces) {
    for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
      if (get(forkPod, field) === true && get(baselinePod, field) !== true) {
        messages.push(`would set ${at}.${field} to true; ${allowedOnly('hostNamespaces')}`);
      }
    }
  }
  if (!policy.allow.privileged) {
    const before = get(baselinePod, 'securityContext', 'windowsOptions', 'hostProcess');
    if (get(forkPod, 'securityContext', 'windowsOptions', 'hostProcess') === true && before !== true) {
      messages.push(`${change(`${at}.securityContext.windowsOptions.hostProcess`, before, true)}; ${allowedOnly('privileged')}`);
    }
  }
  if (!policy.allow.hostPath) {
    const baselineVolumes = list(get(baselinePod, 'volumes'));
    list(get(forkPod, 'volumes')).forEach((volume, index) => {
      const hostPath = get(volume, 'hostPath');
      if (hostPath === undefined) return;
      const name = get(volume, 'name');
      const same = baselineVolumes.some((b) => get(b, 'name') === name && canonical(get(b, 'hostPath')) === canonical(hostPath));
      if (!same) messages.push(`would add hostPath volume ${show(name)} (path ${show(get(hostPath, 'path'))}) at ${at}.volumes[${index}]; ${allowedOnly('hostPath')}`);
    });
  }
  return messages;
}

/**
 * Domains (the prefix before `/`, itself or as a parent domain) of pod annotations that change
 * how the pod joins the mesh or the cluster: `sidecar.istio.io/inject: "false"` takes the pod out
 * of the mesh (no mTLS identity, no AuthorizationPolicy enforced at its sidecar),
 * `traffic.sidecar.istio.io/excludeOutboundIPRanges` lets its traffic bypass the sidecar, and
 * kubernetes.io / k8s.io annotations are read by cluster components (e.g. seccomp and AppArmor
 * profiles, `cluster-autoscaler.kubernetes.io/safe-to-evict`).
 * https://istio.io/latest/docs/reference/config/annotations/
 * https://kubernetes.io/docs/reference/labels-annotations-taints/
 */
const PROTECTED_ANNOTATION_DOMAINS = ['istio.io', 'kubernetes.io', 'k8s.io'];

function isProtectedAnnotation(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const prefix = key.slice(0, slash).toLowerCase();
  return PROTECTED_ANNOTATION_DOMAINS.some((domain) => prefix === domain || prefix.endsWith(`.${domain}`));
}

/**
 * Pod-template labels and mesh/cluster annotations the customizations change, compared with the
 * planned fork (the baseline's plus the planner's own rewrites). Labels decide which
 * NetworkPolicies, AuthorizationPolicies and other label-selected policies apply to the pods, so
 * any added, changed or removed label could make the fork more open than its baseline.
 */
function podMetadataProblems(policy: ForkPolicy, planned: KubeObject, fork: KubeObject): string[] {
  if (policy.allow.podMetadata) return [];
  const messages: string[] = [];
  const at = ['spec', 'template', 'metadata'];
  const fields = [
    { field: 'labels', checked: () => true, why: 'label-selected policies (NetworkPolicy, AuthorizationPolicy) would not treat the fork as its baseline' },
    {
      field: 'annotations',
      checked: isProtectedAnnotation,
      why: `annotations of the ${PROTECTED_ANNOTATION_DOMAINS.join(', ')} domains change how the pod joins the mesh and the cluster`,
    },
  ];
  for (const { field, checked, why } of fields) {
    const before = asObject(get(planned, ...at, field)) ?? {};
    const after = asObject(get(fork, ...at, field)) ?? {};
    // meshfork's planned keys are identityProblems' to report.
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => checked(k) && !(isMeshforkKey(k) && Object.hasOwn(before, k))).sort();
    for (const key of keys) {
      const was = ownValue(before, key);
      const now = ownValue(after, key);
      if (canonical(was) === canonical(now)) continue;
      messages.push(`${change(`${at.join('.')}.${field}["${key}"]`, was, now, `the planned fork has ${show(was)}`)}; ${why}; ${allowedOnly('podMetadata')}`);
    }
  }
  return messages;
}

/**
 * How the customized `fork` breaks the policy, compared with `planned` (the fork as the planner
 * made it, before customizations) for identity fields and with `baseline` for privileges.
 * Each message names the field and what changed; the caller prefixes the Sandbox field.
 */
export function forkPolicyViolations(args: { policy: ForkPolicy; baseline: KubeObject; planned: KubeObject; fork: KubeObject }): string[] {
  const baselinePod = get(args.baseline, 'spec', 'template', 'spec');
  const forkPod = get(args.fork, 'spec', 'template', 'spec');
  return [
    ...identityProblems(args.planned, args.fork),
    ...podMetadataProblems(args.policy, args.planned, args.fork),
    ...podProblems(args.policy, baselinePod, forkPod),
    ...containerProblems(args.policy, baselinePod, forkPod),
  ];
}

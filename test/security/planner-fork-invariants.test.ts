/**
 * A fork stays what it forks: whatever a Sandbox's customizations do, the final fork keeps the
 * apiVersion, kind, name, namespace, selector and meshfork labels the planner gives it, and,
 * unless meshfork's `policy.allow` says otherwise, the baseline's service account, host
 * namespaces, privileges, capabilities and hostPath volumes. What the baseline already has is
 * kept; a container the baseline has no namesake for (added, or renamed) is at most as open as
 * the most restrictive baseline container. A Sandbox forks only from its own namespace (and those in `policy.forkNamespaces`) and
 * takes at most `policy.maxSplitWeight` percent of untagged traffic.
 * Inputs: test/security/inputs/planner-fork-invariants/, read with the real loader; baseline:
 * Bookinfo from the shared fixtures, or the *-baseline.yaml inventories there.
 */
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/api/config.js';
import { MeshforkChart } from '../../src/cdk8s/index.js';
import type { Problem } from '../../src/api/problem.js';
import { loadInputs } from '../../src/manifests/load.js';
import type { ForkPolicyInput } from '../../src/planner/fork-policy.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { FIXTURES } from '../support/cli.js';

const INPUTS = new URL('./inputs/planner-fork-invariants/', import.meta.url).pathname;
const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;

function planFiles(files: string[], policy?: ForkPolicyInput, namespace = 'default') {
  const input = loadInputs(files.map((f) => (f.startsWith('/') ? f : INPUTS + f)), namespace);
  expect(input.problems).toEqual([]);
  return plan({ inventory: input.inventory, sandboxes: input.sandboxes, ...(policy ? { config: { policy } } : {}) });
}

const LABELS = 'label-selected policies (NetworkPolicy, AuthorizationPolicy) would not treat the fork as its baseline; allowed only with policy.allow.podMetadata';
const ANNOTATIONS = 'annotations of the istio.io, kubernetes.io, k8s.io domains change how the pod joins the mesh and the cluster; allowed only with policy.allow.podMetadata';
const FIXED = '; a fork keeps the apiVersion, kind, name, namespace, selector and meshfork labels the planner gives it';
const at = (sandbox: string, ...messages: string[]): Problem[] =>
  messages.map((message) => ({ object: `Sandbox default/${sandbox}`, path: 'spec.forks[0].customizations.patch', message }));

const CASES: Array<{ file: string; baseline?: string; problems: Problem[]; allowedBy?: ForkPolicyInput['allow'] }> = [
  {
    file: 'identity.yaml',
    problems: at(
      'identity',
      `would set apiVersion to "v1" (the planned fork has "apps/v1")${FIXED}`,
      `would set kind to "Pod" (the planned fork has "Deployment")${FIXED}`,
      `would set metadata.name to "kube-proxy" (the planned fork has "reviews-v1-identity")${FIXED}`,
      `would set metadata.namespace to "kube-system" (the planned fork has "default")${FIXED}`,
      `would remove metadata.labels["app.kubernetes.io/managed-by"] (the planned fork has "meshfork")${FIXED}`,
      `would set spec.template.metadata.annotations["meshfork.dev/routing-key"] to "anotherkey" (the planned fork has "identitykey1")${FIXED}`,
      "would set metadata.ownerReferences; a fork's metadata holds only name, namespace, labels and annotations",
    ),
  },
  {
    file: 'selector.yaml',
    problems: [
      ...at(
        'selector',
        'would set spec.selector to {"matchLabels":{"app":"reviews-selector","version":"v1","meshfork.dev/sandbox":"selector"}} ' +
          `(the planned fork has {"matchLabels":{"app":"reviews-selector","version":"v1-selector","meshfork.dev/sandbox":"selector"}})${FIXED}`,
      ),
      { object: 'Sandbox default/selector', path: 'spec.forks[0].customizations.patch.value', message: 'after the patch the fork selector no longer matches its pod labels' },
    ],
  },
  {
    file: 'service-account.yaml',
    allowedBy: { serviceAccountName: true },
    problems: at(
      'sa',
      'would set spec.template.spec.serviceAccountName to "cluster-admin" (the baseline has "bookinfo-reviews"); allowed only with policy.allow.serviceAccountName',
      'would set spec.template.spec.serviceAccount to "cluster-admin" (the baseline has (unset)); allowed only with policy.allow.serviceAccountName',
      'would set spec.template.spec.automountServiceAccountToken to true (the baseline has (unset)); allowed only with policy.allow.serviceAccountName',
    ),
  },
  {
    file: 'host-namespaces.yaml',
    allowedBy: { hostNamespaces: true, privileged: true },
    problems: at(
      'hostns',
      'would set spec.template.spec.hostNetwork to true; allowed only with policy.allow.hostNamespaces',
      'would set spec.template.spec.hostPID to true; allowed only with policy.allow.hostNamespaces',
      'would set spec.template.spec.hostIPC to true; allowed only with policy.allow.hostNamespaces',
      'would set spec.template.spec.securityContext.windowsOptions.hostProcess to true (the baseline has (unset)); allowed only with policy.allow.privileged',
    ),
  },
  {
    file: 'privileged.yaml',
    allowedBy: { privileged: true, capabilities: true },
    problems: at(
      'priv',
      'would set spec.template.spec.initContainers[0].securityContext.privileged to true (the baseline has no container "setup"; the baseline container "reviews" has (unset)); allowed only with policy.allow.privileged',
      'would add capabilities NET_ADMIN in spec.template.spec.initContainers[0].securityContext.capabilities.add (the baseline has no container "setup"; the baseline container "reviews" adds none); allowed only with policy.allow.capabilities',
      'would set spec.template.spec.containers[0].securityContext.privileged to true (the baseline container "reviews" has (unset)); allowed only with policy.allow.privileged',
      'would add capabilities SYS_ADMIN, NET_RAW in spec.template.spec.containers[0].securityContext.capabilities.add (the baseline container "reviews" adds none); allowed only with policy.allow.capabilities',
      'would set spec.template.spec.ephemeralContainers[0].securityContext.privileged to true (the baseline has no container "debug"; the baseline container "reviews" has (unset)); allowed only with policy.allow.privileged',
    ),
  },
  {
    file: 'host-path.yaml',
    allowedBy: { hostPath: true },
    problems: at('hostpath', 'would add hostPath volume "host-root" (path "/") at spec.template.spec.volumes[2]; allowed only with policy.allow.hostPath'),
  },
  {
    file: 'hardened.yaml',
    baseline: 'hardened-baseline.yaml',
    allowedBy: { serviceAccountName: true, privileged: true, capabilities: true },
    problems: at(
      'soft',
      'would remove spec.template.spec.automountServiceAccountToken (the baseline has false); allowed only with policy.allow.serviceAccountName',
      'would remove spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation (the baseline container "api" has false); allowed only with policy.allow.privileged',
      'would no longer drop capabilities ALL in spec.template.spec.containers[0].securityContext.capabilities.drop (the baseline container "api" drops them); allowed only with policy.allow.capabilities',
    ),
  },
  {
    file: 'renamed-json.yaml',
    baseline: 'hardened-baseline.yaml',
    allowedBy: { privileged: true, capabilities: true },
    problems: at(
      'renamed',
      'would remove spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation (the baseline has no container "api2"; the baseline container "api" has false); allowed only with policy.allow.privileged',
      'would no longer drop capabilities ALL in spec.template.spec.containers[0].securityContext.capabilities.drop (the baseline has no container "api2"; the baseline container "api" drops them); allowed only with policy.allow.capabilities',
    ),
  },
  {
    file: 'renamed-strategic.yaml',
    baseline: 'hardened-baseline.yaml',
    allowedBy: { privileged: true, capabilities: true },
    problems: at(
      'swapped',
      'would remove spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation (the baseline has no container "api2"; the baseline container "api" has false); allowed only with policy.allow.privileged',
      'would no longer drop capabilities ALL in spec.template.spec.containers[0].securityContext.capabilities.drop (the baseline has no container "api2"; the baseline container "api" drops them); allowed only with policy.allow.capabilities',
    ),
  },
  {
    file: 'added-sidecar.yaml',
    baseline: 'two-containers-baseline.yaml',
    allowedBy: { privileged: true, capabilities: true },
    problems: at(
      'sidecar',
      'would remove spec.template.spec.containers[2].securityContext.allowPrivilegeEscalation (the baseline has no container "tap"; the baseline container "proxy" has false); allowed only with policy.allow.privileged',
      'would no longer drop capabilities NET_RAW in spec.template.spec.containers[2].securityContext.capabilities.drop (the baseline has no container "tap"; the baseline container "proxy" drops them); allowed only with policy.allow.capabilities',
    ),
  },
  {
    file: 'pod-metadata.yaml',
    allowedBy: { podMetadata: true },
    problems: at(
      'podmeta',
      `would set spec.template.metadata.labels["meshfork.dev/other"] to "x" (the planned fork has (unset)); ${LABELS}`,
      `would set spec.template.metadata.labels["role"] to "db-admin" (the planned fork has (unset)); ${LABELS}`,
      `would set spec.template.metadata.annotations["container.apparmor.security.beta.kubernetes.io/reviews"] to "unconfined" (the planned fork has (unset)); ${ANNOTATIONS}`,
      `would set spec.template.metadata.annotations["sidecar.istio.io/inject"] to "false" (the planned fork has (unset)); ${ANNOTATIONS}`,
      `would set spec.template.metadata.annotations["traffic.sidecar.istio.io/excludeOutboundIPRanges"] to "0.0.0.0/0" (the planned fork has (unset)); ${ANNOTATIONS}`,
    ),
  },
  {
    file: 'pod-metadata-removed.yaml',
    baseline: 'injected-baseline.yaml',
    allowedBy: { podMetadata: true },
    problems: at(
      'unmeshed',
      `would remove spec.template.metadata.labels["egress"] (the planned fork has "restricted"); ${LABELS}`,
      `would remove spec.template.metadata.annotations["sidecar.istio.io/inject"] (the planned fork has "true"); ${ANNOTATIONS}`,
    ),
  },
  {
    file: 'node-agent-widen.yaml',
    baseline: 'node-agent-baseline.yaml',
    allowedBy: { hostPath: true, capabilities: true },
    problems: at(
      'widen',
      'would add hostPath volume "proc" (path "/") at spec.template.spec.volumes[0]; allowed only with policy.allow.hostPath',
      'would add capabilities SYS_ADMIN in spec.template.spec.containers[0].securityContext.capabilities.add (the baseline container "agent" adds NET_ADMIN); allowed only with policy.allow.capabilities',
    ),
  },
];

const NONE_ALLOWED = { serviceAccountName: false, hostNamespaces: false, privileged: false, capabilities: false, hostPath: false, podMetadata: false };

describe('a patch cannot change what a fork is', () => {
  for (const c of CASES) {
    it(`${c.file}: refused with the Sandbox field and what changed; nothing is planned`, () => {
      const result = planFiles([c.baseline ?? BOOKINFO, c.file]);
      expect(result.problems).toEqual(c.problems);
      expect(result.objects).toEqual([]);
    });
    if (c.allowedBy === undefined) continue;
    const allow = c.allowedBy;
    it(`${c.file}: planned when policy.allow has ${Object.keys(allow).join(' and ')}, refused when any one of them is missing`, () => {
      expect(planFiles([c.baseline ?? BOOKINFO, c.file], { allow }).problems).toEqual([]);
      for (const flag of Object.keys(allow)) {
        const problems = planFiles([c.baseline ?? BOOKINFO, c.file], { allow: { ...allow, [flag]: false } }).problems;
        expect(problems).toEqual(c.problems.filter((p) => p.message.endsWith(`policy.allow.${flag}`)));
      }
      // The default config (every allow flag false) is the same as none given.
      expect(planFiles([c.baseline ?? BOOKINFO, c.file], { allow: NONE_ALLOWED }).problems).toEqual(c.problems);
    });
  }

  it('a renamed or added container as closed as the baseline container is planned', () => {
    const result = planFiles(['hardened-baseline.yaml', 'renamed-keep.yaml']);
    expect(result.problems).toEqual([]);
    const fork = result.objects.find((o) => o.kind === 'Deployment') as KubeObject & { spec: { template: { spec: { containers: Array<{ name: string }> } } } };
    expect(fork.spec.template.spec.containers.map((c) => c.name)).toEqual(['api2', 'debug']);
  });

  it('keeps what the baseline already has: host namespaces, privileges, capabilities and hostPath', () => {
    const result = planFiles(['node-agent-baseline.yaml', 'node-agent-keep.yaml']);
    expect(result.problems).toEqual([]);
    const fork = result.objects.find((o) => o.kind === 'Deployment') as KubeObject & { spec: { template: { spec: Record<string, unknown> } } };
    expect(fork.metadata.name).toBe('node-agent-keep');
    const pod = fork.spec.template.spec;
    expect([pod['serviceAccountName'], pod['hostNetwork'], pod['hostPID'], pod['volumes']]).toEqual(['node-agent', true, true, [{ name: 'proc', hostPath: { path: '/proc' } }]]);
    expect((pod['containers'] as Array<{ image: string; securityContext: unknown }>).map((c) => [c.image, c.securityContext])).toEqual([
      ['example.com/agent:2', { privileged: true, capabilities: { add: ['NET_ADMIN'] } }],
    ]);
  });
});

describe('what a Sandbox may ask of the planner', () => {
  it('forks only from its own namespace unless policy.forkNamespaces names the other', () => {
    const refused = planFiles([BOOKINFO, 'fork-namespace.yaml'], undefined, 'shop');
    expect(refused.objects).toEqual([]);
    expect(refused.problems).toEqual([
      {
        object: 'Sandbox dev/cross',
        path: 'spec.forks[0].forkOf.namespace',
        message: 'is "shop"; a Sandbox forks Deployments of its own namespace "dev" and of those in policy.forkNamespaces (none)',
      },
    ]);
    expect(planFiles([BOOKINFO, 'fork-namespace.yaml'], { forkNamespaces: ['staging'] }, 'shop').problems.map((p) => p.message)).toEqual([
      'is "shop"; a Sandbox forks Deployments of its own namespace "dev" and of those in policy.forkNamespaces ("staging")',
    ]);
    const allowed = planFiles([BOOKINFO, 'fork-namespace.yaml'], { forkNamespaces: ['staging', 'shop'] }, 'shop');
    expect(allowed.problems).toEqual([]);
    expect(allowed.objects.filter((o) => o.kind === 'Deployment').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual(['shop/reviews-v1-cross']);
  });

  it('takes at most policy.maxSplitWeight (default 50) percent of untagged traffic', () => {
    expect(planFiles([BOOKINFO, 'split.yaml']).problems).toEqual([
      { object: 'Sandbox default/greedy', path: 'spec.split.weight', message: 'is 80; a Sandbox may take at most 50% of untagged traffic (policy.maxSplitWeight)' },
    ]);
    expect(planFiles([BOOKINFO, 'split.yaml'], { maxSplitWeight: 79 }).problems.map((p) => p.message)).toEqual([
      'is 80; a Sandbox may take at most 79% of untagged traffic (policy.maxSplitWeight)',
    ]);
    expect(planFiles([BOOKINFO, 'split.yaml'], { maxSplitWeight: 80 }).problems).toEqual([]);
  });
});

describe('policy in the configuration file', () => {
  it('defaults every field, and the resolved config reaches the planner', () => {
    expect(resolveConfig({}, {}).config?.policy).toEqual({
      forkNamespaces: [],
      maxSplitWeight: 50,
      allow: { serviceAccountName: false, hostNamespaces: false, privileged: false, capabilities: false, hostPath: false, podMetadata: false },
    });
    const { config } = resolveConfig({ policy: { maxSplitWeight: 100, forkNamespaces: ['shop'], allow: { hostPath: true } } }, {});
    expect(config?.policy).toEqual({
      forkNamespaces: ['shop'],
      maxSplitWeight: 100,
      allow: { serviceAccountName: false, hostNamespaces: false, privileged: false, capabilities: false, hostPath: true, podMetadata: false },
    });
    const input = loadInputs([BOOKINFO, INPUTS + 'split.yaml'], 'default');
    expect(plan({ inventory: input.inventory, sandboxes: input.sandboxes, config: config! }).problems).toEqual([]);
    const podMetadata = resolveConfig({ policy: { allow: { podMetadata: true } } }, {});
    expect(podMetadata.problems).toEqual([]);
    expect(podMetadata.config?.policy?.allow?.podMetadata).toBe(true);
    const meta = loadInputs([BOOKINFO, INPUTS + 'pod-metadata.yaml'], 'default');
    expect(plan({ inventory: meta.inventory, sandboxes: meta.sandboxes, config: podMetadata.config! }).problems).toEqual([]);
  });

  it('reaches the planner from the cdk8s chart config', () => {
    const input = loadInputs([BOOKINFO, INPUTS + 'split.yaml'], 'default');
    const props = { inventory: input.inventory, sandboxes: input.sandboxes, onNotes: () => undefined };
    expect(() => Testing.synth(new MeshforkChart(Testing.app(), 'capped', props))).toThrow(
      'Sandbox default/greedy: spec.split.weight: is 80; a Sandbox may take at most 50% of untagged traffic (policy.maxSplitWeight)',
    );
    const allowed = Testing.synth(new MeshforkChart(Testing.app(), 'raised', { ...props, config: { policy: { maxSplitWeight: 80 } } }));
    expect(allowed.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)).toEqual(['reviews-v1-greedy']);
  });

  it('refuses malformed policy settings with their paths', () => {
    const { config, problems } = resolveConfig(
      { policy: { maxSplitWeight: 0, forkNamespaces: ['Not_A_Namespace'], allow: { hostPath: 'yes', root: true }, extra: 1 } },
      {},
    );
    expect(config).toBeUndefined();
    expect(problems).toEqual([
      { path: 'policy.extra', message: 'unknown field' },
      { path: 'policy.forkNamespaces[0]', message: 'must match pattern "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"' },
      { path: 'policy.maxSplitWeight', message: 'must be >= 1' },
      { path: 'policy.allow.root', message: 'unknown field' },
      { path: 'policy.allow.hostPath', message: 'must be boolean' },
    ]);
    expect(resolveConfig({ policy: { maxSplitWeight: 101 } }, {}).problems).toEqual([{ path: 'policy.maxSplitWeight', message: 'must be <= 100' }]);
  });
});

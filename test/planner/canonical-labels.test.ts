/**
 * Telemetry labels stay comparable (issue 9 item 10): every fork pod template carries
 * `service.istio.io/canonical-name` = the baseline's canonical name (as versionFamily derives it)
 * and `service.istio.io/canonical-revision` = `<baseline revision>-<sandbox>`, the baseline
 * revision as Istio derives it (canonical-revision, app.kubernetes.io/version, version, latest).
 * They are the planner's own labels: a patch changes them only with policy.allow.podMetadata.
 */
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { loadInputs } from '../../src/manifests/load.js';
import { canonicalName, canonicalRevision } from '../../src/planner/canonical-service.js';
import { inventoryOf, podTemplateLabels, type Inventory } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { versionFamily } from '../../src/planner/virtual-service.js';
import { FIXTURES } from '../support/cli.js';
import { istioSample, requireIstioSamples } from '../support/istio-samples.js';

function load(namespace: string, ...files: string[]): Inventory {
  const input = loadInputs(files, namespace);
  expect(input.problems).toEqual([]);
  return input.inventory;
}

function sandbox(namespace: string, forks: SandboxObject['spec']['forks'], name = 'dev'): SandboxObject {
  return { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace }, spec: { forks } };
}

const forkOf = (name: string) => ({ forkOf: { kind: 'Deployment' as const, name } });

/** Pod-template labels of each fork Deployment, by name. */
function forkLabels(inventory: Inventory, forks: SandboxObject['spec']['forks'], config?: Parameters<typeof plan>[0]['config']): Record<string, Record<string, string>> {
  const result = plan({ inventory, sandboxes: [sandbox(namespaceOfFirst(inventory), forks)], ...(config ? { config } : {}) });
  expect(result.problems).toEqual([]);
  return Object.fromEntries(result.objects.filter((o) => o.kind === 'Deployment').map((o) => [o.metadata.name, podTemplateLabels(o)]));
}

function namespaceOfFirst(inventory: Inventory): string {
  return inventory.deployments[0]?.metadata.namespace ?? 'default';
}

function web(labels: Record<string, string>): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web', ...labels } }, spec: { containers: [{ name: 'app', image: 'web:1' }] } } },
  };
}

describe('canonical name and revision as Istio derives them (pkg/kube/labels CanonicalService)', () => {
  it.each([
    [{ 'service.istio.io/canonical-name': 'shop', 'app.kubernetes.io/name': 'n', app: 'a' }, 'shop'],
    [{ 'app.kubernetes.io/name': 'n', app: 'a' }, 'n'],
    [{ app: 'a' }, 'a'],
    [{ version: 'v1' }, 'workload'],
    [{ app: '' }, ''],
  ])('name of %j is %s', (labels, name) => {
    expect(canonicalName(labels, 'workload')).toBe(name);
    expect(versionFamily('ns', labels, 'workload')).toBe(`ns/${name}`);
  });

  it.each([
    [{ 'service.istio.io/canonical-revision': 'r7', 'app.kubernetes.io/version': '1.2.3', version: 'v1' }, 'r7'],
    [{ 'app.kubernetes.io/version': '1.2.3', version: 'v1' }, '1.2.3'],
    [{ version: 'v1' }, 'v1'],
    [{ app: 'a' }, 'latest'],
  ])('revision of %j is %s', (labels, revision) => {
    expect(canonicalRevision(labels)).toBe(revision);
  });
});

describe('fork pods carry the baseline canonical name and <baseline revision>-<sandbox>', () => {
  it('Bookinfo reviews-v2 (app, version): reviews / v2-dev, though app is rewritten for isolation', () => {
    const labels = forkLabels(load('default', FIXTURES + 'bookinfo/bookinfo.yaml'), [forkOf('reviews-v2')]);
    expect(labels).toEqual({
      'reviews-v2-dev': {
        app: 'reviews-dev',
        version: 'v2-dev',
        'meshfork.dev/sandbox': 'dev',
        'service.istio.io/canonical-name': 'reviews',
        'service.istio.io/canonical-revision': 'v2-dev',
      },
    });
  });

  it('Online Boutique cartservice (app only): cartservice / latest-dev', () => {
    const labels = forkLabels(load('default', FIXTURES + 'online-boutique/kubernetes-manifests.yaml'), [forkOf('cartservice')]);
    expect(labels['cartservice-dev']).toEqual({
      app: 'cartservice-dev',
      'meshfork.dev/sandbox': 'dev',
      'service.istio.io/canonical-name': 'cartservice',
      'service.istio.io/canonical-revision': 'latest-dev',
    });
  });

  it('canonical labels on the baseline win over app and version; app.kubernetes.io/version over version', () => {
    const canonical = forkLabels(inventoryOf([web({ 'service.istio.io/canonical-name': 'storefront', 'service.istio.io/canonical-revision': 'r7', version: 'v1' })]), [forkOf('web')]);
    const k8s = forkLabels(inventoryOf([web({ 'app.kubernetes.io/version': '1.2.3', version: 'v2' })]), [forkOf('web')]);
    const pair = (l: Record<string, string> | undefined) => [l?.['service.istio.io/canonical-name'], l?.['service.istio.io/canonical-revision']];
    expect(pair(canonical['web-dev'])).toEqual(['storefront', 'r7-dev']);
    expect(pair(k8s['web-dev'])).toEqual(['web', '1.2.3-dev']);
  });

  it('a baseline without name labels: the canonical name is the baseline Deployment name, not the fork name', () => {
    const bare: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bare', namespace: 'shop' },
      spec: { selector: { matchLabels: { tier: 'x' } }, template: { metadata: { labels: { tier: 'x' } }, spec: { containers: [{ name: 'app', image: 'b:1' }] } } },
    };
    expect(forkLabels(inventoryOf([bare]), [forkOf('bare')])['bare-dev']).toEqual({
      tier: 'x-dev',
      'meshfork.dev/sandbox': 'dev',
      'service.istio.io/canonical-name': 'bare',
      'service.istio.io/canonical-revision': 'latest-dev',
    });
  });

  it('a revision label longer than a label value allows is a problem naming it', () => {
    const result = plan({ inventory: inventoryOf([web({ version: 'v'.repeat(60) })]), sandboxes: [sandbox('shop', [forkOf('web')], 'long')] });
    expect(result.problems).toEqual([
      {
        object: 'Sandbox shop/long',
        path: 'spec.forks[0].forkOf.name',
        message: `label service.istio.io/canonical-revision=${'v'.repeat(60)}-long of the fork pods is longer than 63 characters; shorten the sandbox name or set a shorter service.istio.io/canonical-revision on the baseline pods`,
      },
    ]);
  });
});

describe('the canonical labels are the planner own: a patch changes them only with policy.allow.podMetadata', () => {
  const patched = (labels: Record<string, string>) => [
    { ...forkOf('reviews-v2'), customizations: { patch: { type: 'merge' as const, value: { spec: { template: { metadata: { labels } } } } } } },
  ];
  const bookinfo = () => load('default', FIXTURES + 'bookinfo/bookinfo.yaml');
  const why = 'label-selected policies (NetworkPolicy, AuthorizationPolicy) would not treat the fork as its baseline; allowed only with policy.allow.podMetadata';

  it('refused by default, each label named', () => {
    const result = plan({ inventory: bookinfo(), sandboxes: [sandbox('default', patched({ 'service.istio.io/canonical-name': 'mine', 'service.istio.io/canonical-revision': 'v9' }))] });
    expect(result.problems).toEqual([
      {
        object: 'Sandbox default/dev',
        path: 'spec.forks[0].customizations.patch',
        message: `would set spec.template.metadata.labels["service.istio.io/canonical-name"] to "mine" (the planned fork has "reviews"); ${why}`,
      },
      {
        object: 'Sandbox default/dev',
        path: 'spec.forks[0].customizations.patch',
        message: `would set spec.template.metadata.labels["service.istio.io/canonical-revision"] to "v9" (the planned fork has "v2-dev"); ${why}`,
      },
    ]);
  });

  it('allowed with policy.allow.podMetadata', () => {
    const labels = forkLabels(bookinfo(), patched({ 'service.istio.io/canonical-revision': 'v9' }), { policy: { allow: { podMetadata: true } } });
    expect(labels['reviews-v2-dev']?.['service.istio.io/canonical-revision']).toBe('v9');
  });
});

describe.skipIf(!requireIstioSamples())("canonical labels on Istio's samples", () => {
  it('helloworld/helloworld.yaml v1 and v2: one canonical name, revisions v1-dev and v2-dev', () => {
    const labels = forkLabels(load('default', istioSample('helloworld/helloworld.yaml')), [forkOf('helloworld-v1'), forkOf('helloworld-v2')]);
    expect(Object.values(labels).map((l) => [l['service.istio.io/canonical-name'], l['service.istio.io/canonical-revision']])).toEqual([
      ['helloworld', 'v1-dev'],
      ['helloworld', 'v2-dev'],
    ]);
  });
});

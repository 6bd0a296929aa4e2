/**
 * Istio's validators on the VirtualServices placement writes beyond the golden cases (docs/adr/
 * 0008): gateway-bound copies, copies limited by match-level `gateways`, delegate copies, and
 * meshfork's own VirtualService exported next to a scoped user one. `istioctl validate` accepts
 * the output and `istioctl analyze --use-kube=false` finds no error the inventory alone does not
 * have; an owned VirtualService exported everywhere instead (`exportTo: ["*"]`, the alternative
 * ADR 0008 rejects) is reported as IST0109.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireTestbin } from '../support/control-plane-testbin.js';
import { istioSampleObjects, requireIstioSamples } from '../support/istio-samples.js';
import { formatAnalyzeMessage, istioctlAnalyze, istioctlValidate } from '../support/istioctl.js';
import { plan, type PlanConfig } from '../../src/planner/plan.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { ENVOYFILTER_NOTICE, errors, newFindings } from './analyze.js';

const work = mkdtempSync(join(tmpdir(), 'meshfork-vs-placement-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sample = (path: string) => istioSampleObjects<KubeObject>(path);

const vs = (namespace: string, name: string, spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const namespace = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });

function inventory(): KubeObject[] {
  return [
    ...sample('bookinfo/platform/kube/bookinfo.yaml'),
    ...sample('bookinfo/networking/destination-rule-all.yaml'),
    ...sample('bookinfo/networking/bookinfo-gateway.yaml'),
    namespace('shop'),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'client', namespace: 'shop' },
      spec: { selector: { matchLabels: { app: 'client' } }, template: { metadata: { labels: { app: 'client' } }, spec: { containers: [{ name: 'c', image: 'curl' }] } } },
    },
    vs('default', 'productpage-edge', { hosts: ['productpage', 'bookinfo.example.com'], gateways: ['bookinfo-gateway', 'mesh'], http: [{ route: [{ destination: { host: 'productpage', port: { number: 9080 } } }] }] }),
    vs('default', 'reviews', { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v3' } }] }] }),
    vs('default', 'ratings-root', { hosts: ['ratings.example.com'], gateways: ['bookinfo-gateway', 'mesh'], http: [{ match: [{ uri: { prefix: '/ratings' } }], delegate: { name: 'ratings-routes' } }] }),
    vs('default', 'ratings-routes', { http: [{ route: [{ destination: { host: 'ratings', subset: 'v1' } }] }] }),
  ];
}

const sandbox: SandboxObject = {
  apiVersion: 'meshfork.dev/v1alpha1',
  kind: 'Sandbox',
  metadata: { name: 'sb', namespace: 'default' },
  spec: { routingKey: 'sbkey001', forks: ['productpage-v1', 'reviews-v3', 'ratings-v1'].map((name) => ({ forkOf: { kind: 'Deployment' as const, name } })) },
};

const id = (o: KubeObject) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
function write(file: string, objects: readonly KubeObject[]): string {
  const path = join(work, file);
  writeFileSync(path, objects.map((o) => `---\n${stringify(o)}`).join(''));
  return path;
}
/** The inventory with the output applied over it (merged user objects replaced). */
function applied(output: readonly KubeObject[]): KubeObject[] {
  const out = new Set(output.map(id));
  return [...inventory().filter((o) => !out.has(id(o))), ...output];
}

describe.skipIf(!requireTestbin() || !requireIstioSamples())('istioctl on gateway, delegate and exportTo placement', () => {
  for (const [name, config] of [
    ['gateway copies off', {}],
    ['gateway copies on (ingress guard)', { ingressGuard: { enabled: true } }],
  ] as Array<[string, Partial<PlanConfig>]>) {
    it(`${name}: validate accepts the output, analyze finds no new error`, async () => {
      const result = plan({ inventory: inventoryOf(inventory()), sandboxes: [sandbox], config });
      expect(result.problems).toEqual([]);
      const virtualServices = result.objects.filter((o) => o.kind === 'VirtualService').map(id);
      expect(virtualServices).toEqual(
        expect.arrayContaining(['VirtualService default/productpage-edge', 'VirtualService default/ratings-routes', 'VirtualService default/reviews', 'VirtualService default/reviews-meshfork']),
      );
      const validate = await istioctlValidate([write(`${name}.out.yaml`, result.objects)]);
      expect(validate.code).toBe(0);
      expect(validate.output).not.toMatch(/error/i);
      expect(validate.warnings.filter((w) => !w.includes(ENVOYFILTER_NOTICE))).toEqual([]);
      const before = await istioctlAnalyze([write(`${name}.before.yaml`, inventory())]);
      const after = await istioctlAnalyze([write(`${name}.after.yaml`, applied(result.objects))]);
      const added = errors(newFindings(before.messages, after.messages));
      expect(added.map(formatAnalyzeMessage)).toEqual([]);
    });
  }

  it('the rejected alternative, meshfork\'s VirtualService exported everywhere next to a scoped one, is IST0109', async () => {
    const result = plan({ inventory: inventoryOf(inventory()), sandboxes: [sandbox] });
    const everywhere = result.objects.map((o) => (id(o) === 'VirtualService default/reviews-meshfork' ? { ...o, spec: { ...(o.spec as object), exportTo: ['*'] } } : o));
    const after = await istioctlAnalyze([write('everywhere.after.yaml', applied(everywhere))]);
    expect(errors(after.messages).filter((m) => m.code === 'IST0109').map((m) => m.origin).sort()).toEqual(['VirtualService default/reviews', 'VirtualService default/reviews-meshfork']);
  });
});

/**
 * Policy copies on manifests nobody here wrote, read from the Go module cache: the inputs of
 * istioctl analyze's own analyzer tests in istio.io/istio (pkg/config/analysis/analyzers/testdata:
 * AuthorizationPolicies around httpbin, Telemetry and Sidecar selectors over Bookinfo's labels),
 * Bookinfo from shared/fixtures, and Kubernetes' e2e test manifests (a PodDisruptionBudget).
 * See docs/adr/0010-policy-copies-follow-forks.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { SandboxObject } from '../../src/api/schema.js';
import { loadInputs } from '../../src/manifests/load.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan, type PlanResult } from '../../src/planner/plan.js';
import { FIXTURES } from '../support/cli.js';
import { moduleDir, requireModules } from '../support/istio-samples.js';

const istio = moduleDir('istio', 'istio.io/istio');
const kubernetes = moduleDir('kubernetes', 'k8s.io/kubernetes');
const dataset = (file: string) => join(istio as string, 'pkg/test/datasets/validation/dataset', file);
const analyzerInput = (file: string) => join(istio as string, 'pkg/config/analysis/analyzers/testdata', file);
const COPY_LABELS = { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'pr1' };

function sandbox(namespace: string, ...deployments: string[]): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 'pr1', namespace },
    spec: { forks: deployments.map((name) => ({ forkOf: { kind: 'Deployment', name } })) },
  } as SandboxObject;
}

const copies = (result: PlanResult) => result.objects.filter((o) => o.metadata.annotations?.['meshfork.dev/copy-of'] !== undefined);
const ids = (objects: readonly KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name} <- ${o.metadata.annotations?.['meshfork.dev/copy-of']}`);

describe.skipIf(!requireModules(istio, kubernetes))('label-selected policies of real manifests follow the fork', () => {
  it("istioctl analyze's AuthorizationPolicy input: every httpbin policy of its namespace is copied, the others are not", () => {
    const input = loadInputs([analyzerInput('authorizationpolicies.yaml')], 'default');
    expect(input.problems).toEqual([]);
    const result = plan({ inventory: input.inventory, sandboxes: [sandbox('httpbin', 'httpbin')] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([]);
    // Not copied: httpbin-namespace-wide and istio-system/meshwide-httpbin (no selector: they
    // apply to the fork already), httpbin-nopods and meshwide-httpbin-v1 (other labels),
    // test-ambient/no-workload and httpbin-empty/* (other namespaces).
    expect(ids(copies(result))).toEqual([
      'AuthorizationPolicy httpbin/httpbin-bogus-not-ns-httpbin-pr1 <- AuthorizationPolicy/httpbin-bogus-not-ns',
      'AuthorizationPolicy httpbin/httpbin-bogus-ns-httpbin-pr1 <- AuthorizationPolicy/httpbin-bogus-ns',
      'AuthorizationPolicy httpbin/httpbin-httpbin-pr1 <- AuthorizationPolicy/httpbin',
    ]);
    expect(copies(result)[2]).toEqual({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'httpbin-httpbin-pr1', namespace: 'httpbin', labels: COPY_LABELS, annotations: { 'meshfork.dev/copy-of': 'AuthorizationPolicy/httpbin' } },
      spec: {
        selector: { matchLabels: { app: 'httpbin-pr1', version: 'v1-pr1', 'meshfork.dev/sandbox': 'pr1' } },
        rules: [
          {
            from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }, { source: { namespaces: ['httpbin'] } }],
            to: [{ operation: { methods: ['GET'], paths: ['/info*'] } }, { operation: { methods: ['POST'], paths: ['/data'] } }],
            when: [{ key: 'request.auth.claims[iss]', values: ['https://accounts.google.com'] }],
          },
        ],
      },
    });
    // The copies are applied before the fork runs.
    expect(result.objects.findIndex((o) => o.kind === 'Deployment')).toBe(3);
  });

  it("istioctl analyze's Telemetry and Sidecar selector inputs over Bookinfo: the reviews and productpage forks get theirs", () => {
    const input = loadInputs([`${FIXTURES}bookinfo/bookinfo.yaml`, analyzerInput('telemetry-selector.yaml')], 'default');
    expect(input.problems).toEqual([]);
    const sidecars = parseAllDocuments(readFileSync(analyzerInput('sidecar-selector.yaml'), 'utf8'))
      .map((d) => d.toJS() as KubeObject)
      .filter((o) => o.kind === 'Sidecar');
    const inventory = { ...input.inventory, policies: [...(input.inventory.policies ?? []), ...sidecars] };
    const result = plan({ inventory, sandboxes: [sandbox('default', 'reviews-v1', 'productpage-v1')] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([]);
    // dupe-1/dupe-2 select app: reviews (every reviews version); maps-correctly-no-conflicts
    // selects app: productpage. maps-to-different-ns (namespace other), maps-to-nonexistent and
    // overlap-* (ratings labels) select neither baseline.
    expect(ids(copies(result))).toEqual([
      'Sidecar default/dupe-1-reviews-v1-pr1 <- Sidecar/dupe-1',
      'Sidecar default/dupe-2-reviews-v1-pr1 <- Sidecar/dupe-2',
      'Sidecar default/maps-correctly-no-conflicts-productpage-v1-pr1 <- Sidecar/maps-correctly-no-conflicts',
      'Telemetry default/dupe-1-reviews-v1-pr1 <- Telemetry/dupe-1',
      'Telemetry default/dupe-2-reviews-v1-pr1 <- Telemetry/dupe-2',
      'Telemetry default/maps-correctly-no-conflicts-productpage-v1-pr1 <- Telemetry/maps-correctly-no-conflicts',
    ]);
    const sidecar = copies(result).find((o) => o.metadata.name === 'maps-correctly-no-conflicts-productpage-v1-pr1');
    expect(sidecar).toEqual({
      apiVersion: 'networking.istio.io/v1',
      kind: 'Sidecar',
      metadata: {
        name: 'maps-correctly-no-conflicts-productpage-v1-pr1',
        namespace: 'default',
        labels: COPY_LABELS,
        annotations: { 'meshfork.dev/copy-of': 'Sidecar/maps-correctly-no-conflicts' },
      },
      spec: { workloadSelector: { labels: { app: 'productpage-pr1', version: 'v1-pr1', 'meshfork.dev/sandbox': 'pr1' } }, egress: [{ hosts: ['./*'] }] },
    });
  });

  it("Istio's validation dataset PeerAuthentication, RequestAuthentication and WasmPlugin over samples/httpbin: the fork gets each, with its labels", () => {
    const input = loadInputs(
      [join(istio as string, 'samples/httpbin/httpbin.yaml'), dataset('security-v1-PeerAuthentication.yaml'), dataset('security-v1-RequestAuthentication.yaml')],
      'default',
    );
    expect(input.problems).toEqual([]);
    // The dataset's WasmPlugin selects `istio: ingressgateway`, a gateway no sample deploys: the
    // same object with httpbin's labels in its selector.
    const wasm = parseAllDocuments(readFileSync(dataset('extensions-v1alpha1-WasmPlugin.yaml'), 'utf8'))[0]!.toJS() as KubeObject;
    const httpbinWasm = { ...wasm, metadata: { ...wasm.metadata, namespace: 'default' }, spec: { ...(wasm.spec as object), selector: { matchLabels: { app: 'httpbin', version: 'v1' } } } };
    const inventory = { ...input.inventory, policies: [...(input.inventory.policies ?? []), httpbinWasm] };
    const result = plan({ inventory, sandboxes: [sandbox('default', 'httpbin')] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([]);
    const forkSelector = { matchLabels: { app: 'httpbin-pr1', version: 'v1-pr1', 'meshfork.dev/sandbox': 'pr1' } };
    const meta = (kind: string, name: string) => ({ name: `${name}-httpbin-pr1`, namespace: 'default', labels: COPY_LABELS, annotations: { 'meshfork.dev/copy-of': `${kind}/${name}` } });
    expect(copies(result)).toEqual([
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: meta('PeerAuthentication', 'valid-peer-authentication'),
        spec: { selector: forkSelector, mtls: { mode: 'PERMISSIVE' }, portLevelMtls: { 8080: { mode: 'STRICT' } } },
      },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'RequestAuthentication',
        metadata: meta('RequestAuthentication', 'valid-request-authentication'),
        spec: { selector: forkSelector, jwtRules: [{ issuer: 'example.com' }] },
      },
      {
        apiVersion: 'extensions.istio.io/v1alpha1',
        kind: 'WasmPlugin',
        metadata: meta('WasmPlugin', 'valid'),
        spec: { ...(wasm.spec as object), selector: forkSelector },
      },
    ]);
  });

  it("Kubernetes' e2e mysql tester: its PodDisruptionBudget does not cover the fork, and a note says so", () => {
    const file = join(kubernetes as string, 'test/e2e/testing-manifests/statefulset/mysql-upgrade/tester.yaml');
    const input = loadInputs([file], 'default');
    expect(input.problems).toEqual([]);
    const result = plan({ inventory: input.inventory, sandboxes: [sandbox('default', 'mysql-test-server')] });
    expect(result.problems).toEqual([]);
    expect(copies(result)).toEqual([]);
    expect(result.notes.filter((n) => n.message.includes('PodDisruptionBudget'))).toEqual([
      {
        object: 'Sandbox default/pr1',
        path: 'spec.forks[0].forkOf.name',
        message:
          'PodDisruptionBudget default/tester-pdb selects the pods of Deployment mysql-test-server (spec.selector) but not its fork mysql-test-server-pr1; meshfork does not copy PodDisruptionBudget objects, so it does not apply to the fork',
      },
    ]);
  });
});

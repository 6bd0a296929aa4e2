/**
 * The golden synth cases: real fixtures from ../shared/fixtures (unmodified) plus the sandbox
 * specs in test/golden/inputs/<name>/. Used by the golden-file tests and the integration suites.
 */
import { FIXTURES, GOLDEN_INPUTS } from './cli.js';
import { istioSample } from './istio-samples.js';

export interface GoldenCase {
  readonly name: string;
  /** Inventory files, relative to ../shared/fixtures/. */
  readonly files: readonly string[];
  readonly flags?: readonly string[];
  /** Inventory files of Istio's samples, relative to `samples/` of the pinned istio.io/istio (istio-samples.ts). */
  readonly samples?: readonly string[];
}

export const GOLDEN_CASES: readonly GoldenCase[] = [
  {
    name: 'bookinfo-reviews',
    files: ['bookinfo/bookinfo.yaml', 'bookinfo/virtual-service-reviews-test-v2.yaml', 'bookinfo/destination-rule-all-mtls.yaml'],
  },
  { name: 'boutique-cart', files: ['online-boutique/kubernetes-manifests.yaml', 'online-boutique/istio-manifests.yaml'] },
  { name: 'routegroup', files: ['bookinfo/bookinfo.yaml', 'bookinfo/destination-rule-all-mtls.yaml', 'bookinfo/virtual-service-all-v1.yaml'] },
  { name: 'split', files: ['bookinfo/bookinfo.yaml', 'bookinfo/virtual-service-reviews-90-10.yaml'] },
  {
    name: 'signadot',
    files: ['hotrod/k8s/base/route.yaml', 'hotrod/k8s/base/frontend.yaml', 'hotrod/k8s/overlays/prod/istio/virtual-service.yaml'],
    flags: ['--compat', 'signadot', '-n', 'hotrod'],
  },
];

/**
 * Golden cases of the gatewayAPI routing mode (src/planner/http-route.ts): Istio's own Gateway API
 * Bookinfo routes (`samples/bookinfo/gateway-api/`, read from the Go module cache, see
 * istio-samples.ts) and an inventory of ours with several rules, filters and timeouts
 * (test/golden/inputs/gateway-api-rules/). Kept apart from GOLDEN_CASES, whose inventories the
 * integration and e2e suites apply to API servers that may not serve Gateway API.
 */
export const GATEWAY_GOLDEN_CASES: readonly GoldenCase[] = [
  {
    name: 'gateway-api-reviews-90-10',
    files: ['bookinfo/bookinfo.yaml'],
    samples: ['bookinfo/platform/kube/bookinfo-versions.yaml', 'bookinfo/gateway-api/route-reviews-90-10.yaml'],
  },
  {
    name: 'gateway-api-reviews-50-v3',
    files: ['bookinfo/bookinfo.yaml'],
    samples: ['bookinfo/platform/kube/bookinfo-versions.yaml', 'bookinfo/gateway-api/route-reviews-50-v3.yaml'],
    flags: ['--routing-mode', 'gatewayAPI'],
  },
  {
    name: 'gateway-api-all-v1',
    files: ['bookinfo/bookinfo.yaml'],
    samples: ['bookinfo/platform/kube/bookinfo-versions.yaml', 'bookinfo/gateway-api/route-all-v1.yaml', 'bookinfo/gateway-api/bookinfo-gateway.yaml'],
  },
  { name: 'gateway-api-rules', files: [] },
];

/** `meshfork synth` arguments of a golden case. */
export function goldenArgs(c: GoldenCase): string[] {
  const samples = (c.samples ?? []).map((f) => istioSample(f));
  return ['synth', ...(c.flags ?? []), '-f', ...c.files.map((f) => FIXTURES + f), ...samples, GOLDEN_INPUTS + c.name];
}

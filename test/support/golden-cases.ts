/**
 * The golden synth cases: real fixtures from ../shared/fixtures (unmodified) plus the sandbox
 * specs in test/golden/inputs/<name>/. Used by the golden-file tests and the integration suites.
 */
import { FIXTURES, GOLDEN_INPUTS } from './cli.js';

export interface GoldenCase {
  readonly name: string;
  /** Inventory files, relative to ../shared/fixtures/. */
  readonly files: readonly string[];
  readonly flags?: readonly string[];
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

/** `meshfork synth` arguments of a golden case. */
export function goldenArgs(c: GoldenCase): string[] {
  return ['synth', ...(c.flags ?? []), '-f', ...c.files.map((f) => FIXTURES + f), GOLDEN_INPUTS + c.name];
}

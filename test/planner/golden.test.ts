/**
 * Golden files: input manifests (real fixtures from ../shared/fixtures, unmodified, plus the
 * sandbox specs in test/golden/inputs/) -> the exact YAML `meshfork synth` prints.
 * Regenerate after an intended change with `npx vitest run test/planner/golden.test.ts -u`
 * and review the diff.
 */
import { describe, expect, it } from 'vitest';
import { cli, FIXTURES, GOLDEN_INPUTS } from '../support/cli.js';

interface GoldenCase {
  name: string;
  files: string[];
  flags?: string[];
}

export const GOLDEN_CASES: GoldenCase[] = [
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

export function goldenArgs(c: GoldenCase): string[] {
  return ['synth', ...(c.flags ?? []), '-f', ...c.files.map((f) => FIXTURES + f), GOLDEN_INPUTS + c.name];
}

describe('golden synth output', () => {
  for (const c of GOLDEN_CASES) {
    it(c.name, async () => {
      const first = cli(...goldenArgs(c));
      expect(first.stderr.split('\n').filter((l) => l && !l.startsWith('note: '))).toEqual([]);
      expect(first.code).toBe(0);
      await expect(first.stdout).toMatchFileSnapshot(`../golden/${c.name}.golden.yaml`);
      // Same input, byte-identical output.
      expect(cli(...goldenArgs(c)).stdout).toBe(first.stdout);
    });
  }
});

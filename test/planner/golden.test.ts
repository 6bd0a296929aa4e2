/**
 * Golden files: input manifests (real fixtures from ../shared/fixtures and Istio's samples from the
 * Go module cache, unmodified, plus the sandbox specs in test/golden/inputs/) -> the exact YAML
 * `meshfork synth` prints.
 * Regenerate after an intended change with `npx vitest run test/planner/golden.test.ts -u`
 * and review the diff.
 */
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { GATEWAY_GOLDEN_CASES, GOLDEN_CASES, goldenArgs, type GoldenCase } from '../support/golden-cases.js';
import { requireIstioSamples } from '../support/istio-samples.js';

function goldenTest(c: GoldenCase): void {
  it(c.name, async () => {
    const first = cli(...goldenArgs(c));
    expect(first.stderr.split('\n').filter((l) => l && !l.startsWith('note: '))).toEqual([]);
    expect(first.code).toBe(0);
    await expect(first.stdout).toMatchFileSnapshot(`../golden/${c.name}.golden.yaml`);
    // Same input, byte-identical output.
    expect(cli(...goldenArgs(c)).stdout).toBe(first.stdout);
  });
}

describe('golden synth output', () => {
  for (const c of [...GOLDEN_CASES, ...GATEWAY_GOLDEN_CASES.filter((g) => g.samples === undefined)]) goldenTest(c);
});

describe.skipIf(!requireIstioSamples())("golden synth output on Istio's Gateway API samples", () => {
  for (const c of GATEWAY_GOLDEN_CASES.filter((g) => g.samples !== undefined)) goldenTest(c);
});

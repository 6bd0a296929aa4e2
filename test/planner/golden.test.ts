/**
 * Golden files: input manifests (real fixtures from ../shared/fixtures, unmodified, plus the
 * sandbox specs in test/golden/inputs/) -> the exact YAML `meshfork synth` prints.
 * Regenerate after an intended change with `npx vitest run test/planner/golden.test.ts -u`
 * and review the diff.
 */
import { describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';
import { GOLDEN_CASES, goldenArgs } from '../support/golden-cases.js';

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

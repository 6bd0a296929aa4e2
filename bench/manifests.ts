/**
 * Manifest loading cost as input grows (issue 8, item 5: a hostile file within the size caps
 * must not take minutes of CPU).
 *
 * `manifests-map-keys`: `loadInputs` (read, parse, duplicate-key check, toJS, size/depth
 * measure) on one ConfigMap whose `data` map has 40,000 keys (about 0.5 MB) against the same
 * with 4,000 keys. Linear work gives 10×; the target ≤ 15× leaves room for noise and GC, and a
 * quadratic step (the YAML parser's own duplicate-key check compares every key with every
 * earlier one) gives about 100×. Rounds alternate the two sizes; minimum of each, ratio of the
 * minima.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadInputs } from '../src/manifests/load.js';
import type { BenchResult, BenchSuite } from './report.js';

const SMALL = 4_000;
const LARGE = 40_000;
const ROUNDS = 7;

function configMap(keys: number): string {
  const lines = ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: many-keys', 'data:'];
  for (let i = 0; i < keys; i++) lines.push(`  k${i}: "v${i}"`);
  return `${lines.join('\n')}\n`;
}

/** Milliseconds one `loadInputs` of `file` takes; fails loudly if the file is not read cleanly. */
function timeLoad(file: string): number {
  const t0 = process.hrtime.bigint();
  const loaded = loadInputs([file], 'default');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (loaded.problems.length > 0) throw new Error(`bench input has problems: ${JSON.stringify(loaded.problems[0])}`);
  return ms;
}

export const manifestsSuite: BenchSuite = {
  name: 'manifests',
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-bench-manifests-'));
    try {
      const small = join(dir, 'small.yaml');
      const large = join(dir, 'large.yaml');
      writeFileSync(small, configMap(SMALL));
      writeFileSync(large, configMap(LARGE));
      timeLoad(small); // warm-up: module initialisation and JIT
      timeLoad(large);
      const s: number[] = [];
      const l: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        s.push(timeLoad(small));
        l.push(timeLoad(large));
        log(`round ${round + 1}: ${SMALL} keys ${s.at(-1)!.toFixed(1)} ms, ${LARGE} keys ${l.at(-1)!.toFixed(1)} ms`);
      }
      const base = Math.min(...s);
      const cand = Math.min(...l);
      const result: BenchResult = {
        id: 'manifests-map-keys',
        title: `load one map of ${LARGE} vs ${SMALL} keys`,
        baseline: { label: `${SMALL} keys`, value: base, unit: 'ms' },
        candidate: { label: `${LARGE} keys`, value: cand, unit: 'ms' },
        ratio: cand / base,
        target: 15,
        extra: { small_ms: base, large_ms: cand, large_bytes: configMap(LARGE).length },
      };
      return [result];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

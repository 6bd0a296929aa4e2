/**
 * Manifest loading cost as input grows (issue 8, item 5: a hostile file within the size caps
 * must not take minutes of CPU; issue 9, item 9: real repository layouts).
 *
 * `manifests-map-keys`: `loadInputs` (read, parse, duplicate-key check, toJS, size/depth
 * measure) on one ConfigMap whose `data` map has 40,000 keys (about 0.5 MB) against the same
 * with 4,000 keys. Linear work gives 10×; the target ≤ 15× leaves room for noise and GC, and a
 * quadratic step (the YAML parser's own duplicate-key check compares every key with every
 * earlier one) gives about 100×. Rounds alternate the two sizes; minimum of each, ratio of the
 * minima.
 *
 * `manifests-kustomize-skip`: `loadInputs` on a directory tree of kustomize overlays, each
 * directory a kustomization.yaml naming 20 patch entries (10 of them files that exist and are
 * skipped, 10 absent) and 2 configMapGenerator files, beside 2 manifests that are read; 4x the
 * directories (and so 4x the files, entries and notes) against 1x. Matching every file against
 * every kustomization's entries is quadratic (16x); the lookup by path and parent directories
 * (src/manifests/load.ts) is linear, 4x. Target <= 5x.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Milliseconds one `loadInputs` of `path` takes; fails loudly if it is not read cleanly. */
function timeLoad(path: string, expect?: { objects: number; notes: number }): number {
  const t0 = process.hrtime.bigint();
  const loaded = loadInputs([path], 'default');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (loaded.problems.length > 0) throw new Error(`bench input has problems: ${JSON.stringify(loaded.problems[0])}`);
  if (expect !== undefined && (loaded.sources.size !== expect.objects || loaded.notes.length !== expect.notes)) {
    throw new Error(`bench input read as ${loaded.sources.size} objects and ${loaded.notes.length} notes, expected ${expect.objects} and ${expect.notes}`);
  }
  return ms;
}

const OVERLAYS = 60;
const PATCH_FILES = 10;
const ABSENT_PATCHES = 10;
const GENERATOR_FILES = 2;
const MANIFESTS = 2;

/** `overlays` kustomize directories under `root`; returns how many objects and notes reading it gives. */
function writeOverlays(root: string, overlays: number): { objects: number; notes: number } {
  for (let d = 0; d < overlays; d++) {
    const dir = join(root, 'overlays', `o${d}`);
    mkdirSync(join(dir, 'patches'), { recursive: true });
    const lines = ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'resources:'];
    for (let m = 0; m < MANIFESTS; m++) lines.push(`  - cm${m}.yaml`);
    lines.push('patches:');
    for (let p = 0; p < PATCH_FILES + ABSENT_PATCHES; p++) lines.push(`  - path: patches/p${p}.yaml`);
    lines.push('configMapGenerator:', `  - name: gen${d}`, '    files:');
    for (let g = 0; g < GENERATOR_FILES; g++) lines.push(`      - key${g}=config/c${g}.yaml`);
    writeFileSync(join(dir, 'kustomization.yaml'), `${lines.join('\n')}\n`);
    for (let p = 0; p < PATCH_FILES; p++) {
      writeFileSync(join(dir, 'patches', `p${p}.yaml`), `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: ${p + 2}}\n`);
    }
    mkdirSync(join(dir, 'config'));
    // Generator input is not a Kubernetes object: read, it would be a problem.
    for (let g = 0; g < GENERATOR_FILES; g++) writeFileSync(join(dir, 'config', `c${g}.yaml`), `level: debug\nreplicas: ${g}\n`);
    for (let m = 0; m < MANIFESTS; m++) {
      writeFileSync(join(dir, `cm${m}.yaml`), `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm${m}, namespace: ns${d}}\ndata: {k: v}\n`);
    }
  }
  return { objects: overlays * MANIFESTS, notes: overlays };
}

function kustomizeSkip(dir: string, log: (line: string) => void): BenchResult {
  const small = join(dir, 'kustomize-1x');
  const large = join(dir, 'kustomize-4x');
  const expectSmall = writeOverlays(small, OVERLAYS);
  const expectLarge = writeOverlays(large, 4 * OVERLAYS);
  timeLoad(small, expectSmall); // warm-up
  timeLoad(large, expectLarge);
  const s: number[] = [];
  const l: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    s.push(timeLoad(small, expectSmall));
    l.push(timeLoad(large, expectLarge));
    log(`round ${round + 1}: ${OVERLAYS} overlays ${s.at(-1)!.toFixed(1)} ms, ${4 * OVERLAYS} overlays ${l.at(-1)!.toFixed(1)} ms`);
  }
  const filesPer = 1 + PATCH_FILES + GENERATOR_FILES + MANIFESTS;
  const base = Math.min(...s);
  const cand = Math.min(...l);
  return {
    id: 'manifests-kustomize-skip',
    title: `kustomize overlays skipped, ${4 * OVERLAYS} vs ${OVERLAYS} directories`,
    baseline: { label: `${OVERLAYS * filesPer} files`, value: base, unit: 'ms' },
    candidate: { label: `${4 * OVERLAYS * filesPer} files`, value: cand, unit: 'ms' },
    ratio: cand / base,
    target: 5,
    extra: { small_ms: base, large_ms: cand, files_small: OVERLAYS * filesPer, files_large: 4 * OVERLAYS * filesPer },
  };
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
      return [result, kustomizeSkip(dir, log)];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

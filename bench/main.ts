/**
 * `npm run bench`: runs every registered suite, prints one table and, beside it, one
 * machine-readable `BENCH <id> ratio=<x> ...` line per benchmark. Add a suite by writing a
 * `bench/<area>.ts` module exporting a {@link BenchSuite} and listing it in SUITES.
 * Each suite bounds its own time; the whole run stays well under two minutes.
 * `npm run bench -- <suite>...` runs only the named suites. Suites and their benchmarks:
 *  - sdk: `sdk-propagation`, `sdk-http-hop` (bench/sdk.ts);
 *  - manifests: `manifests-map-keys` (one 40k-key map vs 4k), `manifests-kustomize-skip`
 *    (kustomize overlays whose patch and generator files are skipped, 4x vs 1x) (bench/manifests.ts);
 *  - planner: `planner-scaling` (plan() of 2000 vs 200 Sandboxes) (bench/planner.ts);
 *  - synth: `synth-1000x500` (meshfork synth of 1000 services and 500 Sandboxes vs plain YAML
 *    parse + stringify of its input and output, with its time and peak memory) (bench/synth.ts).
 */
import { type BenchResult, type BenchSuite, benchLine, table } from './report.js';
import { manifestsSuite } from './manifests.js';
import { plannerSuite } from './planner.js';
import { sdkSuite } from './sdk.js';
import { synthSuite } from './synth.js';

const SUITES: readonly BenchSuite[] = [sdkSuite, manifestsSuite, plannerSuite, synthSuite];

const only = process.argv.slice(2);
const started = Date.now();
const results: BenchResult[] = [];
for (const suite of SUITES) {
  if (only.length > 0 && !only.includes(suite.name)) continue;
  const t0 = Date.now();
  console.log(`# suite ${suite.name}`);
  results.push(...(await suite.run((line) => console.log(`  ${line}`))));
  console.log(`# suite ${suite.name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
console.log('');
console.log(table(results));
console.log('');
for (const r of results) console.log(benchLine(r));
console.log(`# total ${((Date.now() - started) / 1000).toFixed(1)} s`);

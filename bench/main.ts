/**
 * `npm run bench`: runs every registered suite, prints one table and, beside it, one
 * machine-readable `BENCH <id> ratio=<x> ...` line per benchmark. Add a suite by writing a
 * `bench/<area>.ts` module exporting a {@link BenchSuite} and listing it in SUITES.
 *
 * `npm run bench` runs the quick suites (each bounds its own time; together well under two
 * minutes). `npm run bench -- <name>...` runs the suites named; opt-in suites (the controller's,
 * which start a real control plane and take many minutes) run only when named or with `all`.
 * Suites and their benchmarks:
 *  - sdk: `sdk-propagation`, `sdk-http-hop` (bench/sdk.ts);
 *  - manifests: `manifests-map-keys` (one 40k-key map vs 4k), `manifests-kustomize-skip`
 *    (kustomize overlays whose patch and generator files are skipped, 4x vs 1x) (bench/manifests.ts);
 *  - planner: `planner-scaling` (plan() of 2000 vs 200 Sandboxes) (bench/planner.ts);
 *  - synth: `synth-1000x500` (meshfork synth of 1000 services and 500 Sandboxes vs plain YAML
 *    parse + stringify of its input and output, with its time and peak memory) (bench/synth.ts);
 *  - controller (opt-in): bench/controller.ts, described in docs/controller.md "Benchmarks";
 *  - controller-rpc (opt-in): `controller-apply-to-keyed-rpc`, kubectl apply of a Sandbox -> first
 *    keyed RPC on its forks through real istiod, controller vs a plain apply of synth's objects
 *    (bench/controller-rpc.ts).
 */
import { type BenchResult, type BenchSuite, benchLine, table } from './report.js';
import { controllerSuite } from './controller.js';
import { controllerRpcSuite } from './controller-rpc.js';
import { manifestsSuite } from './manifests.js';
import { plannerSuite } from './planner.js';
import { sdkSuite } from './sdk.js';
import { synthSuite } from './synth.js';

const SUITES: readonly BenchSuite[] = [sdkSuite, manifestsSuite, plannerSuite, synthSuite, controllerSuite, controllerRpcSuite];

const only = process.argv.slice(2);
const unknown = only.filter((name) => name !== 'all' && !SUITES.some((s) => s.name === name));
if (unknown.length > 0) {
  console.error(`unknown suite ${unknown.join(', ')}: give one of ${SUITES.map((s) => s.name).join(', ')}, all`);
  process.exit(2);
}
const selected = (suite: BenchSuite) => (only.length === 0 ? !suite.optIn : only.includes('all') || only.includes(suite.name));
const started = Date.now();
const results: BenchResult[] = [];
for (const suite of SUITES) {
  if (!selected(suite)) {
    if (suite.optIn && only.length === 0) console.log(`# suite ${suite.name} not selected (opt-in: npm run bench -- ${suite.name})`);
    continue;
  }
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

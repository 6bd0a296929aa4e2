/**
 * Runs the real cdk8s CLI (cdk8s-cli, `cdk8s synth`) on examples/gitops, as a GitOps pipeline would,
 * and checks that dist/*.k8s.yaml holds exactly the planner's objects: the documents the meshfork
 * CLI prints for the same specs (the example's YAML plus the Sandbox it declares in code).
 *
 * Offline: `--no-check-upgrade` stops cdk8s-cli from fetching its latest version from the npm
 * registry at start-up (lib/upgrades.js); no `imports` and no `validations` in cdk8s.yaml, so
 * nothing else is downloaded; `npx tsx` resolves the repository's own tsx.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { objectRef } from '../../src/planner/plan.js';
import { readManifests, Sandbox } from '../../src/cdk8s/index.js';
import { bookinfoChart } from '../../examples/gitops/chart.js';
import { BOOKINFO, cdk8sSynth, cliSynth, documents, REPO, writeTempYaml } from './support.js';


/** What `meshfork synth` prints for the example: its YAML inputs plus the Sandboxes declared in code. */
function expectedObjects(): unknown[] {
  const fromYaml = new Set(readManifests(BOOKINFO).sandboxes.map(objectRef));
  const chart = bookinfoChart(Testing.app());
  const inCode = chart.node
    .findAll()
    .filter((c): c is Sandbox => c instanceof Sandbox)
    .map((s) => s.toObject())
    .filter((o) => !fromYaml.has(objectRef(o)));
  expect(inCode.map((o) => o.metadata.name)).toEqual(['pr-42']);
  return documents(cliSynth([BOOKINFO, writeTempYaml('code-sandboxes.yaml', inCode)]));
}

describe('cdk8s synth (cdk8s-cli) on examples/gitops', () => {
  it('writes dist/bookinfo.k8s.yaml with exactly the planner objects, from examples/gitops and from the repository root', { timeout: 60_000 }, async () => {
    const expected = expectedObjects();
    expect(expected.filter((o) => (o as { kind: string }).kind === 'VirtualService')).toHaveLength(1);

    const [example, root] = await Promise.all([cdk8sSynth(join(REPO, 'examples/gitops')), cdk8sSynth(REPO)]);
    for (const { outdir, stdout, stderr } of [example, root]) {
      expect(readdirSync(outdir)).toEqual(['bookinfo.k8s.yaml']);
      expect(stdout).toContain('bookinfo.k8s.yaml');
      expect(stderr).toContain('sandbox default/pr-42: routing key ');
      // cdk8s writes YAML 1.1 (cdk8s lib/yaml.js); compare documents, in order.
      expect(documents(readFileSync(join(outdir, 'bookinfo.k8s.yaml'), 'utf8'), '1.1')).toEqual(expected);
    }
  });
});

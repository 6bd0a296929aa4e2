// The bundle the controller image runs (scripts/bundle.mjs, ADR 0022), made from the current
// sources: the offline commands give exactly what the sources give in-process, including the
// paths that read files beside the module at run time (the Lua filters of synth, re2-wasm's
// re2.wasm behind `routes`). controller-process.test.ts runs the same bundle as a controller.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClusterCli } from '../../src/cli/cluster/command.js';
import { cli, FIXTURES } from '../support/cli.js';

const REPO = new URL('../../', import.meta.url).pathname;
const BOOKINFO = FIXTURES + 'bookinfo/';
const work = mkdtempSync(join(tmpdir(), 'meshfork-bundle-'));
const bundleDir = join(work, 'bundle');
afterAll(() => rmSync(work, { recursive: true, force: true }));

function bundled(...argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(bundleDir, 'meshfork.mjs'), ...argv], { cwd: work, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the bundled meshfork executable', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [`${REPO}scripts/bundle.mjs`, bundleDir], { cwd: REPO, stdio: 'pipe' });
    writeFileSync(join(work, 'sandbox.yaml'), 'apiVersion: meshfork.dev/v1alpha1\nkind: Sandbox\nmetadata: {name: jason-v2}\nspec:\n  routingKey: k7f3q9\n  forks:\n    - forkOf: {kind: Deployment, name: reviews-v2}\n');
  }, 120_000);

  it('is one module with the files it reads beside it, and the licences of the code it holds', () => {
    expect(readdirSync(bundleDir).sort()).toEqual(['THIRD_PARTY_LICENSES', 'fork-affinity.lua', 'ingress-guard.lua', 'meshfork.mjs', 're2.wasm']);
    const licences = readFileSync(join(bundleDir, 'THIRD_PARTY_LICENSES'), 'utf8');
    const packages = [...licences.matchAll(/^(@?[a-z0-9._-]+(?:\/[a-z0-9._-]+)?)@\d[^ ]* \(/gm)].map((m) => m[1]);
    // Every dependency the controller and CLI import at the top, and what they bring.
    for (const name of ['@kubernetes/client-node', 'undici', 'pino', 'prom-client', 'ajv', 'yaml', 'commander', 'node-forge', 're2-wasm', '@opentelemetry/api']) expect(packages, name).toContain(name);
    expect(licences).toContain('Apache License');
    expect(licences).toMatch(/^Third-party software in meshfork\.mjs and re2\.wasm \(\d+ packages\)$/m);
  });

  it('synth prints what the sources print (Lua filters read beside the module)', () => {
    const args = ['synth', '-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, join(work, 'sandbox.yaml')];
    const expected = cli(...args);
    expect(expected.code).toBe(0);
    expect(expected.stdout).toContain('kind: EnvoyFilter');
    expect(bundled(...args)).toEqual({ code: 0, stdout: expected.stdout, stderr: '' });
  });

  it('routes with a keyed request evaluates RE2 regexes as the sources do (re2.wasm beside the module)', async () => {
    const out = join(work, 'out');
    expect(bundled('synth', '-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, join(work, 'sandbox.yaml'), '-o', out)).toMatchObject({ code: 0, stderr: '' });
    const args = ['routes', 'reviews', '-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, out, '--header', 'baggage: meshfork-routing-key=k7f3q9'];
    let stdout = '';
    let stderr = '';
    const code = await runClusterCli(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain('Takes route 0 meshfork-jason-v2-0 (sandbox jason-v2), match[0]: baggage has meshfork-routing-key=k7f3q9');
    expect(bundled(...args)).toEqual({ code: 0, stdout, stderr: '' });
  });

  it('a usage error exits 2 with the message, as the sources', () => {
    const expected = cli('synth', '-f', BOOKINFO, '--no-such-flag');
    expect(expected).toEqual({ code: 2, stdout: '', stderr: "error: unknown option '--no-such-flag'\n" });
    expect(bundled('synth', '-f', BOOKINFO, '--no-such-flag')).toEqual(expected);
  });
});

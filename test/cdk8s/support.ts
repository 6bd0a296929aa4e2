/** Helpers shared by the cdk8s tests: the CLI as the reference, YAML streams as documents. */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { InputError } from '../../src/api/problem.js';
import { runCli } from '../../src/cli/main.js';
import { toYamlDocuments } from '../../src/cli/yaml.js';

export const REPO = new URL('../../', import.meta.url).pathname;
export const BOOKINFO = join(REPO, 'examples/bookinfo');
/** The repository's node_modules/.bin: cdk8s-cli, tsx and tsc, Node 22 first on PATH. */
export const BIN = join(REPO, 'node_modules/.bin');
export const run = promisify(execFile);

/**
 * `cdk8s --no-check-upgrade synth -o <fresh dir>` in `cwd`. Offline: `--no-check-upgrade` stops
 * cdk8s-cli from fetching its latest version from the npm registry at start-up (lib/upgrades.js).
 */
export async function cdk8sSynth(cwd: string): Promise<{ outdir: string; stdout: string; stderr: string }> {
  const outdir = mkdtempSync(join(tmpdir(), 'meshfork-cdk8s-dist-'));
  const { stdout, stderr } = await run(join(BIN, 'cdk8s'), ['--no-check-upgrade', 'synth', '--output', outdir], {
    cwd,
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false', NO_COLOR: '1' },
    timeout: 50_000,
  });
  return { outdir, stdout, stderr };
}

/** Runs `meshfork <args>` in-process and returns what it printed. */
export function cli(args: readonly string[]): { code: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** `meshfork synth -f <files...> [flags]`; fails the test on a non-zero exit. */
export function cliSynth(files: readonly string[], flags: readonly string[] = []): string {
  const result = cli(['synth', ...files.flatMap((f) => ['-f', f]), ...flags]);
  if (result.code !== 0) throw new Error(`meshfork synth exited ${result.code}:\n${result.stderr}`);
  return result.stdout;
}

/** Every document of a YAML stream (cdk8s writes YAML 1.1, the CLI YAML 1.2). */
export function documents(text: string, version: '1.1' | '1.2' = '1.2'): unknown[] {
  return parseAllDocuments(text, { version })
    .map((d) => {
      if (d.errors.length > 0) throw d.errors[0];
      return d.toJS() as unknown;
    })
    .filter((d) => d !== null && d !== undefined);
}

/** The CLI's YAML rendering of objects (the bytes `meshfork synth` would print for them). */
export const yamlOf = (objects: readonly unknown[]) => toYamlDocuments(objects);

/** Writes objects as a YAML stream into a fresh temp dir; returns the file. */
export function writeTempYaml(name: string, objects: readonly unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'meshfork-cdk8s-')), name);
  writeFileSync(file, toYamlDocuments(objects));
  return file;
}

/** The InputError `fn` throws (any other outcome fails the test). */
export function thrown(fn: () => unknown): InputError {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

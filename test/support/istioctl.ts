/**
 * `istioctl` from `npm run testbin`, run offline (no cluster): `istioctl validate -f` and
 * `istioctl analyze --use-kube=false`, with their output parsed.
 *
 * Semantics relied on, as implemented at the pinned istio.io/istio version (tools/istio/go.mod):
 *
 * - `istioctl validate -f <file>` (istioctl/pkg/validate/validate.go) validates every Istio kind
 *   with the same per-kind validation istiod's webhook runs (`schema.ValidateConfig`, plus
 *   "unknown field" checks on the top-level keys). It does not skip Kubernetes kinds: a Service
 *   port that is unnamed or not named `<protocol>[-suffix]` is an error; a Deployment only gets an
 *   advisory line when its pod template lacks the canonical-service labels. Any other kind is
 *   ignored. Exit status 1 and `Kind/namespace/name: message` lines on error; on success one
 *   `"<file>" is valid` line per file, or `"<file>" has warnings: ...`.
 * - `istioctl analyze --use-kube=false <files>` (istioctl/pkg/analyze/analyze.go) analyzes the
 *   files as one self-contained set: only the namespace given by `-n` (default `default`) unless
 *   `--all-namespaces`. With `-o json` the exit status ignores the findings (only the `log` format
 *   applies `--failure-threshold`), so callers must read the messages: a JSON array of
 *   `{code, level, origin, reference, message, documentationUrl}`
 *   (pkg/config/analysis/diag/message.go, `Message.Unstructured`). Files it cannot parse are
 *   reported on stderr as `Error(s) adding files: ...`, and that is checked here too.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testbinPath } from './control-plane-testbin.js';

export interface IstioctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A private HOME so istioctl reads no user configuration (~/.istioctl/config.yaml). */
let home: string | undefined;

/** Runs the testbin `istioctl` with no kubeconfig. */
export function istioctl(args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<IstioctlResult> {
  if (home === undefined) {
    const created = mkdtempSync(join(tmpdir(), 'meshfork-istioctl-home-'));
    process.once('exit', () => rmSync(created, { recursive: true, force: true }));
    home = created;
  }
  const dir = home;
  return new Promise((resolve) => {
    execFile(
      testbinPath('istioctl'),
      [...args],
      {
        cwd: opts.cwd,
        // No cluster: KUBECONFIG points nowhere, so an accidental live-cluster call fails fast
        // instead of reaching whatever cluster the developer's kubeconfig names.
        env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: join(dir, 'no-kubeconfig') },
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** `istioctl version --remote=false`, e.g. `client version: v0.0.0-20260827124520-eed52ebb66ad`. */
export async function istioctlVersion(): Promise<string> {
  const r = await istioctl(['version', '--remote=false']);
  if (r.code !== 0) throw new Error(`istioctl version failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

export interface ValidateResult extends IstioctlResult {
  /** stdout and stderr together (validate writes its report to stderr). */
  readonly output: string;
  /**
   * The warnings, one per entry: `Kind/namespace/name: text`. validate prints them as
   * `"<file>" has warnings: ` followed by `\t* <warning>` lines (`warningToString`).
   */
  readonly warnings: readonly string[];
}

/** `istioctl validate -f <file> [-f <file> ...]`. */
export async function istioctlValidate(files: readonly string[]): Promise<ValidateResult> {
  const r = await istioctl(['validate', ...files.flatMap((f) => ['-f', f])]);
  const output = `${r.stdout}${r.stderr}`;
  const warnings = output
    .split('\n')
    .filter((l) => l.startsWith('\t* '))
    .map((l) => l.slice(3).trim());
  return { ...r, output, warnings };
}

/** One `istioctl analyze -o json` message. */
export interface AnalyzeMessage {
  readonly code: string;
  readonly level: 'Error' | 'Warning' | 'Info' | string;
  /** `Kind namespace/name`, e.g. `VirtualService default/reviews`. */
  readonly origin?: string;
  /** `<file>:<line>` where known. */
  readonly reference?: string;
  readonly message: string;
  readonly documentationUrl?: string;
}

export interface AnalyzeResult extends IstioctlResult {
  readonly messages: readonly AnalyzeMessage[];
  /** Analyzers run and skipped (`-v`): analyze skips an analyzer when one of its input kinds is not in the snapshot. */
  readonly executed: readonly string[];
  readonly skipped: readonly string[];
}

/** The `\t name` lines after `<heading>:` in `istioctl analyze -v` stderr. */
function analyzerList(stderr: string, heading: string): string[] {
  const lines = stderr.split('\n');
  const start = lines.indexOf(`${heading}:`);
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!/^\t/.test(l)) break;
    out.push(l.trim());
  }
  return out;
}

/**
 * `istioctl analyze --use-kube=false -A -v -o json <files>`: every namespace of the files, as one
 * self-contained set. Throws when a file could not be parsed (that would hide findings).
 */
export async function istioctlAnalyze(files: readonly string[], extraArgs: readonly string[] = []): Promise<AnalyzeResult> {
  return parseAnalyze(await istioctl(['analyze', '--use-kube=false', '--all-namespaces', '-v', '-o', 'json', ...extraArgs, ...files]));
}

/** Parses the result of `istioctl analyze -v -o json ...` (run by any means). */
export function parseAnalyze(r: IstioctlResult): AnalyzeResult {
  if (r.code !== 0 || /Error\(s\) adding files/.test(r.stderr)) {
    throw new Error(`istioctl analyze failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`);
  }
  let messages: AnalyzeMessage[];
  try {
    messages = JSON.parse(r.stdout) as AnalyzeMessage[];
  } catch (e) {
    throw new Error(`istioctl analyze -o json printed no JSON (${(e as Error).message}):\n${r.stdout}\n${r.stderr}`);
  }
  if (!Array.isArray(messages)) throw new Error(`istioctl analyze -o json printed ${typeof messages}, expected an array`);
  return { ...r, messages, executed: analyzerList(r.stderr, 'Executed analyzers'), skipped: analyzerList(r.stderr, 'Skipped analyzers') };
}

/** `Error [IST0109] (VirtualService default/x) message` as istioctl's log format prints it. */
export function formatAnalyzeMessage(m: AnalyzeMessage): string {
  return `${m.level} [${m.code}] (${m.origin ?? '?'}${m.reference ? ` ${m.reference}` : ''}) ${m.message}`;
}

/**
 * Upstream source trees in the Go module cache, at the versions pinned in tools/<x>/go.mod: Istio's
 * `samples/` (istio.io/istio), and other modules `npm run testbin` downloads (e.g. KWOK's
 * `kustomize/`, Kubernetes' `hack/testdata/`). Tests read real manifests nobody here wrote from
 * there; nothing is ever copied into the repository.
 *
 * `go mod download -json <module>@<version>` (in tools/<x>, offline: GOPROXY=off) prints the
 * module's directory. When the module is not in the cache: under `CI=true` the gate throws (CI
 * must never skip these suites silently); otherwise it prints one loud line and the suite skips.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { join } from 'node:path';
import { REPO_ROOT } from './control-plane-testbin.js';

/** A module in the cache: the tools/ wrapper module that pins it, its path, and its version there. */
function pinned(toolsModule: string, modulePath: string): string | undefined {
  const gomod = readFileSync(join(REPO_ROOT, 'tools', toolsModule, 'go.mod'), 'utf8');
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(gomod)?.[1];
}

const dirs = new Map<string, string | Error>();

/** The extracted source directory of `modulePath` at the version tools/<toolsModule>/go.mod pins, or why not. */
export function moduleDir(toolsModule: string, modulePath: string): string | Error {
  const cacheKey = `${toolsModule} ${modulePath}`;
  const cached = dirs.get(cacheKey);
  if (cached !== undefined) return cached;
  let result: string | Error;
  const version = pinned(toolsModule, modulePath);
  if (version === undefined) result = new Error(`no version of ${modulePath} in tools/${toolsModule}/go.mod`);
  else {
    const r = spawnSync('go', ['mod', 'download', '-json', `${modulePath}@${version}`], {
      cwd: join(REPO_ROOT, 'tools', toolsModule),
      encoding: 'utf8',
      env: { ...process.env, GOPROXY: 'off', GOFLAGS: '-mod=mod' },
    });
    let dir: unknown;
    try {
      dir = (JSON.parse(r.stdout) as { Dir?: unknown }).Dir;
    } catch {
      dir = undefined;
    }
    result =
      typeof dir === 'string' && existsSync(dir)
        ? dir
        : new Error(`${modulePath}@${version} is not in the Go module cache (${(r.error?.message ?? r.stderr ?? '').trim().split('\n')[0]}): run \`npm run testbin\``);
  }
  dirs.set(cacheKey, result);
  return result;
}

/** Istio's `samples/` directory of the pinned istio.io/istio, or why not. */
export function istioSamplesDir(): string | Error {
  const dir = moduleDir('istio', 'istio.io/istio');
  return dir instanceof Error ? dir : join(dir, 'samples');
}

const warned = new Set<string>();

/**
 * Gate for suites that read upstream modules: `describe.skipIf(!requireModules(...dirs))`.
 * True when every directory was found; else throws under `CI=true`, or warns once and is false.
 */
export function requireModules(...found: ReadonlyArray<string | Error>): boolean {
  const missing = found.filter((d): d is Error => d instanceof Error).map((e) => e.message);
  if (missing.length === 0) return true;
  const message = missing.join('; ');
  if (process.env.CI === 'true') throw new Error(`CI=true and ${message}`);
  if (!warned.has(message)) {
    warned.add(message);
    console.warn(`\n!!! SKIPPING suites that read upstream manifests: ${message}\n`);
  }
  return false;
}

/** Gate for suites on Istio's samples: `describe.skipIf(!requireIstioSamples())` (see requireModules). */
export function requireIstioSamples(): boolean {
  return requireModules(istioSamplesDir());
}

/** Absolute path of `samples/<path>` in the pinned istio.io/istio module (throws when it is not in the cache). */
export function istioSample(path: string): string {
  const dir = istioSamplesDir();
  if (dir instanceof Error) throw dir;
  return join(dir, path);
}

/** The objects of `samples/<path>` (see istioSample), those without a namespace put in `namespace`. */
export function istioSampleObjects<T extends { kind: string; metadata: { namespace?: string } }>(path: string, namespace = 'default'): T[] {
  return parseAllDocuments(readFileSync(istioSample(path), 'utf8'))
    .map((d) => d.toJS() as T | null)
    .filter((o): o is T => o !== null && typeof o === 'object' && 'kind' in o)
    .map((o) => ({ ...o, metadata: { namespace, ...o.metadata } }));
}

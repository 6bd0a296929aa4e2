/**
 * Where the upstream test binaries (`npm run testbin`) live, and whether they are there.
 *
 * The directory is `$MESHFORK_TESTBIN` when set, else the cache directory that tools/testbin.sh
 * uses by default: `${XDG_CACHE_HOME:-~/.cache}/meshfork/testbin/<kubernetes>-<etcd>-<istio>/`,
 * keyed by the versions pinned in tools/{kubernetes,etcd,istio}/go.mod (helm, kwok, gojq and the
 * Gateway API CRDs are checked by version, not by the directory name).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file is test/support/control-plane-testbin.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Binaries `npm run testbin` provides. */
export const TESTBIN_BINARIES = [
  'kube-apiserver',
  'kube-controller-manager',
  'kubectl',
  'kube-scheduler',
  'etcd',
  'istioctl',
  'pilot-discovery',
  'helm',
  'kwok',
  'gojq',
] as const;
export type TestbinBinary = (typeof TESTBIN_BINARIES)[number];

/** Istio's `manifests/charts/base/files/crd-all.gen.yaml`, copied beside the binaries. */
export const ISTIO_CRD_FILE = 'istio-crd-all.gen.yaml';

/**
 * Gateway API's standard-channel CRDs (`config/crd/standard/` of the sigs.k8s.io/gateway-api
 * module pinned in tools/gateway-api/go.mod), concatenated beside the binaries by testbin.sh.
 */
export const GATEWAY_API_CRD_FILE = 'gateway-api-standard.yaml';

/**
 * KWOK's stages, copied by testbin.sh from `kustomize/stage/{node/fast,node/heartbeat,pod/fast}/`
 * of the pinned sigs.k8s.io/kwok module into `kwok-stages/` beside the binaries.
 */
export const KWOK_STAGE_FILES = [
  'kwok-stages/node-initialize.yaml',
  'kwok-stages/node-heartbeat.yaml',
  'kwok-stages/pod-ready.yaml',
  'kwok-stages/pod-complete.yaml',
  'kwok-stages/pod-delete.yaml',
] as const;

/** Upstream versions pinned by the tools/ wrapper modules. */
export interface PinnedVersions {
  readonly kubernetes: string;
  readonly etcd: string;
  readonly istio: string;
  readonly kwok: string;
  readonly gatewayApi: string;
}

function pinnedIn(toolsModule: string, modulePath: string): string {
  const gomod = readFileSync(join(REPO_ROOT, 'tools', toolsModule, 'go.mod'), 'utf8');
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const m = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(gomod);
  if (!m?.[1]) throw new Error(`no version of ${modulePath} in tools/${toolsModule}/go.mod`);
  return m[1];
}

/** The versions pinned in tools/{kubernetes,etcd,istio,kwok,gateway-api}/go.mod (what testbin.sh builds). */
export function pinnedVersions(): PinnedVersions {
  return {
    kubernetes: pinnedIn('kubernetes', 'k8s.io/kubernetes'),
    etcd: pinnedIn('etcd', 'go.etcd.io/etcd/server/v3'),
    istio: pinnedIn('istio', 'istio.io/istio'),
    kwok: pinnedIn('kwok', 'sigs.k8s.io/kwok'),
    gatewayApi: pinnedIn('gateway-api', 'sigs.k8s.io/gateway-api'),
  };
}

/** The default cache directory for the pinned versions (same rule as tools/testbin.sh). */
export function defaultTestbinDir(): string {
  const v = pinnedVersions();
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'meshfork', 'testbin', `${v.kubernetes}-${v.etcd}-${v.istio}`);
}

/** `$MESHFORK_TESTBIN` if set, else {@link defaultTestbinDir}. */
export function testbinDir(): string {
  const env = process.env.MESHFORK_TESTBIN;
  return env ? resolve(env) : defaultTestbinDir();
}

function isExecutableFile(path: string): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Files the directory lacks (binaries, the Istio and Gateway API CRD files, KWOK's stages); empty when complete. */
export function missingTestbin(dir: string = testbinDir()): string[] {
  const missing: string[] = TESTBIN_BINARIES.filter((b) => !isExecutableFile(join(dir, b)));
  for (const f of [ISTIO_CRD_FILE, GATEWAY_API_CRD_FILE, ...KWOK_STAGE_FILES]) if (!existsSync(join(dir, f))) missing.push(f);
  return missing;
}

/** Whether every test binary, the CRD files and KWOK's stages are present in `dir`. */
export function testbinAvailable(dir: string = testbinDir()): boolean {
  return missingTestbin(dir).length === 0;
}

/** Absolute path of one test binary (not checked). */
export function testbinPath(binary: TestbinBinary, dir: string = testbinDir()): string {
  return join(dir, binary);
}

let warned = false;

/**
 * Gate for integration and e2e suites: `describe.skipIf(!requireTestbin())(...)`.
 *
 * Returns true when the binaries are available. When they are missing it throws under `CI=true`
 * (CI must never silently skip the real-apiserver suites), and otherwise prints one loud line and
 * returns false so the suite is skipped.
 */
export function requireTestbin(dir: string = testbinDir()): boolean {
  const missing = missingTestbin(dir);
  if (missing.length === 0) return true;
  const msg =
    `test binaries missing in ${dir} (${missing.join(', ')}): run \`npm run testbin\` ` +
    '(needs Go; builds kube-apiserver, etcd, istioctl, kwok, ... from tools/) and set MESHFORK_TESTBIN ' +
    'to the directory it prints if it is not the default';
  if (process.env.CI === 'true') {
    throw new Error(`CI=true and ${msg}`);
  }
  if (!warned) {
    warned = true;
    console.warn(`\n!!!!! SKIPPING integration suite: ${msg} !!!!!\n`);
  }
  return false;
}

/**
 * One control plane shared by the integration files that can share it (README "Control plane for
 * integration tests"): etcd + kube-apiserver with Istio's CRDs and meshfork's, started ONCE per
 * `vitest run` of the integration project instead of once per file (each start costs ~7-10 s).
 * No kube-controller-manager: its garbage collector would delete what meshfork's controller
 * must delete itself (generated objects carry owner references to their Sandbox), so a suite
 * proving the controller's own cleanup must not have it; suites that need it keep a plane of
 * their own.
 *
 * - The default export is the project's vitest `globalSetup`: in the vitest main process it
 *   starts the plane in the background (the first files may run meanwhile) and provides the path
 *   of a state file, where the plane's {@link ControlPlaneAddress} (or the start error) appears.
 *   Its teardown stops the plane after the last file.
 * - {@link useSharedControlPlane} is what a test file calls instead of `useControlPlane()`: it
 *   waits for that address and hands out a plane attached to it (same clients, `request`, `exec`).
 *
 * Files run one at a time (`fileParallelism: false`), but they all see what earlier files left
 * behind. A file on the shared plane therefore
 *  - keeps to namespaces of its own (named after the file, never another file's), so that
 *    namespaced lists and `kubectl get -n` show only its objects (`default` only for kinds and
 *    names no other file touches),
 *  - creates no cluster-scoped objects other files can notice (webhook configurations, Nodes,
 *    ClusterRoles, CRDs beyond the ones below), and lists nothing across all namespaces
 *    (`istioctl analyze --all-namespaces`, `meshfork doctor`),
 *  - never stops or restarts the API server (those methods reject here).
 * Files that need anything else (kube-controller-manager, `nodes`, Gateway API CRDs, extra API
 * server flags, a restart, a pristine cluster) keep `useControlPlane(options)`: a plane of their
 * own, as before.
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import {
  attachControlPlane,
  controlPlaneAddress,
  missingTestbin,
  startControlPlane,
  testbinDir,
  type ControlPlane,
  type ControlPlaneAddress,
  type ControlPlaneOptions,
} from './control-plane.js';

/** What the shared plane runs: the union of what its files ask for. */
export const SHARED_CONTROL_PLANE_OPTIONS: ControlPlaneOptions = {
  crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'],
};

/** The vitest `provide` key holding the state file's path. */
const STATE_KEY = 'meshforkSharedControlPlane';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Path of the shared control plane's state file (test/support/shared-control-plane.ts). */
    [STATE_KEY]: string;
  }
}

/** The state file: the plane's address once it is ready, or why it could not start. */
type SharedState = { readonly address: ControlPlaneAddress } | { readonly error: string };

const WHY_NOT = 'the control plane is shared by the integration files; a file that stops or restarts it needs useControlPlane() (a plane of its own)';

/**
 * vitest globalSetup (runs in the main process): starts the shared plane in the background and
 * provides where its address will be. Nothing starts when the test binaries are missing (the
 * files skip, or fail under CI=true, through requireTestbin()).
 */
export default function setup(project: { provide(key: typeof STATE_KEY, value: string): void }): () => Promise<void> {
  const stateDir = mkdtempSync(join(tmpdir(), 'meshfork-shared-cp-'));
  const stateFile = join(stateDir, 'state.json');
  project.provide(STATE_KEY, stateFile);
  // Written whole, then renamed: a test file polling for it never reads half of it.
  const write = (state: SharedState) => {
    writeFileSync(`${stateFile}.tmp`, JSON.stringify(state));
    renameSync(`${stateFile}.tmp`, stateFile);
  };
  const missing = missingTestbin(testbinDir());
  const started: Promise<ControlPlane | undefined> =
    missing.length > 0
      ? Promise.resolve(write({ error: `test binaries missing in ${testbinDir()} (${missing.join(', ')})` })).then(() => undefined)
      : startControlPlane(SHARED_CONTROL_PLANE_OPTIONS).then(
          (plane) => {
            write({ address: controlPlaneAddress(plane) });
            return plane;
          },
          (error: unknown) => {
            write({ error: `starting the shared control plane: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}` });
            return undefined;
          },
        );
  return async () => {
    await (await started)?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
}

/** Waits (polling every 100 ms, up to `timeoutMs`) until the globalSetup wrote the state file. */
async function sharedAddress(timeoutMs: number): Promise<ControlPlaneAddress> {
  let stateFile: string | undefined;
  try {
    stateFile = inject(STATE_KEY);
  } catch {
    stateFile = undefined;
  }
  if (!stateFile) {
    throw new Error(`no shared control plane: add test/support/shared-control-plane.ts to this vitest project's globalSetup (vitest.config.ts)`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text: string | undefined;
    try {
      text = readFileSync(stateFile, 'utf8');
    } catch {
      text = undefined; // not written yet
    }
    if (text) {
      const state = JSON.parse(text) as SharedState;
      if ('error' in state) throw new Error(state.error);
      return state.address;
    }
    if (Date.now() > deadline) throw new Error(`the shared control plane was not ready within ${timeoutMs} ms (${stateFile} still absent)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Registers a beforeAll hook that attaches the current test file to the shared control plane and
 * returns an accessor for it (valid inside tests and later hooks), like `useControlPlane()`.
 * Nothing to stop: the globalSetup stops the plane after the last file.
 */
export function useSharedControlPlane(timeoutMs = 170_000): () => ControlPlane {
  let plane: ControlPlane | undefined;
  beforeAll(async () => {
    plane = attachControlPlane(await sharedAddress(timeoutMs), WHY_NOT);
  });
  afterAll(() => {
    plane = undefined;
  });
  return () => {
    if (!plane) throw new Error('control plane not attached (use it inside tests or hooks)');
    return plane;
  };
}

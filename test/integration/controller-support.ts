// Shared by the controller integration suites.
import { spawn } from 'node:child_process';
import type { AppsV1Api, KubernetesObject, KubernetesObjectApi, V1Deployment } from '@kubernetes/client-node';

/** Reads one namespaced object; undefined when the API server answers 404. */
export async function readObject<T extends KubernetesObject>(objects: KubernetesObjectApi, apiVersion: string, kind: string, namespace: string, name: string): Promise<T | undefined> {
  try {
    return (await objects.read({ apiVersion, kind, metadata: { name, namespace } })) as T;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

/** Kinds the controller writes for a Sandbox (apiVersion, kind), policy copies aside. */
export const FORK_KINDS = [
  ['apps/v1', 'Deployment'],
  ['v1', 'Service'],
  ['networking.istio.io/v1', 'DestinationRule'],
  ['networking.istio.io/v1alpha3', 'EnvoyFilter'],
] as const;

/** Objects of `kinds` in `namespace` matching the label selector, each as `<Kind> <name>` plus what `describe` adds. */
export async function listLabelled(
  objects: KubernetesObjectApi,
  namespace: string,
  labelSelector: string,
  kinds: ReadonlyArray<readonly [string, string]>,
  describe: (o: KubernetesObject) => string = () => '',
): Promise<string[]> {
  const out: string[] = [];
  for (const [apiVersion, kind] of kinds) {
    const list = await objects.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector);
    out.push(...list.items.map((o) => `${kind} ${o.metadata?.name}${describe(o)}`));
  }
  return out.sort();
}

/**
 * Writes the status the deployment controller would write once `available` of the Deployment's
 * pods are up (the suites that run no kubelet or scheduler).
 */
export async function markDeploymentAvailable(apps: AppsV1Api, namespace: string, name: string, available = 1): Promise<void> {
  const d = await apps.readNamespacedDeployment({ name, namespace });
  await apps.replaceNamespacedDeploymentStatus({
    name,
    namespace,
    body: { ...d, status: { observedGeneration: d.metadata?.generation, replicas: 1, updatedReplicas: 1, readyReplicas: available, availableReplicas: available } } as V1Deployment,
  });
}

/**
 * Polls `probe` every 100 ms until it returns something other than undefined/false; a probe that
 * throws counts as not yet. The error names what was awaited and the last error seen.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The baseline most controller suites fork: Deployment web-v1 (app=web, version=v1; container `web`). */
export function webDeployment(namespace: string): { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: unknown } {
  const labels = { app: 'web', version: 'v1' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web-v1', namespace },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: 'registry.example.com/web:1' }] } } },
  };
}

/** `meshfork controller` as a child process (the bin dispatcher through tsx, from the sources). */
export interface ControllerProcess {
  readonly child: import('node:child_process').ChildProcess;
  /** Everything written to stderr (the JSON log lines) so far, in chunks. */
  readonly stderr: string[];
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Whether stderr so far contains `text`. */
  logIncludes(text: string): boolean;
  /**
   * Sends `signal` and resolves with the exit code; a process still running after `ms` is
   * SIGKILLed and the promise rejects with the tail of its log (a hang fails with a reason, not at
   * the test's timeout).
   */
  stop(signal: NodeJS.Signals, ms?: number): Promise<number | null>;
}

/**
 * Starts `meshfork controller --kubeconfig <kubeconfig> <args...>`; nothing listens unless
 * `args` sets `--health-address`.
 */
export function startControllerProcess(kubeconfig: string, args: readonly string[]): ControllerProcess {
  const repo = new URL('../../', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', `${repo}src/bin/meshfork.ts`, 'controller', '--kubeconfig', kubeconfig, ...args], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals, ms = 60_000): Promise<number | null> => {
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
    const result = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (result !== 'late') return result;
    child.kill('SIGKILL');
    throw new Error(`the controller did not exit within ${ms} ms of ${signal}; log tail:\n${stderr.join('').trim().split('\n').slice(-20).join('\n')}`);
  };
  return { child, stderr, exited, stop, logIncludes: (text) => stderr.join('').includes(text) };
}

/** Spawning the end-to-end fixtures as real processes on loopback, and always cleaning them up. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const FIXTURES = path.join(ROOT, 'test/sdk/fixtures');

export interface Service {
  readonly name: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** stderr so far, for failure messages. */
  readonly log: () => string;
}

const live = new Set<ChildProcess>();
function killAll(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
}
// Last line of defence if a test file dies before its afterAll hooks run.
process.once('exit', killAll);

/** Starts `fixtures/<script>` and resolves once it prints `READY <port>`. `.ts` runs through tsx. */
export function start(name: string, script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<Service> {
  const file = path.join(FIXTURES, script);
  const args = script.endsWith('.ts') ? ['--import', 'tsx', file] : [file];
  const child = spawn(NODE, args, {
    cwd: ROOT,
    env: { ...process.env, ...env, NAME: name, NODE_OPTIONS: '', MESHFORK_TEST_PARENT: String(process.pid) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /READY (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ name, port: Number(m[1]), child, log: () => stderr });
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      reject(new Error(`${name} exited (${code ?? signal}) before READY:\n${stderr}`));
    });
  });
}

/** Stops services (SIGTERM, then SIGKILL after 2 s) and waits for them to exit. */
export async function stop(services: readonly (Service | undefined)[]): Promise<void> {
  await Promise.all(
    services.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s === undefined) return resolve();
          const c = s.child;
          live.delete(c);
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill('SIGKILL'), 2000);
          c.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          c.kill('SIGTERM');
        }),
    ),
  );
}

/** Kills every service this file started (for afterAll). */
export function stopAll(): void {
  killAll();
}

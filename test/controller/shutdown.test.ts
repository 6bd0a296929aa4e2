// `meshfork controller` stops on SIGTERM whatever state it is in: while its caches are still
// loading (the API server refuses connections, or accepts them and never answers), the signal
// must not be lost, and a stop that takes longer than --shutdown-timeout ends there with exit 1 and a
// log line saying so. The API servers here are stand-ins at the network boundary: a closed port
// and a TCP listener that never answers.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControllerProcess, until } from '../integration/controller-support.js';

function kubeconfig(server: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshfork-shutdown-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user: { token: 'not-a-token' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  return file;
}

describe('meshfork controller shutdown', () => {
  let silent: Server;
  const sockets: Socket[] = [];
  let silentPort = 0;
  let closedPort = 0;

  beforeAll(async () => {
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as { port: number }).port;
    // A port that was just free: connections to it are refused.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('exits 0 on SIGTERM while its caches are still loading (API server refusing connections)', async () => {
    const controller = startControllerProcess(kubeconfig(`https://127.0.0.1:${closedPort}`), ['--health-address', '127.0.0.1:0']);
    try {
      await until('the controller retrying its first list', async () => controller.logIncludes('list/watch failed; restarting'), 60_000);
      controller.child.kill('SIGTERM');
      expect(await controller.exited).toBe(0);
      expect(controller.logIncludes('shutdown did not finish in time')).toBe(false);
    } finally {
      controller.child.kill('SIGKILL');
    }
  }, 90_000);

  it('exits 1 at --shutdown-timeout, saying so, when the stop takes longer (API server never answering, Lease release pending)', async () => {
    const controller = startControllerProcess(kubeconfig(`https://127.0.0.1:${silentPort}`), ['--health-address', '127.0.0.1:0', '--leader-elect', '--lease-namespace', 'x', '--shutdown-timeout', '2']);
    try {
      await until('the controller connected to the silent API server', async () => sockets.length > 0 && controller.logIncludes('campaigning for the Lease'), 60_000);
      controller.child.kill('SIGTERM');
      const code = await controller.exited;
      const log = controller.stderr.join('');
      expect({ code, timedOut: log.includes('"msg":"shutdown did not finish in time; exiting"'), timeoutSeconds: log.includes('"timeoutSeconds":2') }).toEqual({ code: 1, timedOut: true, timeoutSeconds: true });
    } finally {
      controller.child.kill('SIGKILL');
    }
  }, 90_000);
});

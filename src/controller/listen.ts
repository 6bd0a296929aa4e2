import type { Server } from 'node:net';

/**
 * Starts `server` listening on `address` (`host:port`; an empty host is 0.0.0.0, port 0 a free
 * port) and resolves with the address it bound, `host:port`; rejects with the listen error
 * (address in use, permission).
 */
export async function listen(server: Server, address: string): Promise<string> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon) || '0.0.0.0';
  const port = Number(address.slice(colon + 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error(`listening on ${address} gave no TCP address`);
  return `${bound.address}:${bound.port}`;
}

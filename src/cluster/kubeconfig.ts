/**
 * The cluster a command talks to, found as kubectl finds it: `--kubeconfig`, else $KUBECONFIG,
 * else ~/.kube/config, else the in-cluster service account; `--context` picks a context.
 */
import { createHash } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';

export function loadKubeConfig(flags: { kubeconfig?: string; context?: string }): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (flags.kubeconfig !== undefined) kubeConfig.loadFromFile(flags.kubeconfig);
  else kubeConfig.loadFromDefault();
  if (flags.context !== undefined) {
    if (kubeConfig.getContextObject(flags.context) === null) throw new Error(`context "${flags.context}" not found in the kubeconfig`);
    kubeConfig.setCurrentContext(flags.context);
  }
  return pooledConnections(kubeConfig);
}

/** The current context's namespace, else `default` (kubectl's rule). */
export function contextNamespace(kubeConfig: KubeConfig): string {
  return kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'default';
}

/**
 * One connection pool per API server and TLS identity. client-node 2.x builds a new undici Agent
 * (`createDispatcher`) for every request, so every request opens a new TCP + TLS connection and
 * leaves the old one idle until the server closes it: under a controller's concurrent reconciles
 * that is a TLS handshake per request on both ends (about 7 % of the controller's CPU in the
 * ADR 0019 profile) and a growing number of idle sockets. The Agents are pools with keep-alive
 * (client-node sets `keepAlive` with a 30 s initial delay, as client-go), so reusing one per
 * distinct set of TLS options gives every request a pooled connection. Credentials read from
 * files are read again for each request (client-node does so): when a client certificate or CA
 * rotates, the options differ, a new pool is made and the previous one closes once its requests
 * are done. Bearer tokens are headers, not TLS options: rotating them never needs a new pool.
 */
export function pooledConnections(kubeConfig: KubeConfig): KubeConfig {
  const factory = kubeConfig as unknown as DispatcherFactory;
  const create = factory.createDispatcher;
  const describe = factory.createDispatcherOptions;
  // Another client-node version without these methods keeps its own behaviour.
  if (pooled.has(kubeConfig) || typeof create !== 'function' || typeof describe !== 'function') return kubeConfig;
  pooled.add(kubeConfig);
  const pools = new Map<string, { key: string; dispatcher: unknown }>();
  factory.createDispatcher = (cluster, agentOptions) => {
    const key = optionsKey(describe.call(kubeConfig, cluster, agentOptions));
    const server = (cluster as { server?: unknown } | null)?.server;
    const slot = typeof server === 'string' ? server : '';
    const current = pools.get(slot);
    if (current?.key === key) return current.dispatcher;
    const dispatcher = create.call(kubeConfig, cluster, agentOptions);
    pools.set(slot, { key, dispatcher });
    // The replaced pool finishes what it is sending, then closes its connections.
    void (current?.dispatcher as { close?: () => Promise<void> } | undefined)?.close?.().catch(() => undefined);
    return dispatcher;
  };
  return kubeConfig;
}

/** What client-node's dispatcher factory (private in its typings) looks like at run time. */
interface DispatcherFactory {
  createDispatcher?: (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;
  createDispatcherOptions?: (cluster: unknown, agentOptions: Record<string, unknown>) => unknown;
}

const pooled = new WeakSet<KubeConfig>();

/** A stable text naming dispatcher options; key material (Buffers, PEM strings) by its SHA-256. */
function optionsKey(options: unknown): string {
  const digest = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const walk = (value: unknown): unknown => {
    if (Buffer.isBuffer(value) || value instanceof Uint8Array) return digest(Buffer.from(value));
    if (typeof value === 'string' && value.length > 256) return digest(value);
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  return JSON.stringify(walk(options));
}

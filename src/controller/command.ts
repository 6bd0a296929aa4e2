/**
 * `meshfork controller`: runs the reconciler against a cluster, in a pod (in-cluster config) or
 * elsewhere (`--kubeconfig`/`--context`, else $KUBECONFIG or ~/.kube/config). SIGTERM/SIGINT:
 * stop taking work, finish reconciles in flight, release the Lease, exit 0; a shutdown that has
 * not finished after `--shutdown-timeout` seconds (an API server gone, a reconcile stuck in
 * retries) is logged and exits 1. The runtime
 * (./run.ts) is imported when the command runs, not when the executable starts.
 */
import { isIP } from 'node:net';
import { Command, InvalidArgumentError } from 'commander';
import { DNS_LABEL_PATTERN } from '../api/schema.js';

export interface ControllerFlags {
  kubeconfig?: string;
  context?: string;
  namespaces?: string[];
  workers: number;
  config?: string;
  leaderElect?: boolean;
  leaseNamespace: string;
  leaseName: string;
  healthAddress: string;
  configMap?: { namespace: string; name: string };
  /** Seconds from SIGTERM/SIGINT to a forced exit (below the pod's terminationGracePeriodSeconds, 30 by default). */
  shutdownTimeout: number;
  /** `host:port` of the HTTPS admission webhooks, or `off`. */
  webhookAddress: string;
  /** DNS names / IP addresses of the self-issued serving certificate. */
  webhookHosts: string[];
  /** Secret holding the self-issued CA and serving certificate. */
  webhookSecret: { namespace: string; name: string };
  /** Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept. */
  webhookConfiguration: string;
  /** Serve tls.crt/tls.key of this directory (cert-manager) instead of issuing certificates. */
  webhookCertDir?: string;
  /** Seconds between certificate checks. */
  webhookCertCheck: number;
}

const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);

function parseNamespaces(text: string): string[] {
  const list = text.split(',').map((n) => n.trim()).filter(Boolean);
  const bad = list.filter((n) => n.length > 63 || !NAMESPACE.test(n));
  if (list.length === 0 || bad.length > 0) throw new InvalidArgumentError('give namespace names separated by commas (RFC 1123 labels)');
  return list;
}

function parseNamespacedName(kind: string): (text: string) => { namespace: string; name: string } {
  return (text) => {
    const [namespace, name, ...rest] = text.split('/');
    const subdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
    if (rest.length > 0 || !namespace || !name || !NAMESPACE.test(namespace) || namespace.length > 63 || !subdomain.test(name)) {
      throw new InvalidArgumentError(`give <namespace>/<name> of a ${kind}`);
    }
    return { namespace, name };
  };
}

const HOST = /^(?:[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(?:\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function parseHosts(text: string): string[] {
  const list = text.split(',').map((h) => h.trim()).filter(Boolean);
  const bad = list.filter((h) => isIP(h) === 0 && (h.length > 253 || !HOST.test(h)));
  if (list.length === 0 || bad.length > 0) throw new InvalidArgumentError('give DNS names or IP addresses separated by commas');
  return list;
}

function parseSeconds(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 86_400) throw new InvalidArgumentError('give whole seconds from 1 to 86400');
  return n;
}

function parseShutdownTimeout(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new InvalidArgumentError('give whole seconds from 1 to 3600');
  return n;
}

function parseWorkers(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('give an integer from 1 to 64');
  return n;
}

export function controllerCommand(): Command {
  const namespace = process.env['POD_NAMESPACE'] ?? 'default';
  return new Command('controller')
    .description('run the in-cluster reconciler (Sandboxes -> forks, fork Services, routes, status)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster config, $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--namespaces <list>', 'watch only these namespaces, comma-separated (default: all)', parseNamespaces)
    .option('--workers <n>', 'concurrent reconciles', parseWorkers, 16)
    .option('--config <file>', 'meshfork configuration file (routing keys, policy), as for synth')
    .option('--config-map <namespace/name>', 'follow the configuration in this ConfigMap (key config.yaml; a bad edit is reported and ignored)', parseNamespacedName('ConfigMap'))
    .option('--leader-elect', 'take part in leader election on a coordination.k8s.io Lease (run several replicas)')
    .option('--lease-namespace <namespace>', 'namespace of the Lease', namespace)
    .option('--lease-name <name>', 'name of the Lease', 'meshfork-controller')
    .option('--shutdown-timeout <seconds>', 'after SIGTERM/SIGINT, exit 1 if reconciles in flight and the Lease release have not finished within this time', parseShutdownTimeout, 20)
    .option('--health-address <host:port>', "address of /metrics, /healthz and /readyz ('off': none)", '0.0.0.0:8080')
    .option('--webhook-address <host:port>', "address of the HTTPS admission webhooks ('off': none)", 'off')
    .option('--webhook-hosts <list>', 'DNS names and IP addresses of the self-issued serving certificate, comma-separated', parseHosts, [`meshfork-webhook.${namespace}.svc`])
    .option('--webhook-secret <namespace/name>', 'Secret holding the self-issued webhook CA and serving certificate', parseNamespacedName('Secret'), { namespace, name: 'meshfork-webhook-tls' })
    .option('--webhook-configuration <name>', 'Mutating- and ValidatingWebhookConfiguration whose caBundle the controller keeps', 'meshfork')
    .option('--webhook-cert-dir <dir>', 'serve tls.crt and tls.key from this directory (cert-manager) instead of issuing certificates')
    .option('--webhook-cert-check <seconds>', 'seconds between checks of the serving certificate', parseSeconds, 10)
    .action(async (flags: ControllerFlags) => {
      // run() logs its own failures (JSON, level fatal) and sets the exit code.
      const { run } = await import('./run.js');
      await run(flags);
    });
}

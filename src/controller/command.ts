/**
 * `meshfork controller`: runs the reconciler against a cluster, in a pod (in-cluster config) or
 * elsewhere (`--kubeconfig`/`--context`, else $KUBECONFIG or ~/.kube/config). SIGTERM/SIGINT:
 * stop taking work, finish reconciles in flight, release the Lease, exit 0.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { formatProblem } from '../api/problem.js';
import { resolveConfig } from '../api/config.js';
import { DNS_LABEL_PATTERN } from '../api/schema.js';
import { readTextFile } from '../manifests/files.js';
import type { PlanConfig } from '../planner/plan.js';
import { LeaderElector } from './leader-election.js';
import { Controller } from './reconciler.js';
import { ControllerMetrics, serveHealth } from './metrics.js';

interface ControllerFlags {
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
}

const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);

function parseNamespaces(text: string): string[] {
  const list = text.split(',').map((n) => n.trim()).filter(Boolean);
  const bad = list.filter((n) => n.length > 63 || !NAMESPACE.test(n));
  if (list.length === 0 || bad.length > 0) throw new InvalidArgumentError('give namespace names separated by commas (RFC 1123 labels)');
  return list;
}

function parseConfigMap(text: string): { namespace: string; name: string } {
  const [namespace, name, ...rest] = text.split('/');
  const subdomain = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
  if (rest.length > 0 || !namespace || !name || !NAMESPACE.test(namespace) || namespace.length > 63 || !subdomain.test(name)) {
    throw new InvalidArgumentError('give <namespace>/<name> of a ConfigMap');
  }
  return { namespace, name };
}

function parseWorkers(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new InvalidArgumentError('give an integer from 1 to 64');
  return n;
}

function loadPlanConfig(file: string | undefined): Partial<PlanConfig> {
  if (file === undefined) return {};
  const read = readTextFile(file, 1024 * 1024);
  if ('problem' in read) throw new Error(formatProblem(read.problem));
  const { config, problems } = resolveConfig(parseYaml(read.text) as unknown, {});
  if (config === undefined) throw new Error(problems.map((p) => formatProblem({ ...p, file })).join('\n'));
  return config;
}

export function kubeConfigFrom(flags: { kubeconfig?: string; context?: string }): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (flags.kubeconfig !== undefined) kubeConfig.loadFromFile(flags.kubeconfig);
  else kubeConfig.loadFromDefault();
  if (flags.context !== undefined) kubeConfig.setCurrentContext(flags.context);
  return kubeConfig;
}

async function run(flags: ControllerFlags): Promise<void> {
  const kubeConfig = kubeConfigFrom(flags);
  const config = loadPlanConfig(flags.config);
  let controller: Controller | undefined;
  const metrics = new ControllerMetrics({
    depth: () => controller?.queue.metrics() ?? { depth: 0, delayed: 0, processing: 0 },
    managed: () => controller?.managedCounts() ?? {},
  });
  controller = new Controller({
    kubeConfig,
    workers: flags.workers,
    config,
    metrics,
    ...(flags.namespaces ? { namespaces: flags.namespaces } : {}),
    ...(flags.configMap ? { configMap: flags.configMap } : {}),
  });
  const abort = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => abort.abort());
  let leading = false;
  // A standby is ready: it serves its purpose by waiting for the Lease.
  const health = flags.healthAddress === 'off' ? undefined : await serveHealth(flags.healthAddress, metrics, () => (flags.leaderElect && !leading) || controller.hasSynced);
  if (health) process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'serving /metrics, /healthz, /readyz', address: health.address })}\n`);
  try {
    await runElected(flags, kubeConfig, controller, abort, (l) => (leading = l));
  } finally {
    await health?.close();
  }
}

async function runElected(flags: ControllerFlags, kubeConfig: KubeConfig, controller: Controller, abort: AbortController, setLeading: (leading: boolean) => void): Promise<void> {
  if (!flags.leaderElect) {
    await controller.start();
    await new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
    await controller.stop();
    return;
  }
  let lost = false;
  const identity = `${hostname()}-${randomBytes(4).toString('hex')}`;
  const info = (msg: string) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, identity, lease: `${flags.leaseNamespace}/${flags.leaseName}` })}\n`);
  info('campaigning for the Lease');
  const elector = new LeaderElector({
    api: kubeConfig.makeApiClient(CoordinationV1Api),
    namespace: flags.leaseNamespace,
    name: flags.leaseName,
    identity,
    onStartedLeading: () => {
      setLeading(true);
      info('started leading');
      void controller.start().catch((error: unknown) => {
        process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'controller failed to start', error: String(error) })}\n`);
        process.exitCode = 1;
        abort.abort();
      });
    },
    onStoppedLeading: () => {
      setLeading(false);
      info('stopped leading');
      lost = !abort.signal.aborted;
    },
    onError: (error) => process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'leader election', error: String(error) })}\n`),
  });
  await elector.run(abort.signal);
  await controller.stop();
  // Leadership lost without being asked to stop: exit non-zero so the pod restarts as a standby.
  if (lost) process.exitCode = 1;
}

export function controllerCommand(): Command {
  return new Command('controller')
    .description('run the in-cluster reconciler (Sandboxes -> forks, fork Services, routes, status)')
    .option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster config, $KUBECONFIG or ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context')
    .option('--namespaces <list>', 'watch only these namespaces, comma-separated (default: all)', parseNamespaces)
    .option('--workers <n>', 'concurrent reconciles', parseWorkers, 4)
    .option('--config <file>', 'meshfork configuration file (routing keys, policy), as for synth')
    .option('--config-map <namespace/name>', 'follow the configuration in this ConfigMap (key config.yaml; a bad edit is reported and ignored)', parseConfigMap)
    .option('--leader-elect', 'take part in leader election on a coordination.k8s.io Lease (run several replicas)')
    .option('--lease-namespace <namespace>', 'namespace of the Lease', process.env['POD_NAMESPACE'] ?? 'default')
    .option('--lease-name <name>', 'name of the Lease', 'meshfork-controller')
    .option('--health-address <host:port>', "address of /metrics, /healthz and /readyz ('off': none)", '0.0.0.0:8080')
    .action(async (flags: ControllerFlags) => {
      try {
        await run(flags);
      } catch (error) {
        process.stderr.write(`meshfork controller: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
      }
    });
}

/**
 * What `meshfork controller` runs once its flags are parsed: the Kubernetes client, the
 * reconciler, leader election and the health/metrics server. Loaded by the command's action only,
 * so the offline commands of the same executable never load the Kubernetes client.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { CoordinationV1Api, KubernetesObjectApi, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../cluster/kubeconfig.js';
import { parse as parseYaml } from 'yaml';
import { formatProblem } from '../api/problem.js';
import { resolveConfig } from '../api/config.js';
import { readTextFile } from '../manifests/files.js';
import type { PlanConfig } from '../planner/plan.js';
import type { ControllerFlags } from './command.js';
import { LeaderElector } from './leader-election.js';
import { Controller } from './reconciler.js';
import { ControllerMetrics, serveHealth } from './metrics.js';
import { createLogger, type Logger } from './log.js';
import { describeError } from './reconciler.js';
import { admitVirtualService, validateRouteGroupAdmission, validateSandboxAdmission, type AdmissionContext } from './admission.js';
import { WEBHOOK_PATHS, serveWebhooks, type WebhookServer } from './webhook-server.js';
import { WebhookTls } from './webhook-tls.js';

function loadPlanConfig(file: string | undefined): Partial<PlanConfig> {
  if (file === undefined) return {};
  const read = readTextFile(file, 1024 * 1024);
  if ('problem' in read) throw new Error(formatProblem(read.problem));
  const { config, problems } = resolveConfig(parseYaml(read.text) as unknown, {});
  if (config === undefined || problems.length > 0) throw new Error(problems.map((p) => formatProblem({ ...p, file })).join('\n'));
  return config;
}

/** Runs the controller until SIGTERM/SIGINT; a failure is logged (level fatal) and sets exit code 1. */
export async function run(flags: ControllerFlags, log: Logger = createLogger()): Promise<void> {
  try {
    await runLogged(flags, log);
  } catch (error) {
    log.fatal({ error: describeError(error) }, 'controller stopped');
    process.exitCode = 1;
  }
}

async function runLogged(flags: ControllerFlags, log: Logger): Promise<void> {
  const kubeConfig = loadKubeConfig(flags);
  const config = loadPlanConfig(flags.config);
  let controller: Controller | undefined;
  const metrics = new ControllerMetrics({
    depth: () => controller?.queue.metrics() ?? { depth: 0, delayed: 0, processing: 0 },
    managed: () => controller?.managedCounts() ?? {},
    events: () => controller?.pendingEvents ?? 0,
  });
  controller = new Controller({
    kubeConfig,
    workers: flags.workers,
    config,
    metrics,
    logger: log,
    ...(flags.namespaces ? { namespaces: flags.namespaces } : {}),
    ...(flags.configMap ? { configMap: flags.configMap } : {}),
  });
  const abort = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => abort.abort());
  abort.signal.addEventListener(
    'abort',
    () => {
      // The orderly stop waits for reconciles in flight and the Lease release, which need the API
      // server; a stop that cannot finish must not outlive the pod's grace period silently.
      const timeoutSeconds = flags.shutdownTimeout ?? 20;
      setTimeout(() => {
        log.error({ timeoutSeconds, queue: controller?.queue.metrics() }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, timeoutSeconds * 1000).unref();
    },
    { once: true },
  );
  let leading = false;
  const webhooks = flags.webhookAddress !== 'off';
  // A standby is ready: it serves its purpose by waiting for the Lease. With webhooks, every
  // replica answers them from its caches, so it is ready once they synced.
  const ready = () => (!webhooks && flags.leaderElect && !leading) || controller.hasSynced;
  const health = flags.healthAddress === 'off' ? undefined : await serveHealth(flags.healthAddress, metrics, ready);
  if (health) log.info({ address: health.address }, 'serving /metrics, /healthz, /readyz');
  // The webhooks start beside the reconciler, not before it: issuing a certificate must not delay
  // reconciles. Without a certificate the controller cannot serve what it is configured to: exit 1.
  const served = webhooks
    ? startWebhooks(flags, kubeConfig, controller, metrics, log).catch((error: unknown) => {
        log.fatal({ error: describeError(error) }, 'admission webhooks failed to start');
        process.exitCode = 1;
        abort.abort();
        return undefined;
      })
    : undefined;
  // Every replica's caches, also a standby's: the webhooks answer from them.
  if (webhooks) void controller.startCaches().catch((error: unknown) => log.error({ error: describeError(error) }, 'caches failed to start'));
  try {
    await runElected(flags, kubeConfig, controller, abort, (l) => (leading = l), log);
  } finally {
    const started = await served;
    started?.tls.stop();
    await started?.server.close();
    await health?.close();
  }
}

/**
 * Runs the elector until `stop` aborts or leadership is lost, then stops the controller. Asked to
 * stop, the order is: stop taking work and finish the reconciles in flight while still renewing
 * the Lease, release the Lease (the elector does when its signal aborts), then send the Events
 * still waiting and stop the informers — so a standby never reconciles beside this replica, and
 * Events, which need no leadership, do not delay the hand-over.
 */
export async function leadUntilStopped(
  elector: { run(signal: AbortSignal): Promise<void> },
  controller: Pick<Controller, 'stopWorkers' | 'stop'>,
  stop: AbortSignal,
  onError: (error: unknown) => void,
): Promise<void> {
  const release = new AbortController();
  const workersStopped = aborted(stop)
    .then(() => controller.stopWorkers())
    .catch(onError)
    .finally(() => release.abort());
  await elector.run(release.signal);
  // Leadership lost: run returned by itself, nothing waits for the workers to stop but stop().
  if (release.signal.aborted) await workersStopped;
  await controller.stop();
}

/** Resolves once `signal` is aborted, at once when it already is (an 'abort' listener added late never fires). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** The admission webhooks over HTTPS with a certificate kept valid (webhook-tls.ts). */
async function startWebhooks(flags: ControllerFlags, kubeConfig: KubeConfig, controller: Controller, metrics: ControllerMetrics, log: Logger): Promise<{ server: WebhookServer; tls: WebhookTls }> {
  let server: WebhookServer | undefined;
  const tls = new WebhookTls({
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
    source:
      flags.webhookCertDir !== undefined
        ? { kind: 'files', dir: flags.webhookCertDir }
        : { kind: 'secret', ...flags.webhookSecret, hosts: flags.webhookHosts, configuration: flags.webhookConfiguration },
    onCertificate: (certificate) => server?.setCertificate(certificate),
    log,
    checkMs: flags.webhookCertCheck * 1000,
  });
  const certificate = await tls.start();
  const context = (): AdmissionContext => ({ view: controller.hasSynced ? controller.view() : undefined, config: controller.currentConfig });
  server = await serveWebhooks(
    flags.webhookAddress,
    certificate,
    {
      [WEBHOOK_PATHS.virtualServices]: (request) => admitVirtualService(request, context()),
      [WEBHOOK_PATHS.sandboxes]: (request) => validateSandboxAdmission(request, context()),
      [WEBHOOK_PATHS.routeGroups]: (request) => validateRouteGroupAdmission(request, context()),
    },
    log,
    metrics,
  );
  log.info({ address: server.address }, 'serving admission webhooks');
  return { server, tls };
}

async function runElected(flags: ControllerFlags, kubeConfig: KubeConfig, controller: Controller, abort: AbortController, setLeading: (leading: boolean) => void, log: Logger): Promise<void> {
  if (!flags.leaderElect) {
    // A signal may arrive while the caches are still loading: stop then, without waiting for them.
    await Promise.race([controller.start(), aborted(abort.signal)]);
    await aborted(abort.signal);
    await controller.stop();
    return;
  }
  let lost = false;
  const identity = `${hostname()}-${randomBytes(4).toString('hex')}`;
  const elected = log.child({ identity, lease: `${flags.leaseNamespace}/${flags.leaseName}` });
  elected.info('campaigning for the Lease');
  const elector = new LeaderElector({
    api: kubeConfig.makeApiClient(CoordinationV1Api),
    namespace: flags.leaseNamespace,
    name: flags.leaseName,
    identity,
    onStartedLeading: () => {
      // Elected while stopping (a Lease request in flight at the signal): start nothing; the
      // elector releases the Lease when it returns.
      if (abort.signal.aborted) return;
      setLeading(true);
      elected.info('started leading');
      void controller.start().catch((error: unknown) => {
        elected.error({ error: describeError(error) }, 'controller failed to start');
        process.exitCode = 1;
        abort.abort();
      });
    },
    onStoppedLeading: () => {
      setLeading(false);
      elected.info('stopped leading');
      lost = !abort.signal.aborted;
    },
    onError: (error) => elected.error({ error: describeError(error) }, 'leader election'),
  });
  await leadUntilStopped(elector, controller, abort.signal, (error) => elected.error({ error: describeError(error) }, 'stopping the workers failed'));
  // Leadership lost without being asked to stop: exit non-zero so the pod restarts as a standby.
  if (lost) process.exitCode = 1;
  // What the stop could not do (the API server gone at SIGTERM): said, and exit 1.
  const unfinished: string[] = [];
  if (elector.releaseError !== undefined) {
    unfinished.push(`release the Lease ${flags.leaseNamespace}/${flags.leaseName}: ${describeError(elector.releaseError)} (a standby takes over when it expires)`);
  }
  if (unfinished.length > 0) {
    elected.error({ unfinished }, 'shutdown incomplete');
    process.exitCode = 1;
  }
}


/**
 * `npm run bench -- controller-rpc`: from `kubectl apply` of a Sandbox to the first RPC carrying
 * its key that reaches its forks, through real istiod and proxyless gRPC clients (the e2e suite's
 * mesh: test/e2e/mesh.ts), with `meshfork controller` doing the work, next to the same path
 * without the controller: a server-side apply of exactly the objects `meshfork synth` generates
 * for that Sandbox (what a GitOps sync of the cdk8s/synth output does).
 *
 * Both paths share everything else: one control plane, one istiod, the clients, and the stand-in
 * kubelet that turns each fork Deployment into an endpoint (a WorkloadEntry) and an available
 * replica when it appears. The controller routes a fork only once it has an available replica
 * (make before break), so its time includes that wait; the plain apply writes forks and routes
 * at once, and its first keyed RPCs fail (no endpoint yet) until the stand-in catches up — the
 * time counts until one succeeds on a fork. The Sandbox forks both hosts of the mesh (greeter:
 * meshfork's own VirtualService; catalog: spliced into the user's); a sample ends when keyed RPCs
 * on both reach their forks. Rounds alternate the two paths (controller, plain, ...) so that
 * drift of the machine's load hits both; between rounds everything is removed and keyed RPCs are
 * back on the baselines. The controller runs in this process, started before its rounds and
 * stopped after (it must not see the plain path's objects).
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { SharedInformer } from '../src/cluster/informer.js';
import { createLogger } from '../src/controller/log.js';
import { Controller } from '../src/controller/reconciler.js';
import { missingTestbin, startControlPlane, type ControlPlane } from '../test/support/control-plane.js';
import { applyObjects, listObjects, startIstiod, type Istiod } from '../test/support/istiod.js';
import type { EchoClient } from '../test/support/xds-client.js';
import { Mesh, NS, sandboxFile, serviceClient, synth } from '../test/e2e/mesh.js';
import { type BenchResult, type BenchSuite, median } from './report.js';

const REPO = new URL('../', import.meta.url).pathname;
const ROUNDS = Number(process.env['MESHFORK_BENCH_RPC_ROUNDS'] ?? 3);
const KEY = { baggage: 'meshfork-routing-key=alpha01' };
const SERVICES = ['greeter', 'catalog'] as const;
type Service = (typeof SERVICES)[number];
const FORK: Record<Service, string> = { greeter: 'greeter-v1-alpha', catalog: 'catalog-v1-alpha' };
const BASELINE: Record<Service, string> = { greeter: 'greeter-v1', catalog: 'catalog-v1' };
const APPLY_ORDER = ['Deployment', 'Service', 'DestinationRule', 'EnvoyFilter', 'VirtualService'];
const MANAGED = 'app.kubernetes.io/managed-by=meshfork';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends keyed RPCs to every service back to back until each reached `backend(s)`; ms from `t0`. */
async function keyedReach(clients: ReadonlyMap<Service, EchoClient>, backend: (s: Service) => string, t0: number, timeoutMs = 90_000): Promise<number> {
  const reached = await Promise.all(
    SERVICES.map(async (s) => {
      for (;;) {
        const r = await clients.get(s)!.who(KEY);
        const now = Date.now();
        if (r.ok && r.backend === backend(s)) return now;
        if (now - t0 > timeoutMs) throw new Error(`keyed RPCs to ${s} did not reach ${backend(s)} within ${timeoutMs} ms (last: ${JSON.stringify(r)})`);
        await sleep(5);
      }
    }),
  );
  return Math.max(...reached) - t0;
}

async function noManagedObjects(cp: ControlPlane): Promise<boolean> {
  for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['networking.istio.io/v1', 'DestinationRule'], ['networking.istio.io/v1', 'VirtualService'], ['networking.istio.io/v1alpha3', 'EnvoyFilter']] as const) {
    if ((await listObjects(cp, apiVersion, kind, NS, MANAGED)).length > 0) return false;
  }
  return true;
}

export const controllerRpcSuite: BenchSuite = {
  name: 'controller-rpc',
  optIn: true,
  async run(log) {
    const dir = process.env['MESHFORK_TESTBIN'];
    const missing = dir ? missingTestbin(dir) : ['MESHFORK_TESTBIN is not set'];
    if (missing.length > 0) {
      log(`!!!!! SKIPPED: apply -> first keyed RPC needs a real control plane and istiod (${missing.join(', ')}); run \`npm run testbin\` and set MESHFORK_TESTBIN !!!!!`);
      return [];
    }
    let cp: ControlPlane | undefined;
    let istiod: Istiod | undefined;
    let mesh: Mesh | undefined;
    let kubelet: SharedInformer<KubernetesObject> | undefined;
    const clients = new Map<Service, EchoClient>();
    const errors: string[] = [];
    try {
      const t0 = Date.now();
      cp = await startControlPlane({ crds: [`${REPO}charts/meshfork/crds/meshfork.dev_crds.yaml`] });
      istiod = await startIstiod(cp);
      mesh = new Mesh(cp, istiod);
      await mesh.installBaseline();
      for (const s of SERVICES) clients.set(s, serviceClient(istiod, s, `${s}-client`));
      await keyedReach(clients, (s) => BASELINE[s], Date.now(), 60_000);
      kubelet = await mesh.standInForForks((error) => errors.push(String(error)));
      log(`control plane, istiod, baseline and proxyless clients up in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${ROUNDS} rounds per path`);

      const planned = synth(['alpha'])
        .filter((o) => APPLY_ORDER.includes(o.kind))
        .sort((a, b) => APPLY_ORDER.indexOf(a.kind) - APPLY_ORDER.indexOf(b.kind));
      const viaController: number[] = [];
      const viaApply: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        // Controller: kubectl apply of the Sandbox, then kubectl delete (its finalizer cleans up).
        const controller = new Controller({ kubeConfig: cp.kubeConfig, namespaces: [NS], logger: createLogger({ level: 'warn' }) });
        await controller.start();
        let t = Date.now();
        const apply = await cp.exec('kubectl', ['apply', '-f', sandboxFile('alpha')]);
        if (apply.code !== 0) throw new Error(`kubectl apply: ${apply.stderr}`);
        viaController.push(await keyedReach(clients, (s) => FORK[s], t));
        const del = await cp.exec('kubectl', ['delete', '-n', NS, 'sandbox/alpha', '--wait=true', '--timeout=90s'], { timeoutMs: 100_000 });
        if (del.code !== 0) throw new Error(`kubectl delete: ${del.stderr}`);
        for (let w = Date.now(); !(await noManagedObjects(cp)); await sleep(100)) if (Date.now() - w > 60_000) throw new Error('the controller left objects behind');
        await controller.stop();
        await keyedReach(clients, (s) => BASELINE[s], Date.now());

        // Plain apply of synth's objects, then a pruning sync back to the baseline.
        t = Date.now();
        await applyObjects(cp, planned);
        viaApply.push(await keyedReach(clients, (s) => FORK[s], t));
        await mesh.sync([]);
        await keyedReach(clients, (s) => BASELINE[s], Date.now());
        log(`round ${round}: controller ${viaController.at(-1)} ms, plain apply ${viaApply.at(-1)} ms`);
      }
      const c = median(viaController);
      const b = median(viaApply);
      if (errors.length > 0) log(`stand-in kubelet errors (retried): ${errors.length}, first: ${errors[0]}`);
      return [
        {
          id: 'controller-apply-to-keyed-rpc',
          title: 'kubectl apply of a Sandbox -> first keyed RPC on its forks (real istiod, proxyless gRPC), median',
          baseline: { label: 'server-side apply of its synth objects', value: b, unit: 'ms' },
          candidate: { label: 'meshfork controller', value: c, unit: 'ms' },
          ratio: c / b,
          target: 1.5,
          extra: { rounds: ROUNDS, controller_ms: viaController.join('/'), apply_ms: viaApply.join('/') },
        } satisfies BenchResult,
      ];
    } finally {
      for (const client of clients.values()) client.close();
      await kubelet?.stop();
      await mesh?.close();
      await istiod?.stop();
      await cp?.stop();
    }
  },
};


/**
 * The scenario of the controller e2e files: the controller's writes, routed by real istiod to proxyless gRPC clients: `kubectl apply` of a
 * Sandbox with `meshfork controller` running -> RPCs carrying its key reach the forks;
 * `kubectl delete` -> they reach the baselines again; and RPCs sent without pause the whole time,
 * with and without the key, on both hosts (greeter: meshfork's own VirtualService; catalog: the
 * user's), never fail (make before break, ADR 0005).
 *
 * istiod reads its configuration from the test kube-apiserver (`--kubeconfig`, Istio's CRDs are
 * installed by the control-plane harness), the same objects the controller writes. No kubelet
 * runs: the test plays it for the forks the controller creates — a stand-in WorkloadEntry with
 * the fork's pod labels, served by an echo backend named after the fork (mesh.ts), and the
 * Deployment status the deployment controller would write once the pod is Ready; when the
 * controller deletes a fork Deployment, its stand-in goes too.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedInformer } from '../../src/cluster/informer.js';
import { Controller } from '../../src/controller/reconciler.js';
import { requireTestbin, startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { recordingLogger, type LogRecord } from '../support/log-records.js';
import { listObjects, startIstiod, type Istiod } from '../support/istiod.js';
import type { EchoClient, WhoResult } from '../support/xds-client.js';
import { INVENTORY, Mesh, NS, loadYaml, sandboxFile, serviceClient } from './mesh.js';
import type { KubeObj } from '../support/istiod.js';

const hasBins = requireTestbin();
const KEY = { baggage: 'meshfork-routing-key=alpha01' };
const SERVICES = ['greeter', 'catalog'] as const;
type Service = (typeof SERVICES)[number];
const BASELINE: Record<Service, string> = { greeter: 'greeter-v1', catalog: 'catalog-v1' };
const FORK: Record<Service, string> = { greeter: 'greeter-v1-alpha', catalog: 'catalog-v1-alpha' };
/** Consecutive RPCs that must reach the expected backend before a phase counts as routed. */
const N = 25;

const GATEWAY_KINDS = [['gateway.networking.k8s.io/v1', 'HTTPRoute'], ['gateway.networking.k8s.io/v1', 'GRPCRoute']] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  readonly service: Service;
  readonly keyed: boolean;
  readonly at: number;
  readonly result: WhoResult;
}

export interface ControllerRoutingScenario {
  /** The describe block's title. */
  readonly title: string;
  /**
   * User HTTPRoutes/GRPCRoutes added to the baseline (Gateway API CRDs installed): the hosts they
   * attach to are routed with derived routes (ADR 0021) instead of VirtualServices. @default none
   */
  readonly userRoutes?: readonly KubeObj[];
  /** meshfork's own route objects (`<Kind> <name>`, sorted) while the Sandbox is Ready (a user's VirtualService it merges routes into is not one). */
  readonly expectedRoutes: readonly string[];
}

/** The scenario (see the module comment), in its own describe block with its own control plane and istiod. */
export function controllerRoutingScenario(scenario: ControllerRoutingScenario): void {
  describe.skipIf(!hasBins)(scenario.title, () => {
    const userRoutes = scenario.userRoutes ?? [];
    const gatewayApi = userRoutes.length > 0;
    let cp: ControlPlane | undefined;
    let istiod: Istiod | undefined;
    let mesh: Mesh;
    let controller: Controller | undefined;
    let kubelet: SharedInformer<KubernetesObject> | undefined;
    const clients = new Map<Service, EchoClient>();
    const logs: LogRecord[] = [];
    const report: string[] = [];

    beforeAll(async () => {
      const t0 = Date.now();
      cp = await startControlPlane({ crds: ['charts/meshfork/crds/meshfork.dev_crds.yaml'], gatewayApi });
      istiod = await startIstiod(cp);
      mesh = new Mesh(cp, istiod, [], [...loadYaml(INVENTORY), ...userRoutes]);
      await mesh.installBaseline();
      for (const s of SERVICES) {
        const client = serviceClient(istiod, s, `${s}-client`);
        clients.set(s, client);
        const deadline = Date.now() + 30_000;
        for (let r = await client.who(); !r.ok; r = await client.who()) {
          if (Date.now() > deadline) throw new Error(`no answer from ${s} through xDS: ${r.code} ${r.details}`);
          await sleep(100);
        }
      }
      // A 409 (the controller wrote the Deployment meanwhile) is retried by the update event.
      kubelet = await mesh.standInForForks((error) => logs.push({ level: 'error', msg: 'kubelet stand-in', error: String(error) }));
      controller = new Controller({ kubeConfig: cp.kubeConfig, namespaces: [NS], logger: recordingLogger(logs) });
      await controller.start();
      report.push(`setup (control plane, istiod, baseline, clients, controller) ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    });

    afterAll(async () => {
      await controller?.stop();
      await kubelet?.stop();
      for (const c of clients.values()) c.close();
      await mesh?.close();
      await istiod?.stop();
      await cp?.stop();
      const errors = logs.filter((l) => l.level === 'error');
      if (errors.length > 0) console.log(`controller errors:\n${errors.map((e) => JSON.stringify(e)).join('\n')}`);
      if (report.length > 0) console.log(`controller routed by istiod:\n  ${report.join('\n  ')}`);
    });

    it('kubectl apply -> keyed RPCs reach the forks; kubectl delete -> the baselines; no RPC fails in between', async () => {
      const samples: Sample[] = [];
      /** meshfork's own route objects while the Sandbox is Ready. */
      const routedBy: string[] = [];
      /** The user's routes as stored. */
      const storedUserRoutes = async () => (await Promise.all(userRoutes.map(async (r) => (await listObjects(cp!, r.apiVersion, r.kind, NS, '')).filter((o) => o.metadata.name === r.metadata.name)))).flat();
      const userRoutesBefore = await storedUserRoutes();
      let running = true;
      // One loop per (service, keyed): RPCs back to back, each awaited (no pacing).
      const loops = SERVICES.flatMap((service) =>
        [true, false].map(async (keyed) => {
          while (running) samples.push({ service, keyed, at: Date.now(), result: await clients.get(service)!.who(keyed ? KEY : {}) });
        }),
      );
      /** The last `n` keyed RPCs to `service` all reached `backend`. */
      const lastKeyed = (service: Service, backend: string, since: number) => {
        const recent = samples.filter((s) => s.service === service && s.keyed && s.at >= since).slice(-N);
        return recent.length === N && recent.every((s) => s.result.ok && s.result.backend === backend);
      };
      const waitFor = async (what: string, probe: () => boolean | Promise<boolean>, ms = 60_000) => {
        const t0 = Date.now();
        while (!(await probe())) {
          if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
          await sleep(100);
        }
        return Date.now() - t0;
      };
      try {
        await waitFor('RPCs running on every loop', () => SERVICES.every((s) => samples.filter((x) => x.service === s).length >= 2 * N));

        const applied = Date.now();
        const apply = await cp!.exec('kubectl', ['apply', '-f', sandboxFile('alpha')]);
        expect(apply.stderr).toBe('');
        expect(apply.stdout.trim()).toBe('sandbox.meshfork.dev/alpha created');
        const wait = await cp!.exec('kubectl', ['wait', '--for=condition=Ready', '-n', NS, 'sandbox/alpha', '--timeout=60s'], { timeoutMs: 70_000 });
        expect(wait.code, wait.stderr).toBe(0);
        await waitFor('keyed RPCs reaching the forks', () => SERVICES.every((s) => lastKeyed(s, FORK[s], applied)));
        const derived = (await Promise.all(GATEWAY_KINDS.filter(() => gatewayApi).map(([apiVersion, kind]) => listObjects(cp!, apiVersion, kind, NS, 'app.kubernetes.io/managed-by=meshfork')))).flat();
        const virtualServices = await listObjects(cp!, 'networking.istio.io/v1', 'VirtualService', NS, 'app.kubernetes.io/managed-by=meshfork');
        routedBy.push(...derived.map((o) => `${o.kind} ${o.metadata.name}`), ...virtualServices.map((o) => `${o.kind} ${o.metadata.name}`));

        const deleted = Date.now();
        const del = await cp!.exec('kubectl', ['delete', '-n', NS, 'sandbox/alpha', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
        expect(del.code, del.stderr).toBe(0);
        await waitFor('every object of meshfork deleted', async () => {
          for (const [apiVersion, kind] of [['apps/v1', 'Deployment'], ['v1', 'Service'], ['networking.istio.io/v1', 'DestinationRule'], ['networking.istio.io/v1', 'VirtualService'], ...GATEWAY_KINDS.filter(() => gatewayApi)] as const) {
            if ((await listObjects(cp!, apiVersion, kind, NS, 'app.kubernetes.io/managed-by=meshfork')).length > 0) return false;
          }
          return true;
        });
        const goneAt = Date.now();
        // The forks' clusters leave the clients after their Services are deleted: keep sending
        // until every loop has sent N more RPCs after that.
        await waitFor('RPCs after the forks were deleted', () =>
          SERVICES.every((s) => [true, false].every((k) => samples.filter((x) => x.service === s && x.keyed === k && x.at >= goneAt).length >= N)),
        );
        await waitFor('keyed RPCs back on the baselines', () => SERVICES.every((s) => lastKeyed(s, BASELINE[s], deleted)));
        const firstOn = (backend: (s: Service) => string, since: number) =>
          Math.max(...SERVICES.map((s) => samples.find((x) => x.service === s && x.keyed && x.at >= since && x.result.ok && x.result.backend === backend(s))!.at)) - since;
        const routedMs = firstOn((s) => FORK[s], applied);
        const releasedMs = firstOn((s) => BASELINE[s], deleted);
        running = false;
        await Promise.all(loops);

        const failures = samples.filter((s) => !s.result.ok).map((s) => `${s.service}${s.keyed ? ' keyed' : ''} at +${s.at - applied} ms: ${JSON.stringify(s.result)}`);
        expect(failures).toEqual([]);
        for (const s of SERVICES) {
          // Unkeyed RPCs never leave the baseline; keyed ones go baseline -> fork -> baseline, once.
          const unkeyed = new Set(samples.filter((x) => x.service === s && !x.keyed).map((x) => (x.result as { backend: string }).backend));
          expect([...unkeyed]).toEqual([BASELINE[s]]);
          const path = samples
            .filter((x) => x.service === s && x.keyed)
            .map((x) => (x.result as { backend: string }).backend)
            .filter((b, i, all) => i === 0 || all[i - 1] !== b);
          expect(path).toEqual([BASELINE[s], FORK[s], BASELINE[s]]);
        }
        // meshfork's own routes: derived routes on the hosts with user routes, its VirtualService elsewhere.
        expect(routedBy.sort()).toEqual(scenario.expectedRoutes);
        // The user's routes are never written.
        expect(await storedUserRoutes()).toEqual(userRoutesBefore);
        report.push(
          `${samples.length} RPCs, 0 failed; first keyed RPC on a fork (both hosts) ${(routedMs / 1000).toFixed(1)}s after kubectl apply, ` +
            `back on the baselines ${(releasedMs / 1000).toFixed(1)}s after kubectl delete`,
        );
      } finally {
        running = false;
        await Promise.all(loops);
      }
    });
  });
}

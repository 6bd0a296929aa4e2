/**
 * Planner scaling: `plan()` on 2000 Sandboxes against 200 (10x the input), target ratio <= 12x
 * (close to linear). Each Sandbox forks one of a few Deployments behind Services that a user
 * VirtualService (merged) or meshfork's own VirtualService routes, with DestinationRules; one
 * RouteGroup per four Sandboxes (one fork of each Deployment) selects them by label. Every check that compares Sandboxes or
 * generated objects with one another (routing-key uniqueness, RouteGroup membership, name
 * collisions, isolation between forks, replaced objects) runs on every plan. Fastest of several
 * runs of each size, interleaved after a warm-up.
 */
import type { RouteGroupObject, SandboxObject } from '../src/api/schema.js';
import type { KubeObject } from '../src/planner/kube.js';
import { inventoryOf } from '../src/planner/inventory.js';
import { plan, type PlanInput } from '../src/planner/plan.js';
import { type BenchResult, type BenchSuite, median } from './report.js';

const WORKLOADS = ['reviews', 'ratings', 'details', 'cart'];

function baseline(): KubeObject[] {
  return WORKLOADS.flatMap((app): KubeObject[] => [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: `${app}-v1`, namespace: 'shop', labels: { app } },
      spec: {
        selector: { matchLabels: { app, version: 'v1' } },
        template: { metadata: { labels: { app, version: 'v1' } }, spec: { containers: [{ name: app, image: `example.com/${app}:1` }] } },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: 'shop' }, spec: { selector: { app }, ports: [{ name: 'http', port: 9080 }] } },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: app, namespace: 'shop' },
      spec: { host: app, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
    },
    // Half the hosts have a user VirtualService that meshfork merges its routes into.
    ...(app === 'reviews' || app === 'cart'
      ? [{ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: app, namespace: 'shop' }, spec: { hosts: [app], http: [{ route: [{ destination: { host: app } }] }] } }]
      : []),
  ]);
}

export function plannerInput(sandboxCount: number): PlanInput {
  const sandboxes: SandboxObject[] = Array.from({ length: sandboxCount }, (_, i) => ({
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: `s${i}`, namespace: 'shop', labels: { team: `t${Math.floor(i / WORKLOADS.length)}` } },
    spec: {
      forks: [{ forkOf: { kind: 'Deployment', name: `${WORKLOADS[i % WORKLOADS.length]}-v1` }, customizations: { env: [{ name: 'SANDBOX', value: `s${i}` }] } }],
    },
  })) as SandboxObject[];
  const routeGroups: RouteGroupObject[] = Array.from({ length: Math.ceil(sandboxCount / WORKLOADS.length) }, (_, g) => ({
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'RouteGroup',
    metadata: { name: `team-${g}`, namespace: 'shop' },
    spec: { match: { label: { key: 'team', value: `t${g}` } } },
  })) as RouteGroupObject[];
  return { inventory: inventoryOf(baseline()), sandboxes, routeGroups };
}

function timeMs(input: PlanInput): number {
  const t0 = process.hrtime.bigint();
  const result = plan(input);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (result.problems.length > 0) throw new Error(`planner benchmark input has problems: ${JSON.stringify(result.problems.slice(0, 3))}`);
  return ms;
}

function plannerScaling(log: (line: string) => void): BenchResult {
  const small = plannerInput(200);
  const large = plannerInput(2000);
  for (let i = 0; i < 3; i++) timeMs(small);
  timeMs(large);
  const s: number[] = [];
  const l: number[] = [];
  for (let round = 0; round < 7; round++) {
    for (let i = 0; i < 3; i++) s.push(timeMs(small));
    l.push(timeMs(large));
  }
  // Fastest run = intrinsic cost on a shared machine (other processes only ever add time).
  const base = Math.min(...s);
  const cand = Math.min(...l);
  log(`plan(): 200 Sandboxes ${base.toFixed(1)} ms, 2000 Sandboxes ${cand.toFixed(1)} ms (fastest of ${s.length} and ${l.length} runs; medians ${median(s).toFixed(1)} and ${median(l).toFixed(1)} ms)`);
  return {
    id: 'planner-scaling',
    title: 'plan() time, 2000 vs 200 Sandboxes',
    baseline: { label: '200 Sandboxes', value: base, unit: 'ms' },
    candidate: { label: '2000 Sandboxes', value: cand, unit: 'ms' },
    ratio: cand / base,
    target: 12,
    extra: { small_ms: base, large_ms: cand, small_median_ms: median(s), large_median_ms: median(l), sandboxes_small: 200, sandboxes_large: 2000 },
  };
}

export const plannerSuite: BenchSuite = {
  name: 'planner',
  run: async (log) => [plannerScaling(log)],
};

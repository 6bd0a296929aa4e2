// A small cluster for the controller's pure functions: namespace `shop` with `cart` (no user
// VirtualService: meshfork owns `cart-meshfork`) and `pay` (a user VirtualService with its own
// header route), and Sandboxes built on them. "Applied" objects are the lone plan's output with
// the labels the controller adds, as the informer caches would hold them.
import type { SandboxObject, RouteGroupObject } from '../../src/api/schema.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { policyKindOf } from '../../src/planner/inventory.js';
import { SANDBOX_NAMESPACE_LABEL, type ClusterView } from '../../src/controller/view.js';

export const NS = 'shop';

function deployment(name: string, app: string): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS, labels: { app, version: 'v1' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app, version: 'v1' } },
      template: { metadata: { labels: { app, version: 'v1' } }, spec: { containers: [{ name: 'main', image: `registry.example.com/${app}:1` }] } },
    },
  };
}

function service(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080 }] } };
}

export const userPayVirtualService: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'pay', namespace: NS, labels: { team: 'payments' }, annotations: { owner: 'payments' } },
  spec: {
    hosts: ['pay'],
    http: [
      { name: 'canary', match: [{ headers: { 'x-canary': { exact: '1' } } }], route: [{ destination: { host: 'pay' } }], timeout: '3s' },
      { name: 'default', route: [{ destination: { host: 'pay' } }] },
    ],
  },
};

export function baseView(extra: Partial<ClusterView> = {}): ClusterView {
  return {
    sandboxes: [],
    routeGroups: [],
    deployments: [deployment('cart-v1', 'cart'), deployment('pay-v1', 'pay')],
    services: [service('cart'), service('pay')],
    destinationRules: [],
    virtualServices: [userPayVirtualService],
    envoyFilters: [],
    policies: [],
    ...extra,
  };
}

let uid = 0;
export function sandbox(name: string, forks: string[], options: { created?: string; routingKey?: string; labels?: Record<string, string>; deleting?: boolean; generation?: number } = {}): SandboxObject {
  uid += 1;
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: {
      name,
      namespace: NS,
      ...(options.labels ? { labels: options.labels } : {}),
      uid: `uid-${name}-${uid}`,
      creationTimestamp: options.created ?? '2026-11-30T10:00:00Z',
      generation: options.generation ?? 1,
      ...(options.deleting ? { deletionTimestamp: '2026-11-30T11:00:00Z' } : {}),
    } as SandboxObject['metadata'],
    spec: { forks: forks.map((f) => ({ forkOf: { kind: 'Deployment' as const, name: f }, customizations: { images: [{ container: 'main', image: `registry.example.com/${f}:${name}` }] } })), ...(options.routingKey ? { routingKey: options.routingKey } : {}) },
  };
}

export function routeGroup(name: string, label: string, value: string): RouteGroupObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'RouteGroup',
    metadata: { name, namespace: NS, creationTimestamp: '2026-11-30T09:00:00Z' } as RouteGroupObject['metadata'],
    spec: { match: { label: { key: label, value } } },
  };
}

/** The view with the Sandbox's objects applied (labels as the controller writes them). */
export function withApplied(view: ClusterView, s: SandboxObject, available: number | null = 1): ClusterView {
  const verdict = planSandbox(s, view, undefined);
  if (verdict.problems.length > 0) throw new Error(`fixture Sandbox ${s.metadata.name} is invalid: ${JSON.stringify(verdict.problems)}`);
  const applied = verdict.objects.map((o) => ({
    ...structuredClone(o),
    metadata: { ...structuredClone(o.metadata), labels: { ...o.metadata.labels, [SANDBOX_NAMESPACE_LABEL]: NS }, generation: 1 },
    ...(o.kind === 'Deployment' && available !== null ? { status: { observedGeneration: 1, availableReplicas: available, updatedReplicas: 1, replicas: 1 } } : {}),
  }));
  const of = (kind: string) => applied.filter((o) => o.kind === kind);
  return {
    ...view,
    deployments: [...view.deployments, ...of('Deployment')],
    services: [...view.services, ...of('Service')],
    destinationRules: [...view.destinationRules, ...of('DestinationRule')],
    envoyFilters: [...view.envoyFilters, ...of('EnvoyFilter')],
    policies: [...view.policies, ...applied.filter((o) => policyKindOf(o) !== undefined)],
  };
}

/** The view with VirtualServices replaced by those named (after a host reconcile wrote them). */
export function withVirtualServices(view: ClusterView, written: readonly KubeObject[]): ClusterView {
  const id = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;
  const names = new Set(written.map(id));
  return { ...view, virtualServices: [...view.virtualServices.filter((o) => !names.has(id(o))), ...written] };
}

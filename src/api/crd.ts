/**
 * CustomResourceDefinitions for meshfork.dev/v1alpha1, generated from the same schemas the CLI
 * validates with (src/api/schema.ts).
 */
import { API_GROUP, API_VERSION, RouteGroupSpec, RouteGroupStatus, SandboxSpec, SandboxStatus } from './schema.js';
import type { KubeObject } from '../planner/kube.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Rewrites a JSON Schema into the structural subset apiextensions.k8s.io/v1 accepts: boolean
 * `additionalProperties` is dropped (unknown fields are pruned server-side, and rejected with
 * `fieldValidation=Strict`), everything else is kept as written.
 */
export function toStructural(schema: unknown): Json {
  if (Array.isArray(schema)) return schema.map(toStructural);
  if (schema === null || typeof schema !== 'object') return schema as Json;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'additionalProperties' && typeof value === 'boolean') continue;
    if (key === 'properties' || key === 'patternProperties') {
      const props: { [key: string]: Json } = {};
      for (const [name, sub] of Object.entries(value as object)) props[name] = toStructural(sub);
      out[key] = props;
      continue;
    }
    out[key] = toStructural(value);
  }
  return out;
}

interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

function crd(names: CrdNames, description: string, spec: unknown, status: unknown, columns: object[]): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${API_GROUP}`, labels: { 'app.kubernetes.io/name': 'meshfork', 'app.kubernetes.io/part-of': 'meshfork' } },
    spec: {
      group: API_GROUP,
      names: { ...names, listKind: `${names.kind}List`, categories: ['meshfork'] },
      scope: 'Namespaced',
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string', description: 'API version of the object.' },
                kind: { type: 'string', description: 'Kind of the object.' },
                metadata: { type: 'object' }, // the API server rejects any other key here (even a description)
                spec: toStructural(spec),
                status: toStructural(status),
              },
            },
          },
        },
      ],
    },
  };
}

const readyColumns = [
  { name: 'Routing-Key', type: 'string', jsonPath: '.status.routingKey', description: 'Routing key in effect.' },
  { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status", description: 'Ready condition.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** The two CRDs, Sandbox first. */
export function customResourceDefinitions(): KubeObject[] {
  return [
    crd(
      { kind: 'Sandbox', plural: 'sandboxes', singular: 'sandbox', shortNames: ['sbx'] },
      'A set of forked workloads reachable with one routing key.',
      SandboxSpec,
      SandboxStatus,
      [
        { name: 'Forks', type: 'string', jsonPath: '.status.forkNames', description: 'Baseline workloads forked.', priority: 1 },
        ...readyColumns,
      ],
    ),
    crd(
      { kind: 'RouteGroup', plural: 'routegroups', singular: 'routegroup', shortNames: ['rg'] },
      'Sandboxes reachable together under one extra routing key.',
      RouteGroupSpec,
      RouteGroupStatus,
      readyColumns,
    ),
  ];
}

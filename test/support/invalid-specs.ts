/**
 * Invalid Sandbox/RouteGroup specs, shared by the CLI tests (every case) and the CRD tests
 * against a real API server (the cases with `crd: true`, i.e. the ones a schema or CEL rule can
 * express). `path` and `message` are what the CLI must print for the case.
 */
export interface InvalidSpecCase {
  readonly name: string;
  readonly object: Record<string, unknown>;
  readonly path: string;
  readonly message: string;
  /** Whether meshfork's CRDs (schema + CEL) must reject the object too. */
  readonly crd: boolean;
}

const fork = { forkOf: { kind: 'Deployment', name: 'reviews-v3' } };

export function sandbox(name: string, spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, ...metadata }, spec };
}

function withCustomizations(customizations: Record<string, unknown>) {
  return { forks: [{ ...fork, customizations }] };
}

export const INVALID_SPECS: readonly InvalidSpecCase[] = [
  { name: 'unknown spec field', object: sandbox('bad-unknown', { forks: [fork], replicaz: 2 }), path: 'spec.replicaz', message: 'unknown field', crd: true },
  { name: 'no forks', object: sandbox('bad-noforks', { forks: [] }), path: 'spec.forks', message: 'must NOT have fewer than 1 items', crd: true },
  { name: 'missing forkOf', object: sandbox('bad-noforkof', { forks: [{}] }), path: 'spec.forks[0].forkOf', message: 'required field is missing', crd: true },
  {
    name: 'unsupported fork kind',
    object: sandbox('bad-kind', { forks: [{ forkOf: { kind: 'StatefulSet', name: 'x' } }] }),
    path: 'spec.forks[0].forkOf.kind',
    message: 'must be one of "Deployment"',
    crd: true,
  },
  {
    name: 'routing key with upper case',
    object: sandbox('bad-key', { forks: [fork], routingKey: 'ABCdef' }),
    path: 'spec.routingKey',
    message: 'must match ^[a-z0-9]{4,32}$',
    crd: true,
  },
  {
    name: 'routing key with regex characters',
    object: sandbox('bad-key-regex', { forks: [fork], routingKey: 'ab.*' }),
    path: 'spec.routingKey',
    message: 'must match ^[a-z0-9]{4,32}$',
    crd: true,
  },
  { name: 'ttl without unit', object: sandbox('bad-ttl', { forks: [fork], ttl: { duration: '10' } }), path: 'spec.ttl.duration', message: 'must match ^[1-9][0-9]{0,5}(m|h|d|w)$', crd: true },
  {
    name: 'ttl offsetFrom',
    object: sandbox('bad-offset', { forks: [fork], ttl: { duration: '2h', offsetFrom: 'deletedAt' } }),
    path: 'spec.ttl.offsetFrom',
    message: 'must be one of "createdAt", "updatedAt"',
    crd: true,
  },
  { name: 'split above 100', object: sandbox('bad-split', { forks: [fork], split: { weight: 150 } }), path: 'spec.split.weight', message: 'must be <= 100', crd: true },
  {
    name: 'endpoint target not a URL',
    object: sandbox('bad-endpoint', { forks: [fork], endpoints: [{ name: 'web', target: 'productpage:9080' }] }),
    path: 'spec.endpoints[0].target',
    message: 'must match',
    crd: true,
  },
  {
    name: 'env with value and valueFrom',
    object: sandbox('bad-env', withCustomizations({ env: [{ name: 'A', value: 'x', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] })),
    path: 'spec.forks[0].customizations.env[0]',
    message: 'upsert needs exactly one of value and valueFrom; delete takes neither',
    crd: true,
  },
  {
    name: 'env delete with a value',
    object: sandbox('bad-env-delete', withCustomizations({ env: [{ name: 'A', value: 'x', operation: 'delete' }] })),
    path: 'spec.forks[0].customizations.env[0]',
    message: 'upsert needs exactly one of value and valueFrom; delete takes neither',
    crd: true,
  },
  {
    name: 'unknown patch type',
    object: sandbox('bad-patch-type', withCustomizations({ patch: { type: 'yaml', value: {} } })),
    path: 'spec.forks[0].customizations.patch.type',
    message: 'must be one of "strategic", "merge", "json"',
    crd: true,
  },
  {
    name: 'replicas negative',
    object: sandbox('bad-replicas', withCustomizations({ replicas: -1 })),
    path: 'spec.forks[0].customizations.replicas',
    message: 'must be >= 0',
    crd: true,
  },
  {
    name: 'image empty',
    object: sandbox('bad-image', withCustomizations({ images: [{ image: '' }] })),
    path: 'spec.forks[0].customizations.images[0].image',
    message: 'must NOT have fewer than 1 characters',
    crd: true,
  },
  {
    name: 'json patch that is not a list',
    object: sandbox('bad-json-patch', withCustomizations({ patch: { type: 'json', value: { op: 'add' } } })),
    path: 'spec.forks[0].customizations.patch.value',
    message: 'a json patch is a list of operations',
    crd: false,
  },
  {
    name: 'route group match with two operators',
    object: {
      apiVersion: 'meshfork.dev/v1alpha1',
      kind: 'RouteGroup',
      metadata: { name: 'bad-match' },
      spec: { match: { label: { key: 'team', value: 'a' }, any: [{ label: { key: 'team', value: 'b' } }] } },
    },
    path: 'spec.match',
    message: 'must set exactly one of its fields',
    crd: true,
  },
  {
    name: 'route group label glob with a space',
    object: { apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'bad-glob' }, spec: { match: { label: { key: 'team', value: 'a b' } } } },
    path: 'spec.match.label.value',
    message: 'must match',
    crd: true,
  },
];

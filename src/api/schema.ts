/**
 * The meshfork.dev/v1alpha1 API, defined once. The TypeBox schemas below yield:
 *  - the TypeScript types (`Static<...>`),
 *  - the JSON Schema ajv validates CLI input against (src/api/validate.ts),
 *  - the CRDs' structural `openAPIV3Schema` (src/api/crd.ts).
 *
 * Schemas stay inside the structural-schema subset Kubernetes accepts: every node has a `type`
 * (or `x-kubernetes-preserve-unknown-fields`), no `$ref`, no `const`, no recursion; enums are
 * plain string enums. Rules a schema cannot express live in `x-kubernetes-validations` (CEL,
 * checked by the API server) and are mirrored in src/api/validate.ts for offline use.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const API_GROUP = 'meshfork.dev';
export const API_VERSION = 'v1alpha1';
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** RFC 1123 label: what Services, namespaces and label-safe names must be. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** RFC 1123 subdomain: what Deployment names must be. */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
const C_IDENTIFIER_ENV_PATTERN = '^[-._a-zA-Z][-._a-zA-Z0-9]*$';
export const ROUTING_KEY_PATTERN = '^[a-z0-9]{4,32}$';
export const TTL_DURATION_PATTERN = '^[1-9][0-9]{0,5}(m|h|d|w)$';
export const ENDPOINT_TARGET_PATTERN = '^(http|https|grpc)://[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?(/[^\\s]*)?$';
/** Label values in RouteGroup matches: label-value characters plus the globs `*` and `?`. */
export const LABEL_GLOB_PATTERN = '^[A-Za-z0-9*?]([-A-Za-z0-9_.*?]{0,61}[A-Za-z0-9*?])?$';
export const LABEL_KEY_PATTERN = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';

function stringEnum<const T extends readonly string[]>(values: T, description: string, defaultValue?: T[number]) {
  return Type.Unsafe<T[number]>({
    type: 'string',
    enum: [...values],
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });
}

function stringMap(description: string) {
  return Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, description });
}

/** Any JSON value, kept as written (patch documents, `valueFrom`). */
function anyValue(description: string) {
  return Type.Unsafe<unknown>({ 'x-kubernetes-preserve-unknown-fields': true, description });
}

function strictObject<T extends Record<string, TSchema>>(properties: T, description: string, extra: Record<string, unknown> = {}) {
  return Type.Object(properties, { additionalProperties: false, description, ...extra });
}

const containerName = Type.String({
  description:
    "Container of the pod template to change. When omitted: the pod's default container as kubectl picks it (the kubectl.kubernetes.io/default-container annotation of the pod template, else the first container).",
  pattern: DNS_LABEL_PATTERN,
  maxLength: 63,
});

export const ImageCustomization = strictObject(
  {
    container: Type.Optional(containerName),
    image: Type.String({ description: 'Image reference the fork runs instead of the baseline image.', minLength: 1, maxLength: 512 }),
  },
  'Replaces the image of one container.',
);

export const EnvCustomization = strictObject(
  {
    container: Type.Optional(containerName),
    name: Type.String({ description: 'Environment variable name.', pattern: C_IDENTIFIER_ENV_PATTERN, maxLength: 256 }),
    value: Type.Optional(Type.String({ description: 'Literal value. Exactly one of value and valueFrom for operation upsert.', maxLength: 32768 })),
    valueFrom: Type.Optional(
      Type.Unsafe<Record<string, unknown>>({
        type: 'object',
        'x-kubernetes-preserve-unknown-fields': true,
        description: 'Source of the value, as in a container env var (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef).',
      }),
    ),
    operation: Type.Optional(
      stringEnum(['upsert', 'delete'] as const, 'upsert sets (or replaces) the variable; delete removes it from the fork.', 'upsert'),
    ),
  },
  'Sets or removes one environment variable.',
  {
    'x-kubernetes-validations': [
      {
        rule: "(has(self.operation) && self.operation == 'delete') ? !has(self.value) && !has(self.valueFrom) : has(self.value) != has(self.valueFrom)",
        message: 'upsert needs exactly one of value and valueFrom; delete takes neither',
      },
    ],
  },
);

const argvCustomization = (what: string) =>
  strictObject(
    {
      container: Type.Optional(containerName),
      value: Type.Array(Type.String({ description: `One ${what} element.` }), { description: `The container's new ${what}.`, maxItems: 256 }),
    },
    `Replaces the ${what} of one container.`,
  );

export const PatchCustomization = strictObject(
  {
    type: stringEnum(
      ['strategic', 'merge', 'json'] as const,
      'strategic: Kubernetes strategic merge patch; merge: RFC 7386 JSON merge patch; json: RFC 6902 JSON patch.',
    ),
    value: anyValue('The patch document, applied to the forked Deployment after the other customizations.'),
  },
  'A patch applied to the whole forked Deployment.',
);

export const Customizations = strictObject(
  {
    images: Type.Optional(Type.Array(ImageCustomization, { description: 'Image replacements.', maxItems: 32 })),
    env: Type.Optional(Type.Array(EnvCustomization, { description: 'Environment changes, applied in order.', maxItems: 256 })),
    command: Type.Optional(Type.Array(argvCustomization('command'), { description: 'Command replacements per container.', maxItems: 32 })),
    args: Type.Optional(Type.Array(argvCustomization('args'), { description: 'Argument replacements per container.', maxItems: 32 })),
    patch: Type.Optional(PatchCustomization),
    replicas: Type.Optional(Type.Integer({ description: 'Replicas of the fork.', minimum: 0, maximum: 100, default: 1 })),
  },
  'How the fork differs from its baseline.',
);

export const ForkOf = strictObject(
  {
    kind: stringEnum(['Deployment'] as const, 'Kind of the baseline workload.'),
    name: Type.String({ description: 'Name of the baseline Deployment.', pattern: DNS_SUBDOMAIN_PATTERN, maxLength: 253 }),
    namespace: Type.Optional(
      Type.String({ description: "Namespace of the baseline. Defaults to the sandbox's namespace.", pattern: DNS_LABEL_PATTERN, maxLength: 63 }),
    ),
  },
  'The baseline workload this fork copies.',
);

export const Fork = strictObject(
  {
    forkOf: ForkOf,
    customizations: Type.Optional(Customizations),
  },
  'One forked workload.',
);

export const Ttl = strictObject(
  {
    duration: Type.String({ description: 'Lifetime: a number and a unit m (minutes), h, d or w, e.g. 8h.', pattern: TTL_DURATION_PATTERN }),
    offsetFrom: Type.Optional(
      stringEnum(['createdAt', 'updatedAt'] as const, 'Whether the lifetime counts from creation or from the last spec change.', 'createdAt'),
    ),
  },
  'Deletes the sandbox when its lifetime ends.',
);

export const Endpoint = strictObject(
  {
    name: Type.String({ description: 'Endpoint name, unique in the object.', pattern: DNS_LABEL_PATTERN, maxLength: 40 }),
    target: Type.String({
      description: 'In-cluster URL the preview endpoint forwards to, e.g. http://productpage.bookinfo.svc:9080.',
      pattern: ENDPOINT_TARGET_PATTERN,
      maxLength: 512,
    }),
  },
  'A preview endpoint reachable from outside the mesh that carries the routing key.',
);

const endpoints = Type.Optional(
  Type.Array(Endpoint, {
    description: 'Preview endpoints.',
    maxItems: 16,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['name'],
  }),
);

const routingKey = Type.Optional(
  Type.String({
    description: 'Routing key ([a-z0-9], 4 to 32 characters). Generated when absent.',
    pattern: ROUTING_KEY_PATTERN,
  }),
);

const description = Type.Optional(Type.String({ description: 'Free text for humans.', maxLength: 1024 }));

export const Split = strictObject(
  {
    weight: Type.Integer({ description: 'Percentage (0-100) of untagged traffic sent to the forks.', minimum: 0, maximum: 100 }),
  },
  'Sends a weighted share of untagged traffic to the forks (A/B tests). Off unless set.',
);

export const SandboxSpec = strictObject(
  {
    description,
    forks: Type.Array(Fork, { description: 'Workloads forked by this sandbox.', minItems: 1, maxItems: 32 }),
    routingKey,
    ttl: Type.Optional(Ttl),
    endpoints,
    split: Type.Optional(Split),
  },
  'Desired state of a Sandbox.',
);

const ObjectMetadata = Type.Object(
  {
    name: Type.String({ description: 'Object name.', pattern: DNS_LABEL_PATTERN, minLength: 1, maxLength: 63 }),
    namespace: Type.Optional(Type.String({ description: 'Namespace.', pattern: DNS_LABEL_PATTERN, maxLength: 63 })),
    labels: Type.Optional(stringMap('Labels; RouteGroups select sandboxes by them.')),
    annotations: Type.Optional(stringMap('Annotations.')),
  },
  { description: 'Standard object metadata.', additionalProperties: true },
);

export const Condition = Type.Object(
  {
    type: Type.String({ description: 'Condition type, e.g. Ready, WorkloadsReady, RoutingReady.' }),
    status: stringEnum(['True', 'False', 'Unknown'] as const, 'Condition status.'),
    reason: Type.Optional(Type.String({ description: 'Machine-readable CamelCase reason.' })),
    message: Type.Optional(Type.String({ description: 'Human-readable detail.' })),
    lastTransitionTime: Type.Optional(Type.String({ description: 'When the status last changed (RFC 3339).', format: 'date-time' })),
    observedGeneration: Type.Optional(Type.Integer({ description: 'Generation the condition was computed for.' })),
  },
  { description: 'A status condition.', additionalProperties: false },
);

const conditions = Type.Optional(
  Type.Array(Condition, {
    description: 'Current state, one entry per condition type.',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
  }),
);

export const SandboxStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ description: 'Last generation the controller acted on.' })),
    routingKey: Type.Optional(Type.String({ description: 'Routing key in effect (generated when the spec has none).' })),
    conditions,
    expiresAt: Type.Optional(Type.String({ description: 'When spec.ttl ends and the controller deletes the Sandbox (RFC 3339).', format: 'date-time' })),
    forkNames: Type.Optional(
      Type.String({ description: 'Baseline workloads forked, comma-separated (the Forks printer column; a column shows one JSONPath result only).' }),
    ),
    forks: Type.Optional(
      Type.Array(
        Type.Object(
          {
            forkOf: Type.String({ description: 'Baseline workload, namespace/name.' }),
            deployment: Type.String({ description: 'Name of the forked Deployment.' }),
            ready: Type.Boolean({ description: 'Whether the fork has its desired replicas available.' }),
            message: Type.Optional(Type.String({ description: 'Why it is not ready.' })),
          },
          { description: 'State of one fork.', additionalProperties: false },
        ),
        { description: 'Per-fork state.' },
      ),
    ),
  },
  { description: 'Observed state of a Sandbox.', additionalProperties: false },
);

export const Sandbox = Type.Object(
  {
    apiVersion: Type.Unsafe<typeof GROUP_VERSION>({ type: 'string', enum: [GROUP_VERSION], description: 'API version.' }),
    kind: Type.Unsafe<'Sandbox'>({ type: 'string', enum: ['Sandbox'], description: 'Kind.' }),
    metadata: ObjectMetadata,
    spec: SandboxSpec,
    status: Type.Optional(SandboxStatus),
  },
  { additionalProperties: false, description: 'A set of forked workloads reachable with one routing key.' },
);

// RouteGroup label selectors nest at most three levels (structural schemas cannot recurse).
const LabelMatch = strictObject(
  {
    key: Type.String({ description: 'Label key.', pattern: LABEL_KEY_PATTERN, maxLength: 317 }),
    value: Type.String({ description: 'Label value glob: * matches any run of characters, ? one character.', pattern: LABEL_GLOB_PATTERN }),
  },
  'Matches sandboxes whose label `key` has a value matching the glob.',
);
const exactlyOne = { minProperties: 1, maxProperties: 1 };
const MatchLeaf = strictObject({ label: LabelMatch }, 'A label condition.');
const MatchLevel2 = strictObject(
  {
    label: Type.Optional(LabelMatch),
    any: Type.Optional(Type.Array(MatchLeaf, { description: 'Matches when any condition matches.', minItems: 1 })),
    all: Type.Optional(Type.Array(MatchLeaf, { description: 'Matches when every condition matches.', minItems: 1 })),
  },
  'Exactly one of label, any, all.',
  exactlyOne,
);
export const RouteGroupMatch = strictObject(
  {
    label: Type.Optional(LabelMatch),
    any: Type.Optional(Type.Array(MatchLevel2, { description: 'Matches when any condition matches.', minItems: 1 })),
    all: Type.Optional(Type.Array(MatchLevel2, { description: 'Matches when every condition matches.', minItems: 1 })),
  },
  'Which sandboxes (in the RouteGroup namespace) belong to the group. Exactly one of label, any, all.',
  exactlyOne,
);

export const RouteGroupSpec = strictObject(
  {
    description,
    match: RouteGroupMatch,
    routingKey,
    endpoints,
  },
  'Desired state of a RouteGroup.',
);

export const RouteGroupStatus = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ description: 'Last generation the controller acted on.' })),
    routingKey: Type.Optional(Type.String({ description: 'Routing key in effect.' })),
    conditions,
    sandboxes: Type.Optional(Type.Array(Type.String({ description: 'Member sandbox name.' }), { description: 'Matched sandboxes.' })),
  },
  { description: 'Observed state of a RouteGroup.', additionalProperties: false },
);

export const RouteGroup = Type.Object(
  {
    apiVersion: Type.Unsafe<typeof GROUP_VERSION>({ type: 'string', enum: [GROUP_VERSION], description: 'API version.' }),
    kind: Type.Unsafe<'RouteGroup'>({ type: 'string', enum: ['RouteGroup'], description: 'Kind.' }),
    metadata: ObjectMetadata,
    spec: RouteGroupSpec,
    status: Type.Optional(RouteGroupStatus),
  },
  { additionalProperties: false, description: 'Sandboxes reachable together under one extra routing key.' },
);

export type SandboxObject = Static<typeof Sandbox>;
export type SandboxSpecT = Static<typeof SandboxSpec>;
export type ForkT = Static<typeof Fork>;
export type CustomizationsT = Static<typeof Customizations>;
export type EnvCustomizationT = Static<typeof EnvCustomization>;
export type RouteGroupObject = Static<typeof RouteGroup>;
export type RouteGroupMatchT = Static<typeof RouteGroupMatch>;
export type LabelMatchT = Static<typeof LabelMatch>;

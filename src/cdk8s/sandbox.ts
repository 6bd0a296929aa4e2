/**
 * `Sandbox`: one meshfork.dev/v1alpha1 Sandbox declared in code. It emits nothing by itself: the
 * enclosing MeshforkChart collects every Sandbox and RouteGroup beneath it and plans them together
 * at synthesis time, because VirtualServices are computed per host across all sandboxes.
 */
import { Construct } from 'constructs';
import { InputError, type Problem } from '../api/problem.js';
import { GROUP_VERSION, type ForkT, type SandboxObject, type SandboxSpecT } from '../api/schema.js';
import { validateSandbox } from '../api/validate.js';
import { effectiveRoutingKey, objectRef } from '../planner/plan.js';
import { plainCopy, requireMeshforkScope } from './scope.js';

/** Metadata shared by Sandbox and RouteGroup props. */
export interface SpecMetadataProps {
  /**
   * Object name (`metadata.name`), an RFC 1123 label. Fork names end with it.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * Namespace of the object. Forks of baselines elsewhere name theirs in `forkOf.namespace`.
   * @default - the MeshforkChart's `namespace`
   */
  readonly namespace?: string;
  /**
   * Labels; RouteGroups select sandboxes by them.
   * @default - no labels
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Annotations.
   * @default - no annotations
   */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A Sandbox spec: the fields of `spec` (see src/api/schema.ts) plus metadata. */
export interface SandboxProps extends SpecMetadataProps {
  /** Workloads to fork (1 to 32), each a baseline Deployment with its customizations. */
  readonly forks: readonly ForkT[];
  /**
   * Routing key, `[a-z0-9]{4,32}`.
   * @default - derived from the namespace and name, so every synth gives the same key
   */
  readonly routingKey?: string;
  /**
   * Free text for humans.
   * @default - none
   */
  readonly description?: string;
  /**
   * Lifetime. Enforced by the in-cluster reconciler; with GitOps alone, remove the Sandbox from the app.
   * @default - no expiry
   */
  readonly ttl?: SandboxSpecT['ttl'];
  /**
   * Preview endpoints.
   * @default - none
   */
  readonly endpoints?: SandboxSpecT['endpoints'];
  /**
   * Weighted share of untagged traffic sent to the forks (A/B tests).
   * @default - no untagged traffic reaches the forks
   */
  readonly split?: SandboxSpecT['split'];
}

/** @internal Builds the object a spec construct stands for; unknown props land in `spec` so validation reports them. */
export function specObject<K extends string>(kind: K, id: string, defaultNamespace: string, props: SpecMetadataProps & object) {
  const { name, namespace, labels, annotations, ...spec } = props;
  return {
    apiVersion: GROUP_VERSION,
    kind,
    metadata: {
      name: name ?? id,
      namespace: namespace ?? defaultNamespace,
      ...(labels !== undefined ? { labels: { ...labels } } : {}),
      ...(annotations !== undefined ? { annotations: { ...annotations } } : {}),
    },
    spec: plainCopy(spec) as Record<string, unknown>,
  };
}

/** @internal Problems of one spec object, located at the construct that declared it. */
export function locate(problems: readonly Problem[], constructPath: string, object: { kind: string; metadata: { name: string; namespace?: string } }): Problem[] {
  return problems.map((p) => ({ ...p, file: constructPath, object: objectRef(object) }));
}

/**
 * A Sandbox declared in code:
 *
 * ```ts
 * new Sandbox(chart, 'star-ratings', {
 *   forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v3' }, customizations: { images: [{ image: 'ghcr.io/x/reviews:pr-7' }] } }],
 * });
 * ```
 *
 * The spec is validated when the construct is created (the same JSON Schema and rules as the CRD and
 * `meshfork validate`); an invalid spec throws an InputError listing every problem as
 * `<construct path>: Sandbox <namespace>/<name>: <field.path>: <message>`.
 */
export class Sandbox extends Construct {
  /** Defines a Sandbox from a meshfork.dev/v1alpha1 Sandbox object (e.g. read from YAML); `status` is ignored. */
  public static fromObject(scope: Construct, id: string, object: SandboxObject): Sandbox {
    const problems = validateSandbox(object);
    if (problems.length > 0) throw new InputError(locate(problems, `${scope.node.path}/${id}`, object));
    const { name, namespace, labels, annotations } = object.metadata;
    return new Sandbox(scope, id, {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(labels !== undefined ? { labels } : {}),
      ...(annotations !== undefined ? { annotations } : {}),
      ...object.spec,
    });
  }

  /** `metadata.name`. */
  public readonly name: string;
  /** `metadata.namespace`. */
  public readonly namespace: string;
  /** The routing key requests carry to reach this sandbox's forks (derived when the props set none). */
  public readonly routingKey: string;
  readonly #object: SandboxObject;

  public constructor(scope: Construct, id: string, props: SandboxProps) {
    super(scope, id);
    let chart;
    try {
      chart = requireMeshforkScope(this, 'Sandbox');
    } catch (e) {
      scope.node.tryRemoveChild(this.node.id);
      throw e;
    }
    const object = specObject('Sandbox', id, chart.defaultNamespace, props);
    const problems = validateSandbox(object);
    if (problems.length > 0) {
      scope.node.tryRemoveChild(this.node.id); // leave no half-built spec behind for the chart to find
      throw new InputError(locate(problems, this.node.path, object));
    }
    this.#object = object as SandboxObject;
    this.name = this.#object.metadata.name;
    this.namespace = this.#object.metadata.namespace ?? chart.defaultNamespace;
    this.routingKey = effectiveRoutingKey(this.#object);
  }

  /** The meshfork.dev/v1alpha1 Sandbox object this construct stands for (a copy). */
  public toObject(): SandboxObject {
    return structuredClone(this.#object);
  }
}

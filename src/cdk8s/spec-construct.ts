/**
 * What Sandbox and RouteGroup constructs share: each stands for one meshfork.dev/v1alpha1 object,
 * validated when the construct is created, and emits nothing by itself (the enclosing
 * MeshforkChart plans every spec together at synthesis).
 */
import { Construct } from 'constructs';
import { InputError, type Problem } from '../api/problem.js';
import { GROUP_VERSION, type RouteGroupObject, type SandboxObject } from '../api/schema.js';
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

type SpecObject = SandboxObject | RouteGroupObject;

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

/** @internal Props of a construct equivalent to `object` (validated first; `status` is ignored). */
export function propsOf<T extends SpecObject>(scope: Construct, id: string, object: T, validate: (o: unknown) => Problem[]): SpecMetadataProps & T['spec'] {
  const problems = validate(object);
  if (problems.length > 0) throw new InputError(locate(problems, `${scope.node.path}/${id}`, object));
  const { name, namespace, labels, annotations } = object.metadata;
  return {
    name,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(labels !== undefined ? { labels } : {}),
    ...(annotations !== undefined ? { annotations } : {}),
    ...object.spec,
  };
}

/** @internal Base of Sandbox and RouteGroup. */
export abstract class SpecConstruct<T extends SpecObject> extends Construct {
  /** `metadata.name`. */
  public readonly name: string;
  /** `metadata.namespace`. */
  public readonly namespace: string;
  /** The routing key requests carry to reach this spec's forks (derived when the props set none). */
  public readonly routingKey: string;
  readonly #object: T;

  /**
   * @param earlier problems the subclass found in its props before building the object (reported
   *   with the validation's, located the same way)
   */
  protected constructor(
    scope: Construct,
    id: string,
    kind: T['kind'],
    props: SpecMetadataProps & object,
    validate: (o: unknown) => Problem[],
    earlier: readonly Problem[] = [],
  ) {
    super(scope, id);
    let chart;
    try {
      chart = requireMeshforkScope(this, kind);
    } catch (e) {
      scope.node.tryRemoveChild(this.node.id);
      throw e;
    }
    const object = specObject(kind, id, chart.defaultNamespace, props);
    const problems = [...earlier, ...validate(object)];
    if (problems.length > 0) {
      scope.node.tryRemoveChild(this.node.id); // leave no half-built spec behind for the chart to find
      throw new InputError(locate(problems, this.node.path, object));
    }
    this.#object = object as unknown as T;
    this.name = this.#object.metadata.name;
    this.namespace = this.#object.metadata.namespace ?? chart.defaultNamespace;
    this.routingKey = effectiveRoutingKey(this.#object);
  }

  /** The meshfork.dev/v1alpha1 object this construct stands for (a copy). */
  public toObject(): T {
    return structuredClone(this.#object);
  }
}

/**
 * `RouteGroup`: one meshfork.dev/v1alpha1 RouteGroup declared in code. Like Sandbox it emits nothing
 * by itself; the enclosing MeshforkChart plans it with every Sandbox.
 */
import { Construct } from 'constructs';
import { InputError } from '../api/problem.js';
import type { RouteGroupMatchT, RouteGroupObject } from '../api/schema.js';
import { validateRouteGroup } from '../api/validate.js';
import { effectiveRoutingKey } from '../planner/plan.js';
import { requireMeshforkScope } from './scope.js';
import { locate, specObject, type SpecMetadataProps } from './sandbox.js';

/** A RouteGroup spec: the fields of `spec` (see src/api/schema.ts) plus metadata. */
export interface RouteGroupProps extends SpecMetadataProps {
  /** Which sandboxes of the RouteGroup's namespace belong to it, by label globs. Exactly one of label, any, all. */
  readonly match: RouteGroupMatchT;
  /**
   * The group's own routing key, `[a-z0-9]{4,32}`; every member fork also answers to it.
   * @default - derived from the namespace and name
   */
  readonly routingKey?: string;
  /**
   * Free text for humans.
   * @default - none
   */
  readonly description?: string;
  /**
   * Preview endpoints.
   * @default - none
   */
  readonly endpoints?: RouteGroupObject['spec']['endpoints'];
}

/**
 * A RouteGroup declared in code. The spec is validated when the construct is created; an invalid
 * spec throws an InputError listing every problem with its field path.
 */
export class RouteGroup extends Construct {
  /** Defines a RouteGroup from a meshfork.dev/v1alpha1 RouteGroup object; `status` is ignored. */
  public static fromObject(scope: Construct, id: string, object: RouteGroupObject): RouteGroup {
    const problems = validateRouteGroup(object);
    if (problems.length > 0) throw new InputError(locate(problems, `${scope.node.path}/${id}`, object));
    const { name, namespace, labels, annotations } = object.metadata;
    return new RouteGroup(scope, id, {
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
  /** The group's routing key (derived when the props set none). */
  public readonly routingKey: string;
  readonly #object: RouteGroupObject;

  public constructor(scope: Construct, id: string, props: RouteGroupProps) {
    super(scope, id);
    let chart;
    try {
      chart = requireMeshforkScope(this, 'RouteGroup');
    } catch (e) {
      scope.node.tryRemoveChild(this.node.id);
      throw e;
    }
    const object = specObject('RouteGroup', id, chart.defaultNamespace, props);
    const problems = validateRouteGroup(object);
    if (problems.length > 0) {
      scope.node.tryRemoveChild(this.node.id); // leave no half-built spec behind for the chart to find
      throw new InputError(locate(problems, this.node.path, object));
    }
    this.#object = object as RouteGroupObject;
    this.name = this.#object.metadata.name;
    this.namespace = this.#object.metadata.namespace ?? chart.defaultNamespace;
    this.routingKey = effectiveRoutingKey(this.#object);
  }

  /** The meshfork.dev/v1alpha1 RouteGroup object this construct stands for (a copy). */
  public toObject(): RouteGroupObject {
    return structuredClone(this.#object);
  }
}

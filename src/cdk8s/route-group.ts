/**
 * `RouteGroup`: one meshfork.dev/v1alpha1 RouteGroup declared in code. Like Sandbox it emits nothing
 * by itself; the enclosing MeshforkChart plans it with every Sandbox.
 */
import { Construct } from 'constructs';
import type { RouteGroupMatchT, RouteGroupObject } from '../api/schema.js';
import { validateRouteGroup } from '../api/validate.js';
import { propsOf, SpecConstruct, type SpecMetadataProps } from './spec-construct.js';

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
export class RouteGroup extends SpecConstruct<RouteGroupObject> {
  /** Defines a RouteGroup from a meshfork.dev/v1alpha1 RouteGroup object; `status` is ignored. */
  public static fromObject(scope: Construct, id: string, object: RouteGroupObject): RouteGroup {
    return new RouteGroup(scope, id, propsOf(scope, id, object, validateRouteGroup));
  }

  public constructor(scope: Construct, id: string, props: RouteGroupProps) {
    super(scope, id, 'RouteGroup', props, validateRouteGroup);
  }
}

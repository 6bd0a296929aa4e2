/**
 * `Sandbox`: one meshfork.dev/v1alpha1 Sandbox declared in code. It emits nothing by itself: the
 * enclosing MeshforkChart collects every Sandbox and RouteGroup beneath it and plans them together
 * at synthesis time, because VirtualServices are computed per host across all sandboxes.
 */
import { Construct } from 'constructs';
import type { ForkT, SandboxObject, SandboxSpecT } from '../api/schema.js';
import { validateSandbox } from '../api/validate.js';
import { propsOf, SpecConstruct, type SpecMetadataProps } from './spec-construct.js';

export type { SpecMetadataProps } from './spec-construct.js';

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
export class Sandbox extends SpecConstruct<SandboxObject> {
  /** Defines a Sandbox from a meshfork.dev/v1alpha1 Sandbox object (e.g. read from YAML); `status` is ignored. */
  public static fromObject(scope: Construct, id: string, object: SandboxObject): Sandbox {
    return new Sandbox(scope, id, propsOf(scope, id, object, validateSandbox));
  }

  public constructor(scope: Construct, id: string, props: SandboxProps) {
    super(scope, id, 'Sandbox', props, validateSandbox);
  }
}

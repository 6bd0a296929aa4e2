/**
 * `Sandbox`: one meshfork.dev/v1alpha1 Sandbox declared in code. It emits nothing by itself: the
 * enclosing MeshforkChart collects every Sandbox and RouteGroup beneath it and plans them together
 * at synthesis time, because VirtualServices are computed per host across all sandboxes.
 */
import type { ApiObject } from 'cdk8s';
import { Construct, type IConstruct } from 'constructs';
import type { Problem } from '../api/problem.js';
import type { ForkT, SandboxObject, SandboxSpecT } from '../api/schema.js';
import { validateSandbox } from '../api/validate.js';
import { apiObjectOf } from './baseline.js';
import { meshforkScopeAt } from './scope.js';
import { propsOf, SpecConstruct, type SpecMetadataProps } from './spec-construct.js';

export type { SpecMetadataProps } from './spec-construct.js';

/** The baseline Deployment a fork copies, by name. */
export interface ForkOfProps {
  /**
   * Kind of the baseline workload.
   * @default 'Deployment'
   */
  readonly kind?: 'Deployment';
  /** Name of the baseline Deployment. */
  readonly name: string;
  /**
   * Namespace of the baseline.
   * @default - the Sandbox's namespace
   */
  readonly namespace?: string;
}

/** One forked workload: `spec.forks[]`, where `forkOf` may also be the construct that defines the baseline. */
export interface SandboxForkProps extends Omit<ForkT, 'forkOf'> {
  /**
   * The baseline Deployment: by name, or as the construct that defines it in the MeshforkChart's
   * baseline (an apps/v1 Deployment ApiObject, or a construct whose default child is one, such as
   * a cdk8s-plus `kplus.Deployment`). A construct stands for its object's name and namespace,
   * generated names included.
   */
  readonly forkOf: ForkOfProps | IConstruct;
}

/** A Sandbox spec: the fields of `spec` (see src/api/schema.ts) plus metadata. */
export interface SandboxProps extends SpecMetadataProps {
  /** Workloads to fork (1 to 32), each a baseline Deployment with its customizations. */
  readonly forks: readonly SandboxForkProps[];
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
 *   forks: [{ forkOf: { name: 'reviews-v3' }, customizations: { images: [{ image: 'ghcr.io/x/reviews:pr-7' }] } }],
 * });
 * new Sandbox(chart, 'pr-42', { forks: [{ forkOf: reviewsV2 }] }); // reviewsV2: a kplus.Deployment of the baseline
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

  /**
   * @internal The ApiObjects that `forkOf` constructs stand for, by fork index; the chart checks
   * at synthesis that each is part of its baseline.
   */
  public readonly forkTargets: ReadonlyMap<number, ApiObject>;

  public constructor(scope: Construct, id: string, props: SandboxProps) {
    const { forks, targets, problems } = resolveForkOf(scope, props);
    const resolved: SandboxProps = { ...props, forks };
    super(scope, id, 'Sandbox', resolved, validateSandbox, problems);
    this.forkTargets = targets;
  }
}

/** A stand-in `forkOf` for one that could not be resolved (its problem is reported instead). */
const UNRESOLVED = { kind: 'Deployment', name: 'unresolved' } as const;

/**
 * Turns every `forkOf` of the props into the Sandbox spec's form: `kind` defaults to Deployment,
 * and a construct becomes the name and namespace of the Deployment it renders (the namespace only
 * when it differs from the Sandbox's).
 */
function resolveForkOf(scope: Construct, props: SandboxProps): { forks: SandboxProps['forks']; targets: Map<number, ApiObject>; problems: Problem[] } {
  const targets = new Map<number, ApiObject>();
  const problems: Problem[] = [];
  if (!Array.isArray(props?.forks)) return { forks: props?.forks, targets, problems };
  const defaultNamespace = meshforkScopeAt(scope)?.defaultNamespace ?? 'default';
  const sandboxNamespace = props.namespace ?? defaultNamespace;
  const forks = props.forks.map((fork, i): SandboxForkProps => {
    if (typeof fork !== 'object' || fork === null || typeof fork.forkOf !== 'object' || fork.forkOf === null) return fork;
    const path = `spec.forks[${i}].forkOf`;
    if (!Construct.isConstruct(fork.forkOf)) return { ...fork, forkOf: { kind: 'Deployment', ...fork.forkOf } };
    const apiObject = apiObjectOf(fork.forkOf);
    if (apiObject === undefined) {
      problems.push({ path, message: `"${fork.forkOf.node.path}" renders no ApiObject (neither is one nor has a default child that is one)` });
      return { ...fork, forkOf: UNRESOLVED };
    }
    if (apiObject.apiVersion !== 'apps/v1' || apiObject.kind !== 'Deployment') {
      problems.push({ path, message: `"${fork.forkOf.node.path}" is a ${apiObject.apiVersion} ${apiObject.kind}, not an apps/v1 Deployment` });
      return { ...fork, forkOf: UNRESOLVED };
    }
    targets.set(i, apiObject);
    const namespace = apiObject.metadata.namespace ?? defaultNamespace;
    return { ...fork, forkOf: { kind: 'Deployment', name: apiObject.name, ...(namespace !== sandboxNamespace ? { namespace } : {}) } };
  });
  return { forks, targets, problems };
}

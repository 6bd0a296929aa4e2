/**
 * What the controller's informer caches keep of each object (the informers' `transform`, as
 * client-go's SetTransform / controller-runtime's cache transforms): the object as listed or
 * watched, minus what nothing in the controller reads.
 *
 *  - `metadata.managedFields` of every object (stripManagedFields: as large as the spec again
 *    for applied objects).
 *  - `spec.template` of the fork Deployments the controller wrote (writtenByController): the pod
 *    template is the largest part of a Deployment and what the controller applied itself; what it
 *    reads of its own Deployments is their labels (owner), the applied-digest annotation (skip an
 *    unchanged apply), `metadata.generation`, `spec.replicas` and `status` (availability,
 *    routing.ts deploymentAvailability), and their identity (stale deletes). Baseline
 *    Deployments are planner input and stay whole, as do GitOps output (ADR 0016: read for its
 *    labels, never written) and every other kind.
 *  - `spec` of the affinity EnvoyFilters the controller wrote: their Lua text (about 3.5 KiB
 *    each, the largest string the controller kept per Sandbox) is what it applied itself, and it
 *    reads only their metadata (owner labels, applied digest, identity). A user's EnvoyFilter is
 *    planner input (its name may clash with a generated one) and stays whole.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { stripManagedFields } from '../cluster/informer.js';
import type { KubeObject } from '../planner/kube.js';
import { writtenByController } from './view.js';

export function cachedForm<T extends KubernetesObject>(object: T): T {
  const stripped = stripManagedFields(object);
  if ((stripped.kind !== 'Deployment' && stripped.kind !== 'EnvoyFilter') || !writtenByController(stripped as unknown as KubeObject)) return stripped;
  if (stripped.kind === 'EnvoyFilter') {
    const { spec: _spec, ...kept } = stripped as T & { spec?: unknown };
    return kept as T;
  }
  const spec = (stripped as { spec?: Record<string, unknown> }).spec;
  if (spec === undefined || !Object.hasOwn(spec, 'template')) return stripped;
  const { template: _template, ...kept } = spec;
  return { ...stripped, spec: kept };
}

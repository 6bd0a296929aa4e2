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
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { stripManagedFields } from '../cluster/informer.js';
import type { KubeObject } from '../planner/kube.js';
import { writtenByController } from './view.js';

export function cachedForm<T extends KubernetesObject>(object: T): T {
  const stripped = stripManagedFields(object);
  if (stripped.kind !== 'Deployment' || !writtenByController(stripped as unknown as KubeObject)) return stripped;
  const spec = (stripped as { spec?: Record<string, unknown> }).spec;
  if (spec === undefined || !Object.hasOwn(spec, 'template')) return stripped;
  const { template: _template, ...kept } = spec;
  return { ...stripped, spec: kept };
}

/**
 * client-node's typed (de)serialization of built-in kinds, and how meshfork keeps objects in
 * their wire form (the JSON the API server sends and accepts).
 *
 * KubernetesObjectApi serializes a body of a built-in kind (apps/v1 Deployment, networking.k8s.io/v1
 * NetworkPolicy, ...) through its generated model: it reads each field under the model's
 * attribute name, not the JSON name. Where they differ the field is silently dropped: a
 * NetworkPolicy rule's `from` is the model attribute `_from`, so a plain `{ from: [...] }`
 * peer list would be sent as no peers (a rule that admits every source). Lists of built-in kinds
 * come back as model instances with the same attribute names (`_from`) and Date fields.
 * Custom resources (Istio's kinds, meshfork's) pass through untouched.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { getSerializationType } from '@kubernetes/client-node/dist/util.js';

/** A wire-form object as client-node's model of its kind, so its typed serialization sends every field. */
export function toModel<T extends KubernetesObject>(object: T): T {
  const type = getSerializationType(object.apiVersion, object.kind);
  return type === 'KubernetesObject' ? object : (ObjectSerializer.deserialize(object, type, '') as T);
}

/** A client-node model instance (or wire-form object) as plain wire-form JSON. */
export function toWire<T extends KubernetesObject>(object: T): T {
  const type = getSerializationType(object.apiVersion, object.kind);
  const serialized: unknown = type === 'KubernetesObject' ? object : ObjectSerializer.serialize(object, type, '');
  return JSON.parse(JSON.stringify(serialized)) as T;
}

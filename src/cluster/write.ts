/**
 * How meshfork writes to a cluster; shared by the controller and the CLI's cluster commands.
 *
 *  - Objects meshfork owns are server-side applied with one field manager (`meshfork`) and
 *    `force`: meshfork is the only writer of what it declares, and fields it stops declaring are
 *    removed by the API server (SSA's managed-fields semantics).
 *  - Objects meshfork does not own (a user's VirtualService) are never applied: Istio's CRD makes
 *    `spec.http` an atomic list, so an apply would take ownership of every user route. They are
 *    changed by a read-modify-write that sends the resourceVersion it read (the API server
 *    answers 409 Conflict when someone wrote in between) and is retried from a fresh read.
 *  - Applies are guarded: an object of the same kind, namespace and name that does not carry
 *    meshfork's managed-by label is never taken over (`NotOwnedError`), so generated objects
 *    never replace objects meshfork does not own.
 *  - Writes are size-checked: an object whose JSON would not fit in one etcd request
 *    (MAX_OBJECT_BYTES) is never sent (`TooLargeError`), so an update is whole or not at all and
 *    the stored object stays as it was.
 *  - Deletes are guarded: only objects labelled `app.kubernetes.io/managed-by: meshfork` are
 *    deleted, with the uid that was checked as a precondition, so an object re-created by a user
 *    under the same name is never removed.
 */
import { ApiException, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { isManaged, sandboxOfLabels } from '../planner/kube.js';
import { toModel } from './wire.js';

export const FIELD_MANAGER = 'meshfork';

/**
 * The largest request etcd accepts by default: 1.5 MiB, etcd's `--max-request-bytes`
 * (https://etcd.io/docs/v3.6/dev-guide/limit/: "By default, the maximum size of any request is
 * 1.5 MiB"). The API server stores a custom resource as its JSON in one such request, so a larger
 * object is refused however it is sent (kube-apiserver's own body limit, 3 MiB, is higher).
 */
export const ETCD_MAX_REQUEST_BYTES = 1_572_864;

/**
 * Headroom for what the API server adds to a written object before storing it (managedFields
 * entries, resourceVersion, uid, creationTimestamp, the etcd key and transaction framing).
 */
export const SERVER_ADDED_BYTES = 16 * 1024;

/** The largest JSON body meshfork sends for one object. */
export const MAX_OBJECT_BYTES = ETCD_MAX_REQUEST_BYTES - SERVER_ADDED_BYTES;

/** A write refused before it was sent: the object would not fit in one etcd request. */
export class TooLargeError extends Error {
  constructor(
    readonly ref: ObjectRef,
    readonly bytes: number,
  ) {
    super(`${ref.kind} ${ref.namespace}/${ref.name} would be ${bytes} bytes, over the ${MAX_OBJECT_BYTES} bytes meshfork writes (etcd --max-request-bytes ${ETCD_MAX_REQUEST_BYTES} less ${SERVER_ADDED_BYTES} for what the API server adds); not written`);
    this.name = 'TooLargeError';
  }
}

function checkSize(object: KubernetesObject): void {
  const bytes = Buffer.byteLength(JSON.stringify(object));
  if (bytes > MAX_OBJECT_BYTES) throw new TooLargeError(refOf(object), bytes);
}

export function apiStatus(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

/** An apply refused because the object exists and is not meshfork's. */
export class NotOwnedError extends Error {
  constructor(readonly ref: ObjectRef) {
    super(`${ref.kind} ${ref.namespace}/${ref.name} exists and is not managed by meshfork; not replacing it`);
    this.name = 'NotOwnedError';
  }
}

/** The object exists and was applied for another Sandbox (its owner labels name another one). */
export class OwnedByOtherSandboxError extends Error {
  constructor(
    readonly ref: ObjectRef,
    readonly owner: string,
  ) {
    super(`${ref.kind} ${ref.namespace}/${ref.name} exists and belongs to Sandbox ${owner}; not replacing it`);
    this.name = 'OwnedByOtherSandboxError';
  }
}

/** `namespace/name` of the Sandbox an object was applied for, from its owner labels (undefined without both). */
function sandboxOwner(object: KubernetesObject): string | undefined {
  const owner = sandboxOfLabels(object.metadata?.labels);
  return owner === undefined ? undefined : `${owner.namespace}/${owner.name}`;
}

export function refOf(object: KubernetesObject): ObjectRef {
  return { apiVersion: object.apiVersion ?? '', kind: object.kind ?? '', namespace: object.metadata?.namespace ?? 'default', name: object.metadata?.name ?? '' };
}


export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export class ClusterWriter {
  readonly objects: KubernetesObjectApi;

  constructor(kubeConfig: KubeConfig, readonly fieldManager: string = FIELD_MANAGER) {
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  }

  /**
   * Server-side apply of an object meshfork owns; returns the object as stored. `current` is
   * the stored object when the caller knows it (an informer cache); otherwise it is read.
   */
  async apply<T extends KubernetesObject>(object: T, current?: KubernetesObject | null): Promise<T> {
    if (!isManaged(object)) throw new Error(`${object.kind} ${object.metadata?.namespace}/${object.metadata?.name} lacks meshfork's managed-by label; not applying it`);
    const existing = current === undefined ? await this.read(refOf(object)) : (current ?? undefined);
    if (existing !== undefined && !isManaged(existing)) throw new NotOwnedError(refOf(object));
    // Two Sandboxes whose generated names meet (same name, other namespaces; crafted names) must
    // not take each other's objects over: the field manager is the same for both.
    const owner = existing === undefined ? undefined : sandboxOwner(existing);
    if (owner !== undefined && sandboxOwner(object) !== undefined && owner !== sandboxOwner(object)) throw new OwnedByOtherSandboxError(refOf(object), owner);
    // managedFields/resourceVersion in an apply body are errors or conflicts; send the intent only.
    const { metadata, ...rest } = object;
    const { managedFields: _m, resourceVersion: _r, uid: _u, creationTimestamp: _c, generation: _g, ...meta } = metadata ?? {};
    const body = { ...rest, metadata: meta } as T;
    checkSize(body);
    // `body` is wire-form JSON; client-node serializes built-in kinds through their models (wire.ts).
    return this.objects.patch(toModel(body), undefined, undefined, this.fieldManager, true, PatchStrategy.ServerSideApply);
  }

  async read<T extends KubernetesObject>(ref: ObjectRef): Promise<T | undefined> {
    try {
      return (await this.objects.read({ apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, namespace: ref.namespace } })) as T;
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  /**
   * Read-modify-write of an object meshfork does not own. `change` gets the current object and
   * returns the object to store, or `undefined` to leave it as it is; it is called again on a
   * fresh read after a 409 Conflict (up to `attempts` times, default 5). Returns what is stored,
   * or `undefined` when the object does not exist.
   *
   * `cached`: a version of the object from an informer cache, used instead of the first read.
   * Its resourceVersion makes the write conditional, so a cache that is behind costs one 409 and
   * a fresh read, never someone else's write. managedFields may be left out of it (informer
   * caches strip them): a replace without managedFields keeps the stored ones
   * (https://kubernetes.io/docs/reference/using-api/server-side-apply/#field-management).
   */
  async update<T extends KubernetesObject>(
    ref: ObjectRef,
    change: (current: T) => T | undefined | Promise<T | undefined>,
    options: { attempts?: number; cached?: T } | number = {},
  ): Promise<{ object: T | undefined; written: boolean }> {
    const { attempts = 5, cached } = typeof options === 'number' ? { attempts: options } : options;
    for (let attempt = 1; ; attempt++) {
      const current = attempt === 1 && cached?.metadata?.resourceVersion !== undefined ? cached : await this.read<T>(ref);
      if (current === undefined) return { object: undefined, written: false };
      const next = await change(structuredClone(current));
      if (next === undefined) return { object: current, written: false };
      const body = { ...next, metadata: { ...next.metadata, resourceVersion: current.metadata?.resourceVersion } };
      checkSize(body);
      try {
        const stored = await this.objects.replace(body, undefined, undefined, this.fieldManager);
        return { object: stored as T, written: true };
      } catch (error) {
        if (apiStatus(error) !== 409 || attempt >= attempts) throw error;
      }
    }
  }

  /**
   * Deletes an object only if it carries meshfork's managed-by label, with its uid as a
   * precondition. Returns whether a delete was sent.
   */
  async deleteManaged(ref: ObjectRef): Promise<boolean> {
    const current = await this.read(ref);
    if (current === undefined || !isManaged(current)) return false;
    try {
      const uid = current.metadata?.uid;
      await this.objects.delete(current, undefined, undefined, undefined, undefined, 'Background', {
        propagationPolicy: 'Background',
        ...(uid !== undefined ? { preconditions: { uid } } : {}),
      });
      return true;
    } catch (error) {
      const status = apiStatus(error);
      if (status === 404 || status === 409) return false;
      throw error;
    }
  }
}

/**
 * The three patch flavours a fork's `customizations.patch` may use, applied to a plain object
 * without touching the input. Every failure is reported as a field path inside the patch.
 *
 *  - json: RFC 6902 (fast-json-patch, with operation validation).
 *  - merge: RFC 7386 JSON merge patch (null deletes, objects merge, everything else replaces).
 *  - strategic: Kubernetes strategic merge patch for apps/v1 Deployment: lists with a patch merge
 *    key (containers by name, env by name, ports by containerPort, ...) merge element-wise,
 *    other lists replace; `$patch: delete | replace | merge` directives are honoured. Shapes the
 *    patch cannot be applied to (a list where the Deployment has an object, an element without
 *    its merge key, a list of objects at a path whose merge key is unknown) are errors, not
 *    guesses. Merge keys from the Kubernetes API's `patchMergeKey` tags (k8s.io/api core/v1).
 */
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { fieldPath } from '../api/problem.js';
import { cloneData, ownValue, PROTOTYPE_KEYS, setOwn } from './kube.js';

const { applyOperation } = fastJsonPatch;

export type PatchType = 'strategic' | 'merge' | 'json';

export class PatchError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function clone<T>(value: T): T {
  return cloneData(value);
}

const PROTOTYPE_KEY_REASON = 'is refused: it names JavaScript object machinery (the prototype), not a Kubernetes field';
const prototypeKeyMessage = (key: string) => `key "${key}" ${PROTOTYPE_KEY_REASON}`;

/** Every object key `__proto__`, `constructor` or `prototype` anywhere in `value`, by path. */
export function prototypeKeyPaths(value: unknown, path: Array<string | number> = []): PatchError[] {
  const errors: PatchError[] = [];
  const walk = (node: unknown, at: Array<string | number>) => {
    if (Array.isArray(node)) {
      node.forEach((item, i) => walk(item, [...at, i]));
    } else if (node !== null && typeof node === 'object') {
      for (const key of Object.keys(node)) {
        if (PROTOTYPE_KEYS.has(key)) errors.push(new PatchError(fieldPath([...at, key]), prototypeKeyMessage(key)));
        else walk((node as Record<string, unknown>)[key], [...at, key]);
      }
    }
  };
  walk(value, path);
  return errors;
}

/**
 * Every place a patch document names `__proto__`, `constructor` or `prototype`: as an object key
 * anywhere in a merge or strategic patch (and in a json patch operation's `value`), or as a
 * segment of a json patch operation's `path` / `from` pointer. Paths are relative to the patch.
 */
export function prototypeKeyErrors(type: PatchType, patch: unknown): PatchError[] {
  if (type !== 'json' || !Array.isArray(patch)) return prototypeKeyPaths(patch);
  const errors: PatchError[] = [];
  patch.forEach((operation: unknown, index) => {
    if (operation === null || typeof operation !== 'object' || Array.isArray(operation)) return;
    for (const field of Object.keys(operation)) {
      const value = (operation as Record<string, unknown>)[field];
      if (PROTOTYPE_KEYS.has(field)) {
        errors.push(new PatchError(fieldPath([index, field]), prototypeKeyMessage(field)));
      } else if ((field === 'path' || field === 'from') && typeof value === 'string') {
        // RFC 6901: segments separated by "/", with "~1" for "/" and "~0" for "~".
        const key = value.split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).find((s) => PROTOTYPE_KEYS.has(s));
        if (key !== undefined) errors.push(new PatchError(fieldPath([index, field]), `segment "${key}" of pointer "${value}" ${PROTOTYPE_KEY_REASON}`));
      } else if (field === 'value') {
        errors.push(...prototypeKeyPaths(value, [index, 'value']));
      }
    }
  });
  return errors;
}

/** Applies `patch` to a copy of `target`; throws PatchError naming the offending patch path. */
export function applyCustomPatch<T extends object>(target: T, type: PatchType, patch: unknown): T {
  const refused = prototypeKeyErrors(type, patch)[0];
  if (refused !== undefined) throw refused;
  switch (type) {
    case 'json':
      return applyJsonPatch(target, patch);
    case 'merge':
      if (!isObject(patch)) throw new PatchError('', 'a merge patch is an object');
      return jsonMergePatch(clone(target) as Json, patch) as T;
    case 'strategic':
      if (!isObject(patch)) throw new PatchError('', 'a strategic merge patch is an object');
      return strategicMerge(clone(target) as Json, patch, []) as T;
  }
}

function applyJsonPatch<T extends object>(target: T, patch: unknown): T {
  if (!Array.isArray(patch)) throw new PatchError('', 'a json patch is a list of operations');
  // Operation by operation, so an error names the index of the operation that failed.
  let document = clone(target);
  patch.forEach((operation: unknown, index) => {
    try {
      // A copy of the operation, so the fork never shares an object with the Sandbox's patch.
      document = applyOperation(document, clone(operation) as Operation, true, true, true, index).newDocument;
    } catch (e) {
      const err = e as { name?: string; message: string };
      const detail = err.message.split('\n')[0] ?? 'json patch failed';
      throw new PatchError(fieldPath([index]), err.name && err.name !== 'Error' ? `${err.name}: ${detail}` : detail);
    }
  });
  return document;
}

function jsonMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else setOwn(result, key, jsonMergePatch(ownValue(result, key) ?? null, value));
  }
  return result;
}

/**
 * Merge keys of the lists inside an apps/v1 Deployment, by the list's field name. The same
 * field name has the same merge key wherever it appears in a Deployment.
 */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  ports: 'containerPort',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  volumes: 'name',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  resourceClaims: 'name',
  topologySpreadConstraints: 'topologyKey',
  conditions: 'type',
};

/** Lists of objects that strategic merge replaces as a whole (no patchStrategy=merge). */
const ATOMIC_OBJECT_LISTS = new Set([
  'tolerations',
  'envFrom',
  'matchExpressions',
  'nodeSelectorTerms',
  'requiredDuringSchedulingIgnoredDuringExecution',
  'preferredDuringSchedulingIgnoredDuringExecution',
  'items',
  'sources',
  'readinessGates',
  'options',
  'sysctls',
  'fields',
  'nameservers',
  'searches',
  'capabilities',
  'httpHeaders',
  'schedulingGates',
  'resizePolicy',
  'claims',
]);

const DIRECTIVE = '$patch';

function strategicMerge(target: Json, patch: JsonObject, path: Array<string | number>): Json {
  const directive = patch[DIRECTIVE];
  if (directive !== undefined) {
    if (directive === 'replace') {
      const { [DIRECTIVE]: _drop, ...rest } = patch;
      return clone(rest);
    }
    if (directive === 'delete') return null;
    if (directive !== 'merge') throw new PatchError(fieldPath([...path, DIRECTIVE]), `unsupported directive "${String(directive)}"`);
  }
  const result: JsonObject = isObject(target) ? target : {};
  if (target !== null && target !== undefined && !isObject(target)) {
    throw new PatchError(fieldPath(path), `is a ${Array.isArray(target) ? 'list' : typeof target} in the Deployment, the patch gives an object`);
  }
  for (const [key, value] of Object.entries(patch)) {
    if (key === DIRECTIVE) continue;
    if (key.startsWith('$')) throw new PatchError(fieldPath([...path, key]), `unsupported directive "${key}"`);
    const here = [...path, key];
    const current = ownValue(result, key);
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value)) {
      if (current !== undefined && current !== null && !Array.isArray(current)) {
        throw new PatchError(fieldPath(here), `is ${isObject(current) ? 'an object' : `a ${typeof current}`} in the Deployment, the patch gives a list`);
      }
      setOwn(result, key, mergeList(key, (current as Json[] | undefined) ?? [], value, here));
    } else if (isObject(value)) {
      const merged = strategicMerge(current ?? null, value, here);
      if (merged === null) delete result[key];
      else setOwn(result, key, merged);
    } else {
      if (isObject(current) || Array.isArray(current)) {
        throw new PatchError(fieldPath(here), `is ${Array.isArray(current) ? 'a list' : 'an object'} in the Deployment, the patch gives a ${typeof value}`);
      }
      setOwn(result, key, value);
    }
  }
  return result;
}

function mergeList(field: string, current: Json[], patch: Json[], path: Array<string | number>): Json[] {
  const objects = patch.filter(isObject);
  if (objects.length === 0) return clone(patch); // primitive lists replace
  if (objects.length !== patch.length) throw new PatchError(fieldPath(path), 'mixes objects and scalars');
  const mergeKey = ownValue(MERGE_KEYS, field);
  if (mergeKey === undefined) {
    if (ATOMIC_OBJECT_LISTS.has(field)) return clone(patch);
    throw new PatchError(fieldPath(path), `unknown list "${field}" in a Deployment; use a json patch to change it`);
  }
  if (objects.length === 1 && objects[0]?.[DIRECTIVE] === 'replace' && Object.keys(objects[0]).length === 1) return [];
  const result = current.map((item) => clone(item));
  objects.forEach((element, i) => {
    const keyValue = element[mergeKey];
    if (keyValue === undefined || keyValue === null) {
      throw new PatchError(fieldPath([...path, i]), `list element needs its merge key "${mergeKey}"`);
    }
    const index = result.findIndex((item) => isObject(item) && item[mergeKey] === keyValue);
    if (element[DIRECTIVE] === 'delete') {
      if (index >= 0) result.splice(index, 1);
      return;
    }
    if (index >= 0) result[index] = strategicMerge(result[index] ?? null, element, [...path, i]);
    else result.push(strategicMerge(null, element, [...path, i]));
  });
  return result;
}

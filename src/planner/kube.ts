/** Minimal shape of a Kubernetes object as the planner reads and writes it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** Label put on every object meshfork generates or changes. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'meshfork';
/** Label naming the sandbox an object (or a fork pod) belongs to. */
export const SANDBOX_LABEL = 'meshfork.dev/sandbox';
/**
 * Label the controller adds to every object it applies for a Sandbox: the Sandbox's namespace.
 * `meshfork.dev/sandbox` names the Sandbox only; a fork in another namespace (policy
 * forkNamespaces) has no owner reference, so this label tells two same-named Sandboxes apart.
 */
export const SANDBOX_NAMESPACE_LABEL = 'meshfork.dev/sandbox-namespace';

/** The Sandbox an object's labels name (SANDBOX_LABEL and SANDBOX_NAMESPACE_LABEL), undefined without both. */
export function sandboxOfLabels(labels: Readonly<Record<string, string>> | undefined): { namespace: string; name: string } | undefined {
  const name = ownValue(labels, SANDBOX_LABEL);
  const namespace = ownValue(labels, SANDBOX_NAMESPACE_LABEL);
  return name === undefined || namespace === undefined ? undefined : { namespace, name };
}
/** Label naming the baseline Deployment a fork was copied from. */
export const FORK_OF_LABEL = 'meshfork.dev/fork-of';
/** Prefix of every HTTP route name meshfork inserts into a VirtualService. */
export const ROUTE_NAME_PREFIX = 'meshfork-';
/** Label on a fork Service: the name of the baseline Service it stands in for. */
export const FORK_OF_SERVICE_LABEL = 'meshfork.dev/fork-of-service';
/**
 * Opt-out annotation of a user VirtualService: with the value `"true"` meshfork never writes it
 * (planner, controller and admission webhook alike); keyed requests follow its routes to the
 * baseline, and the planner says so in a note.
 */
export const IGNORE_ANNOTATION = 'meshfork.dev/ignore';

/** Whether an object carries `meshfork.dev/ignore: "true"`. */
export function isIgnored(object: { metadata?: { annotations?: Record<string, string> } } | undefined): boolean {
  return ownValue(object?.metadata?.annotations, IGNORE_ANNOTATION) === 'true';
}

export function managedLabels(sandbox?: string): Record<string, string> {
  return sandbox === undefined
    ? { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE }
    : { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [SANDBOX_LABEL]: sandbox };
}

/**
 * Keys that reach an object's prototype chain when assigned with `object[key] = value` or read
 * with `object[key]`: `__proto__` is an accessor on Object.prototype, `constructor` and
 * `prototype` lead to functions and their prototypes. Parsers (yaml's toJS, JSON.parse) create
 * them as ordinary own keys, so input may carry them anywhere.
 */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** `record[key]` when `key` is the record's own property; never a value inherited from a prototype. */
export function ownValue<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Whether an object carries meshfork's managed-by label (meshfork generated or changed it). */
export function isManaged(object: { metadata?: { labels?: Record<string, string> } } | undefined): boolean {
  return ownValue(object?.metadata?.labels, MANAGED_BY_LABEL) === MANAGED_BY_VALUE;
}

/** Sets `key` as an own data property (also for `__proto__`), never calling a prototype setter. */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A deep copy of data as manifests hold it (plain objects, arrays, strings, numbers, booleans,
 * null), equal to what structuredClone gives for it, without serializing every string (strings
 * are immutable, so the copy shares them). Own enumerable keys in their order; a `__proto__` key
 * stays an own property (setOwn), never a prototype. Any other object (a Date, a Map) is copied
 * by structuredClone. The input holds no cycles (manifest loading bounds depth).
 */
export function cloneData<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(cloneData) as T;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return structuredClone(value);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = cloneData((value as Record<string, unknown>)[key]);
    if (key === '__proto__') setOwn(out, key, item);
    else out[key] = item;
  }
  return out as T;
}

/** `items` grouped by `keyOf`, each group in input order. */
export function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [item]);
    else group.push(item);
  }
  return groups;
}

/** `Kind namespace/name` (namespace `default` when unset): how problems and notes name an object. */
export function objectRef(object: { kind: string; metadata: { name: string; namespace?: string } }): string {
  return `${object.kind} ${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;
}

/** `value` as a plain object (not an array), or undefined. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** `value` as a list, or an empty list when it is not one. */
export function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Offline validation of Sandbox and RouteGroup objects: the JSON Schema (ajv) plus the CEL rules
 * the CRDs carry, mirrored here so the CLI rejects the same input the API server would.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { Fork, RouteGroup, Sandbox, type ForkT, type RouteGroupObject, type SandboxObject } from './schema.js';
import { fieldPath, type Problem } from './problem.js';

// ajv-formats is CommonJS; its default export arrives as the module namespace under NodeNext.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
for (const keyword of [
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
]) {
  ajv.addKeyword(keyword);
}
addFormats(ajv);
const validateSandboxSchema = ajv.compile<SandboxObject>(Sandbox);
const validateRouteGroupSchema = ajv.compile<RouteGroupObject>(RouteGroup);
const validateForkSchema = ajv.compile<ForkT>(Fork);

function pointerSegments(pointer: string): string[] {
  return pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function schemaProblems(errors: readonly ErrorObject[] | null | undefined): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const error of errors ?? []) {
    const segments = pointerSegments(error.instancePath);
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties':
        segments.push(String((error.params as { additionalProperty: string }).additionalProperty));
        message = 'unknown field';
        break;
      case 'required':
        segments.push(String((error.params as { missingProperty: string }).missingProperty));
        message = 'required field is missing';
        break;
      case 'enum':
        message = `must be one of ${((error.params as { allowedValues: unknown[] }).allowedValues).map((v) => JSON.stringify(v)).join(', ')}`;
        break;
      case 'pattern':
        message = `must match ${(error.params as { pattern: string }).pattern}`;
        break;
      case 'minProperties':
      case 'maxProperties':
        message = 'must set exactly one of its fields';
        break;
      default:
        message = error.message ?? error.keyword;
    }
    const problem = { path: fieldPath(segments), message };
    const key = `${problem.path}\u0000${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}

/** Endpoint names are the list's map key (x-kubernetes-list-map-keys), so they must be unique. */
function duplicateEndpointProblems(endpoints: ReadonlyArray<{ name: string }> | undefined): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  endpoints?.forEach((endpoint, i) => {
    if (seen.has(endpoint.name)) {
      problems.push({ path: fieldPath(['spec', 'endpoints', i, 'name']), message: `duplicate endpoint name "${endpoint.name}"` });
    }
    seen.add(endpoint.name);
  });
  return problems;
}

/** Rules of one fork the schema cannot express (its CEL rules). */
function forkRuleProblems(fork: ForkT, f: number): Problem[] {
  const problems: Problem[] = [];
  const c = fork.customizations;
  c?.env?.forEach((env, e) => {
    const path = fieldPath(['spec', 'forks', f, 'customizations', 'env', e]);
    const hasValue = env.value !== undefined;
    const hasValueFrom = env.valueFrom !== undefined;
    if ((env.operation ?? 'upsert') === 'delete') {
      if (hasValue || hasValueFrom) problems.push({ path, message: 'upsert needs exactly one of value and valueFrom; delete takes neither' });
    } else if (hasValue === hasValueFrom) {
      problems.push({ path, message: 'upsert needs exactly one of value and valueFrom; delete takes neither' });
    }
  });
  const patch = c?.patch;
  if (patch !== undefined) {
    const path = fieldPath(['spec', 'forks', f, 'customizations', 'patch', 'value']);
    if (patch.type === 'json' && !Array.isArray(patch.value)) {
      problems.push({ path, message: 'a json patch is a list of operations' });
    }
    if (patch.type !== 'json' && (patch.value === null || typeof patch.value !== 'object' || Array.isArray(patch.value))) {
      problems.push({ path, message: `a ${patch.type} patch is an object` });
    }
  }
  return problems;
}

/** Problems with one Sandbox object, or [] when it is valid. */
export function validateSandbox(object: unknown): Problem[] {
  if (!validateSandboxSchema(object)) return schemaProblems(validateSandboxSchema.errors);
  const problems = object.spec.forks.flatMap(forkRuleProblems);
  problems.push(...duplicateEndpointProblems(object.spec.endpoints));
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The largest valid object built from an invalid one: `base` (the spec fields it cannot do
 * without, already checked) and then each other spec field that keeps the object valid, in the
 * order written; metadata as written, or reduced to its name and namespace. Undefined when even
 * that is not valid. Every field kept is the user's own, unchanged.
 */
function validParts<T>(check: ValidateFunction<T>, rules: (object: T) => Problem[], object: unknown, base: Record<string, unknown>): T | undefined {
  if (!isRecord(object) || !isRecord(object['spec']) || !isRecord(object['metadata'])) return undefined;
  const { name, namespace } = object['metadata'];
  const valid = (candidate: unknown): candidate is T => check(candidate) && rules(candidate).length === 0;
  for (const metadata of [object['metadata'], namespace === undefined ? { name } : { name, namespace }]) {
    let candidate: Record<string, unknown> = { apiVersion: object['apiVersion'], kind: object['kind'], metadata, spec: base };
    if (!valid(candidate)) continue;
    for (const [field, value] of Object.entries(object['spec'])) {
      if (field in base) continue;
      const next = { ...candidate, spec: { ...(candidate['spec'] as object), [field]: value } };
      if (valid(next)) candidate = next;
    }
    return candidate as T;
  }
  return undefined;
}

/**
 * A Sandbox that failed validation, reduced to the forks that are valid on their own and the
 * other spec fields that are valid (see validParts); undefined when no fork is. Planning it finds
 * the rule problems (a fork of a missing Deployment, a routing key in use, a fork listed twice)
 * that the schema problems would otherwise hide until they are fixed, so one run reports both.
 * `forkIndex[i]` is the index in the user's `spec.forks` of the reduced object's fork i.
 */
export function sandboxValidParts(object: unknown): { sandbox: SandboxObject; forkIndex: number[] } | undefined {
  const forks = isRecord(object) && isRecord(object['spec']) && Array.isArray(object['spec']['forks']) ? (object['spec']['forks'] as unknown[]) : [];
  const forkIndex = forks.flatMap((fork, i) => (validateForkSchema(fork) && forkRuleProblems(fork, i).length === 0 ? [i] : []));
  const sandbox = validParts(validateSandboxSchema, validateSandbox, object, { forks: forkIndex.map((i) => forks[i]) });
  return sandbox === undefined ? undefined : { sandbox, forkIndex };
}

/** A RouteGroup that failed validation, reduced like sandboxValidParts; undefined when its match is invalid. */
export function routeGroupValidParts(object: unknown): RouteGroupObject | undefined {
  const match = isRecord(object) && isRecord(object['spec']) ? object['spec']['match'] : undefined;
  return validParts(validateRouteGroupSchema, validateRouteGroup, object, { match });
}

/** Problems with one RouteGroup object, or [] when it is valid. */
export function validateRouteGroup(object: unknown): Problem[] {
  if (!validateRouteGroupSchema(object)) return schemaProblems(validateRouteGroupSchema.errors);
  // The schema's min/maxProperties already enforce "exactly one of label/any/all" per match level.
  return duplicateEndpointProblems(object.spec.endpoints);
}

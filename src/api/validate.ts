/**
 * Offline validation of Sandbox and RouteGroup objects: the JSON Schema (ajv) plus the CEL rules
 * the CRDs carry, mirrored here so the CLI rejects the same input the API server would.
 */
import { Ajv, type ErrorObject } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { RouteGroup, Sandbox, type RouteGroupObject, type SandboxObject } from './schema.js';
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

/** Problems with one Sandbox object, or [] when it is valid. */
export function validateSandbox(object: unknown): Problem[] {
  if (!validateSandboxSchema(object)) return schemaProblems(validateSandboxSchema.errors);
  const problems: Problem[] = [];
  const sandbox = object;
  sandbox.spec.forks.forEach((fork, f) => {
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
  });
  problems.push(...duplicateEndpointProblems(sandbox.spec.endpoints));
  return problems;
}

/** Problems with one RouteGroup object, or [] when it is valid. */
export function validateRouteGroup(object: unknown): Problem[] {
  if (!validateRouteGroupSchema(object)) return schemaProblems(validateRouteGroupSchema.errors);
  // The schema's min/maxProperties already enforce "exactly one of label/any/all" per match level.
  return duplicateEndpointProblems(object.spec.endpoints);
}

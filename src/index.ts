/**
 * meshfork's library entry point: the pure planner, the API schema and validation, and the CRDs.
 * Front ends live in subpath exports: `meshfork/cdk8s` (constructs) and `meshfork/sdk`
 * (context propagation for Node services).
 */
export * from './planner/index.js';
export { customResourceDefinitions } from './api/crd.js';
export { validateRouteGroup, validateSandbox } from './api/validate.js';
export { formatProblem, InputError, type Problem } from './api/problem.js';
export type { RouteGroupObject, SandboxObject } from './api/schema.js';
export { resolveConfig, type MeshforkConfigT } from './api/config.js';

/**
 * meshfork for cdk8s (`meshfork/cdk8s`): declare sandboxes in a cdk8s app and synthesize exactly the
 * objects `meshfork synth` would, for GitOps (`cdk8s synth`, commit dist/, let Argo CD sync). The
 * baseline is YAML (readManifests) or the app's own charts (cdk8s-plus, ApiObjects, Include).
 * See docs/gitops.md, examples/gitops/ and examples/gitops-plus/.
 */
export { MeshforkChart, type MeshforkChartProps } from './chart.js';
export { Sandbox, type ForkOfProps, type SandboxForkProps, type SandboxProps, type SpecMetadataProps } from './sandbox.js';
export type { BaselineSource } from './baseline.js';
export { RouteGroup, type RouteGroupProps } from './route-group.js';
export { PlannedObject } from './planned-object.js';
export { readManifests, type Manifests, type ReadManifestsOptions } from './manifests.js';
export { istioProblems } from './istio.js';
export { InputError, formatProblem, type Problem } from '../api/problem.js';
export type { MeshforkConfigT as MeshforkConfig } from '../api/config.js';
export type { SandboxObject, RouteGroupObject, ForkT as Fork } from '../api/schema.js';
export type { Inventory } from '../planner/inventory.js';
export type { KubeObject } from '../planner/kube.js';
export type { PlanResult, SandboxPlan } from '../planner/plan.js';

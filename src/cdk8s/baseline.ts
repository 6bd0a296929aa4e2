/**
 * The baseline a MeshforkChart reads from the cdk8s app itself: the ApiObjects of other charts
 * (cdk8s-plus Deployments and Services, ApiObjects of Istio kinds, YAML brought in with `Include`),
 * each rendered with `ApiObject.toJson()`, which is how its own chart renders it: props, then
 * every Lazy value and resolver of the App, then its JSON patches (cdk8s 2.70 lib/api-object.js;
 * cdk8s-plus constructs fill their ApiObject's spec with a Lazy value, so their spec only exists
 * at this point). Chart.toJson() is `chartToKube(chart).map(o => o.toJson())`
 * (cdk8s 2.70 lib/app.js), so an object rendered here is exactly the object its chart emits.
 *
 * When it runs: the MeshforkChart plans in a construct validation and in Chart.toJson(). Both
 * App.synth() and App._synthChart() (behind every Chart.toJson() and Testing.synth()) validate
 * every construct of the App before any chart renders (cdk8s 2.70 lib/app.js: `validate(this, cache)`
 * comes first in synth(); _synthChart() calls resolveDependencies() and validate(app) before
 * chartToKube()), so at that point the app's constructs are complete, and a baseline chart
 * that emits a merged object (below) has been patched before it renders.
 * References: cdk8s-core src/app.ts, App._synthChart: "validate the app since we want to call
 * onValidate of the relevant constructs ... from possibly different charts"
 * (https://github.com/cdk8s-team/cdk8s-core/blob/main/src/app.ts); cdk8s-plus resources create their
 * ApiObject as child `Resource` with `spec: Lazy.any({ produce: () => this._toKube() })`
 * (https://github.com/cdk8s-team/cdk8s-plus, src/deployment.ts and siblings).
 *
 * An object meshfork changes (a user VirtualService that sandboxes route through) stays with the
 * chart that defines it: its ApiObject gets JSON patches (the documented cdk8s escape hatch,
 * ApiObject.addJsonPatch) that turn its rendering into the planner's merged object, and the
 * MeshforkChart does not emit it (docs/adr/0017-cdk8s-baseline-from-the-app.md).
 */
import { ApiObject, JsonPatch } from 'cdk8s';
import fastJsonPatch from 'fast-json-patch';
import { Construct, type IConstruct } from 'constructs';
import type { Problem } from '../api/problem.js';
import type { KubeObject } from '../planner/kube.js';
import { objectRef } from '../planner/plan.js';
import { MESHFORK_SCOPE } from './scope.js';

/** Where a MeshforkChart's baseline comes from, besides its `inventory` prop. */
export type BaselineSource = 'app' | readonly IConstruct[];

/** One object of the baseline, as its chart renders it, and the ApiObject that renders it. */
export interface BaselineObject {
  readonly object: KubeObject;
  readonly apiObject: ApiObject;
}

/** The MeshforkChart path that patched an ApiObject of a baseline chart (one chart only may). */
const mergedBy = new WeakMap<ApiObject, string>();

function isInsideMeshforkChart(construct: IConstruct): boolean {
  return construct.node.scopes.some((s) => MESHFORK_SCOPE in s);
}

function groupOf(apiVersion: string): string {
  return apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
}

/** Identity of an object across API versions: group, kind, namespace and name. */
export function identityOf(object: KubeObject): string {
  return `${groupOf(object.apiVersion)}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

/**
 * The ApiObjects of the baseline, in construct order: for `'app'`, every ApiObject of the App
 * outside MeshforkCharts; for a list, every ApiObject at or beneath each construct (a construct
 * that is or lies in a MeshforkChart is a problem: its objects are outputs, not a baseline).
 */
function baselineApiObjects(chart: Construct, source: BaselineSource, problems: Problem[]): ApiObject[] {
  if (source === 'app') {
    return chart.node.root.node.findAll().filter((c): c is ApiObject => ApiObject.isApiObject(c) && !isInsideMeshforkChart(c));
  }
  const found = new Set<ApiObject>();
  source.forEach((construct, i) => {
    if (!Construct.isConstruct(construct)) {
      problems.push({ file: chart.node.path, object: `baseline[${i}]`, path: '', message: 'must be a construct (a Chart, an ApiObject or a construct holding ApiObjects)' });
      return;
    }
    if (isInsideMeshforkChart(construct) || construct.node.findAll().some((c) => MESHFORK_SCOPE in c)) {
      problems.push({ file: chart.node.path, object: `baseline[${i}]`, path: '', message: `"${construct.node.path}" is or holds a MeshforkChart, whose objects are meshfork's output, not a baseline` });
      return;
    }
    for (const c of construct.node.findAll()) if (ApiObject.isApiObject(c)) found.add(c);
  });
  return [...found];
}

/**
 * Renders the baseline objects (namespace-less ones but Namespaces get `defaultNamespace`, as their
 * chart's objects land in the Argo CD Application's namespace) and reports every object defined twice:
 * two definitions of one object leave it open which one the planner reads and which chart emits
 * it. `inventoryIds` are identities already given as the `inventory` prop.
 */
export function collectBaseline(
  chart: Construct,
  source: BaselineSource,
  defaultNamespace: string,
  inventoryIds: ReadonlySet<string>,
): { objects: BaselineObject[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const objects: BaselineObject[] = [];
  const seen = new Map<string, ApiObject>();
  for (const apiObject of baselineApiObjects(chart, source, problems)) {
    const rendered = apiObject.toJson() as KubeObject;
    if (rendered === undefined || rendered === null || typeof rendered.metadata?.name !== 'string') continue;
    const object =
      rendered.metadata.namespace !== undefined || isClusterScoped(rendered) ? rendered : { ...rendered, metadata: { ...rendered.metadata, namespace: defaultNamespace } };
    const id = identityOf(object);
    const other = seen.get(id);
    const where = { file: chart.node.path, object: objectRef(object), path: 'metadata.name' };
    if (other !== undefined) {
      problems.push({ ...where, message: `defined twice in the baseline, by "${other.node.path}" and by "${apiObject.node.path}"; keep one, so that one chart emits it` });
    } else if (inventoryIds.has(id)) {
      problems.push({ ...where, message: `defined twice, in the chart's inventory and by "${apiObject.node.path}"; keep one, so that one chart emits it` });
    }
    seen.set(id, apiObject);
    objects.push({ object, apiObject });
  }
  return { objects, problems };
}

/** Namespaces, the one cluster-scoped kind the planner reads, keep no namespace (like MeshforkChart's inventory prop). */
function isClusterScoped(object: KubeObject): boolean {
  return object.apiVersion === 'v1' && object.kind === 'Namespace';
}

/**
 * Makes the chart that defines `baseline` emit `desired` (the planner's version of the same
 * object, e.g. a merged VirtualService): adds the JSON patches from its current rendering to
 * `desired`. Returns a problem when another MeshforkChart already changed the same object.
 */
export function emitThroughDefiningChart(meshforkChart: Construct, baseline: BaselineObject, desired: KubeObject): Problem | undefined {
  const other = mergedBy.get(baseline.apiObject);
  if (other !== undefined && other !== meshforkChart.node.path) {
    return {
      file: meshforkChart.node.path,
      object: objectRef(desired),
      path: '',
      message: `MeshforkChart "${other}" already merges its sandboxes into "${baseline.apiObject.node.path}"; plan every sandbox of a host in one MeshforkChart`,
    };
  }
  mergedBy.set(baseline.apiObject, meshforkChart.node.path);
  // The namespace the baseline object renders without (when its chart sets none) is not a change.
  const target = baseline.apiObject.toJson() as KubeObject;
  const wanted = target.metadata.namespace === undefined ? { ...desired, metadata: withoutNamespace(desired.metadata) } : desired;
  const ops = fastJsonPatch.compare(target, wanted).map((op) => {
    if (op.op === 'add') return JsonPatch.add(op.path, op.value);
    if (op.op === 'replace') return JsonPatch.replace(op.path, op.value);
    if (op.op === 'remove') return JsonPatch.remove(op.path);
    throw new Error(`unexpected JSON patch operation ${op.op}`);
  });
  if (ops.length > 0) baseline.apiObject.addJsonPatch(...ops);
  return undefined;
}

function withoutNamespace(metadata: KubeObject['metadata']): KubeObject['metadata'] {
  const { namespace: _namespace, ...rest } = metadata;
  return rest as KubeObject['metadata'];
}

/**
 * The ApiObject a `forkOf` construct stands for: the construct itself when it is an ApiObject,
 * else its default child (`ApiObject.of`: the child with id `Resource`, which is where every
 * cdk8s-plus resource keeps its ApiObject). Undefined when there is none.
 */
export function apiObjectOf(construct: IConstruct): ApiObject | undefined {
  try {
    return ApiObject.of(construct);
  } catch {
    return undefined;
  }
}

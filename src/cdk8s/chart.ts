/**
 * `MeshforkChart`: a cdk8s Chart whose manifest is exactly what the meshfork planner outputs for
 * its inventory and specs — the same objects in the same order as `meshfork synth`.
 *
 * Specs come from the props (`sandboxes`, `routeGroups`) and from Sandbox / RouteGroup constructs
 * defined anywhere beneath the chart. The planner needs every spec at once (VirtualServices are
 * computed per baseline host across all sandboxes), so the chart plans ONCE, at synthesis time:
 * - `Chart.toJson()` is what App.synth(), App.synthYaml() and Testing.synth() call per chart
 *   (cdk8s 2.70 lib/app.js, lib/testing.js), so it is overridden to plan first;
 * - a construct validation (node.addValidation) also plans, because App.synth() validates every
 *   construct before it collects ApiObjects, which covers the output modes that never call
 *   Chart.toJson() (YamlOutputType.FOLDER_PER_CHART_FILE_PER_RESOURCE).
 * Planning adds one PlannedObject (an ApiObject) per planner object, in planner order; cdk8s keeps
 * construct order when no dependencies are declared (DependencyGraph topology over findAll()).
 *
 * References (cdk8s 2.70): Chart.toJson() returns App._synthChart(this) and Testing.synth(chart)
 * returns chart.toJson() (https://app.unpkg.com/cdk8s@2.70.4/files/lib/testing.js); App.synth()
 * validates, then writes `<outdir>/<chart>.k8s.yaml` per chart, outdir defaulting to CDK8S_OUTDIR
 * then "dist" (https://app.unpkg.com/cdk8s@2.70.4/files/lib/app.d.ts, lib/app.js).
 */
import { Chart } from 'cdk8s';
import type { Construct, IConstruct } from 'constructs';
import { resolveConfig, type MeshforkConfigT } from '../api/config.js';
import { formatProblem, InputError, type Problem } from '../api/problem.js';
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { withSources } from '../manifests/load.js';
import { inventoryOf, type Inventory } from '../planner/inventory.js';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, type KubeObject } from '../planner/kube.js';
import { mergeVirtualService } from '../planner/virtual-service.js';
import { objectRef, plan, type PlanConfig, type PlanResult } from '../planner/plan.js';
import { DEFAULT_ROUTING_KEY_CONFIG } from '../planner/routing-key.js';
import { collectBaseline, emitThroughDefiningChart, identityOf, type BaselineObject, type BaselineSource } from './baseline.js';
import { istioProblems } from './istio.js';
import { PlannedObject } from './planned-object.js';
import { RouteGroup, type RouteGroupProps } from './route-group.js';
import { Sandbox, type SandboxProps } from './sandbox.js';
import { findMeshforkScope, MESHFORK_SCOPE, type MeshforkScope } from './scope.js';

export interface MeshforkChartProps {
  /**
   * Baseline objects given as data: Deployments, Services, VirtualServices, DestinationRules and
   * label-selected policies, as a list of objects (other kinds are ignored) or as an Inventory
   * (e.g. from readManifests). User VirtualServices given here are inputs: this chart emits their
   * merged versions. Objects without a namespace get `namespace`.
   * @default - none: the baseline is `baseline`
   */
  readonly inventory?: readonly KubeObject[] | Inventory;
  /**
   * Baseline objects defined in the cdk8s app: the ApiObjects of these constructs (charts,
   * cdk8s-plus resources, ApiObjects, `Include`s), or with `'app'` of every chart of the App except
   * MeshforkCharts, rendered at synthesis exactly as their charts render them. Their charts'
   * manifests stay as they are, except that an object the planner changes (a user VirtualService
   * that sandboxes route through) is emitted, merged, by the chart that defines it, never by this
   * one. An object defined twice (in two charts, or in a chart and in `inventory`) is refused.
   * Objects without a namespace get `namespace`. (docs/adr/0017-cdk8s-baseline-from-the-app.md)
   * @default - `'app'` when `inventory` is not given, else none
   */
  readonly baseline?: BaselineSource;
  /**
   * Sandboxes, as meshfork.dev/v1alpha1 objects (e.g. from readManifests) or as props with a `name`.
   * Each becomes a Sandbox construct under the chart; more can be added with `new Sandbox(chart, ...)`.
   * @default []
   */
  readonly sandboxes?: ReadonlyArray<SandboxObject | SandboxProps>;
  /**
   * RouteGroups, as objects or as props with a `name`.
   * @default []
   */
  readonly routeGroups?: ReadonlyArray<RouteGroupObject | RouteGroupProps>;
  /**
   * meshfork configuration, the same document as `meshfork synth --config <file>`
   * (`routing: { compat, keyName, tracestate, headers, legacyHeaders, gateways }`, `ingressGuard: { enabled, ... }`,
   * `policy: { forkNamespaces, maxSplitWeight, allow: { serviceAccountName, hostNamespaces, privileged, capabilities, hostPath, podMetadata } }`).
   * @default - routing key `meshfork-routing-key` in baggage and tracestate, no ingress guard, and the
   * default policy: forks from the Sandbox's own namespace only, split weight at most 50, no
   * fork change to service account, host namespaces, privileges, capabilities or hostPath volumes
   */
  readonly config?: MeshforkConfigT;
  /**
   * Namespace of specs and inventory objects that name none (like `meshfork synth -n`); also the
   * cdk8s Chart namespace for other ApiObjects added to this chart. Planned objects always carry
   * the namespace the planner gives them.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * Receives the planner's notes (things that work, but maybe not as expected, such as gateway-only
   * VirtualServices) once, at synthesis.
   * @default - each note is written to stderr as `note: <problem>`, as `meshfork synth` does
   */
  readonly onNotes?: (notes: readonly Problem[]) => void;
  /**
   * Which user VirtualServices of the inventory the chart emits.
   * - `'merged'`: only those sandboxes route through, merged (exactly `meshfork synth`'s output);
   * - `'all'`: every user VirtualService, merged when sandboxes route through it and otherwise as
   *   written (with any stale `meshfork-*` route stripped), after the planner's objects. Use it when
   *   this chart's Argo CD Application owns the user VirtualServices for good: they then never
   *   disappear from Git (and get pruned) when the last sandbox of a host goes away.
   * @default 'merged'
   */
  readonly userVirtualServices?: 'merged' | 'all';
}

function isObjectForm(spec: object): spec is { apiVersion: string; metadata?: { name?: unknown; namespace?: unknown } } {
  return 'apiVersion' in spec || 'kind' in spec || 'metadata' in spec || 'spec' in spec;
}

function objectId(object: KubeObject): string {
  // Namespaces are RFC 1123 labels (no dots), so kind.namespace.name is unique per object.
  return `${object.kind}.${object.metadata.namespace ?? 'cluster'}.${object.metadata.name}`;
}

export class MeshforkChart extends Chart {
  /**
   * Whether `x` is a MeshforkChart. (Not `instanceof`: cdk8s' Chart defines Symbol.hasInstance as
   * "is any Chart", which every subclass inherits.)
   */
  public static isMeshforkChart(x: unknown): x is MeshforkChart {
    return typeof x === 'object' && x !== null && MESHFORK_SCOPE in x;
  }

  /** The nearest MeshforkChart enclosing `construct` (or `construct` itself). */
  public static override of(construct: IConstruct): MeshforkChart {
    for (const scope of [...construct.node.scopes].reverse()) if (MeshforkChart.isMeshforkChart(scope)) return scope;
    throw new Error(`"${construct.node.path}" is not inside a MeshforkChart`);
  }

  /** Namespace of specs and inventory objects that name none. */
  public readonly defaultNamespace: string;
  /** The resolved planner configuration. */
  public readonly config: PlanConfig;
  /** The `inventory` prop, namespaces filled in; the baseline read from the app joins it at synthesis. */
  public readonly inventory: Inventory;

  readonly #scope: MeshforkScope;
  readonly #onNotes: (notes: readonly Problem[]) => void;
  readonly #userVirtualServices: 'merged' | 'all';
  readonly #baseline: BaselineSource;
  #result: PlanResult | undefined;

  public constructor(scope: Construct, id: string, props: MeshforkChartProps) {
    super(scope, id, props.namespace !== undefined ? { namespace: props.namespace } : {});
    this.defaultNamespace = props.namespace ?? 'default';
    const self = this;
    this.#scope = {
      defaultNamespace: this.defaultNamespace,
      path: this.node.path,
      get planned() {
        return self.#result !== undefined;
      },
    };
    Object.defineProperty(this, MESHFORK_SCOPE, { value: this.#scope });
    this.#userVirtualServices = props.userVirtualServices ?? 'merged';
    this.#onNotes = props.onNotes ?? ((notes) => notes.forEach((n) => process.stderr.write(`note: ${formatProblem(n)}\n`)));

    const problems: Problem[] = [];
    const { config, problems: configProblems } = resolveConfig(props.config, {});
    problems.push(...configProblems.map((p) => ({ ...p, file: this.node.path, object: 'config' })));
    this.config = config ?? { routing: DEFAULT_ROUTING_KEY_CONFIG }; // only read when there are no problems
    if (props.inventory === undefined) {
      this.inventory = this.normalizeInventory([]);
    } else if (props.inventory === null || typeof props.inventory !== 'object') {
      problems.push({ file: this.node.path, object: 'inventory', path: '', message: 'must be a list of objects or an Inventory' });
      this.inventory = this.normalizeInventory([]);
    } else {
      this.inventory = this.normalizeInventory(props.inventory);
    }
    if (props.baseline !== undefined && props.baseline !== 'app' && !Array.isArray(props.baseline)) {
      problems.push({ file: this.node.path, object: 'baseline', path: '', message: "must be 'app' or a list of constructs" });
    }
    this.#baseline = props.baseline ?? (props.inventory === undefined ? 'app' : []);

    const addSpecs = <O extends object, P extends { readonly name?: string }>(
      field: string,
      specs: ReadonlyArray<O | P> | undefined,
      fromObject: (id: string, object: O) => unknown,
      fromProps: (id: string, props: P) => unknown,
    ) => {
      (specs ?? []).forEach((spec, i) => {
        const where = { file: this.node.path, object: `${field}[${i}]` };
        try {
          if (isObjectForm(spec)) {
            const { name, namespace } = spec.metadata ?? {};
            if (typeof name !== 'string') {
              problems.push({ ...where, path: 'metadata.name', message: 'required field is missing' });
              return;
            }
            fromObject(typeof namespace === 'string' && namespace !== this.defaultNamespace ? `${namespace}.${name}` : name, spec as O);
          } else {
            const { name, namespace } = spec as P & { namespace?: string };
            if (typeof name !== 'string') {
              problems.push({ ...where, path: 'name', message: 'required field is missing' });
              return;
            }
            fromProps(namespace !== undefined && namespace !== this.defaultNamespace ? `${namespace}.${name}` : name, spec as P);
          }
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          problems.push(...e.problems);
        }
      });
    };
    addSpecs<SandboxObject, SandboxProps>('sandboxes', props.sandboxes, (id, o) => Sandbox.fromObject(this, id, o), (id, p) => new Sandbox(this, id, p));
    addSpecs<RouteGroupObject, RouteGroupProps>('routeGroups', props.routeGroups, (id, o) => RouteGroup.fromObject(this, id, o), (id, p) => new RouteGroup(this, id, p));
    if (problems.length > 0) {
      scope.node.tryRemoveChild(this.node.id); // a rejected chart must not be synthesized by its App
      throw new InputError(problems);
    }

    this.node.addValidation({
      validate: () => {
        this.plan();
        return [];
      },
    });
  }

  /**
   * Plans every Sandbox and RouteGroup of the chart (once; later calls return the same result) and
   * adds the planner's objects to the chart. Synthesis calls it; call it earlier to read the plan
   * (routing keys, forks, notes). Specs added afterwards throw.
   * Throws an InputError listing every problem of the planner or of Istio's schemas.
   */
  public plan(): PlanResult {
    if (this.#result !== undefined) return this.#result;
    const sandboxes = this.specs(Sandbox);
    const routeGroups = this.specs(RouteGroup);
    const sources = new Map<string, string>();
    const problems: Problem[] = [];
    for (const spec of [...sandboxes, ...routeGroups]) {
      const object = spec.toObject();
      const ref = objectRef(object);
      const other = sources.get(ref);
      if (other !== undefined) problems.push({ file: spec.node.path, object: ref, path: 'metadata.name', message: `defined twice (also at ${other})` });
      else sources.set(ref, spec.node.path);
    }
    const baseline = this.collectBaseline(sandboxes);
    problems.push(...baseline.problems);
    if (problems.length > 0) throw new InputError(problems);

    const result = plan({
      inventory: baseline.inventory,
      sandboxes: sandboxes.map((s) => s.toObject()),
      routeGroups: routeGroups.map((g) => g.toObject()),
      config: this.config,
    });
    if (result.problems.length > 0) throw new InputError(withSources(result.problems, sources));
    const objects = [...result.objects, ...this.untouchedUserVirtualServices(result.objects)];
    const istio = objects.flatMap(istioProblems).map((p) => ({ ...p, file: this.node.path }));
    if (istio.length > 0) throw new InputError(istio);
    // An object of a baseline chart that the planner changed is emitted by that chart, merged.
    const defined = new Map(baseline.objects.map((b) => [identityOf(b.object), b]));
    const emitted: KubeObject[] = [];
    for (const object of objects) {
      const definition = defined.get(identityOf(object));
      if (definition === undefined) emitted.push(object);
      else {
        const problem = emitThroughDefiningChart(this, definition, object);
        if (problem !== undefined) throw new InputError([problem]);
      }
    }
    for (const object of emitted) new PlannedObject(this, objectId(object), object);
    this.#result = result;
    if (result.notes.length > 0) this.#onNotes(withSources(result.notes, sources));
    return result;
  }

  /** Plans (once), then renders the chart like any cdk8s Chart. */
  public override toJson(): any[] {
    this.plan();
    return super.toJson();
  }

  /**
   * The inventory to plan against: the `inventory` prop plus the rendered baseline objects, and the
   * problems of the baseline (objects defined twice, `forkOf` constructs outside it).
   */
  private collectBaseline(sandboxes: readonly Sandbox[]): { inventory: Inventory; objects: BaselineObject[]; problems: Problem[] } {
    const given = Object.values(this.inventory).flatMap((list: readonly KubeObject[] | undefined) => list ?? []);
    const { objects, problems } = collectBaseline(this, this.#baseline, this.defaultNamespace, new Set(given.map(identityOf)));
    const inBaseline = new Set(objects.map((b) => b.apiObject));
    for (const sandbox of sandboxes) {
      for (const [i, target] of sandbox.forkTargets) {
        if (inBaseline.has(target)) continue;
        problems.push({
          file: sandbox.node.path,
          object: objectRef(sandbox.toObject()),
          path: `spec.forks[${i}].forkOf`,
          message: `"${target.node.path}" is not part of the baseline of MeshforkChart "${this.node.path}" (its \`baseline\` prop)`,
        });
      }
    }
    if (objects.length === 0) return { inventory: this.inventory, objects, problems };
    const fromApp = inventoryOf(objects.map((b) => b.object));
    const fields = Object.keys(fromApp) as Array<keyof Inventory>;
    const inventory = Object.fromEntries(fields.map((f) => [f, [...(this.inventory[f] ?? []), ...(fromApp[f] ?? [])]])) as unknown as Inventory;
    return { inventory, objects, problems };
  }

  /** With `userVirtualServices: 'all'`: the user VirtualServices the planner did not merge, cleaned, by namespace and name. */
  private untouchedUserVirtualServices(planned: readonly KubeObject[]): KubeObject[] {
    if (this.#userVirtualServices !== 'all') return [];
    const emitted = new Set(planned.map(objectId));
    return this.inventory.virtualServices
      .filter((vs) => vs.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE && !emitted.has(objectId(vs)))
      .sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name))
      .map((vs) => mergeVirtualService(vs, []).virtualService);
  }

  private specs<T extends Sandbox | RouteGroup>(type: abstract new (...args: never[]) => T): T[] {
    return this.node.findAll().filter((c): c is T => c instanceof type && findMeshforkScope(c) === this.#scope);
  }

  private normalizeInventory(input: readonly KubeObject[] | Inventory): Inventory {
    const inventory = Array.isArray(input) ? inventoryOf(input as readonly KubeObject[]) : (input as Inventory);
    const withNamespace = (list: readonly KubeObject[]) =>
      list.map((o) => (o.metadata.namespace !== undefined ? o : { ...o, metadata: { ...o.metadata, namespace: this.defaultNamespace } }));
    return {
      deployments: withNamespace(inventory.deployments),
      services: withNamespace(inventory.services),
      virtualServices: withNamespace(inventory.virtualServices),
      destinationRules: withNamespace(inventory.destinationRules),
      envoyFilters: withNamespace(inventory.envoyFilters ?? []),
      policies: withNamespace(inventory.policies ?? []),
      labelSelecting: withNamespace(inventory.labelSelecting ?? []),
      workloads: withNamespace(inventory.workloads ?? []),
      gatewayRoutes: withNamespace(inventory.gatewayRoutes ?? []),
      // Namespaces are cluster-scoped: kept as they are.
      namespaces: inventory.namespaces ?? [],
    };
  }
}

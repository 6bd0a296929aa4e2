/**
 * The planner: a pure, deterministic function from (inventory, Sandboxes, RouteGroups, config) to
 * every object meshfork adds or changes. No I/O; the same input always gives the same objects in
 * the same order. The cdk8s constructs, the CLI and the reconciler are thin shells around it.
 *
 * Output order is apply order ("make before break"): copies of label-selected policies (so a
 * fork never runs before the policies its baseline has, DENY included), forked Deployments, fork
 * Services, fork DestinationRules, EnvoyFilters, then VirtualServices, each sorted by namespace
 * and name.
 */
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { fieldPath, type Problem } from '../api/problem.js';
import { SANDBOX_LABEL, groupBy, isManaged, objectRef, ownValue, type KubeObject } from './kube.js';
import { POLICY_KINDS, deploymentSelector, inventoryProblems, namespaceOf, podTemplateLabels, serviceFqdn, servicePortNumbers, serviceSelector, type Inventory } from './inventory.js';
import { LabelIndex, labelSelectorRequirement, serviceSelectorRequirement } from './label-selector.js';
import { forkDeployment, forkName, podsSelectedBy } from './forked-deployment.js';
import { resolveForkPolicy, type ForkPolicyInput } from './fork-policy.js';
import { forkService, forkServiceLabels, forkServiceName, lostTargetPorts } from './fork-service.js';
import { policyCopies, type ForkedWorkload } from './policy-copy.js';
import { baselineDestinationRule, destinationRulesByHost, forkDestinationRule, type ForkedPods } from './destination-rule.js';
import { forkAffinityEnvoyFilter, ingressGuardEnvoyFilter } from './envoy-filter.js';
import { ownedVirtualServiceName, RESERVED_ROUTE_NAMES, RESERVED_SANDBOX_NAMES, versionFamily, type ForkedSource, type SandboxRoute } from './virtual-service.js';
import { gatewayRoutingOf, placeVirtualServices, type GatewayRouting } from './virtual-service-placement.js';
import { DEFAULT_ROUTING_KEY_CONFIG, deriveRoutingKey, routingKeyMatchBlocks, type RoutingKeyConfig } from './routing-key.js';
import { RouteGroupIndex } from './route-group.js';
import { forkQuotaProblem, namespaceQuotaProblems } from './sandbox-quota.js';
import { baselineNotFound, dataplaneNote, entryPointNotes, queueConsumerNote, serviceProtocolNote } from './routing-limits.js';
import { planGatewayRoutes } from './http-route.js';
import { DATAPLANE_MODE_LABEL, isAmbient, type RoutingModeConfig } from './routing-mode.js';

export interface IngressGuardConfig {
  /** Emit the mesh-wide ingress guard EnvoyFilter. @default false */
  readonly enabled: boolean;
  /** Hex SHA-256 digests of preview tokens allowed to keep routing keys. @default [] */
  readonly tokenSha256?: readonly string[];
  /** Labels of the ingress gateway pods. @default { istio: 'ingressgateway' } */
  readonly gatewaySelector?: Readonly<Record<string, string>>;
  /** Namespace of the EnvoyFilter. @default 'istio-system' */
  readonly namespace?: string;
}

export interface PlanConfig {
  readonly routing: RoutingKeyConfig;
  readonly ingressGuard?: IngressGuardConfig;
  /**
   * Which gateway-bound VirtualServices get sandbox copies (config file: `routing.gateways`):
   * `all`, `none`, or gateway names `<namespace>/<name>`. Copies on a gateway let whoever reaches
   * it pick a sandbox with a key (src/planner/virtual-service-placement.ts).
   * @default 'all' when the ingress guard is enabled, else 'none'
   */
  readonly gateways?: GatewayRouting;
  /**
   * What Sandboxes may ask for: namespaces to fork from besides their own, the largest split
   * weight, and fork changes beyond the baseline's settings (service account, host namespaces,
   * privileges, capabilities, hostPath volumes, pod labels and mesh annotations). Missing fields
   * take their defaults.
   * @default { forkNamespaces: [], maxSplitWeight: 50, allow: all false } (DEFAULT_FORK_POLICY)
   */
  readonly policy?: ForkPolicyInput;
  /**
   * How each forked host is routed (config file: `routing.mode`, `routing.hosts`): with
   * VirtualServices or with derived Gateway API routes (routing-mode.ts, http-route.ts).
   * @default { mode: 'auto' }
   */
  readonly routingModes?: RoutingModeConfig;
}

export interface PlanInput {
  readonly inventory: Inventory;
  readonly sandboxes: readonly SandboxObject[];
  readonly routeGroups?: readonly RouteGroupObject[];
  readonly config?: Partial<PlanConfig>;
}

/** What the planner decided about one Sandbox (the reconciler's status comes from this). */
export interface SandboxPlan {
  readonly namespace: string;
  readonly name: string;
  readonly routingKey: string;
  readonly routeGroups: readonly string[];
  readonly forks: ReadonlyArray<{ forkOf: string; deployment: string; services: readonly string[] }>;
}

export interface PlanResult {
  /** Objects to apply, in apply order. Empty when there are problems. */
  readonly objects: KubeObject[];
  /** Input errors: nothing may be applied while there are any. */
  readonly problems: Problem[];
  /** Things that work but not as the user might expect (e.g. gateway-only VirtualServices). */
  readonly notes: Problem[];
  readonly sandboxes: SandboxPlan[];
  readonly routeGroupKeys: ReadonlyArray<{ namespace: string; name: string; routingKey: string; members: readonly string[] }>;
}

/** Owner of the objects the configuration asks for (the ingress guard), in problems. */
const CONFIG_REF = 'config';
const KIND_ORDER = [
  ...POLICY_KINDS.map((k) => k.kind),
  'Deployment',
  'Service',
  'DestinationRule',
  'EnvoyFilter',
  'VirtualService',
  'HTTPRoute',
  'GRPCRoute',
];
const MAX_SERVICE_NAME = 63;

export { objectRef };

function byNamespaceAndName<T extends { metadata: { name: string; namespace?: string } }>(a: T, b: T): number {
  return (a.metadata.namespace ?? 'default').localeCompare(b.metadata.namespace ?? 'default') || a.metadata.name.localeCompare(b.metadata.name);
}

/** Apply order of generated objects (KIND_ORDER, then namespace and name). */
export function compareObjects(a: KubeObject, b: KubeObject): number {
  return KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || byNamespaceAndName(a, b);
}


/** Keys are derived from the object's identity when the spec has none, so synth is stable. */
export function effectiveRoutingKey(object: SandboxObject | RouteGroupObject): string {
  return object.spec.routingKey ?? deriveRoutingKey(object.kind, object.metadata.namespace ?? 'default', object.metadata.name);
}

export function plan(input: PlanInput): PlanResult {
  // Malformed inventory is reported before anything reads it (inventoryProblems in inventory.ts).
  const shapeProblems = inventoryProblems(input.inventory);
  if (shapeProblems.length > 0) return { objects: [], problems: shapeProblems, notes: [], sandboxes: [], routeGroupKeys: [] };
  const config: PlanConfig = {
    routing: input.config?.routing ?? DEFAULT_ROUTING_KEY_CONFIG,
    ...(input.config?.ingressGuard ? { ingressGuard: input.config.ingressGuard } : {}),
    gateways: gatewayRoutingOf(input.config?.gateways, input.config?.ingressGuard?.enabled ?? false),
    ...(input.config?.routingModes ? { routingModes: input.config.routingModes } : {}),
  };
  const policy = resolveForkPolicy(input.config?.policy);
  // Objects meshfork generated earlier are outputs, never baseline.
  const inventory: Inventory = {
    deployments: input.inventory.deployments.filter((o) => !isManaged(o)),
    services: input.inventory.services.filter((o) => !isManaged(o)),
    virtualServices: input.inventory.virtualServices.filter((o) => !isManaged(o)),
    destinationRules: input.inventory.destinationRules.filter((o) => !isManaged(o)),
    policies: (input.inventory.policies ?? []).filter((o) => !isManaged(o)),
    labelSelecting: (input.inventory.labelSelecting ?? []).filter((o) => !isManaged(o)),
    workloads: input.inventory.workloads ?? [],
    gatewayRoutes: (input.inventory.gatewayRoutes ?? []).filter((o) => !isManaged(o)),
    namespaces: input.inventory.namespaces ?? [],
  };
  const namespaceObjects = new Map((inventory.namespaces ?? []).map((n) => [n.metadata.name, n]));
  const sandboxes = [...input.sandboxes].sort(byNamespaceAndName);
  const groupIndex = new RouteGroupIndex(sandboxes);
  // The first Deployment of each namespace/name (as a search in input order finds it), and the
  // Services and Deployments of each namespace.
  const baselineByName = new Map<string, KubeObject>();
  for (const d of inventory.deployments) if (!baselineByName.has(`${namespaceOf(d)}/${d.metadata.name}`)) baselineByName.set(`${namespaceOf(d)}/${d.metadata.name}`, d);
  const servicesByNamespace = groupBy(inventory.services, namespaceOf);
  const deploymentsByNamespace = groupBy(inventory.deployments, namespaceOf);
  // The baseline Services and Deployments of a namespace by the labels their selectors require,
  // so that each fork evaluates only the selectors that may select its pods.
  const baselineSelectors = new Map<string, { services: LabelIndex<KubeObject>; deployments: LabelIndex<KubeObject> }>();
  const baselineSelectorsIn = (namespace: string) => {
    let indexes = baselineSelectors.get(namespace);
    if (indexes === undefined) {
      indexes = {
        services: new LabelIndex(servicesByNamespace.get(namespace) ?? [], (o) => serviceSelectorRequirement(serviceSelector(o))),
        deployments: new LabelIndex(deploymentsByNamespace.get(namespace) ?? [], (o) => labelSelectorRequirement(deploymentSelector(o))),
      };
      baselineSelectors.set(namespace, indexes);
    }
    return indexes;
  };
  const rulesByHost = destinationRulesByHost(inventory.destinationRules);
  const routeGroups = [...(input.routeGroups ?? [])].sort(byNamespaceAndName);
  const problems: Problem[] = [];
  const notes: Problem[] = [];

  // Routing keys must be unique across every Sandbox and RouteGroup. A key derived from an
  // object's identity belongs to that object: whoever writes it into spec.routingKey is refused,
  // whatever the names, so no Sandbox can take (or block) another's derived key. Among explicit
  // keys, the first by namespace and name keeps it.
  const keyOwners = new Map<string, string>();
  const claimants = [...sandboxes, ...routeGroups];
  // Each object's key, derived once (a SHA-256 when the spec names none).
  const routingKeys = new Map<SandboxObject | RouteGroupObject, string>(claimants.map((o) => [o, effectiveRoutingKey(o)]));
  const routingKeyOf = (o: SandboxObject | RouteGroupObject) => routingKeys.get(o) ?? effectiveRoutingKey(o);
  for (const object of [...claimants.filter((o) => o.spec.routingKey === undefined), ...claimants.filter((o) => o.spec.routingKey !== undefined)]) {
    const key = routingKeyOf(object);
    const owner = keyOwners.get(key);
    if (owner !== undefined) {
      problems.push({ object: objectRef(object), path: 'spec.routingKey', message: `routing key "${key}" is already used by ${owner}` });
    } else {
      keyOwners.set(key, objectRef(object));
    }
  }

  // RouteGroup membership; two members may not fork the same workload.
  const groupKeysOf = new Map<string, string[]>();
  const groupNamesOf = new Map<string, string[]>();
  const routeGroupKeys: PlanResult['routeGroupKeys'][number][] = [];
  for (const group of routeGroups) {
    const members = groupIndex.members(group);
    const key = routingKeyOf(group);
    routeGroupKeys.push({ namespace: namespaceOf(group), name: group.metadata.name, routingKey: key, members: members.map((m) => m.metadata.name) });
    const forkedBy = new Map<string, string>();
    for (const member of members) {
      const memberRef = objectRef(member);
      groupKeysOf.set(memberRef, [...(groupKeysOf.get(memberRef) ?? []), key]);
      groupNamesOf.set(memberRef, [...(groupNamesOf.get(memberRef) ?? []), group.metadata.name]);
      for (const fork of member.spec.forks) {
        const workload = `${fork.forkOf.namespace ?? namespaceOf(member)}/${fork.forkOf.name}`;
        const other = forkedBy.get(workload);
        if (other !== undefined && other !== member.metadata.name) {
          problems.push({ object: objectRef(group), path: 'spec.match', message: `members "${other}" and "${member.metadata.name}" both fork Deployment ${workload}` });
        }
        forkedBy.set(workload, member.metadata.name);
      }
    }
  }

  const objects: KubeObject[] = [];
  const hostRoutes = new Map<string, { serviceName: string; namespace: string; ports: number[]; routes: SandboxRoute[]; splitOwners: Array<{ ref: string; weight: number }> }>();
  const sandboxPlans: SandboxPlan[] = [];
  const generatedNames = new Map<string, string>();
  // Generated object id -> the Sandbox fields that asked for it (for problems found later).
  const ownersOf = new Map<string, Array<{ ref: string; path: string }>>();
  const ownerKeys = new Set<string>();
  const recordOwner = (id: string, ref: string, path: string) => {
    const key = JSON.stringify([id, ref, path]);
    if (ownerKeys.has(key)) return;
    ownerKeys.add(key);
    const owners = ownersOf.get(id);
    if (owners === undefined) ownersOf.set(id, [{ ref, path }]);
    else owners.push({ ref, path });
  };
  const claimName = (kind: string, namespace: string, name: string, owner: string, path: string) => {
    const id = `${kind} ${namespace}/${name}`;
    const existing = generatedNames.get(id);
    if (existing !== undefined && existing !== owner) problems.push({ object: owner, path, message: `generated ${id} collides with the one for ${existing}` });
    generatedNames.set(id, owner);
    recordOwner(id, owner, path);
  };
  // Forks, for the isolation check against every other generated Service and Deployment.
  const forkRecords: Array<{ ref: string; path: string; prefix: string; deployment: KubeObject; services: Set<string> }> = [];
  const hostOwners = new Map<string, Array<{ ref: string; path: string }>>();
  // Forked workloads as clients, for VirtualService `sourceLabels` matches.
  const forkedSources: ForkedSource[] = [];

  for (const sandbox of sandboxes) {
    const ref = objectRef(sandbox);
    const sandboxName = sandbox.metadata.name;
    const routingKey = routingKeyOf(sandbox);
    const keys = [routingKey, ...(groupKeysOf.get(ref) ?? [])];
    const matchBlocks = routingKeyMatchBlocks(config.routing, keys);
    const seen = new Map<string, number>();
    const sandboxServices = new Set<string>();
    const forkPlans: Array<{ forkOf: string; deployment: string; services: string[] }> = [];
    const forkedWorkloads: ForkedWorkload[] = [];
    // Per fork Service of this sandbox: the forks behind it, for its DestinationRule (subsets).
    const forkServiceRoutes = new Map<string, { forks: ForkedPods[]; families: string[]; forkedSubsets: string[]; create: () => void }>();
    if (RESERVED_SANDBOX_NAMES.has(sandboxName)) {
      problems.push({ object: ref, path: 'metadata.name', message: `"${sandboxName}" is reserved for the names of meshfork's own routes (${RESERVED_ROUTE_NAMES}); choose another name` });
    }
    const tooManyForks = forkQuotaProblem(sandbox, ref, policy.maxForksPerSandbox);
    if (tooManyForks !== undefined) problems.push(tooManyForks);
    const splitWeight = sandbox.spec.split?.weight;
    if (splitWeight !== undefined && splitWeight > policy.maxSplitWeight) {
      problems.push({ object: ref, path: 'spec.split.weight', message: `is ${splitWeight}; a Sandbox may take at most ${policy.maxSplitWeight}% of untagged traffic (policy.maxSplitWeight)` });
    }
    sandbox.spec.forks.forEach((fork, index) => {
      const forkPath = fieldPath(['spec', 'forks', index]);
      const namespace = fork.forkOf.namespace ?? namespaceOf(sandbox);
      const workload = `${namespace}/${fork.forkOf.name}`;
      if (namespace !== namespaceOf(sandbox) && !policy.forkNamespaces.includes(namespace)) {
        const allowed = policy.forkNamespaces.length ? policy.forkNamespaces.map((n) => `"${n}"`).join(', ') : 'none';
        problems.push({
          object: ref,
          path: `${forkPath}.forkOf.namespace`,
          message: `is "${namespace}"; a Sandbox forks Deployments of its own namespace "${namespaceOf(sandbox)}" and of those in policy.forkNamespaces (${allowed})`,
        });
        return;
      }
      const first = seen.get(workload);
      if (first !== undefined) {
        problems.push({ object: ref, path: `${forkPath}.forkOf`, message: `Deployment ${workload} is already forked by spec.forks[${first}]` });
        return;
      }
      seen.set(workload, index);
      const baseline = baselineByName.get(workload);
      if (baseline === undefined) {
        const message = baselineNotFound({
          name: fork.forkOf.name,
          namespace,
          forkPath,
          workloads: inventory.workloads ?? [],
          deployments: inventory.deployments,
          forkNamespaces: policy.forkNamespaces,
          sandboxNamespace: namespaceOf(sandbox),
        });
        problems.push({ object: ref, path: `${forkPath}.forkOf.name`, message, code: 'BaselineNotFound' });
        return;
      }
      const { result, problems: forkProblems, notes: forkNotes } = forkDeployment({
        sandbox: sandboxName,
        sandboxNamespace: namespaceOf(sandbox),
        routingKey,
        fork,
        forkPath,
        baseline,
        ...baselineSelectorsIn(namespace),
        policy,
      });
      problems.push(...forkProblems.map((p) => ({ ...p, object: ref })));
      notes.push(...forkNotes.map((p) => ({ ...p, object: ref })));
      if (result === undefined) return;
      const dataplane = dataplaneNote(result.deployment);
      if (dataplane !== undefined) notes.push({ object: ref, path: `${forkPath}.forkOf.name`, message: dataplane });

      claimName('Deployment', namespace, result.deployment.metadata.name, ref, `${forkPath}.forkOf.name`);
      objects.push(result.deployment);
      forkedSources.push({ sandbox: sandboxName, namespace, baselineLabels: podTemplateLabels(baseline), forkLabels: result.podLabels });
      const patched = fork.customizations?.patch !== undefined;
      const forkRecord = {
        ref,
        path: patched ? `${forkPath}.customizations.patch.value` : `${forkPath}.forkOf.name`,
        prefix: patched ? 'after the patch ' : '',
        deployment: result.deployment,
        services: new Set<string>(),
      };
      forkRecords.push(forkRecord);
      forkedWorkloads.push({
        namespace,
        baseline: baseline.metadata.name,
        fork: result.deployment.metadata.name,
        baselineLabels: podTemplateLabels(baseline),
        podLabels: result.podLabels,
        selector: deploymentSelector(result.deployment).matchLabels ?? {},
        services: result.baselineServices.map((s) => ({ baseline: s, forkLabels: forkServiceLabels(s, sandboxName) })),
        path: `${forkPath}.forkOf.name`,
      });
      if (isAmbient(namespaceObjects.get(namespace))) {
        // Ambient proxies (ztunnel, waypoints) ignore EnvoyFilters.
        notes.push({
          object: ref,
          path: `${forkPath}.forkOf.name`,
          message: `namespace "${namespace}" is ambient (${DATAPLANE_MODE_LABEL}: ambient), where EnvoyFilters are ignored: meshfork writes no affinity EnvoyFilter for the fork, so its calls stay in the sandbox only if the app propagates the routing key (baggage) from each request to the calls it causes, as OpenTelemetry or meshfork's SDK does`,
        });
      } else {
        recordOwner(`EnvoyFilter ${namespace}/${forkName(baseline.metadata.name, sandboxName)}-affinity`, ref, `${forkPath}.forkOf.name`);
        objects.push(
          forkAffinityEnvoyFilter({
            name: `${forkName(baseline.metadata.name, sandboxName)}-affinity`,
            namespace,
            sandbox: sandboxName,
            podLabels: result.podLabels,
            keyName: config.routing.keyName,
            routingKey,
          }),
        );
      }
      if (result.baselineServices.length === 0) {
        notes.push({ object: ref, path: `${forkPath}.forkOf.name`, message: `no Service selects the pods of Deployment ${workload}; the fork runs but no request is routed to it` });
        const consumer = queueConsumerNote(baseline);
        if (consumer !== undefined) notes.push({ object: ref, path: `${forkPath}.forkOf.name`, message: consumer });
      }
      const serviceNames: string[] = [];
      for (const service of result.baselineServices) {
        const forkSvcName = forkServiceName(service.metadata.name, sandboxName);
        if (forkSvcName.length > MAX_SERVICE_NAME) {
          problems.push({ object: ref, path: `${forkPath}.forkOf.name`, message: `fork Service name "${forkSvcName}" is longer than ${MAX_SERVICE_NAME} characters; shorten the sandbox name` });
          continue;
        }
        serviceNames.push(forkSvcName);
        // Checked for every fork behind the Service, also when an earlier fork made its fork Service.
        for (const message of lostTargetPorts(service, { baseline, fork: result.deployment, sandbox: sandboxName, prefix: forkRecord.prefix })) {
          problems.push({ object: ref, path: forkRecord.path, message });
        }
        forkRecord.services.add(`Service ${namespace}/${forkSvcName}`);
        // Several forks behind one Service (reviews-v1 and reviews-v3) share one fork Service.
        const serviceId = `${namespace}/${forkSvcName}`;
        const behind = forkServiceRoutes.get(serviceId);
        const forked: ForkedPods = { baselineLabels: podTemplateLabels(baseline), labelRewrites: result.labelRewrites };
        const family = versionFamily(namespace, podTemplateLabels(baseline), baseline.metadata.name);
        if (behind !== undefined) {
          behind.forks.push(forked);
          if (!behind.families.includes(family)) behind.families.push(family);
        }
        if (sandboxServices.has(serviceId)) continue;
        sandboxServices.add(serviceId);
        const protocolNote = serviceProtocolNote(service, ref, forkSvcName);
        if (protocolNote !== undefined) notes.push(protocolNote);
        notes.push(...entryPointNotes(service, workload, ref));
        claimName('Service', namespace, forkSvcName, ref, `${forkPath}.forkOf.name`);
        const host = serviceFqdn(service.metadata.name, namespace);
        const forkHost = serviceFqdn(forkSvcName, namespace);
        const copy = forkService(service, sandboxName, result.labelRewrites);
        problems.push(...copy.problems.map((message) => ({ object: ref, path: `${forkPath}.forkOf.name`, message })));
        notes.push(...copy.notes.map((message) => ({ object: ref, path: `${forkPath}.forkOf.name`, message })));
        if (copy.service !== undefined) objects.push(copy.service);
        // The DestinationRule once every fork of the sandbox behind the Service is known.
        const pending = {
          forks: [forked],
          families: [family],
          forkedSubsets: [] as string[],
          create: () => {
            const { rule, forkedSubsets } = forkDestinationRule({
              baselineRule: baselineDestinationRule(rulesByHost, host, namespace),
              name: forkSvcName,
              namespace,
              forkHost,
              sandbox: sandboxName,
              forks: pending.forks,
            });
            if (rule !== undefined) objects.push(rule);
            pending.forkedSubsets.push(...forkedSubsets);
          },
        };
        forkServiceRoutes.set(serviceId, pending);
        recordOwner(`DestinationRule ${namespace}/${forkSvcName}`, ref, `${forkPath}.forkOf.name`);
        const owners = hostOwners.get(host);
        if (owners === undefined) hostOwners.set(host, [{ ref, path: `${forkPath}.forkOf.name` }]);
        else owners.push({ ref, path: `${forkPath}.forkOf.name` });
        const entry = hostRoutes.get(host) ?? { serviceName: service.metadata.name, namespace, ports: servicePortNumbers(service), routes: [], splitOwners: [] };
        const split = sandbox.spec.split?.weight;
        entry.routes.push({ sandbox: sandboxName, forkHost, matchBlocks, forkedSubsets: pending.forkedSubsets, families: pending.families, ...(split ? { splitWeight: split } : {}) });
        if (split) entry.splitOwners.push({ ref, weight: split });
        hostRoutes.set(host, entry);
      }
      forkPlans.push({ forkOf: workload, deployment: result.deployment.metadata.name, services: serviceNames });
    });
    for (const pending of forkServiceRoutes.values()) pending.create();
    const policies = policyCopies({ sandbox: sandboxName, forks: forkedWorkloads, policies: inventory.policies ?? [], others: inventory.labelSelecting ?? [] });
    for (const { object, path } of policies.copies) {
      claimName(object.kind, namespaceOf(object), object.metadata.name, ref, path);
      objects.push(object);
    }
    problems.push(...policies.problems.map((p) => ({ object: ref, ...p })));
    notes.push(...policies.notes.map((n) => ({ object: ref, ...n })));
    sandboxPlans.push({ namespace: namespaceOf(sandbox), name: sandboxName, routingKey, routeGroups: groupNamesOf.get(ref) ?? [], forks: forkPlans });
  }

  for (const [host, entry] of hostRoutes) {
    const total = entry.splitOwners.reduce((a, s) => a + s.weight, 0);
    if (total > 100) {
      for (const owner of entry.splitOwners) {
        problems.push({ object: owner.ref, path: 'spec.split.weight', message: `sandboxes splitting ${host} take ${total}% of its untagged traffic together, more than 100%` });
      }
    }
  }

  // Hosts routed with Gateway API get derived routes and no VirtualService.
  const gatewayPlan = planGatewayRoutes({
    services: inventory.services,
    namespaces: inventory.namespaces ?? [],
    userRoutes: inventory.gatewayRoutes ?? [],
    virtualServices: inventory.virtualServices,
    hostRoutes,
    ownerOf: (host, sandbox) => {
      const index = hostRoutes.get(host)!.routes.findIndex((r) => r.sandbox === sandbox);
      return hostOwners.get(host)![index]!;
    },
    modes: config.routingModes,
  });
  problems.push(...gatewayPlan.problems);
  notes.push(...gatewayPlan.notes);
  for (const { object, owner } of gatewayPlan.objects) {
    claimName(object.kind, namespaceOf(object), object.metadata.name, owner.ref, owner.path);
    objects.push(object);
  }
  const virtualServiceHosts = new Map([...hostRoutes].filter(([host]) => !gatewayPlan.gatewayHosts.has(host)));
  const placed = placeVirtualServices({ inventory, hostRoutes: virtualServiceHosts, sources: forkedSources, gateways: config.gateways ?? 'none', namespaces: namespacesOf(inventory, sandboxes) });
  objects.push(...placed.objects);
  notes.push(...placed.notes);
  for (const [host, entry] of virtualServiceHosts) {
    for (const owner of hostOwners.get(host) ?? []) recordOwner(`VirtualService ${entry.namespace}/${ownedVirtualServiceName(entry.serviceName)}`, owner.ref, owner.path);
  }
  if (config.ingressGuard?.enabled) {
    const headers = [...config.routing.headers];
    if (config.routing.legacyHeaders) headers.push(`uberctx-${config.routing.keyName}`, `ot-baggage-${config.routing.keyName}`);
    const guard = ingressGuardEnvoyFilter({
      keyNames: [config.routing.keyName],
      headers,
      tokenSha256: config.ingressGuard.tokenSha256 ?? [],
      ...(config.ingressGuard.gatewaySelector ? { gatewaySelector: config.ingressGuard.gatewaySelector } : {}),
      ...(config.ingressGuard.namespace ? { namespace: config.ingressGuard.namespace } : {}),
    });
    recordOwner(objectRef(guard), CONFIG_REF, 'ingressGuard');
    objects.push(guard);
  }
  problems.push(...namespaceQuotaProblems(sandboxes, policy.maxSandboxesPerNamespace, objectRef).values());
  problems.push(...generatedIsolationProblems(forkRecords, objects, ownersOf));
  problems.push(...replacedObjectProblems(input.inventory, objects, ownersOf));
  const failed = problems.length > 0;
  return {
    objects: failed ? [] : objects.sort(compareObjects),
    problems,
    notes,
    sandboxes: sandboxPlans,
    routeGroupKeys,
  };
}

/**
 * A fork's pods may be selected only by its own Deployment and the fork Services made for it:
 * not by the Services and Deployments generated for other forks (of this or another Sandbox).
 * Generated Services and Deployments are indexed by namespace and selector labels, so each fork
 * evaluates only the selectors that may select its pods (LabelIndex).
 */
function generatedIsolationProblems(
  forks: ReadonlyArray<{ ref: string; path: string; prefix: string; deployment: KubeObject; services: ReadonlySet<string> }>,
  objects: readonly KubeObject[],
  ownersOf: ReadonlyMap<string, ReadonlyArray<{ ref: string }>>,
): Problem[] {
  const problems: Problem[] = [];
  const describe = (o: KubeObject) => `${objectRef(o)} (generated for ${[...new Set((ownersOf.get(objectRef(o)) ?? []).map((w) => w.ref))].join(', ')})`;
  const byNamespace = groupBy(
    objects.filter((o) => o.kind === 'Service' || o.kind === 'Deployment'),
    namespaceOf,
  );
  const indexes = new Map<string, { services: LabelIndex<KubeObject>; deployments: LabelIndex<KubeObject> }>();
  for (const [namespace, inNamespace] of byNamespace) {
    indexes.set(namespace, {
      services: new LabelIndex(inNamespace.filter((o) => o.kind === 'Service'), (o) => serviceSelectorRequirement(serviceSelector(o))),
      deployments: new LabelIndex(inNamespace.filter((o) => o.kind === 'Deployment'), (o) => labelSelectorRequirement(deploymentSelector(o))),
    });
  }
  for (const fork of forks) {
    const index = indexes.get(namespaceOf(fork.deployment));
    if (index === undefined) continue;
    const labels = podTemplateLabels(fork.deployment);
    const self = objectRef(fork.deployment);
    const services = index.services.candidates(labels).filter((o) => !fork.services.has(objectRef(o)));
    const deployments = index.deployments.candidates(labels).filter((o) => objectRef(o) !== self);
    for (const message of podsSelectedBy(fork.deployment, services, deployments, fork.prefix, describe)) {
      problems.push({ object: fork.ref, path: fork.path, message });
    }
  }
  return problems;
}

/**
 * Generated objects replace only what they are meant to: the user VirtualServices meshfork
 * merges, and meshfork's own earlier output for the same Sandbox (same managed-by and sandbox
 * labels; for the ingress guard, managed-by and no sandbox label). Any other inventory object
 * with the same kind, namespace and name is refused, EnvoyFilters and policies included (a fork's
 * `<deployment>-<sandbox>-affinity` and the ingress guard). Two generated affinity filters never
 * share a name without their fork Deployments sharing one, which claimName reports.
 */
function replacedObjectProblems(inventory: Inventory, objects: readonly KubeObject[], ownersOf: ReadonlyMap<string, ReadonlyArray<{ ref: string; path: string }>>): Problem[] {
  const existing = new Map<string, KubeObject>();
  for (const object of [...inventory.deployments, ...inventory.services, ...inventory.virtualServices, ...inventory.destinationRules, ...(inventory.envoyFilters ?? []), ...(inventory.policies ?? []), ...(inventory.gatewayRoutes ?? [])]) {
    existing.set(objectRef(object), object);
  }
  const problems: Problem[] = [];
  for (const object of objects) {
    const id = objectRef(object);
    const other = existing.get(id);
    if (other === undefined) continue;
    if (object.kind === 'VirtualService' && !isManaged(object)) continue; // a merged user VirtualService
    const sandboxOf = (o: KubeObject) => ownValue(o.metadata.labels, SANDBOX_LABEL);
    if (isManaged(other) && sandboxOf(other) === sandboxOf(object)) continue;
    for (const owner of ownersOf.get(id) ?? []) {
      const whose = owner.ref === CONFIG_REF ? "meshfork's output" : "meshfork's output for this Sandbox";
      problems.push({ object: owner.ref, path: owner.path, message: `would replace ${id}, which already exists and is not ${whose}` });
    }
  }
  return problems;
}

/** Every namespace the inventory and the Sandboxes name: where clients of a host may run. */
function namespacesOf(inventory: Inventory, sandboxes: readonly SandboxObject[]): Set<string> {
  const out = new Set<string>();
  for (const list of [inventory.deployments, inventory.services, inventory.virtualServices, inventory.destinationRules, sandboxes]) for (const o of list) out.add(namespaceOf(o));
  return out;
}

/**
 * Admission decisions (pure): what the controller's webhooks answer for one AdmissionReview
 * request, from the controller's caches (a ClusterView) and configuration. No I/O: the HTTPS
 * server (webhook-server.ts) parses the review and sends the response.
 *
 *  - VirtualService (mutating, CREATE/UPDATE): a write of a user VirtualService that routes a
 *    forked host gets the current sandbox routes spliced back in, by the same plan the host
 *    reconcile runs (routing.ts planHost + userVirtualService: strip every `meshfork-*` route,
 *    insert the current ones). So a `kubectl apply`/Argo CD sync of the Git version, which
 *    replaces `spec.http` as a whole, is stored with the sandbox routes, and the controller has
 *    nothing to repair (it would compute the very same object). The response is a JSONPatch that
 *    replaces `/spec` and the annotations/labels the merge sets. Left alone: meshfork's own
 *    VirtualServices, ones annotated `meshfork.dev/ignore: "true"`, and every write while the
 *    caches are not synced (the repair loop covers it).
 *  - Sandbox / RouteGroup (validating, CREATE/UPDATE): what the CRD schema cannot check is
 *    refused with the planner's message (a routing key another Sandbox or RouteGroup holds, two
 *    members of a RouteGroup forking one workload, the quotas); a missing baseline Deployment
 *    (code BaselineNotFound: it may be created later) is an admission warning.
 *    https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
 */
import type { Problem } from '../api/problem.js';
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import { effectiveRoutingKey, objectRef, plan, type PlanConfig } from '../planner/plan.js';
import { isIgnored, isManaged, type KubeObject } from '../planner/kube.js';
import { namespaceOf, serviceFqdn } from '../planner/inventory.js';
import { routeGroupMembers } from '../planner/route-group.js';
import { groupsOf, keyHolder, planSandbox, type SandboxVerdict } from './sandbox-plan.js';
import { isWritable, planHost, ReplanProblems, userVirtualService } from './routing.js';
import { canonicalJson, forkNamespaces, inventoryOfView, serverMeta, serviceHostsOf, type ClusterView } from './view.js';

/** The parts of an `admission.k8s.io/v1` AdmissionRequest the decisions read. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly namespace?: string;
  readonly name?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
}

/** An `admission.k8s.io/v1` AdmissionResponse. */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
  patchType?: 'JSONPatch';
  /** Base64 of the JSONPatch (RFC 6902) document. */
  patch?: string;
  warnings?: string[];
}

export interface JsonPatchOperation {
  op: 'add' | 'replace';
  path: string;
  value: unknown;
}

/** What the webhooks read: the caches (undefined until synced) and the configuration in effect. */
export interface AdmissionContext {
  readonly view: ClusterView | undefined;
  readonly config: Partial<PlanConfig> | undefined;
}

const allow = (uid: string, warnings: string[] = []): AdmissionResponse => ({ uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) });

/** One problem as kubectl should show it: `<field.path>: <message>`. */
function problemText(p: Problem): string {
  return `${p.path}: ${p.message}`;
}

function withObject<T extends KubeObject>(request: AdmissionRequest): T | undefined {
  const object = request.object as T | undefined;
  if (object === undefined || typeof object !== 'object' || object === null || typeof object.metadata !== 'object') return undefined;
  // The API server fills in the namespace of a namespaced object before admission; be explicit.
  return { ...object, metadata: { ...object.metadata, namespace: object.metadata.namespace ?? request.namespace } } as T;
}

/** The view with `object` in place of the cached object of the same kind, namespace and name (or added). */
function replacing<T extends KubeObject>(list: readonly T[], object: T): T[] {
  const ref = objectRef(object);
  return [...list.filter((o) => objectRef(o) !== ref), object];
}

/**
 * The JSONPatch turning `from` into `to`, for the fields the merge may change: `/spec`,
 * `/metadata/annotations` and `/metadata/labels` (each replaced whole, or added when absent).
 */
export function jsonPatchOf(from: KubeObject, to: KubeObject): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  // Key order is not content: the API server's JSON and the planner's may order keys differently.
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  if (!same(from.spec, to.spec)) ops.push({ op: from.spec === undefined ? 'add' : 'replace', path: '/spec', value: to.spec });
  for (const field of ['annotations', 'labels'] as const) {
    const a = from.metadata[field];
    const b = to.metadata[field];
    if (b !== undefined && !same(a, b)) ops.push({ op: a === undefined ? 'add' : 'replace', path: `/metadata/${field}`, value: b });
  }
  return ops;
}

/**
 * The stored form of a user VirtualService being written: the incoming object with the sandbox
 * routes of every Sandbox currently routed on the hosts it takes part in; undefined when it
 * needs no change (no forked host, ignored, meshfork's own, or the routes are already there).
 */
export function mutatedVirtualService(incoming: KubeObject, view: ClusterView, config: Partial<PlanConfig> | undefined): KubeObject | undefined {
  // A namespace of the GitOps path holds synth's routes in its VirtualServices (ADR 0016).
  if (isManaged(incoming) || isIgnored(incoming) || !isWritable(view, incoming)) return undefined;
  const hosts = serviceHostsOf(incoming);
  const hostNamespaces = new Set(hosts.map((h) => h.namespace));
  const forking = view.sandboxes.filter((s) => forkNamespaces(s).some((ns) => hostNamespaces.has(ns)));
  if (forking.length === 0) return undefined;
  // Eligibility reads the stored VirtualService (which Sandboxes are routed now); a new one is
  // added so its hosts are tied to each other as the host reconcile will tie them.
  const cached = view.virtualServices.some((vs) => objectRef(vs) === objectRef(incoming));
  const planned: ClusterView = cached ? view : { ...view, virtualServices: [...view.virtualServices, incoming] };
  const verdicts = new Map<string, SandboxVerdict>();
  for (const sandbox of forking) verdicts.set(objectRef(sandbox), planSandbox(sandbox, planned, config));
  const forked = new Set([...verdicts.values()].flatMap((v) => v.hosts.map((h) => serviceFqdn(h.service, h.namespace))));
  const host = hosts.find((h) => forked.has(serviceFqdn(h.service, h.namespace)));
  if (host === undefined) return undefined;
  const hostPlan = planHost(planned, host, verdicts, config);
  return userVirtualService(planned, hostPlan.input, incoming, config);
}

/** Mutating webhook for VirtualServices. */
export function admitVirtualService(request: AdmissionRequest, context: AdmissionContext): AdmissionResponse {
  const incoming = withObject<KubeObject>(request);
  if (context.view === undefined || incoming === undefined || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return allow(request.uid);
  let merged: KubeObject | undefined;
  try {
    merged = mutatedVirtualService(incoming, context.view, context.config);
  } catch (error) {
    // The planner refuses the object as written (a field of the wrong shape, ...): stored as it
    // is, if the API server's own validation lets it through; kubectl shows why no routes were added.
    if (!(error instanceof ReplanProblems)) throw error;
    // Only what concerns the object written: other objects' problems (Sandboxes of other
    // namespaces among them) are their authors' to read, on those objects.
    const own = [...new Set(error.problems.filter((p) => p.object === error.object).map(problemText))];
    const others = error.problems.length - error.problems.filter((p) => p.object === error.object).length;
    const text = [...own, ...(others > 0 ? [`and ${others} problem${others === 1 ? '' : 's'} of other objects`] : [])].join('; ');
    return allow(request.uid, [`meshfork: no sandbox routes added to ${error.object}: ${text}`]);
  }
  if (merged === undefined) return allow(request.uid);
  const ops = jsonPatchOf(incoming, merged);
  if (ops.length === 0) return allow(request.uid);
  return { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') };
}

/** Refusal (HTTP 422 Invalid, as the API server's own validation) or admission with warnings. */
function decide(uid: string, object: string, problems: readonly Problem[]): AdmissionResponse {
  const warnings = problems.filter((p) => p.code === 'BaselineNotFound').map((p) => `${object}: ${problemText(p)} (the Sandbox waits for it)`);
  const refusals = problems.filter((p) => p.code !== 'BaselineNotFound');
  if (refusals.length === 0) return allow(uid, warnings);
  return { uid, allowed: false, status: { code: 422, reason: 'Invalid', message: `${object}: ${[...new Set(refusals.map(problemText))].join('; ')}` }, ...(warnings.length > 0 ? { warnings } : {}) };
}

/** Problems of RouteGroups whose members (with `sandboxes` replacing the cached ones) the planner refuses together. */
function memberProblems(groups: readonly RouteGroupObject[], sandboxes: readonly SandboxObject[], view: ClusterView, config: Partial<PlanConfig> | undefined): Problem[] {
  const out: Problem[] = [];
  for (const group of groups) {
    const members = routeGroupMembers(
      group,
      sandboxes.filter((s) => namespaceOf(s) === namespaceOf(group) && serverMeta(s).deletionTimestamp === undefined),
    );
    const ref = objectRef(group);
    const result = plan({ inventory: inventoryOfView(view), sandboxes: members, routeGroups: [group], ...(config ? { config } : {}) });
    for (const p of result.problems.filter((p) => p.object === ref)) out.push({ path: 'metadata.labels', message: `makes it a member of ${ref}, refused there: ${p.path}: ${p.message}` });
  }
  return out;
}

/** An UPDATE that changes neither the spec nor the labels (which select RouteGroup membership). */
function unchangedForPlanner(request: AdmissionRequest): boolean {
  if (request.operation !== 'UPDATE') return false;
  const parts = (o: unknown) => {
    const object = (o ?? {}) as { spec?: unknown; metadata?: { labels?: unknown } };
    return canonicalJson([object.spec ?? null, object.metadata?.labels ?? {}]);
  };
  return parts(request.object) === parts(request.oldObject);
}

/** Validating webhook for Sandboxes. */
export function validateSandboxAdmission(request: AdmissionRequest, context: AdmissionContext): AdmissionResponse {
  const sandbox = withObject<SandboxObject>(request);
  if (context.view === undefined || sandbox === undefined || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return allow(request.uid);
  // Deleting (finalizer being removed), or metadata only (the controller's finalizer, an
  // annotation): nothing the planner reads changed, so nothing to refuse.
  if (serverMeta(sandbox).deletionTimestamp !== undefined || unchangedForPlanner(request)) return allow(request.uid);
  const view: ClusterView = { ...context.view, sandboxes: replacing(context.view.sandboxes, sandbox) };
  const verdict = planSandbox(sandbox, view, context.config);
  const groups = groupsOf(sandbox, view);
  return decide(request.uid, objectRef(sandbox), [...verdict.problems, ...memberProblems(groups, view.sandboxes, view, context.config)]);
}

/** Validating webhook for RouteGroups. */
export function validateRouteGroupAdmission(request: AdmissionRequest, context: AdmissionContext): AdmissionResponse {
  const group = withObject<RouteGroupObject>(request);
  if (context.view === undefined || group === undefined || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return allow(request.uid);
  if (serverMeta(group).deletionTimestamp !== undefined || unchangedForPlanner(request)) return allow(request.uid);
  const view: ClusterView = { ...context.view, routeGroups: replacing(context.view.routeGroups, group) };
  const ref = objectRef(group);
  const holder = keyHolder(group, [...view.sandboxes, ...view.routeGroups]);
  if (holder !== undefined) {
    return decide(request.uid, ref, [{ object: ref, path: 'spec.routingKey', message: `routing key "${effectiveRoutingKey(group)}" is already used by ${objectRef(holder)}` }]);
  }
  const members = routeGroupMembers(group, view.sandboxes.filter((s) => namespaceOf(s) === namespaceOf(group) && serverMeta(s).deletionTimestamp === undefined));
  const result = plan({ inventory: inventoryOfView(view), sandboxes: members, routeGroups: [group], ...(context.config ? { config: context.config } : {}) });
  return decide(request.uid, ref, result.problems.filter((p) => p.object === ref));
}


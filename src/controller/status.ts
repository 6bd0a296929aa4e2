/**
 * A Sandbox's status, computed from its plan and the cluster view (pure).
 *
 * Conditions (Kubernetes conventions, see conditions.ts):
 *  - WorkloadsReady: every fork Deployment is rolled out (its controller observed the current
 *    generation, every desired replica is updated and available, no old replica is left);
 *  - RoutingReady: the VirtualService of every host the Sandbox forks holds its routes (a host
 *    routed with Gateway API: every derived route attached to it exists);
 *  - Ready: both. An invalid spec is `Ready=False` reason `InvalidSpec`, message the planner's
 *    problems; the other two are then `Unknown` with the same reason. A Sandbox forking into a
 *    namespace of the GitOps path (ADR 0016) is the same with reason `NamespaceClaimedByGitOps`.
 * `expiresAt` comes from spec.ttl: creation time + duration (`offsetFrom: createdAt`), or the time
 * the controller first saw the current generation + duration (`updatedAt`; kept in status so a
 * restart does not move it).
 */
import type { Static } from '@sinclair/typebox';
import { escapeText } from '../api/problem.js';
import type { SandboxObject, SandboxStatus } from '../api/schema.js';
import { objectRef } from '../planner/plan.js';
import { namespaceOf } from '../planner/inventory.js';
import { setCondition, type ConditionT } from './conditions.js';
import { deploymentAvailability, eligibility, isGatewayHost, unroutedHosts } from './routing.js';
import type { SandboxVerdict } from './sandbox-plan.js';
import { canonicalJson, generatedFor, idOf, serverMeta, type ClusterView } from './view.js';

export type SandboxStatusT = Static<typeof SandboxStatus>;

const UNITS_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a spec.ttl.duration (`8h`, `30m`, `2d`, `1w`). */
export function ttlMs(duration: string): number {
  const m = /^([1-9][0-9]{0,5})(m|h|d|w)$/.exec(duration);
  if (m === null) throw new Error(`invalid ttl duration ${JSON.stringify(duration)}`);
  return Number(m[1]) * UNITS_MS[m[2]!]!;
}

/** When the Sandbox expires (RFC 3339) with lifetime `ttl` (its spec.ttl unless given), or undefined without one. */
export function expiresAt(sandbox: SandboxObject, now: Date, ttl: SandboxObject['spec']['ttl'] = sandbox.spec.ttl): string | undefined {
  if (ttl === undefined) return undefined;
  const ms = ttlMs(ttl.duration);
  if ((ttl.offsetFrom ?? 'createdAt') === 'createdAt') {
    const created = serverMeta(sandbox).creationTimestamp;
    const t = typeof created === 'string' ? Date.parse(created) : now.getTime();
    return new Date(t + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
  const seenGeneration = sandbox.status?.observedGeneration;
  const previous = sandbox.status?.expiresAt;
  if (previous !== undefined && seenGeneration !== undefined && seenGeneration === serverMeta(sandbox).generation) return previous;
  return new Date(now.getTime() + ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function rfc3339(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * `hostErrors`: why the VirtualService of a host (FQDN) could not be written, where it could not;
 * a host without this Sandbox's routes says so instead of waiting.
 */
export function computeStatus(verdict: SandboxVerdict, view: ClusterView, now: Date, hostErrors: ReadonlyMap<string, string> = new Map()): SandboxStatusT {
  const sandbox = verdict.sandbox;
  const generation = serverMeta(sandbox).generation;
  const at = rfc3339(now);
  const previous = sandbox.status?.conditions as ConditionT[] | undefined;
  const condition = (conditions: ConditionT[] | undefined, type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string) =>
    setCondition(conditions, { type, status, reason, message, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, at);
  const expiry = expiresAt(sandbox, now, verdict.ttl);
  const base: SandboxStatusT = {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    routingKey: verdict.routingKey,
    ...(expiry !== undefined ? { expiresAt: expiry } : {}),
  };

  if (verdict.problems.length > 0) {
    const self = objectRef(sandbox);
    const message = verdict.problems.map((p) => escapeText(`${p.object === undefined || p.object === self ? '' : `${p.object}: `}${p.path}: ${p.message}`)).join('; ');
    const reason = verdict.reason ?? 'InvalidSpec';
    const what = verdict.reason === undefined ? 'an invalid spec' : 'this Sandbox';
    let conditions = condition(previous, 'Ready', 'False', reason, message);
    conditions = condition(conditions, 'WorkloadsReady', 'Unknown', reason, `nothing is deployed for ${what}; see the Ready condition`);
    conditions = condition(conditions, 'RoutingReady', 'Unknown', reason, `nothing is routed for ${what}; see the Ready condition`);
    return { ...base, conditions };
  }

  const stored = new Map(generatedFor(view, idOf(sandbox)).map((o) => [objectRef(o), o]));
  const forks = (verdict.plan?.forks ?? []).map((f) => {
    const namespace = f.forkOf.split('/')[0] ?? namespaceOf(sandbox);
    const deployment = stored.get(`Deployment ${namespace}/${f.deployment}`);
    if (deployment === undefined) return { forkOf: f.forkOf, deployment: f.deployment, ready: false, message: `Deployment ${namespace}/${f.deployment} is not created yet` };
    const a = deploymentAvailability(deployment);
    if (a.available < a.desired) {
      return { forkOf: f.forkOf, deployment: f.deployment, ready: false, message: `Deployment ${namespace}/${f.deployment}: ${a.available} of ${a.desired} replicas available` };
    }
    if (!a.current) return { forkOf: f.forkOf, deployment: f.deployment, ready: false, message: `Deployment ${namespace}/${f.deployment}: rollout of the current spec not observed yet` };
    if (a.updated < a.desired || a.total > a.updated) {
      return { forkOf: f.forkOf, deployment: f.deployment, ready: false, message: `Deployment ${namespace}/${f.deployment}: rolling out, ${a.updated} of ${a.desired} replicas updated` };
    }
    return { forkOf: f.forkOf, deployment: f.deployment, ready: true };
  });
  const notReady = forks.filter((f) => !f.ready);
  let conditions =
    notReady.length === 0
      ? condition(previous, 'WorkloadsReady', 'True', 'ForksAvailable', `${forks.length} fork${forks.length === 1 ? '' : 's'} available`)
      : condition(previous, 'WorkloadsReady', 'False', 'ForksUnavailable', notReady.map((f) => f.message).join('; '));

  const unrouted = unroutedHosts(view, verdict);
  const routing =
    unrouted.length === 0
      ? { status: 'True' as const, reason: 'Routed', message: verdict.hosts.length === 0 ? 'no Service selects the forked pods; nothing to route' : `routes for ${verdict.hosts.length} host${verdict.hosts.length === 1 ? '' : 's'} installed` }
      : {
          status: 'False' as const,
          reason: 'RoutesPending',
          message: `no routes yet for ${unrouted.map((h) => `${h} (${hostErrors.get(h) ?? routesWaitFor(verdict, view, h)})`).join(', ')}`,
        };
  conditions = condition(conditions, 'RoutingReady', routing.status, routing.reason, routing.message);
  const ready =
    notReady.length === 0 && routing.status === 'True'
      ? { status: 'True' as const, reason: 'Ready', message: 'forks available and routed' }
      : { status: 'False' as const, reason: notReady.length > 0 ? 'ForksUnavailable' : 'RoutesPending', message: notReady.length > 0 ? notReady.map((f) => f.message).join('; ') : routing.message };
  conditions = condition(conditions, 'Ready', ready.status, ready.reason, ready.message);
  return { ...base, conditions, forks, forkNames: forks.map((f) => f.forkOf).join(',') };
}

function routesWaitFor(verdict: SandboxVerdict, view: ClusterView, host: string): string {
  const e = eligibility(verdict, view, host);
  if (!e.eligible) return e.reason;
  return isGatewayHost(verdict, host) ? 'its forks are up; its derived routes are being applied' : 'its forks are up; the VirtualService is being updated';
}

/** Whether two statuses say the same thing (the status write is skipped when they do). */
export function sameStatus(a: SandboxStatusT | undefined, b: SandboxStatusT | undefined): boolean {
  return canonicalJson(a ?? {}) === canonicalJson(b ?? {});
}

/** A condition that changed status (or reason) between two statuses (named in the status write's Event). */
export interface Transition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
}

/**
 * The condition transitions from `previous` to `next`, Ready first: a condition whose status or
 * reason changed (a new message alone is no transition).
 */
export function transitions(previous: SandboxStatusT | undefined, next: SandboxStatusT): Transition[] {
  const before = new Map((previous?.conditions ?? []).map((c) => [c.type, c]));
  const order = (type: string) => (type === 'Ready' ? 0 : 1);
  return (next.conditions ?? [])
    .filter((c) => {
      const old = before.get(c.type);
      return old === undefined || old.status !== c.status || old.reason !== c.reason;
    })
    .sort((a, b) => order(a.type) - order(b.type) || a.type.localeCompare(b.type))
    .map((c) => ({ type: c.type, status: c.status, reason: c.reason ?? c.type, message: c.message ?? '' }));
}


/**
 * Kubernetes' limit of an Event's message, in bytes: `NoteLengthLimit` of
 * k8s.io/kubernetes pkg/apis/core/validation/events.go (Go's `len` counts UTF-8 bytes).
 */
export const EVENT_MESSAGE_LIMIT = 1024;

/** What a Sandbox status write's Event says (the reconciler adds the involved object and times). */
export interface StatusEvent {
  readonly type: 'Normal' | 'Warning';
  readonly reason: string;
  readonly message: string;
}

/** What stands for the rest of a message cut to fit the Event (or for all of it). */
const CUT = '…';

const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

/** The longest start of `text` of at most `bytes` UTF-8 bytes (never half a character). */
function cutToBytes(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const char of text) {
    used += utf8Bytes(char);
    if (used > bytes) break;
    out += char;
  }
  return out;
}

/** An Event message as the API server accepts it: at most EVENT_MESSAGE_LIMIT UTF-8 bytes, cut between characters. */
export function eventMessage(text: string): string {
  return cutToBytes(text, EVENT_MESSAGE_LIMIT);
}

/**
 * The one Event of a status write with `changes` (transitions(), Ready first), or undefined
 * without any: type `Normal` when every changed condition is `True`, else `Warning`; reason
 * Ready's when Ready changed, else the first change's; message every change as
 * `<Condition>=<status>: <message>`, joined with `; `, at most `limit` bytes.
 *
 * Too long a message keeps every `<Condition>=<status>: ` head whole and gives up messages, never
 * a condition's name: in order, a change keeps its whole message while that still fits with `…`
 * for each later one; a change that does not fit shows `…`, and the first of those then gets as
 * much of its message as the room left holds, followed by `…`. (A limit too small for the heads
 * alone cuts them.)
 */
export function statusEvent(changes: readonly Transition[], limit: number = EVENT_MESSAGE_LIMIT): StatusEvent | undefined {
  const first = changes[0];
  if (first === undefined) return undefined;
  const type = changes.every((t) => t.status === 'True') ? 'Normal' : 'Warning';
  const reason = (changes.find((t) => t.type === 'Ready') ?? first).reason;
  const heads = changes.map((t) => `${t.type}=${t.status}: `);
  const parts = heads.map((head) => `${head}${CUT}`);
  const size = () => utf8Bytes(parts.join('; '));
  if (size() > limit) return { type, reason, message: cutToBytes(parts.join('; '), limit) };
  const cut = new Set<number>();
  changes.forEach((t, i) => {
    parts[i] = `${heads[i]}${t.message}`;
    if (size() <= limit) return;
    parts[i] = `${heads[i]}${CUT}`;
    cut.add(i);
  });
  const [partial] = cut;
  if (partial !== undefined) parts[partial] = `${heads[partial]}${cutToBytes(changes[partial]!.message, limit - size())}${CUT}`;
  return { type, reason, message: parts.join('; ') };
}

/**
 * A RouteGroup's status (pure): its routing key, the Sandboxes it matches, and `Ready` — False
 * when another Sandbox or RouteGroup holds its key (then no member's routes carry it) or when the
 * planner refuses the group (two members forking one workload: then the hosts concerned route
 * the members without the group key).
 */
import type { Static } from '@sinclair/typebox';
import { escapeText } from '../api/problem.js';
import type { RouteGroupObject, RouteGroupStatus } from '../api/schema.js';
import { effectiveRoutingKey, objectRef, plan, type PlanConfig } from '../planner/plan.js';
import { routeGroupMembers } from '../planner/route-group.js';
import { namespaceOf } from '../planner/inventory.js';
import { setCondition, type ConditionT } from './conditions.js';
import { keyHolderIn } from './sandbox-plan.js';
import { inventoryOfView, serverMeta, type ClusterView } from './view.js';

export type RouteGroupStatusT = Static<typeof RouteGroupStatus>;

export function computeRouteGroupStatus(group: RouteGroupObject, view: ClusterView, config: Partial<PlanConfig> | undefined, now: Date): RouteGroupStatusT {
  const generation = serverMeta(group).generation;
  const routingKey = effectiveRoutingKey(group);
  const members = routeGroupMembers(
    group,
    view.sandboxes.filter((s) => namespaceOf(s) === namespaceOf(group) && serverMeta(s).deletionTimestamp === undefined),
  );
  const ref = objectRef(group);
  const holder = keyHolderIn(group, view);
  const problems =
    holder !== undefined
      ? [`spec.routingKey: routing key "${routingKey}" is already used by ${objectRef(holder)}`]
      : plan({ inventory: inventoryOfView(view), sandboxes: members, routeGroups: [group], ...(config ? { config } : {}) })
          .problems.filter((p) => p.object === ref)
          .map((p) => `${p.path}: ${p.message}`);
  const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const ready =
    problems.length === 0
      ? { status: 'True' as const, reason: 'Ready', message: `${members.length} member${members.length === 1 ? '' : 's'}` }
      : { status: 'False' as const, reason: holder !== undefined ? 'KeyConflict' : 'MembersConflict', message: escapeText(problems.join('; ')) };
  const conditions = setCondition(group.status?.conditions as ConditionT[] | undefined, { type: 'Ready', ...ready, ...(generation !== undefined ? { observedGeneration: generation } : {}) }, at);
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    routingKey,
    sandboxes: members.map((m) => m.metadata.name).sort(),
    conditions,
  };
}

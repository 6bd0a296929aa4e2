// Status computation, TTL and the per-Sandbox checks a lone plan cannot make (key clashes,
// objects generated for another Sandbox).
import { describe, expect, it } from 'vitest';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { planHost } from '../../src/controller/routing.js';
import { computeStatus, eventMessage, expiresAt, sameStatus, statusEvent, transitions, ttlMs, type Transition } from '../../src/controller/status.js';
import type { SandboxObject } from '../../src/api/schema.js';
import { computeRouteGroupStatus } from '../../src/controller/route-group-status.js';
import { effectiveRoutingKey } from '../../src/planner/plan.js';
import { NS, baseView, routeGroup, sandbox, withApplied, withVirtualServices } from './fixtures.js';

const now = new Date('2026-11-30T10:10:00Z');
const at = '2026-11-30T10:10:00Z';

describe('computeStatus', () => {
  it('an invalid Sandbox: Ready=False InvalidSpec with the planner message, the others Unknown', () => {
    const carol = sandbox('carol', ['nope', 'cart-v1']);
    const view = baseView({ sandboxes: [carol] });
    expect(computeStatus(planSandbox(carol, view, undefined), view, now)).toEqual({
      observedGeneration: 1,
      routingKey: planSandbox(carol, view, undefined).routingKey,
      conditions: [
        { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: 'spec.forks[0].forkOf.name: Deployment "nope" not found in namespace "shop"', observedGeneration: 1, lastTransitionTime: at },
        { type: 'RoutingReady', status: 'Unknown', reason: 'InvalidSpec', message: 'nothing is routed for an invalid spec; see the Ready condition', observedGeneration: 1, lastTransitionTime: at },
        { type: 'WorkloadsReady', status: 'Unknown', reason: 'InvalidSpec', message: 'nothing is deployed for an invalid spec; see the Ready condition', observedGeneration: 1, lastTransitionTime: at },
      ],
    });
  });

  it('forks unavailable, then available but not routed, then Ready', () => {
    const alice = sandbox('alice', ['cart-v1', 'pay-v1']);
    const starting = withApplied(baseView({ sandboxes: [alice] }), alice, 0);
    const s1 = computeStatus(planSandbox(alice, starting, undefined), starting, now);
    expect(s1.forks).toEqual([
      { forkOf: 'shop/cart-v1', deployment: 'cart-v1-alice', ready: false, message: 'Deployment shop/cart-v1-alice: 0 of 1 replicas available' },
      { forkOf: 'shop/pay-v1', deployment: 'pay-v1-alice', ready: false, message: 'Deployment shop/pay-v1-alice: 0 of 1 replicas available' },
    ]);
    expect(s1.forkNames).toBe('shop/cart-v1,shop/pay-v1');
    expect(s1.conditions?.find((c) => c.type === 'RoutingReady')).toMatchObject({
      status: 'False',
      reason: 'RoutesPending',
      message:
        'no routes yet for cart.shop.svc.cluster.local (waiting for Deployment shop/cart-v1-alice to have an available replica), ' +
        'pay.shop.svc.cluster.local (waiting for Deployment shop/pay-v1-alice to have an available replica)',
    });
    expect(s1.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'ForksUnavailable' });

    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const s2 = computeStatus(planSandbox(alice, up, undefined), up, now);
    expect(s2.conditions?.find((c) => c.type === 'WorkloadsReady')).toMatchObject({ status: 'True', reason: 'ForksAvailable', message: '2 forks available' });
    expect(s2.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'RoutesPending' });

    const verdicts = new Map([['alice', planSandbox(alice, up, undefined)]]);
    const routed = withVirtualServices(up, [
      ...planHost(up, { namespace: NS, service: 'cart' }, verdicts, undefined).apply,
      ...planHost(up, { namespace: NS, service: 'pay' }, verdicts, undefined).update,
    ]);
    const later = new Date('2026-11-30T10:20:00Z');
    const s3 = computeStatus(planSandbox({ ...alice, status: s2 }, routed, undefined), routed, later);
    expect(s3.conditions).toEqual([
      { type: 'Ready', status: 'True', reason: 'Ready', message: 'forks available and routed', observedGeneration: 1, lastTransitionTime: '2026-11-30T10:20:00Z' },
      { type: 'RoutingReady', status: 'True', reason: 'Routed', message: 'routes for 2 hosts installed', observedGeneration: 1, lastTransitionTime: '2026-11-30T10:20:00Z' },
      // Unchanged status keeps its transition time.
      { type: 'WorkloadsReady', status: 'True', reason: 'ForksAvailable', message: '2 forks available', observedGeneration: 1, lastTransitionTime: at },
    ]);
    expect(sameStatus(s3, computeStatus(planSandbox({ ...alice, status: s3 }, routed, undefined), routed, new Date('2026-11-30T11:00:00Z')))).toBe(true);
    expect(sameStatus(s3, s2)).toBe(false);
  });

  it('a fork still rolling out (old replicas left, or not all updated) is not ready', () => {
    const alice = sandbox('alice', ['cart-v1']);
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const rolling = (status: object) => ({ ...up, deployments: up.deployments.map((d) => (d.metadata.name === 'cart-v1-alice' ? { ...d, status } : d)) });
    for (const status of [
      { observedGeneration: 1, replicas: 2, updatedReplicas: 1, availableReplicas: 1 },
      { observedGeneration: 1, replicas: 1, updatedReplicas: 0, availableReplicas: 1 },
    ]) {
      const view = rolling(status);
      expect(computeStatus(planSandbox(alice, view, undefined), view, now).forks).toEqual([
        { forkOf: 'shop/cart-v1', deployment: 'cart-v1-alice', ready: false, message: `Deployment shop/cart-v1-alice: rolling out, ${status.updatedReplicas} of 1 replicas updated` },
      ]);
    }
  });

  it('a fork whose rollout of the current generation is not observed is not ready', () => {
    const alice = sandbox('alice', ['cart-v1']);
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const stale = { ...up, deployments: up.deployments.map((d) => (d.metadata.name === 'cart-v1-alice' ? { ...d, metadata: { ...d.metadata, generation: 2 } } : d)) };
    expect(computeStatus(planSandbox(alice, stale, undefined), stale, now).forks).toEqual([
      { forkOf: 'shop/cart-v1', deployment: 'cart-v1-alice', ready: false, message: 'Deployment shop/cart-v1-alice: rollout of the current spec not observed yet' },
    ]);
  });
});

describe('TTL', () => {
  const withTtl = (ttl: SandboxObject['spec']['ttl'], extra: Partial<SandboxObject> = {}): SandboxObject => ({ ...sandbox('t', ['cart-v1']), ...extra, spec: { ...sandbox('t', ['cart-v1']).spec, ttl } });

  it('durations', () => {
    expect([ttlMs('30m'), ttlMs('8h'), ttlMs('2d'), ttlMs('1w')]).toEqual([1_800_000, 28_800_000, 172_800_000, 604_800_000]);
    expect(() => ttlMs('0h')).toThrow('invalid ttl duration "0h"');
  });

  it('createdAt counts from creation; updatedAt from the first sight of the current generation, kept across reconciles', () => {
    expect(expiresAt(withTtl({ duration: '8h' }), now)).toBe('2026-11-30T18:00:00Z');
    expect(expiresAt(withTtl(undefined), now)).toBeUndefined();
    const updated = withTtl({ duration: '1h', offsetFrom: 'updatedAt' });
    expect(expiresAt(updated, now)).toBe('2026-11-30T11:10:00Z');
    const seen = { ...updated, status: { observedGeneration: 1, expiresAt: '2026-11-30T11:10:00Z' } };
    expect(expiresAt(seen, new Date('2026-11-30T10:50:00Z'))).toBe('2026-11-30T11:10:00Z');
    const edited = { ...seen, metadata: { ...seen.metadata, generation: 2 } as SandboxObject['metadata'] };
    expect(expiresAt(edited, new Date('2026-11-30T10:50:00Z'))).toBe('2026-11-30T11:50:00Z');
  });
});

describe('planSandbox: checks across Sandboxes', () => {
  it('an explicit routing key stays with the older Sandbox; a derived key always with its owner', () => {
    const older = sandbox('older', ['cart-v1'], { routingKey: 'samekey1', created: '2026-11-30T09:00:00Z' });
    const newer = sandbox('anewer', ['pay-v1'], { routingKey: 'samekey1', created: '2026-11-30T09:30:00Z' });
    const view = baseView({ sandboxes: [older, newer] });
    expect(planSandbox(older, view, undefined).problems).toEqual([]);
    expect(planSandbox(newer, view, undefined).problems).toEqual([{ object: `Sandbox ${NS}/anewer`, path: 'spec.routingKey', message: `routing key "samekey1" is already used by Sandbox ${NS}/older` }]);

    const victim = sandbox('victim', ['cart-v1'], { created: '2026-11-30T09:30:00Z' });
    const victimKey = planSandbox(victim, baseView({ sandboxes: [victim] }), undefined).routingKey;
    const thief = sandbox('thief', ['pay-v1'], { routingKey: victimKey, created: '2026-11-30T08:00:00Z' });
    const view2 = baseView({ sandboxes: [victim, thief] });
    expect(planSandbox(victim, view2, undefined).problems).toEqual([]);
    expect(planSandbox(thief, view2, undefined).problems).toEqual([{ object: `Sandbox ${NS}/thief`, path: 'spec.routingKey', message: `routing key "${victimKey}" is already used by Sandbox ${NS}/victim` }]);
  });

  it('a RouteGroup that lost its key is not used; a Sandbox matching a valid one gets it', () => {
    const alice = sandbox('alice', ['cart-v1'], { labels: { team: 'x' } });
    const group = routeGroup('team-x', 'team', 'x');
    const view = baseView({ sandboxes: [alice], routeGroups: [group] });
    expect(planSandbox(alice, view, undefined).routeGroups.map((g) => g.metadata.name)).toEqual(['team-x']);
    const clash = { ...group, spec: { ...group.spec, routingKey: planSandbox(alice, view, undefined).routingKey } };
    expect(planSandbox(alice, { ...view, routeGroups: [clash] }, undefined).routeGroups).toEqual([]);
  });

  it('an object that exists for another Sandbox is a conflict, never taken over', () => {
    const first = sandbox('x', ['cart-v1']);
    const applied = withApplied(baseView({ sandboxes: [first] }), first, 1);
    // Same name in the same namespace as Sandbox shop/x's objects, but labelled for Sandbox other/x.
    const foreign = {
      ...applied,
      deployments: applied.deployments.map((d) => (d.metadata.name === 'cart-v1-x' ? { ...d, metadata: { ...d.metadata, labels: { ...d.metadata.labels, 'meshfork.dev/sandbox-namespace': 'other' } } } : d)),
    };
    expect(planSandbox(first, foreign, undefined).problems).toEqual([
      { object: `Sandbox ${NS}/x`, path: 'metadata.name', message: `generated Deployment ${NS}/cart-v1-x already exists for Sandbox other/x; rename this Sandbox` },
    ]);
    expect(planSandbox(first, applied, undefined).problems).toEqual([]);
  });
});

describe('transitions', () => {
  it('one per condition whose status or reason changed, Ready first; a new message alone is none', () => {
    const alice = sandbox('alice', ['cart-v1']);
    const starting = withApplied(baseView({ sandboxes: [alice] }), alice, 0);
    const s1 = computeStatus(planSandbox(alice, starting, undefined), starting, now);
    expect(transitions(undefined, s1).map((t) => [t.type, t.status, t.reason])).toEqual([
      ['Ready', 'False', 'ForksUnavailable'],
      ['RoutingReady', 'False', 'RoutesPending'],
      ['WorkloadsReady', 'False', 'ForksUnavailable'],
    ]);
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const s2 = computeStatus(planSandbox({ ...alice, status: s1 }, up, undefined), up, now);
    expect(transitions(s1, s2)).toEqual([
      { type: 'Ready', status: 'False', reason: 'RoutesPending', message: 'no routes yet for cart.shop.svc.cluster.local (its forks are up; the VirtualService is being updated)' },
      { type: 'WorkloadsReady', status: 'True', reason: 'ForksAvailable', message: '1 fork available' },
    ]);
    const reworded = { ...s2, conditions: s2.conditions!.map((c) => ({ ...c, message: `${c.message}!` })) };
    expect(transitions(s2, reworded)).toEqual([]);
  });
});

describe('statusEvent', () => {
  const t = (type: string, status: Transition['status'], reason: string, message: string): Transition => ({ type, status, reason, message });
  const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

  it('one Event per status write naming every transition: Warning unless all are True, Ready\'s reason', () => {
    const alice = sandbox('alice', ['cart-v1']);
    const starting = withApplied(baseView({ sandboxes: [alice] }), alice, 0);
    const s1 = computeStatus(planSandbox(alice, starting, undefined), starting, now);
    expect(statusEvent(transitions(undefined, s1))).toEqual({
      type: 'Warning',
      reason: 'ForksUnavailable',
      message:
        'Ready=False: Deployment shop/cart-v1-alice: 0 of 1 replicas available; ' +
        'RoutingReady=False: no routes yet for cart.shop.svc.cluster.local (waiting for Deployment shop/cart-v1-alice to have an available replica); ' +
        'WorkloadsReady=False: Deployment shop/cart-v1-alice: 0 of 1 replicas available',
    });
    const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
    const s2 = computeStatus(planSandbox({ ...alice, status: s1 }, up, undefined), up, now);
    expect(statusEvent(transitions(s1, s2))).toEqual({
      type: 'Warning',
      reason: 'RoutesPending',
      message: 'Ready=False: no routes yet for cart.shop.svc.cluster.local (its forks are up; the VirtualService is being updated); WorkloadsReady=True: 1 fork available',
    });
    const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'cart' }, new Map([['alice', planSandbox(alice, up, undefined)]]), undefined).apply);
    const s3 = computeStatus(planSandbox({ ...alice, status: s2 }, routed, undefined), routed, now);
    expect(statusEvent(transitions(s2, s3))).toEqual({ type: 'Normal', reason: 'Ready', message: 'Ready=True: forks available and routed; RoutingReady=True: routes for 1 host installed' });
    expect(statusEvent(transitions(s3, s3))).toBeUndefined();
    expect(statusEvent([])).toBeUndefined();
  });

  it('an invalid spec: Ready=False with the planner message, the others Unknown, in one Warning', () => {
    const carol = sandbox('carol', ['nope']);
    const view = baseView({ sandboxes: [carol] });
    expect(statusEvent(transitions(undefined, computeStatus(planSandbox(carol, view, undefined), view, now)))).toEqual({
      type: 'Warning',
      reason: 'InvalidSpec',
      message:
        'Ready=False: spec.forks[0].forkOf.name: Deployment "nope" not found in namespace "shop"; ' +
        'RoutingReady=Unknown: nothing is routed for an invalid spec; see the Ready condition; ' +
        'WorkloadsReady=Unknown: nothing is deployed for an invalid spec; see the Ready condition',
    });
  });

  it('without a Ready transition: the first transition\'s reason; Normal only when every one is True', () => {
    expect(statusEvent([t('RoutingReady', 'True', 'Routed', 'routes for 1 host installed'), t('WorkloadsReady', 'True', 'ForksAvailable', '1 fork available')])).toEqual({
      type: 'Normal',
      reason: 'Routed',
      message: 'RoutingReady=True: routes for 1 host installed; WorkloadsReady=True: 1 fork available',
    });
    expect(statusEvent([t('RoutingReady', 'True', 'Routed', 'r'), t('WorkloadsReady', 'Unknown', 'Pending', 'w')])).toEqual({
      type: 'Warning',
      reason: 'Routed',
      message: 'RoutingReady=True: r; WorkloadsReady=Unknown: w',
    });
  });

  it('too long for an Event (1024 bytes): whole messages give way first, every condition stays named, the room left goes to the first cut message', () => {
    // Ready's message does not fit; the two after it do, and Ready gets the rest: 1024 bytes
    // less its head (13), `…` (3 bytes) and the other two (29 and 53).
    const long = statusEvent([t('Ready', 'False', 'RoutesPending', 'x'.repeat(1500)), t('RoutingReady', 'False', 'RoutesPending', 'short r'), t('WorkloadsReady', 'True', 'ForksAvailable', 'w'.repeat(30))]);
    expect(long).toEqual({ type: 'Warning', reason: 'RoutesPending', message: `Ready=False: ${'x'.repeat(926)}…; RoutingReady=False: short r; WorkloadsReady=True: ${'w'.repeat(30)}` });
    expect(bytes(long!.message)).toBe(1024);
    // A long middle message: the ones around it stay whole.
    const middle = statusEvent([t('Ready', 'False', 'ForksUnavailable', 'a'), t('RoutingReady', 'False', 'RoutesPending', 'r'.repeat(2000)), t('WorkloadsReady', 'False', 'ForksUnavailable', 'w')], 80);
    expect(middle?.message).toBe(`Ready=False: a; RoutingReady=False: ${'r'.repeat(16)}…; WorkloadsReady=False: w`);
    expect(bytes(middle!.message)).toBe(80);
    // Two that do not fit: the first cut one gets the room, the second shows only `…`.
    expect(statusEvent([t('Ready', 'False', 'X', 'a'.repeat(100)), t('WorkloadsReady', 'False', 'X', 'b'.repeat(100))], 60)?.message).toBe(`Ready=False: ${'a'.repeat(17)}…; WorkloadsReady=False: …`);
    // Within the limit: unchanged.
    const fits = [t('Ready', 'False', 'X', 'a'.repeat(1011))];
    expect(statusEvent(fits)?.message).toBe(`Ready=False: ${'a'.repeat(1011)}`);
  });

  it('counts UTF-8 bytes and never cuts a character in half', () => {
    const emoji = [t('Ready', 'False', 'X', '😀😀😀')];
    expect(statusEvent(emoji, 20)?.message).toBe('Ready=False: 😀…');
    expect(statusEvent(emoji, 19)?.message).toBe('Ready=False: …');
    expect(statusEvent([t('Ready', 'False', 'X', 'ééé')], 19)?.message).toBe('Ready=False: ééé');
    expect(statusEvent([t('Ready', 'False', 'X', 'éééé')], 20)?.message).toBe('Ready=False: éé…');
    expect(statusEvent([t('Ready', 'False', 'X', 'éééé')], 19)?.message).toBe('Ready=False: é…');
    // Too small even for the heads: they are cut (no limit in use is that small).
    expect(statusEvent(emoji, 10)?.message).toBe('Ready=Fals');
  });
});

describe('computeRouteGroupStatus', () => {
  it('lists its members and its key; Ready=False when its key is taken or two members fork one workload', () => {
    const group = routeGroup('team-x', 'team', 'x');
    const alice = sandbox('alice', ['cart-v1'], { labels: { team: 'x' } });
    const bob = sandbox('bob', ['pay-v1'], { labels: { team: 'x' } });
    const other = sandbox('other', ['pay-v1'], { labels: { team: 'y' } });
    const view = baseView({ sandboxes: [alice, bob, other], routeGroups: [group] });
    const key = effectiveRoutingKey(group);
    expect(computeRouteGroupStatus(group, view, undefined, now)).toEqual({
      routingKey: key,
      sandboxes: ['alice', 'bob'],
      conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: '2 members', lastTransitionTime: at }],
    });
    const carol = sandbox('carol', ['cart-v1'], { labels: { team: 'x' } });
    expect(computeRouteGroupStatus(group, { ...view, sandboxes: [alice, bob, carol] }, undefined, now).conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'MembersConflict', message: 'spec.match: members "alice" and "carol" both fork Deployment shop/cart-v1', lastTransitionTime: at },
    ]);
    const thief = { ...group, spec: { ...group.spec, routingKey: planSandbox(other, view, undefined).routingKey } };
    expect(computeRouteGroupStatus(thief, { ...view, routeGroups: [thief] }, undefined, now).conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'KeyConflict', message: `spec.routingKey: routing key "${planSandbox(other, view, undefined).routingKey}" is already used by Sandbox shop/other`, lastTransitionTime: at },
    ]);
  });
});

describe('eventMessage', () => {
  it('keeps any Event message within 1,024 UTF-8 bytes, cut between characters (a 1,024-character slice of multi-byte text is refused by the API server)', () => {
    expect(eventMessage('plain')).toBe('plain');
    const accented = 'é'.repeat(1024);
    expect(Buffer.byteLength(eventMessage(accented), 'utf8')).toBe(1024);
    expect(eventMessage(accented)).toBe('é'.repeat(512));
    expect(eventMessage('a' + '😀'.repeat(300))).toBe('a' + '😀'.repeat(255));
  });
});

// Configuration keys applied per Sandbox by the controller: the namespace quota and the fork
// quota (planner checks; the CRD cannot see other Sandboxes) and the default TTL.
import { describe, expect, it } from 'vitest';
import { planSandbox } from '../../src/controller/sandbox-plan.js';
import { computeStatus } from '../../src/controller/status.js';
import { keysForObject } from '../../src/controller/keys.js';
import type { PlanConfig } from '../../src/planner/plan.js';
import { NS, baseView, sandbox } from './fixtures.js';

const now = new Date('2026-11-30T10:10:00Z');
const config = (policy: NonNullable<PlanConfig['policy']>): Partial<PlanConfig> => ({ policy });

describe('policy.maxSandboxesPerNamespace', () => {
  // Created in the order old, middle, young; "a-tie" and "b-tie" at the same time.
  const old = sandbox('old', ['cart-v1'], { created: '2026-11-30T08:00:00Z' });
  const young = sandbox('young', ['cart-v1'], { created: '2026-11-30T10:00:00Z' });
  const aTie = sandbox('a-tie', ['pay-v1'], { created: '2026-11-30T09:00:00Z' });
  const bTie = sandbox('b-tie', ['pay-v1'], { created: '2026-11-30T09:00:00Z' });
  const view = baseView({ sandboxes: [young, bTie, old, aTie] });

  it('serves the oldest first (creation time, then name); the others get Ready=False naming the quota and the key', () => {
    const problems = (s: typeof old) => planSandbox(s, view, config({ maxSandboxesPerNamespace: 2 })).problems;
    expect(problems(old)).toEqual([]);
    expect(problems(aTie)).toEqual([]);
    expect(problems(bTie)).toEqual([
      {
        object: `Sandbox ${NS}/b-tie`,
        path: 'metadata.namespace',
        message: `namespace "${NS}" holds 4 Sandboxes and at most 2 are served (policy.maxSandboxesPerNamespace); the oldest 2 are, this one is number 3: delete a Sandbox of the namespace or raise the quota`,
      },
    ]);
    expect(problems(young)[0]?.message).toContain('this one is number 4');
    const verdict = planSandbox(young, view, config({ maxSandboxesPerNamespace: 2 }));
    expect(verdict.objects).toEqual([]);
    expect(computeStatus(verdict, view, now).conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
      message: `metadata.namespace: namespace "${NS}" holds 4 Sandboxes and at most 2 are served (policy.maxSandboxesPerNamespace); the oldest 2 are, this one is number 4: delete a Sandbox of the namespace or raise the quota`,
    });
  });

  it('a Sandbox being deleted does not count; without the key nobody is over', () => {
    const deleting = { ...old, metadata: { ...old.metadata, deletionTimestamp: '2026-11-30T10:05:00Z' } } as typeof old;
    const shrunk = baseView({ sandboxes: [young, bTie, deleting, aTie] });
    expect(planSandbox(bTie, shrunk, config({ maxSandboxesPerNamespace: 2 })).problems).toEqual([]);
    expect(planSandbox(young, shrunk, config({ maxSandboxesPerNamespace: 2 })).problems[0]?.message).toContain('holds 3 Sandboxes');
    expect(planSandbox(young, view, undefined).problems).toEqual([]);
  });

  it('a Sandbox that goes away enqueues the others of its namespace (one may now be served)', () => {
    const rest = baseView({ sandboxes: [young, bTie, aTie] });
    expect(keysForObject('Sandbox', old, rest)).toEqual(expect.arrayContaining([`Sandbox/${NS}/a-tie`, `Sandbox/${NS}/b-tie`, `Sandbox/${NS}/old`, `Sandbox/${NS}/young`]));
    // A new one changes nobody's place (it is the youngest): only its own keys.
    expect(keysForObject('Sandbox', young, view).filter((k) => k.startsWith('Sandbox/'))).toEqual([`Sandbox/${NS}/young`]);
  });
});

describe('policy.maxForksPerSandbox', () => {
  it('a Sandbox with more forks is invalid with a message naming the key; one within is not', () => {
    const two = sandbox('two', ['cart-v1', 'pay-v1']);
    const view = baseView({ sandboxes: [two] });
    expect(planSandbox(two, view, config({ maxForksPerSandbox: 1 })).problems).toEqual([
      { object: `Sandbox ${NS}/two`, path: 'spec.forks', message: 'has 2 forks; a Sandbox may have at most 1 (policy.maxForksPerSandbox); remove 1' },
    ]);
    expect(planSandbox(two, view, config({ maxForksPerSandbox: 2 })).problems).toEqual([]);
  });
});

describe('policy.defaultTtl', () => {
  it('applies to a Sandbox without spec.ttl (status.expiresAt), never over its own', () => {
    const plain = sandbox('plain', ['cart-v1']);
    const own = { ...sandbox('own', ['cart-v1']), spec: { ...sandbox('own', ['cart-v1']).spec, ttl: { duration: '1h' } } };
    const view = baseView({ sandboxes: [plain, own] });
    const policy = config({ defaultTtl: { duration: '8h' } });
    expect(computeStatus(planSandbox(plain, view, policy), view, now).expiresAt).toBe('2026-11-30T18:00:00Z');
    expect(computeStatus(planSandbox(own, view, policy), view, now).expiresAt).toBe('2026-11-30T11:00:00Z');
    expect(computeStatus(planSandbox(plain, view, undefined), view, now).expiresAt).toBeUndefined();
  });
});

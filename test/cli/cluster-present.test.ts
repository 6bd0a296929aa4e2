import { describe, expect, it } from 'vitest';
import { age, expiry, progressLine, routeGroupTable, sandboxTable } from '../../src/cli/cluster/present.js';

const NOW = new Date('2026-11-30T12:00:00Z');
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000).toISOString();

describe('cluster CLI presentation', () => {
  it('prints ages and expiries as kubectl does (largest whole unit)', () => {
    expect([age(ago(5), NOW), age(ago(119), NOW), age(ago(120), NOW), age(ago(7199), NOW), age(ago(7200), NOW), age(ago(3 * 86400), NOW), age(undefined, NOW)]).toEqual(['5s', '119s', '2m', '119m', '2h', '3d', '<unknown>']);
    expect([expiry(undefined, NOW), expiry(ago(1), NOW), expiry(new Date(NOW.getTime() + 8 * 3600_000).toISOString(), NOW)]).toEqual(['-', 'expired', 'in 8h']);
  });

  it('tables Sandboxes and RouteGroups with padded columns; -A adds NAMESPACE; control characters escaped', () => {
    const sandboxes = [
      { metadata: { name: 'one', namespace: 'shop', creationTimestamp: ago(90) }, status: { routingKey: 'k1', forkNames: 'shop/web-v1', conditions: [{ type: 'Ready', status: 'True' }] } },
      { metadata: { name: 'two-long', namespace: 'shop', creationTimestamp: ago(4000), deletionTimestamp: ago(1) }, spec: { forks: [{ forkOf: { name: 'api\u001b[31m' } }] } },
    ];
    expect(sandboxTable(sandboxes, NOW, false)).toBe(
      ['NAME       READY      KEY         FORKS         AGE   EXPIRES', 'one        True       k1          shop/web-v1   90s   -', 'two-long   Deleting   <pending>   api\\x1b[31m   66m   -', ''].join('\n'),
    );
    expect(routeGroupTable([{ metadata: { name: 'team', namespace: 'shop', creationTimestamp: ago(10) }, status: { routingKey: 'g1', members: ['one', 'two'] } }], NOW, true)).toBe(
      ['NAMESPACE   NAME   READY     KEY   MEMBERS   AGE', 'shop        team   Unknown   g1    one,two   10s', ''].join('\n'),
    );
  });

  it('progress: Ready with its key; Ready=False with the planner message; else the first condition not True', () => {
    const s = (conditions: Array<{ type: string; status: string; reason?: string; message?: string }>) => ({ metadata: { name: 'x' }, status: { routingKey: 'k', conditions } });
    expect(progressLine(s([{ type: 'Ready', status: 'True' }]))).toBe('sandbox/x: Ready (key k)');
    expect(progressLine(s([{ type: 'WorkloadsReady', status: 'Unknown', reason: 'InvalidSpec' }, { type: 'Ready', status: 'False', reason: 'InvalidSpec', message: 'spec.forks[0]: bad' }]))).toBe('sandbox/x: Ready=False InvalidSpec: spec.forks[0]: bad');
    expect(progressLine(s([{ type: 'WorkloadsReady', status: 'False', reason: 'ForksUnavailable', message: 'web-v1-x: 0/1 available' }, { type: 'Ready', status: 'Unknown' }]))).toBe('sandbox/x: WorkloadsReady=False ForksUnavailable: web-v1-x: 0/1 available');
    expect(progressLine({ metadata: { name: 'x' } })).toBe('sandbox/x: waiting for the controller');
  });
});

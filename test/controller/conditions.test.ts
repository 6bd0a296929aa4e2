import { describe, expect, it } from 'vitest';
import { findCondition, sameConditions, setCondition } from '../../src/controller/conditions.js';

const t0 = '2026-11-30T10:00:00Z';
const t1 = '2026-11-30T10:05:00Z';

describe('status conditions', () => {
  it('adds a condition with the transition time and keeps the list ordered by type', () => {
    const list = setCondition(setCondition(undefined, { type: 'WorkloadsReady', status: 'False', reason: 'ForksProgressing' }, t0), { type: 'Ready', status: 'False', reason: 'WorkloadsNotReady' }, t0);
    expect(list).toEqual([
      { type: 'Ready', status: 'False', reason: 'WorkloadsNotReady', lastTransitionTime: t0 },
      { type: 'WorkloadsReady', status: 'False', reason: 'ForksProgressing', lastTransitionTime: t0 },
    ]);
  });

  it('keeps lastTransitionTime when only reason or message change, and moves it when status changes', () => {
    const first = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, t0);
    const reworded = setCondition(first, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, t1);
    expect(reworded).toEqual([{ type: 'Ready', status: 'False', reason: 'B', message: 'b', lastTransitionTime: t0 }]);
    const flipped = setCondition(reworded, { type: 'Ready', status: 'True', reason: 'Ready' }, t1);
    expect(findCondition(flipped, 'Ready')).toEqual({ type: 'Ready', status: 'True', reason: 'Ready', lastTransitionTime: t1 });
  });

  it('compares lists regardless of order, times included', () => {
    const a = setCondition(setCondition(undefined, { type: 'A', status: 'True' }, t0), { type: 'B', status: 'True' }, t0);
    expect(sameConditions(a, [...a].reverse())).toBe(true);
    expect(sameConditions(a, setCondition(a, { type: 'A', status: 'True' }, t1))).toBe(true);
    expect(sameConditions(a, setCondition(a, { type: 'A', status: 'True', message: 'x' }, t1))).toBe(false);
    expect(sameConditions(undefined, [])).toBe(true);
  });
});

/**
 * cloneData (src/planner/kube.ts), the planner's deep copy: the same data as structuredClone for
 * what manifests hold, no object shared with the input, and a `__proto__` key (an own key after
 * yaml's toJS or JSON.parse) copied as an own key, never as the copy's prototype.
 */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cloneData } from '../../src/planner/kube.js';

describe('cloneData', () => {
  const manifest = parse(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web, "1": one}}
spec:
  replicas: 2
  paused: false
  template:
    spec:
      containers:
        - {name: app, image: "r/web:1", args: [--a, "--b=c"], env: [{name: X, value: ""}], securityContext: null}
`) as Record<string, unknown>;

  it('copies manifest data exactly as structuredClone does (values, key order), sharing no object with the input', () => {
    const copy = cloneData(manifest);
    expect(copy).toStrictEqual(structuredClone(manifest));
    expect(JSON.stringify(copy)).toBe(JSON.stringify(manifest));
    const objects = (v: unknown): unknown[] => (v !== null && typeof v === 'object' ? [v, ...Object.values(v).flatMap(objects)] : []);
    const original = new Set(objects(manifest));
    expect(objects(copy).filter((o) => original.has(o))).toEqual([]);
  });

  it('keeps a __proto__ key an own property of the copy, never its prototype', () => {
    const hostile = JSON.parse('{"spec": {"__proto__": {"polluted": true}, "x": 1}}') as { spec: Record<string, unknown> };
    const copy = cloneData(hostile);
    expect(Object.getPrototypeOf(copy.spec)).toBe(Object.prototype);
    expect(Object.hasOwn(copy.spec, '__proto__')).toBe(true);
    expect((copy.spec as { polluted?: unknown }).polluted).toBeUndefined();
    expect(copy).toStrictEqual(structuredClone(hostile));
  });

  it('copies other objects (a Date) as structuredClone does', () => {
    const when = new Date(0);
    const copy = cloneData({ when });
    expect(copy.when).toEqual(when);
    expect(copy.when).not.toBe(when);
  });
});

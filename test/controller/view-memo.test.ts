// Indexes of a view are kept while the arrays they read are the same objects (the controller's
// snapshots reuse the arrays of kinds without informer events), and rebuilt when one changes.
import { describe, expect, it } from 'vitest';
import { ArraysMemo, claimantsOfKey, generatedFor, inventoryOfView, routingKeyOf } from '../../src/controller/view.js';
import { NS, baseView, sandbox, withApplied } from './fixtures.js';

describe('ArraysMemo', () => {
  it('computes once per tuple of the same objects, again when any of them is another object', () => {
    const memo = new ArraysMemo<number>();
    let runs = 0;
    const a: unknown[] = [];
    const b: unknown[] = [];
    const compute = () => ++runs;
    expect(memo.get([a, b], compute)).toBe(1);
    expect(memo.get([a, b], compute)).toBe(1);
    expect(memo.get([a, [...b]], compute)).toBe(2);
    expect(memo.get([a, undefined], compute)).toBe(3);
    expect(memo.get([a, undefined], compute)).toBe(3);
    expect(() => memo.get([undefined, a], compute)).toThrow('ArraysMemo: the first dependency must be an array or object');
  });
});

describe('view indexes across snapshots', () => {
  const alice = sandbox('alice', ['cart-v1']);
  const view = withApplied(baseView({ sandboxes: [alice] }), alice, 1);

  it('a new snapshot with only new Sandboxes keeps the baseline inventory and the generated-object index', () => {
    const bob = sandbox('bob', ['pay-v1']);
    const next = { ...view, sandboxes: [...view.sandboxes, bob] };
    expect(inventoryOfView(next)).toBe(inventoryOfView(view));
    expect(generatedFor(next, { namespace: NS, name: 'alice' })).toEqual(generatedFor(view, { namespace: NS, name: 'alice' }));
    // The routing-key claimants read the Sandboxes: rebuilt.
    expect(claimantsOfKey(view, routingKeyOf(bob))).toEqual([]);
    expect(claimantsOfKey(next, routingKeyOf(bob))).toEqual([bob]);
  });

  it('a changed array of generated objects rebuilds what reads it', () => {
    expect(generatedFor(view, { namespace: NS, name: 'alice' }).map((o) => o.kind)).toEqual(['Deployment', 'Service', 'EnvoyFilter']);
    const without = { ...view, services: view.services.filter((o) => o.metadata.name !== 'cart-alice') };
    expect(generatedFor(without, { namespace: NS, name: 'alice' }).map((o) => o.kind)).toEqual(['Deployment', 'EnvoyFilter']);
    expect(inventoryOfView(without)).not.toBe(inventoryOfView(view));
  });
});

/**
 * The planner's indexes (RouteGroupIndex for RouteGroup membership, LabelIndex for the isolation
 * check between generated objects) give exactly what a scan of every object gives.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RouteGroupMatchT, RouteGroupObject, SandboxObject } from '../../src/api/schema.js';
import { LabelIndex, labelSelectorRequirement, labelSelectorVerdict, serviceSelectorRequirement, serviceSelectorSelects, type LabelSelector } from '../../src/planner/label-selector.js';
import { RouteGroupIndex, routeGroupSelects } from '../../src/planner/route-group.js';

const KEYS = ['app', 'tier', 'pr', 'team'];
const VALUES = ['a', 'b', 'ab', 'ba', ''];
const labelsArb = fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 4 });
const globArb = fc.constantFrom('a', 'b', 'ab', '*', 'a*', '?', '?b', '*b*', '');
const leafArb = fc.record({ label: fc.record({ key: fc.constantFrom(...KEYS), value: globArb }) });
const level2Arb = fc.oneof(leafArb, fc.record({ any: fc.array(leafArb, { minLength: 1, maxLength: 3 }) }), fc.record({ all: fc.array(leafArb, { minLength: 1, maxLength: 3 }) }));
const matchArb = fc.oneof(leafArb, fc.record({ any: fc.array(level2Arb, { minLength: 1, maxLength: 3 }) }), fc.record({ all: fc.array(level2Arb, { minLength: 1, maxLength: 3 }) })) as fc.Arbitrary<RouteGroupMatchT>;

const sandbox = (name: string, namespace: string, labels: Record<string, string>): SandboxObject =>
  ({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace, labels }, spec: { forks: [] } }) as SandboxObject;
const group = (namespace: string, match: RouteGroupMatchT): RouteGroupObject =>
  ({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'g', namespace }, spec: { match } }) as RouteGroupObject;

describe('RouteGroupIndex', () => {
  it('members() equals a scan of every Sandbox (namespace, globs, any/all)', () => {
    const sandboxesArb = fc.array(fc.tuple(fc.constantFrom('default', 'dev'), labelsArb), { maxLength: 12 });
    fc.assert(
      fc.property(sandboxesArb, fc.constantFrom('default', 'dev'), matchArb, (specs, namespace, match) => {
        const sandboxes = specs.map(([ns, labels], i) => sandbox(`s${(i * 7) % 12}-${i}`, ns, labels));
        const scan = sandboxes
          .filter((s) => s.metadata.namespace === namespace && routeGroupSelects(match, s.metadata.labels ?? {}))
          .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
        expect(new RouteGroupIndex(sandboxes).members(group(namespace, match))).toEqual(scan);
      }),
      { numRuns: 500 },
    );
  });
});

describe('LabelIndex', () => {
  const selectorArb: fc.Arbitrary<LabelSelector | undefined> = fc.oneof(
    fc.constant(undefined),
    fc.record({ matchLabels: labelsArb }, { requiredKeys: [] }),
    fc.record(
      {
        matchLabels: labelsArb,
        matchExpressions: fc.array(fc.record({ key: fc.constantFrom(...KEYS), operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt'), values: fc.array(fc.constantFrom(...VALUES), { maxLength: 2 }) }), {
          maxLength: 2,
        }),
      },
      { requiredKeys: ['matchExpressions'] },
    ),
  );

  it('candidates() of Deployment selectors hold every selector whose verdict is not "does not select", in order', () => {
    fc.assert(
      fc.property(fc.array(selectorArb, { maxLength: 10 }), labelsArb, (selectors, labels) => {
        const candidates = new LabelIndex(selectors, labelSelectorRequirement).candidates(labels);
        const needed = selectors.filter((s) => {
          const verdict = labelSelectorVerdict(s, labels);
          return 'unknown' in verdict || verdict.selects;
        });
        expect(candidates.filter((s) => needed.includes(s))).toEqual(needed);
        expect(candidates).toEqual(selectors.filter((s) => candidates.includes(s)));
      }),
      { numRuns: 500 },
    );
  });

  it('candidates() of Service selectors hold every selector that selects', () => {
    fc.assert(
      fc.property(fc.array(fc.option(labelsArb, { nil: undefined }), { maxLength: 10 }), labelsArb, (selectors, labels) => {
        const candidates = new LabelIndex(selectors, serviceSelectorRequirement).candidates(labels);
        const needed = selectors.filter((s) => serviceSelectorSelects(s, labels));
        expect(candidates.filter((s) => needed.includes(s))).toEqual(needed);
      }),
      { numRuns: 500 },
    );
  });
});

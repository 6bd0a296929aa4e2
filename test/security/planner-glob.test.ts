/**
 * RouteGroup label globs are matched in linear-per-star time, without a backtracking RegExp:
 * a 63-character glob such as `*a*a…*a*b` against 63 `a`s used to make the RegExp engine try
 * every split of the value among 31 stars (effectively never returning). The tests below would
 * hang on such a matcher (each runs under a per-test timeout); they assert results, not time.
 * Input: test/security/inputs/planner-glob/backtracking.yaml, read with the real loader.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import { plan } from '../../src/planner/plan.js';
import { globMatches, routeGroupMembers } from '../../src/planner/route-group.js';
import { FIXTURES } from '../support/cli.js';

const INPUTS = new URL('./inputs/planner-glob/', import.meta.url).pathname;

/** Reference: dynamic programming over (glob prefix, value prefix), by code point. */
function referenceMatch(glob: string, value: string): boolean {
  const g = [...glob];
  const v = [...value];
  // row[j]: does g[0..i) match v[0..j)?
  let row = Array.from({ length: v.length + 1 }, (_, j) => j === 0);
  for (const c of g) {
    const next = Array.from({ length: v.length + 1 }, () => false);
    for (let j = 0; j <= v.length; j++) {
      if (c === '*') next[j] = row[j]! || (j > 0 && next[j - 1]!);
      else next[j] = j > 0 && row[j - 1]! && (c === '?' || c === v[j - 1]);
    }
    row = next;
  }
  return row[v.length]!;
}

const WORST_GLOB = `${'*a'.repeat(31)}b`;
const WORST_VALUE = 'a'.repeat(63);

describe('globMatches', () => {
  const table: Array<[string, string, boolean]> = [
    ['', '', true],
    ['', 'a', false],
    ['*', '', true],
    ['*', 'anything', true],
    ['?', '', false],
    ['?', 'a', true],
    ['?', 'ab', false],
    ['a*', 'a', true],
    ['a*', 'ba', false],
    ['*a', 'ba', true],
    ['*a', 'ab', false],
    ['a*b', 'ab', true],
    ['a*b', 'axxxb', true],
    ['a*b', 'axxxbx', false],
    ['a?c', 'abc', true],
    ['a?c', 'ac', false],
    ['*b*', 'abc', true],
    ['**', 'x', true],
    ['*?*', '', false],
    ['*?*', 'x', true],
    ['team-*', 'team-payments', true],
    ['team-*', 'team', false],
    ['*.*', 'a.b', true],
    ['*.*', 'ab', false],
    ['a*a*a', 'aaaa', true],
    ['a*a*a', 'aa', false],
    ['*ab*ab', 'abab', true],
    ['*ab*ab', 'ababa', false],
    ['v?-*', 'v1-canary', true],
    ['[a]', '[a]', true],
    ['(.*)', 'xyz', false],
    [WORST_GLOB, WORST_VALUE, false],
    [WORST_GLOB, `${WORST_VALUE.slice(1)}b`, true],
  ];
  for (const [glob, value, expected] of table) {
    it(`${JSON.stringify(glob.length > 20 ? `${glob.slice(0, 12)}…(${glob.length})` : glob)} vs ${JSON.stringify(value.length > 20 ? `${value.slice(0, 12)}…(${value.length})` : value)} -> ${expected}`, { timeout: 5_000 }, () => {
      expect(globMatches(glob, value)).toBe(expected);
      expect(referenceMatch(glob, value)).toBe(expected);
    });
  }

  it('agrees with the reference on random globs and values over a small alphabet', { timeout: 20_000 }, () => {
    const glob = fc.string({ unit: fc.constantFrom('a', 'b', '*', '?'), maxLength: 12 });
    const value = fc.string({ unit: fc.constantFrom('a', 'b', 'c'), maxLength: 14 });
    fc.assert(fc.property(glob, value, (g, v) => globMatches(g, v) === referenceMatch(g, v)), { numRuns: 5_000 });
  });

  it('agrees with the reference on values built to match (stars filled with random text)', { timeout: 20_000 }, () => {
    const piece = fc.oneof(fc.constant('*'), fc.constant('?'), fc.constantFrom('a', 'b', '-', '.'));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), fc.array(fc.string({ unit: fc.constantFrom('a', 'b', 'x'), maxLength: 4 }), { minLength: 10, maxLength: 10 }), (pieces, fills) => {
        const value = pieces.map((p, i) => (p === '*' ? fills[i]! : p === '?' ? (fills[i]![0] ?? 'z') : p)).join('');
        const g = pieces.join('');
        return globMatches(g, value) && referenceMatch(g, value);
      }),
      { numRuns: 2_000 },
    );
  });

  it('worst cases at the schema limit (63 characters each) return', { timeout: 5_000 }, () => {
    for (const glob of [WORST_GLOB, `${'*'.repeat(62)}b`, `${'?*'.repeat(31)}b`, `a${'*a'.repeat(31)}`]) {
      expect(globMatches(glob, WORST_VALUE), glob).toBe(referenceMatch(glob, WORST_VALUE));
    }
  });
});

describe('RouteGroup membership', () => {
  it('a hostile RouteGroup glob read from a file is evaluated (and does not match)', { timeout: 5_000 }, () => {
    const input = loadInputs([`${FIXTURES}bookinfo/bookinfo.yaml`, `${INPUTS}backtracking.yaml`], 'default');
    expect(input.problems).toEqual([]);
    expect(input.routeGroups[0]?.spec.match).toEqual({ label: { key: 'team', value: WORST_GLOB } });
    expect(routeGroupMembers(input.routeGroups[0]!, input.sandboxes)).toEqual([]);
    const result = plan({ inventory: input.inventory, sandboxes: input.sandboxes, routeGroups: input.routeGroups });
    expect(result.problems).toEqual([]);
    expect(result.routeGroupKeys.map((g) => [g.name, g.members])).toEqual([['slow', []]]);
  });

  it('reads only the label itself, never a name inherited by every object', () => {
    const sandbox = { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 's', namespace: 'default', labels: {} }, spec: { forks: [] } } as never;
    const group = { apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'g', namespace: 'default' }, spec: { match: { label: { key: 'constructor', value: '*' } } } } as never;
    expect(routeGroupMembers(group, [sandbox])).toEqual([]);
  });
});

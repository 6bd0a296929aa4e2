/**
 * Istio refuses a VirtualService whose header regex is longer than 1024 characters (pilot
 * validation `validateStringRegexp`: "regex is too large, max length allowed is 1024"). The
 * routing-key regexes grow with the key name, so KEY_NAME_PATTERN caps it at the longest name
 * whose regexes all fit, for every character mix ('.' costs two more characters than the others).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { baggageMemberRegex, KEY_NAME_PATTERN, noMemberRegex, tracestateMemberRegex } from '../../src/planner/routing-key.js';

const ISTIO_MAX_REGEX_LENGTH = 1024;
const LONGEST_KEY = 'z'.repeat(32);

function longest(keyName: string): number {
  return Math.max(
    ...[baggageMemberRegex(keyName, LONGEST_KEY), tracestateMemberRegex(keyName, LONGEST_KEY), noMemberRegex('baggage', keyName), noMemberRegex('tracestate', keyName)].map((re) => re.length),
  );
}

describe('routing-key regexes stay within Istio\'s regex length limit', () => {
  it('the key-name pattern allows 42 characters, not 43', () => {
    const pattern = new RegExp(KEY_NAME_PATTERN);
    expect(pattern.test(`a${'.'.repeat(41)}`)).toBe(true);
    expect(pattern.test(`a${'.'.repeat(42)}`)).toBe(false);
  });

  it('the longest allowed name of the costliest characters fits, exactly at the limit', () => {
    expect(longest(`a${'.'.repeat(41)}`)).toBe(1002);
    expect(longest(`a${'-'.repeat(41)}`)).toBe(879);
  });

  it('every allowed key name of the longest length fits (property)', () => {
    const name = fc.tuple(fc.constantFrom(...'az09'), fc.string({ unit: fc.constantFrom(...'az09._-'), minLength: 41, maxLength: 41 })).map(([a, b]) => a + b);
    fc.assert(
      fc.property(name, (n) => {
        expect(n).toMatch(new RegExp(KEY_NAME_PATTERN));
        expect(longest(n)).toBeLessThanOrEqual(ISTIO_MAX_REGEX_LENGTH);
      }),
      { numRuns: 200 },
    );
  });

  it('the default key name: 483 characters at most', () => {
    expect(longest('meshfork-routing-key')).toBe(483);
  });
});

/**
 * Property tests tying the Lua filters to the VirtualService regexes the planner emits
 * (src/planner/routing-key.ts): whatever the mesh would route on, the Lua sees, and vice versa.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forkAffinityLua, ingressGuardLua, PREVIEW_TOKEN_HEADER } from '../../src/lua/index.js';
import { baggageMemberRegex, tracestateMemberRegex } from '../../src/planner/routing-key.js';
import { luajitAvailable, runLua, type HeaderLine } from './harness.js';

const KEY = 'mf-key';
const OTHER = 'sd-routing-key';
const RK = 'abcd1234';
const VALUES = ['abcd1234', 'zzzz9999', 'q1w2'];

// Baggage-ish members, including look-alikes of KEY and malformed pieces.
const keyArb = fc.constantFrom(KEY, OTHER, 'a', 'x' + KEY, KEY + 'x', 'foo');
const valueArb = fc.constantFrom(...VALUES, '', 'v%2C1');
const owsArb = fc.constantFrom('', ' ', '\t', ' \t');
const memberArb = fc.oneof(
  fc.tuple(owsArb, keyArb, owsArb, owsArb, valueArb, owsArb).map(([a, k, b, c, v, d]) => `${a}${k}${b}=${c}${v}${d}`),
  fc.tuple(keyArb, valueArb, keyArb).map(([k, v, p]) => `${k}=${v};${p}=${v}`), // property
  fc.tuple(keyArb, valueArb).map(([k, v]) => `foo=${k}=${v}`),
  fc.tuple(keyArb, valueArb).map(([k, v]) => `${k};p=${v}`),
  fc.constantFrom('', ' ', '=', ';', KEY, '=' + RK),
);
const lineArb = fc.array(memberArb, { minLength: 1, maxLength: 5 }).map((ms) => ms.join(','));
const linesArb = fc.array(lineArb, { minLength: 0, maxLength: 3 });

const joined = (headers: HeaderLine[], name: string): string | undefined => {
  const vs = headers.filter(([n]) => n === name).map(([, v]) => v);
  return vs.length === 0 ? undefined : vs.join(','); // how Envoy presents repeated headers to matchers
};
const routesOn = (value: string | undefined, key: string, regex: (k: string, v: string) => string) =>
  value !== undefined && VALUES.some((v) => new RegExp(regex(key, v)).test(value));

describe.skipIf(!luajitAvailable())('Lua filters agree with the routing regexes', () => {
  it('fork affinity: never overrides a key the mesh routes on; otherwise makes the request route to RK', () => {
    const script = forkAffinityLua({ keyName: KEY, routingKey: RK });
    fc.assert(
      fc.property(linesArb, (lines) => {
        const before: HeaderLine[] = lines.map((l) => ['baggage', l]);
        const r = runLua(script, before);
        expect(r.error).toBeUndefined();
        if (routesOn(joined(before, 'baggage'), KEY, baggageMemberRegex)) {
          expect(r.headers).toEqual(before);
          expect(r.mutations).toBe(0);
        }
        // Oracle: W3C member `OWS key OWS "=" ...` with key === KEY, on any line.
        const present = lines.some((l) => l.split(',').some((m) => /^[ \t]*([^=;]*?)[ \t]*=/.exec(m)?.[1] === KEY));
        if (present) {
          expect(r.mutations).toBe(0);
        } else {
          expect(r.mutations).toBeGreaterThan(0);
          expect(new RegExp(baggageMemberRegex(KEY, RK)).test(joined(r.headers, 'baggage') ?? '')).toBe(true);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('ingress guard: nothing left routes, and every other member survives in order (baggage, tracestate, jaeger-baggage)', () => {
    const token = 'tok-123';
    const script = ingressGuardLua({
      keyNames: [KEY, OTHER],
      headers: ['x-meshfork-routing-key'],
      tokenSha256: [createHash('sha256').update(token).digest('hex')],
    });
    // Oracle: the key is the text before the member's first '='; it routes (now or after some
    // propagator) when it contains a key name.
    const isRoutingMember = (m: string) => {
      const k = m.split('=')[0]!;
      return k.includes(KEY) || k.includes(OTHER);
    };
    fc.assert(
      fc.property(linesArb, linesArb, linesArb, fc.boolean(), (bag, ts, jb, authorized) => {
        const before: HeaderLine[] = [
          ...bag.map((l): HeaderLine => ['baggage', l]),
          ...ts.map((l): HeaderLine => ['tracestate', l]),
          ...jb.map((l): HeaderLine => ['jaeger-baggage', l]),
          ['x-meshfork-routing-key', RK],
        ];
        if (authorized) before.push([PREVIEW_TOKEN_HEADER, token]);
        const r = runLua(script, before);
        expect(r.error).toBeUndefined();
        expect(r.headers.some(([n]) => n === PREVIEW_TOKEN_HEADER)).toBe(false);
        if (authorized) {
          expect(r.headers).toEqual(before.filter(([n]) => n !== PREVIEW_TOKEN_HEADER));
          return;
        }
        for (const key of [KEY, OTHER]) {
          expect(routesOn(joined(r.headers, 'baggage'), key, baggageMemberRegex)).toBe(false);
          expect(routesOn(joined(r.headers, 'tracestate'), key, tracestateMemberRegex)).toBe(false);
        }
        expect(r.headers.some(([n]) => n === 'x-meshfork-routing-key')).toBe(false);
        for (const name of ['baggage', 'tracestate', 'jaeger-baggage']) {
          const members = (hs: HeaderLine[]) =>
            hs
              .filter(([n]) => n === name)
              .flatMap(([, v]) => v.split(','))
              .filter((m) => !isRoutingMember(m) && /[^ \t]/.test(m));
          expect(members(r.headers)).toEqual(members(before));
        }
      }),
      { numRuns: 100 },
    );
  });
});

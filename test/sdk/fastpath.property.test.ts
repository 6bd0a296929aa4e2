/**
 * The propagator's per-request fast paths give exactly the answers of the general code they skip:
 * - a canonical baggage header is forwarded as received, which is what parsing + serializing gives;
 * - a canonical tracestate serializes to itself, as `@opentelemetry/api`'s TraceState does;
 * - the hand-written traceparent parser accepts what the W3C regular expression accepts;
 * - the span-context check agrees with `@opentelemetry/api`'s isSpanContextValid.
 */
import { ROOT_CONTEXT, createTraceState, defaultTextMapGetter, isSpanContextValid, propagation, trace } from '@opentelemetry/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_KEY_NAME, joinMembers, keyMemberText, memberText, parseBaggage } from '../../src/sdk/baggage.js';
import {
  MeshforkPropagator,
  baggageHeader,
  extractBaggage,
  isCanonicalBaggage,
  isCanonicalTraceState,
  parseTraceparent,
  spanContextValid,
} from '../../src/sdk/propagator.js';

const RUNS = { numRuns: 2000 };

/** Baggage-ish text: mostly well-formed members, with the characters that matter to the grammar. */
const bagChar = fc.constantFrom(...'abcAZ09-_.%2C= \t;,"é\u0000'.split(''));
const bagMember = fc.oneof(
  fc.tuple(fc.constantFrom('a', 'b', 'k1', 'meshfork-routing-key', 'x%41', 'A'), fc.string({ unit: bagChar, maxLength: 8 })).map(([k, v]) => `${k}=${v}`),
  fc.string({ unit: bagChar, maxLength: 12 }),
);
const bagHeader = fc.oneof(
  fc.array(bagMember, { maxLength: 8 }).map((ms) => ms.join(',')),
  fc.array(fc.constantFrom('a=1', 'b=2;p', 'c=x%20y', 'd= 4', 'e=5;q=r'), { maxLength: 70 }).map((ms) => ms.join(',')),
  fc.string({ maxLength: 40 }),
);

/**
 * The general path: parse every member, forward valid ones verbatim (the routing-key member by
 * keyMemberText), apply the limits.
 */
function slowHeader(h: string): string | undefined {
  const texts: string[] = [];
  for (const m of parseBaggage(h)) {
    const t = m.key === DEFAULT_KEY_NAME ? keyMemberText(m) : memberText(m);
    if (t !== undefined) texts.push(t);
  }
  const out = joinMembers(texts);
  return out === '' ? undefined : out;
}

describe('baggage fast path', () => {
  it('edge cases: trailing OWS, percent-escaped and duplicate keys, empty members, limits', () => {
    const cases = [
      'a= ', 'a=\t', 'a=1;p= ', 'a=1;p ', 'a=1 ;p', 'a =1', 'a=1, b=2', 'a=1,,b=2', ',a=1', 'a=1,',
      'x%41=1,xA=2', 'x%41=1,x%41=2', 'x%41=1', 'a=1,a=2', 'ab=1,a=2', 'a=1;p=q;r,b=2', 'a=%ZZ', 'a=1;=', 'a=1;p=;q',
      Array.from({ length: 64 }, (_, i) => `k${i}=v`).join(','),
      Array.from({ length: 65 }, (_, i) => `k${i}=v`).join(','),
      `a=${'x'.repeat(8190)}`,
      `a=${'x'.repeat(8191)}`,
    ];
    for (const h of cases) {
      if (isCanonicalBaggage(h)) expect(slowHeader(h), h.slice(0, 60)).toBe(h);
      expect(baggageHeader(extractBaggage(ROOT_CONTEXT, h)), h.slice(0, 60)).toBe(slowHeader(h));
      const entries = propagation.getBaggage(extractBaggage(ROOT_CONTEXT, h))?.getAllEntries() ?? [];
      expect(entries.map(([k, e]) => [k, e.value])).toEqual(parseBaggage(h).map((m) => [m.key, m.value]));
    }
    expect(['a= ', 'x%41=1,x%41=2', 'a=1, b=2', 'a=1,a=2'].filter(isCanonicalBaggage)).toEqual([]);
    // keys are compared as received: `x%41` and `xA` are two keys
    expect(['a=1', 'a =1', 'a=1 ;p', 'a=1;p=q;r,b=2', 'x%41=1,xA=2'].every(isCanonicalBaggage)).toBe(true);
  });

  it('a canonical header is exactly what parsing and serializing produce, and reads the same entries', () => {
    fc.assert(
      fc.property(bagHeader, (h) => {
        const ctx = extractBaggage(ROOT_CONTEXT, h);
        if (isCanonicalBaggage(h)) expect(slowHeader(h)).toBe(h);
        if (h.length <= 8192 && parseBaggage(h).length <= 64) expect(baggageHeader(ctx)).toBe(slowHeader(h));
        const entries = propagation.getBaggage(ctx)?.getAllEntries() ?? [];
        expect(entries.map(([k, e]) => [k, e.value])).toEqual(parseBaggage(h).map((m) => [m.key, m.value]));
      }),
      RUNS,
    );
  });
});

const tsChar = fc.constantFrom(...'abz09_-*/@=, \tA~'.split(''));
const tsHeader = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom('a', 'b', 'rojo', 'v@x', 'A', '0a'), fc.string({ unit: tsChar, maxLength: 6 })), { maxLength: 40 }).map((ms) =>
    ms.map(([k, v]) => `${k}=${v}`).join(','),
  ),
  fc.string({ unit: tsChar, maxLength: 30 }),
  fc.string({ maxLength: 30 }),
);

describe('tracestate fast path', () => {
  it('a canonical tracestate is what the API TraceState serializes it to; extract reads the same members', () => {
    const propagator = new MeshforkPropagator();
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    fc.assert(
      fc.property(tsHeader, (ts) => {
        const api = createTraceState(ts);
        if (isCanonicalTraceState(ts)) expect(api.serialize()).toBe(ts);
        const got = trace.getSpanContext(propagator.extract(ROOT_CONTEXT, { traceparent: tp, tracestate: ts }, defaultTextMapGetter))?.traceState;
        expect(got?.serialize() ?? '').toBe(ts === '' ? '' : api.serialize());
        for (const k of ['a', 'b', 'rojo', 'v@x']) expect(got?.get(k)).toBe(ts === '' ? undefined : api.get(k));
        expect(got?.set('n', '1').serialize()).toBe(ts === '' ? undefined : api.set('n', '1').serialize());
      }),
      RUNS,
    );
  });
});

/** The W3C traceparent grammar as a regular expression (what the parser replaced). */
const TRACEPARENT = /^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^ \t]*)?[ \t]*$/;
function regexParse(tp: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  const m = TRACEPARENT.exec(tp);
  if (m === null || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, traceFlags: parseInt(m[4]!, 16) };
}

describe('traceparent parser and span-context check', () => {
  const hexs = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefAF-g '.split('')), minLength: n - 1, maxLength: n + 1 });
  const tp = fc.oneof(
    fc
      .tuple(fc.constantFrom('00', '01', 'ff', 'fe', '0A', 'cc'), hexs(32), hexs(16), hexs(2), fc.constantFrom('', '-', '-x', '-x y', ' ', '\t', 'x'), fc.constantFrom('', ' ', '\t '))
      .map(([v, t, s, f, x, pad]) => `${pad}${v}-${t}-${s}-${f}${x}${pad}`),
    fc.string({ maxLength: 70 }),
  );
  it('accepts exactly what the W3C grammar accepts', () => {
    fc.assert(
      fc.property(tp, (h) => {
        expect(parseTraceparent(h)).toEqual(regexParse(h));
      }),
      { numRuns: 5000 },
    );
  });
  it('spanContextValid agrees with isSpanContextValid', () => {
    const id = (n: number) =>
      fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFgé'.split('')), minLength: n - 1, maxLength: n + 1 }), fc.constant('0'.repeat(n)));
    fc.assert(
      fc.property(id(32), id(16), (traceId, spanId) => {
        expect(spanContextValid({ traceId, spanId })).toBe(isSpanContextValid({ traceId, spanId, traceFlags: 1 }));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('extracted context', () => {
  const propagator = new MeshforkPropagator();
  const K = Symbol('app key');
  const base = trace.setSpanContext(propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ old: { value: '1' } })).setValue(K, 'app'), {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    traceFlags: 0,
  });
  const header = fc.oneof(fc.constant(undefined), bagHeader, fc.constantFrom('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'junk'));
  it('reads like base + setSpanContext + setBaggage; setValue/deleteValue keep every value', () => {
    fc.assert(
      fc.property(header, fc.option(tsHeader, { nil: undefined }), header, (tp, ts, bag) => {
        const carrier: Record<string, string> = {};
        if (tp !== undefined) carrier.traceparent = tp;
        if (ts !== undefined) carrier.tracestate = ts;
        if (bag !== undefined) carrier.baggage = bag;
        const ctx = propagator.extract(base, carrier, defaultTextMapGetter);
        const sc = tp === undefined ? undefined : parseTraceparent(tp);
        const want = sc === undefined ? trace.getSpanContext(base) : { ...sc, isRemote: true, traceState: ts ? createTraceState(ts) : undefined };
        const got = trace.getSpanContext(ctx);
        expect({ ...got, traceState: got?.traceState?.serialize() }).toEqual({ ...want, traceState: want?.traceState?.serialize() });
        expect(trace.getSpan(ctx)).toBe(trace.getSpan(ctx)); // one span object per context
        const entries = (c: typeof ctx) => propagation.getBaggage(c)?.getAllEntries().map(([k, e]) => [k, e.value]);
        const members = bag === undefined ? [] : parseBaggage(bag);
        expect(entries(ctx)).toEqual(members.length === 0 ? [['old', '1']] : members.map((m) => [m.key, m.value]));
        expect(ctx.getValue(K)).toBe('app');
        const set = ctx.setValue(K, 'new');
        expect(set.getValue(K)).toBe('new');
        expect(trace.getSpan(set)).toBe(trace.getSpan(ctx));
        expect(propagation.getBaggage(set)).toBe(propagation.getBaggage(ctx));
        expect(propagation.getBaggage(propagation.deleteBaggage(ctx))).toBeUndefined();
        expect(ctx.deleteValue(K).getValue(K)).toBeUndefined();
        expect(trace.getSpan(ctx.deleteValue(K))).toBe(trace.getSpan(ctx));
      }),
      RUNS,
    );
  });
});

/**
 * The SDK reads an incoming request's routing key by meshfork's precedence rule:
 * - `requestRoutingKey` (the scanning implementation) agrees with a plain oracle written from the
 *   rule's text;
 * - the context the SDK's inbound path builds (`inboundContext`, through meshfork's propagator and
 *   its lazily parsed baggage/tracestate) gives the same key via `routingKeyIn`;
 * - what the SDK sends on reads as the same key at the next hop, and so does the received trace
 *   state (`get`, and `serialize` after the application adds a member);
 * - the baggage reader used by queues (`routingKeyFromBaggage`, general parser) agrees with the scan.
 */
import { ROOT_CONTEXT, defaultTextMapSetter, propagation, trace } from '@opentelemetry/api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoutingKey, routingKeyFromBaggage } from '../../src/sdk/baggage.js';
import * as sdk from '../../src/sdk/index.js';
import { type KeyCarriers, recordGetter, requestRoutingKey } from '../../src/sdk/request-key.js';

const K = 'mf-key';
const CARRIERS: KeyCarriers = { keyName: K, tracestate: true, headers: ['x-a', 'x-b'], legacyHeaders: true };
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const trimOws = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
const keyOf = (v: string | undefined) => (isRoutingKey(v) ? v : undefined);

/** The rule, written as plainly as possible from its text. */
function oracle(h: Record<string, string>, c: KeyCarriers): { carrier: string | undefined; key: string | undefined } {
  if (h.baggage !== undefined) {
    const values = h.baggage
      .split(',')
      .filter((m) => m.includes('=') && trimOws(m.slice(0, m.indexOf('='))) === c.keyName)
      .map((m) => trimOws(m.slice(m.indexOf('=') + 1).split(';')[0]!));
    if (values.length > 0) return { carrier: 'baggage', key: keyOf(values.at(-1)) };
  }
  if (c.tracestate !== false && h.tracestate !== undefined) {
    const m = h.tracestate.split(',').map(trimOws).findLast((x) => x.includes('=') && x.slice(0, x.indexOf('=')) === c.keyName);
    if (m !== undefined) return { carrier: 'tracestate', key: keyOf(m.slice(m.indexOf('=') + 1)) };
  }
  const plain = [...(c.headers ?? []), ...(c.legacyHeaders ? [`uberctx-${c.keyName}`, `ot-baggage-${c.keyName}`] : [])];
  for (const name of plain) if (h[name] !== undefined) return { carrier: name, key: keyOf(trimOws(h[name])) };
  return { carrier: undefined, key: undefined };
}

const VALUES = ['abcd1234', 'zzzz9999', 'q1w2', '', 'BAD!', '%61bcd1234', 'abc', 'ab=cd'];
const keyText = fc.constantFrom(K, K, K, 'x' + K, K + 'x', 'MF-KEY', 'mf%2Dkey', '\u00a0' + K, K + '\u00a0', 'other', '');
const ows = fc.constantFrom('', ' ', '\t');
const value = fc.constantFrom(...VALUES);
const bagMember = fc.oneof(
  fc.tuple(ows, keyText, ows, ows, value, ows, fc.constantFrom('', ';p', ';p=1', ' ;q=a b')).map((p) => `${p[0]}${p[1]}${p[2]}=${p[3]}${p[4]}${p[5]}${p[6]}`),
  fc.tuple(keyText, value).map(([k, v]) => `foo=1;${k}=${v}`),
  fc.tuple(keyText, value).map(([k, v]) => `${k};p=${v}`),
  fc.constantFrom('', ' ', '=', K, '=abcd1234'),
);
const tsMember = fc.oneof(
  fc.tuple(ows, keyText, fc.constantFrom('=', ' =', '= '), value, ows).map((p) => p.join('')),
  fc.constantFrom('', ' ', 'a=1', 'vendor=opaque', K),
);
const list = (member: fc.Arbitrary<string>) => fc.array(member, { minLength: 1, maxLength: 5 }).map((ms) => ms.join(','));
const request = fc.record(
  {
    baggage: list(bagMember),
    tracestate: list(tsMember),
    traceparent: fc.constantFrom(TP, 'garbage'),
    'x-a': fc.constantFrom(...VALUES, ' abcd1234 '),
    'x-b': fc.constantFrom(...VALUES),
    [`uberctx-${K}`]: fc.constantFrom(...VALUES),
    [`ot-baggage-${K}`]: fc.constantFrom(...VALUES),
  },
  { requiredKeys: [] },
) as fc.Arbitrary<Record<string, string>>;

describe('routing key of a request (precedence rule)', () => {
  beforeAll(() => {
    sdk.install({ keyName: K, headers: ['x-a', 'x-b'], legacyHeaders: true, tracestate: true, outbound: false });
  });
  afterAll(() => {
    sdk.uninstall();
    sdk.install({ preset: 'meshfork', headers: [], legacyHeaders: false, outbound: false });
    sdk.uninstall();
  });

  it('examples: first carrier holding the key name decides; invalid values untag; raw keys only', () => {
    const cases: Array<[Record<string, string>, string | undefined, string | undefined]> = [
      [{ baggage: `${K}=abcd1234, ${K}=zzzz9999` }, 'baggage', 'zzzz9999'],
      [{ baggage: `${K}=abcd1234, ${K}=BAD!` }, 'baggage', undefined],
      [{ baggage: `${K}=BAD!`, tracestate: `${K}=abcd1234`, 'x-a': 'abcd1234' }, 'baggage', undefined],
      [{ baggage: `a=1`, tracestate: `${K}=abcd1234,${K}=zzzz9999` }, 'tracestate', 'zzzz9999'],
      [{ traceparent: TP, tracestate: `${K}=zzzz9999,a=1, ${K}=abcd1234 ` }, 'tracestate', 'abcd1234'],
      [{ tracestate: `${K}=abcd1234,${K}=ab=cd` }, 'tracestate', undefined],
      [{ traceparent: TP, tracestate: `${K}=abcd1234,${K}=ab=cd` }, 'tracestate', undefined],
      [{ tracestate: `${K}=ab=cd,${K}=abcd1234` }, 'tracestate', 'abcd1234'],
      [{ tracestate: `${K}= abcd1234` }, 'tracestate', undefined],
      [{ tracestate: ` ${K}=abcd1234 ` }, 'tracestate', 'abcd1234'],
      [{ 'x-b': 'zzzz9999', 'x-a': 'abcd1234' }, 'x-a', 'abcd1234'],
      [{ 'x-a': 'nope!', 'x-b': 'abcd1234' }, 'x-a', undefined],
      [{ [`ot-baggage-${K}`]: 'abcd1234', [`uberctx-${K}`]: 'zzzz9999' }, `uberctx-${K}`, 'zzzz9999'],
      [{ baggage: `mf%2Dkey=abcd1234, MF-KEY=abcd1234, \u00a0${K}=abcd1234` }, undefined, undefined],
      [{ baggage: `${K}=%61bcd1234` }, 'baggage', undefined],
      [{ baggage: `${K} = abcd1234 ;p=1` }, 'baggage', 'abcd1234'],
      [{ baggage: `foo=1;${K}=abcd1234, ${K};p=abcd1234` }, undefined, undefined],
    ];
    for (const [headers, carrier, key] of cases) {
      expect(requestRoutingKey(recordGetter(headers), CARRIERS), JSON.stringify(headers)).toEqual({ carrier, key });
      expect(sdk.routingKeyIn(sdk.inboundContext(headers, ROOT_CONTEXT)), JSON.stringify(headers)).toBe(key);
    }
  });

  it('the scan, the oracle, the inbound context and the queue reader agree', () => {
    fc.assert(
      fc.property(request, fc.boolean(), (headers, tracestate) => {
        const carriers = { ...CARRIERS, tracestate };
        sdk.install({ keyName: K, tracestate });
        const expected = oracle(headers, carriers);
        expect(requestRoutingKey(recordGetter(headers), carriers)).toEqual(expected);
        const ctx = sdk.inboundContext(headers, ROOT_CONTEXT);
        expect(sdk.routingKeyIn(ctx)).toBe(expected.key);
        // the next hop reads the same key from what the SDK sends on
        const next: Record<string, string> = {};
        propagation.inject(ctx, next, defaultTextMapSetter);
        expect(requestRoutingKey(recordGetter(next), carriers).key, JSON.stringify(next)).toBe(expected.key);
        // the received trace state says the same to the application, and after it adds a member
        const ts = trace.getSpanContext(ctx)?.traceState;
        if (ts !== undefined && expected.carrier === 'tracestate') {
          expect(keyOf(ts.get(K)), headers.tracestate).toBe(expected.key);
          expect(requestRoutingKey(recordGetter({ tracestate: ts.set('zz', '1').serialize() }), carriers).key, headers.tracestate).toBe(expected.key);
        }
        if (headers.baggage !== undefined && expected.carrier === 'baggage') {
          expect(routingKeyFromBaggage(headers.baggage, K)).toBe(expected.key);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('header names are matched in any case; repeated headers are joined', () => {
    const headers = { 'X-A': 'abcd1234', Baggage: ['a=1', `${K}=zzzz9999`] } as unknown as Record<string, string>;
    expect(requestRoutingKey(recordGetter(headers), CARRIERS)).toEqual({ carrier: 'baggage', key: 'zzzz9999' });
  });
});

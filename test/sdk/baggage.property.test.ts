/**
 * Property tests over generated baggage strings.
 * - extract∘inject keeps every foreign member (verbatim when it was W3C-valid), also after the
 *   routing key is changed, and OpenTelemetry core's own parser reads the same entries from our
 *   output as from the input;
 * - malformed input never throws and never yields an invalid header;
 * - limits: ≤ 64 members, ≤ 8192 bytes, whole members only, routing key always kept.
 */
import { validateHeaderValue } from 'node:http';
import { ROOT_CONTEXT, type Context, defaultTextMapGetter, defaultTextMapSetter, propagation } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KEY_NAME,
  MAX_BYTES,
  MAX_MEMBERS,
  parseBaggage,
  routingKeyFromBaggage,
  setRoutingKeyInBaggage,
} from '../../src/sdk/baggage.js';
import { contextWithRoutingKey, routingKeyIn } from '../../src/sdk/key.js';
import { MeshforkPropagator } from '../../src/sdk/propagator.js';
import { extractRoutingKey, injectRoutingKey } from '../../src/sdk/queue.js';

const propagator = new MeshforkPropagator();
const RUNS = { numRuns: 300 };

const TCHARS = "!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
const OCTETS = Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).filter(
  (c) => !'",;\\%'.includes(c),
);
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
const rawValue = fc.string({ unit: fc.constantFrom(...OCTETS), minLength: 1, maxLength: 16 });
const ows = fc.constantFrom('', ' ', '\t', '  ');
const property = fc.tuple(token, fc.option(rawValue, { nil: undefined })).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
const routingKey = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split('')), minLength: 4, maxLength: 32 });

/** A valid foreign member: a name other than the routing key's, a value (plain or percent-encoded), maybe properties. */
const foreign = fc
  .record({
    key: token.filter((k) => k !== DEFAULT_KEY_NAME),
    value: fc.oneof(rawValue, fc.string({ minLength: 1, maxLength: 8 }).map((s) => encodeURIComponent(s))),
    props: fc.array(property, { maxLength: 2 }),
    a: ows,
    b: ows,
  })
  .map(({ key, value, props, a, b }) => ({
    key,
    text: `${key}${a}=${b}${value}${props.map((p) => `;${p}`).join('')}`,
  }));

function extract(header: string): Context {
  return propagator.extract(ROOT_CONTEXT, { baggage: header }, defaultTextMapGetter);
}
function inject(ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, defaultTextMapSetter);
  return carrier.baggage;
}
/** Last occurrence per key, as a map from key to member text. */
function lastByKey(members: { key: string; text: string }[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of members) {
    m.delete(x.key);
    m.set(x.key, x.text);
  }
  return m;
}
/**
 * Entries as OpenTelemetry core's W3CBaggagePropagator reads them. Core keeps the whitespace before
 * a `,` inside the metadata string; that OWS belongs to the list separator, so compare trimmed.
 */
function coreEntries(header: string): Record<string, [string, string | undefined]> {
  const ctx = new W3CBaggagePropagator().extract(ROOT_CONTEXT, { baggage: header }, defaultTextMapGetter);
  const out: Record<string, [string, string | undefined]> = {};
  for (const [k, e] of propagation.getBaggage(ctx)?.getAllEntries() ?? []) out[k] = [e.value, e.metadata?.toString().trim()];
  return out;
}

const W3C_MEMBER =
  /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*)?)*$/;

function assertValidHeader(h: string | undefined): void {
  if (h === undefined) return;
  expect(() => validateHeaderValue('baggage', h)).not.toThrow();
  expect(h.length).toBeLessThanOrEqual(MAX_BYTES);
  const parts = h.split(',');
  expect(parts.length).toBeLessThanOrEqual(MAX_MEMBERS);
  for (const p of parts) expect(p).toMatch(W3C_MEMBER);
}

describe('extract∘inject', () => {
  it('keeps every foreign member verbatim and the routing key', () => {
    fc.assert(
      fc.property(fc.array(foreign, { maxLength: 20 }), fc.option(routingKey, { nil: undefined }), fc.nat(), ows, (members, key, pos, sep) => {
        const all = [...members];
        if (key !== undefined) all.splice(pos % (all.length + 1), 0, { key: DEFAULT_KEY_NAME, text: `${DEFAULT_KEY_NAME}=${key}` });
        const header = all.map((m) => m.text).join(`${sep},${sep}`);
        const ctx = extract(header);
        expect(routingKeyIn(ctx)).toBe(key);
        const out = inject(ctx);
        assertValidHeader(out);
        const outParts = out === undefined ? [] : out.split(',');
        for (const [, text] of lastByKey(all)) expect(outParts).toContain(text);
        expect(outParts).toHaveLength(lastByKey(all).size);
        // OpenTelemetry core reads the same entries from what we send as from what we received.
        if (header !== '') expect(coreEntries(out ?? '')).toEqual(coreEntries(header));
      }),
      RUNS,
    );
  });

  it('keeps every foreign member when the routing key is changed or removed', () => {
    fc.assert(
      fc.property(fc.array(foreign, { maxLength: 20 }), routingKey, routingKey, fc.boolean(), (members, oldKey, newKey, remove) => {
        const header = [...members.map((m) => m.text), `${DEFAULT_KEY_NAME}=${oldKey}`].join(',');
        const ctx = contextWithRoutingKey(extract(header), remove ? undefined : newKey);
        const out = inject(ctx);
        assertValidHeader(out);
        const outParts = out === undefined ? [] : out.split(',');
        for (const [, text] of lastByKey(members)) expect(outParts).toContain(text);
        expect(routingKeyFromBaggage(out)).toBe(remove ? undefined : newKey);
        expect(outParts.filter((p) => p.startsWith(`${DEFAULT_KEY_NAME}=`))).toHaveLength(remove ? 0 : 1);
      }),
      RUNS,
    );
  });

  it('message headers: injectRoutingKey then extractRoutingKey round-trips and keeps foreign members', () => {
    fc.assert(
      fc.property(fc.array(foreign, { maxLength: 10 }), routingKey, fc.boolean(), (members, key, asBuffer) => {
        const text = members.map((m) => m.text).join(',');
        const headers: Record<string, unknown> = { baggage: asBuffer ? Buffer.from(text) : text, other: Buffer.from('x') };
        injectRoutingKey(headers, key);
        expect(extractRoutingKey(headers)).toBe(key);
        for (const [, t] of lastByKey(members)) expect(String(headers.baggage).split(',')).toContain(t);
      }),
      RUNS,
    );
  });
});

/** Strings built from the characters that matter to the grammar, plus anything at all. */
const nasty = fc.oneof(
  fc.string({ unit: fc.constantFrom(...',;=% \t"\\abc%E0%A4\u0000\n\r\u00e9\ud800'.split('')), maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ maxLength: 200 }),
);

describe('malformed baggage', () => {
  it('never throws, and whatever is forwarded is a valid W3C header', () => {
    fc.assert(
      fc.property(nasty, fc.option(routingKey, { nil: undefined }), (header, key) => {
        expect(() => parseBaggage(header)).not.toThrow();
        const ctx = extract(header);
        assertValidHeader(inject(ctx));
        if (key !== undefined) {
          assertValidHeader(inject(contextWithRoutingKey(ctx, key)));
          const merged = setRoutingKeyInBaggage(header, key);
          assertValidHeader(merged);
          expect(routingKeyFromBaggage(merged)).toBe(key);
        }
        expect(() => routingKeyFromBaggage(header)).not.toThrow();
        expect(() => extractRoutingKey({ baggage: Buffer.from(header, 'latin1') })).not.toThrow();
        expect(() => extractRoutingKey({ baggage: [header, Buffer.from(header)] })).not.toThrow();
      }),
      { numRuns: 1000 },
    );
  });
});

describe('malformed trace context and metadata', () => {
  const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF-'.split('')), minLength: n, maxLength: n });
  const traceparent = fc.oneof(
    nasty,
    fc.tuple(hex(2), hex(32), hex(16), hex(2), fc.constantFrom('', '-x', ' ', '-')).map(([v, t, s, f, x]) => `${v}-${t}-${s}-${f}${x}`),
  );
  it('extract never throws and inject emits only a valid traceparent', () => {
    fc.assert(
      fc.property(traceparent, nasty, fc.option(nasty, { nil: undefined }), (tp, ts, bag) => {
        const carrier: Record<string, string> = { traceparent: tp, tracestate: ts };
        if (bag !== undefined) carrier.baggage = bag;
        const ctx = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
        const out: Record<string, string> = {};
        propagator.inject(ctx, out, defaultTextMapSetter);
        if (out.traceparent !== undefined) {
          expect(out.traceparent).toMatch(/^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/);
          expect(() => validateHeaderValue('tracestate', out.tracestate ?? '')).not.toThrow();
        }
        assertValidHeader(out.baggage);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('limits', () => {
  it(`≤ ${MAX_MEMBERS} members, ≤ ${MAX_BYTES} bytes, whole members only, routing key kept`, () => {
    const big = fc.record({
      key: token.filter((k) => k !== DEFAULT_KEY_NAME),
      value: fc.string({ unit: fc.constantFrom(...OCTETS), minLength: 1, maxLength: 600 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(big, { selector: (m) => m.key, minLength: 40, maxLength: 120 }), routingKey, fc.nat(), (members, key, pos) => {
        const texts = members.map((m) => `${m.key}=${m.value}`);
        texts.splice(pos % (texts.length + 1), 0, `${DEFAULT_KEY_NAME}=${key}`);
        const out = inject(extract(texts.join(',')));
        assertValidHeader(out);
        const parts = out!.split(',');
        for (const p of parts) expect(texts).toContain(p);
        expect(parts).toContain(`${DEFAULT_KEY_NAME}=${key}`);
        // Order is preserved.
        const idx = parts.map((p) => texts.indexOf(p));
        expect([...idx].sort((a, b) => a - b)).toEqual(idx);
      }),
      { numRuns: 200 },
    );
  });
});

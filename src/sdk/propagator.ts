/**
 * A minimal W3C propagator (baggage + trace-context) on the @opentelemetry/api interfaces.
 *
 * Registered only when no OpenTelemetry propagator is installed (see install.ts). It differs from
 * `@opentelemetry/core`'s CompositePropagator(W3CTraceContextPropagator, W3CBaggagePropagator)
 * in two ways that matter for routing:
 * - members we did not change are forwarded byte for byte (core re-encodes every member);
 * - when the W3C limits force members out, the routing-key member is kept first.
 * Everything else (last duplicate wins, invalid members dropped, tracestate handling through the
 * API's TraceState) matches core, so `propagation.getBaggage()` readers see the same entries.
 *
 * Trace-context rules follow W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * `traceparent = version "-" trace-id "-" parent-id "-" trace-flags`, lowercase hex, version `ff`
 * invalid, all-zero trace-id / parent-id invalid, version 00 has exactly four fields; `tracestate`
 * is only meaningful with a valid `traceparent`.
 */
import {
  type Baggage,
  type BaggageEntry,
  type Context,
  ROOT_CONTEXT,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type TraceState,
  baggageEntryMetadataFromString,
  createContextKey,
  createTraceState,
  propagation,
  trace,
} from '@opentelemetry/api';
import {
  type BaggageMember,
  type HeaderValue,
  MAX_BYTES,
  MAX_MEMBERS,
  encodeMember,
  isRoutingKey,
  joinMembers,
  keyMemberText,
  memberText,
  parseBaggage,
} from './baggage.js';
import { currentKeyName } from './config.js';
import { tracestateKeyValue } from './request-key.js';

export const BAGGAGE_HEADER = 'baggage';
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

/**
 * The received members behind a Baggage derived from received baggage (by setEntry/removeEntry),
 * so members it did not change are still forwarded verbatim. Kept beside the Baggage rather than
 * in the context: a context value would cost one more context copy per request.
 */
const RECEIVED = new WeakMap<Baggage, readonly BaggageMember[]>();

// Per request, extract and inject run on every hop, so the trace-context code below avoids regular
// expressions, Maps and intermediate arrays on the common path (see docs/propagation.md, "Cost").

/** 1 for the characters 0-9 a-f A-F (indexed by char code). */
const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

function isLowerHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** `@opentelemetry/api`'s isValidTraceId/isValidSpanId: `length` hex digits (any case), not all zero. */
function isValidId(id: unknown, length: number, zero: string): boolean {
  if (typeof id !== 'string' || id.length !== length || id === zero) return false;
  for (let i = 0; i < length; i++) if (HEX[id.charCodeAt(i)] !== 1) return false;
  return true;
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/** The same answer as `@opentelemetry/api`'s isSpanContextValid (hex ids of the right length, not all zero). */
export function spanContextValid(sc: { traceId: unknown; spanId: unknown }): boolean {
  return isValidId(sc.traceId, 32, ZERO_TRACE_ID) && isValidId(sc.spanId, 16, ZERO_SPAN_ID);
}

/** Two lowercase hex digits for each trace-flags byte. */
const FLAGS_HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * The fields of a `traceparent`, by the grammar
 * `OWS version "-" trace-id "-" parent-id "-" trace-flags [ "-" *non-OWS ] OWS` (lowercase hex),
 * or undefined. Version `ff`, and a version-00 header with anything after trace-flags, are invalid.
 */
export function parseTraceparent(tp: string): { traceId: string; spanId: string; traceFlags: number } | undefined {
  let a = 0;
  let b = tp.length;
  while (a < b && isOws(tp.charCodeAt(a))) a++;
  while (b > a && isOws(tp.charCodeAt(b - 1))) b--;
  if (b - a < 55) return undefined;
  if (tp.charCodeAt(a + 2) !== 0x2d || tp.charCodeAt(a + 35) !== 0x2d || tp.charCodeAt(a + 52) !== 0x2d) return undefined;
  if (!isLowerHex(tp, a, a + 2) || !isLowerHex(tp, a + 3, a + 35) || !isLowerHex(tp, a + 36, a + 52) || !isLowerHex(tp, a + 53, a + 55)) {
    return undefined;
  }
  const v0 = tp.charCodeAt(a);
  const v1 = tp.charCodeAt(a + 1);
  if (v0 === 0x66 && v1 === 0x66) return undefined; // version ff
  if (b - a > 55) {
    if (v0 === 0x30 && v1 === 0x30) return undefined; // version 00 has exactly four fields
    if (tp.charCodeAt(a + 55) !== 0x2d) return undefined;
    for (let i = a + 56; i < b; i++) if (isOws(tp.charCodeAt(i))) return undefined;
  }
  const h = tp.charCodeAt(a + 53);
  const l = tp.charCodeAt(a + 54);
  const traceFlags = ((h <= 0x39 ? h - 0x30 : h - 0x57) << 4) | (l <= 0x39 ? l - 0x30 : l - 0x57);
  return { traceId: tp.slice(a + 3, a + 35), spanId: tp.slice(a + 36, a + 52), traceFlags };
}

// W3C tracestate as `@opentelemetry/api`'s TraceStateImpl validates it (its validators are internal).
const TS_KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const TS_VALUE = /^[ -~]{0,255}[!-~]$/;
const TS_VALUE_FORBIDDEN = /,|=/;
const TS_MAX_ITEMS = 32;
const TS_MAX_LEN = 512;

/**
 * True when `createTraceState(text).serialize() === text`: at most 32 members and 512 characters,
 * every member `key=value` valid, no whitespace around members, no empty member, no duplicate key.
 * Such a header can be forwarded as received and parsed only if someone reads or changes it.
 */
export function isCanonicalTraceState(text: string): boolean {
  if (text.length === 0 || text.length > TS_MAX_LEN) return false;
  const keys: string[] = [];
  let start = 0;
  for (;;) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const eq = text.indexOf('=', start);
    if (eq <= start || eq >= end) return false;
    const key = text.slice(start, eq);
    const value = text.slice(eq + 1, end);
    if (!TS_KEY.test(key) || !TS_VALUE.test(value) || TS_VALUE_FORBIDDEN.test(value)) return false;
    if (keys.includes(key)) return false;
    keys.push(key);
    if (keys.length > TS_MAX_ITEMS) return false;
    if (end === text.length) return true;
    start = end + 1;
  }
}

/**
 * A received `tracestate`: keeps the received text (the routing key is read from it by the
 * precedence rule, see request-key.ts), serializes to it when it is canonical (see
 * isCanonicalTraceState) and is parsed into the API's own TraceState only when read, changed or
 * serialized from a non-canonical text.
 *
 * That parse has its routing-key member made to say what the precedence rule reads from the
 * received text, for `get`, `set`, `unset` and `serialize` alike: the API's parser skips invalid
 * members and trims Unicode spaces, so it can find a member the rule does not (`K=a=b,K=key1` or
 * `\u00a0K=key1`), and of duplicate members it keeps the FIRST (`createTraceState` folds the list
 * from the right, @opentelemetry/api 1.9 tracestate-impl.js `_parse`) where the rule and
 * @opentelemetry/core's TraceState keep the last. Without the correction the next hop, or an
 * application reading the trace state, would see another key than the one the mesh routed on.
 */
export class ReceivedTraceState implements TraceState {
  private parsed: { readonly name: string; readonly state: TraceState } | undefined;

  constructor(
    readonly text: string,
    private readonly canonical: boolean,
  ) {}

  private impl(): TraceState {
    const name = currentKeyName();
    if (this.parsed?.name === name) return this.parsed.state;
    let state = createTraceState(this.text);
    const raw = tracestateKeyValue(this.text, name);
    if (state.get(name) !== raw) {
      state = state.unset(name);
      if (isRoutingKey(raw)) state = state.set(name, raw);
    }
    this.parsed = { name, state };
    return state;
  }

  set(key: string, value: string): TraceState {
    return this.impl().set(key, value);
  }

  unset(key: string): TraceState {
    return this.impl().unset(key);
  }

  get(key: string): string | undefined {
    return this.impl().get(key);
  }

  /** The received text when canonical; otherwise the corrected parse, serialized. */
  serialize(): string {
    return this.canonical ? this.text : this.impl().serialize();
  }
}

function traceStateOf(text: string): TraceState {
  return new ReceivedTraceState(text, isCanonicalTraceState(text));
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function metadataText(e: BaggageEntry): string | undefined {
  const s = e.metadata?.toString();
  return s === undefined || s === '' ? undefined : s;
}

function entryOf(m: BaggageMember): BaggageEntry {
  return m.metadata === undefined ? { value: m.value } : { value: m.value, metadata: baggageEntryMetadataFromString(m.metadata) };
}

/**
 * The Baggage of an extracted header: an implementation of the @opentelemetry/api `Baggage`
 * interface over the parsed members, so extract builds no entry map and inject can forward the
 * members verbatim (serialized once per request). Reads scan the members (at most a few dozen);
 * writes return an ordinary API Baggage linked back to these members (see linkDerivedBaggage).
 */
class ReceivedBaggage implements Baggage {
  /** Cached outbound header (computed on first inject, or the received text when canonical). */
  header: string | undefined;
  private parsed: readonly BaggageMember[] | undefined;

  /** From parsed members, or from a canonical header text (see isCanonicalBaggage), parsed on first read. */
  constructor(members: readonly BaggageMember[] | undefined, canonicalText?: string) {
    this.parsed = members;
    this.header = canonicalText;
  }

  get members(): readonly BaggageMember[] {
    return (this.parsed ??= parseBaggage(this.header));
  }

  getEntry(key: string): BaggageEntry | undefined {
    for (const m of this.members) if (m.key === key) return entryOf(m);
    return undefined;
  }

  getAllEntries(): [string, BaggageEntry][] {
    return this.members.map((m) => [m.key, entryOf(m)]);
  }

  private derive(change: (b: Baggage) => Baggage): Baggage {
    const plain = propagation.createBaggage(Object.fromEntries(this.getAllEntries()));
    const next = change(plain);
    RECEIVED.set(next, this.members);
    return next;
  }

  setEntry(key: string, entry: BaggageEntry): Baggage {
    return this.derive((b) => b.setEntry(key, entry));
  }

  removeEntry(key: string): Baggage {
    return this.derive((b) => b.removeEntry(key));
  }

  removeEntries(...keys: string[]): Baggage {
    return this.derive((b) => b.removeEntries(...keys));
  }

  clear(): Baggage {
    return this.derive((b) => b.clear());
  }
}

/**
 * Serializes `bag` for the wire. Members that are still what was received go out verbatim, the
 * others canonically encoded; the routing-key member is budgeted first under the W3C limits.
 */
export function serializeBaggage(bag: Baggage, received: readonly BaggageMember[] | undefined, keyName: string): string {
  const texts: string[] = [];
  let priority = -1;
  const seen = new Set<string>();
  if (received !== undefined) {
    for (const m of received) {
      const e = bag.getEntry(m.key);
      if (e === undefined) continue;
      seen.add(m.key);
      const unchanged = e.value === m.value && metadataText(e) === m.metadata;
      const t =
        m.raw !== undefined && unchanged
          ? m.raw
          : unchanged && m.key === keyName
            ? keyMemberText(m)
            : encodeMember(m.key, e.value, metadataText(e));
      if (t === undefined) continue;
      if (m.key === keyName) priority = texts.length;
      texts.push(t);
    }
  }
  for (const [key, e] of bag.getAllEntries()) {
    if (seen.has(key)) continue;
    const t = encodeMember(key, e.value, metadataText(e));
    if (t === undefined) continue;
    if (key === keyName) priority = texts.length;
    texts.push(t);
  }
  return joinMembers(texts, priority);
}

/** Character classes of the W3C baggage grammar, indexed by char code: 1 token (RFC 7230 tchar), 2 value (baggage-octet). */
const B_CLASS = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") B_CLASS[c.charCodeAt(0)] = 1;
for (let c = 0x21; c <= 0x7e; c++) if (c !== 0x22 && c !== 0x2c && c !== 0x3b && c !== 0x5c) B_CLASS[c] = B_CLASS[c]! | 2;
const TOKEN = 1;
const VALUE = 2;
/** Key positions of the header being checked (start, end pairs); isCanonicalBaggage is synchronous. */
const keySpans = new Int32Array(2 * (MAX_MEMBERS + 1));

function isClass(text: string, i: number, cls: number): boolean {
  const c = text.charCodeAt(i);
  return c < 128 && (B_CLASS[c]! & cls) !== 0;
}

function skipOws(text: string, i: number): number {
  while (i < text.length && isOws(text.charCodeAt(i))) i++;
  return i;
}

/**
 * True when a baggage header is forwarded exactly as received: within the W3C limits, every member
 * valid W3C (`key OWS "=" OWS value *(OWS ";" OWS key [OWS "=" OWS value])`, so forwarded verbatim)
 * with no whitespace around it, no empty member, no duplicate key (keys compared as received, as
 * the parser compares them). One pass, no allocation;
 * parsing then waits until someone reads an entry.
 */
export function isCanonicalBaggage(text: string): boolean {
  const n = text.length;
  if (n === 0 || n > MAX_BYTES) return false;
  let count = 0;
  let i = 0;
  for (;;) {
    const ks = i;
    while (i < n && isClass(text, i, TOKEN)) i++;
    const ke = i;
    if (ke === ks) return false;
    for (let k = 0; k < count; k++) {
      const a = keySpans[2 * k]!;
      if (keySpans[2 * k + 1]! - a !== ke - ks) continue;
      let d = 0;
      while (d < ke - ks && text.charCodeAt(a + d) === text.charCodeAt(ks + d)) d++;
      if (d === ke - ks) return false; // duplicate key
    }
    if (count === MAX_MEMBERS) return false;
    keySpans[2 * count] = ks;
    keySpans[2 * count + 1] = ke;
    count++;
    i = skipOws(text, i);
    if (i === n || text.charCodeAt(i) !== 0x3d) return false; // '='
    i = skipOws(text, i + 1);
    while (i < n && isClass(text, i, VALUE)) i++;
    for (;;) {
      // properties: OWS ";" OWS key [OWS "=" OWS value]
      const j = skipOws(text, i);
      if (j === n || text.charCodeAt(j) !== 0x3b) break;
      i = skipOws(text, j + 1);
      const ps = i;
      while (i < n && isClass(text, i, TOKEN)) i++;
      if (i === ps) return false;
      const e = skipOws(text, i);
      if (e < n && text.charCodeAt(e) === 0x3d) {
        i = skipOws(text, e + 1);
        while (i < n && isClass(text, i, VALUE)) i++;
      }
    }
    // The member ends here; parsing would trim a trailing OWS (after an empty value).
    if (isOws(text.charCodeAt(i - 1))) return false;
    if (i === n) return true;
    if (text.charCodeAt(i) !== 0x2c) return false; // ','
    i++;
  }
}

/** The Baggage of a received header, or undefined when it has no valid member. Never throws. */
function receivedBaggage(header: HeaderValue): Baggage | undefined {
  if (typeof header === 'string' && isCanonicalBaggage(header)) return new ReceivedBaggage(undefined, header);
  const members = parseBaggage(header);
  return members.length === 0 ? undefined : new ReceivedBaggage(members);
}

/** Adds the baggage of `header` to `ctx` (replacing any baggage it had). Never throws. */
export function extractBaggage(ctx: Context, header: HeaderValue): Context {
  const bag = receivedBaggage(header);
  return bag === undefined ? ctx : propagation.setBaggage(ctx, bag);
}

/** The remote span of a received `traceparent` (+ `tracestate`), or undefined when it is invalid. */
function receivedSpan(tp: string, tsText: string | undefined): Span | undefined {
  const p = parseTraceparent(tp);
  // Hex digits are checked by the parser; only the all-zero ids remain invalid.
  if (p === undefined || p.traceId === ZERO_TRACE_ID || p.spanId === ZERO_SPAN_ID) return undefined;
  const traceState = tsText ? traceStateOf(tsText) : undefined;
  return trace.wrapSpanContext({ traceId: p.traceId, spanId: p.spanId, traceFlags: p.traceFlags, isRemote: true, traceState });
}

// The context keys of @opentelemetry/api's trace.setSpan and propagation.setBaggage: created with
// createContextKey, i.e. Symbol.for(description), so shared by every copy of the API. Checked once
// below; if the API ever changes them, extract falls back to building the context eagerly.
const SPAN_KEY = createContextKey('OpenTelemetry Context Key SPAN');
const BAGGAGE_KEY = createContextKey('OpenTelemetry Baggage Key');
const LAZY_CONTEXT = ((): boolean => {
  try {
    const bag = propagation.createBaggage();
    const sc = { traceId: '1'.repeat(32), spanId: '1'.repeat(16), traceFlags: 0 };
    const span = trace.wrapSpanContext(sc);
    return (
      propagation.setBaggage(ROOT_CONTEXT, bag).getValue(BAGGAGE_KEY) === bag &&
      trace.setSpan(ROOT_CONTEXT, span).getValue(SPAN_KEY) === span
    );
  } catch {
    return false;
  }
})();

const PENDING = Symbol('pending');

/**
 * The context `extract` returns: `base` plus the received span and baggage, which are parsed and
 * validated on first read (the span when something reads the trace context, the baggage when
 * something reads an entry or injects). Reads give what `trace.setSpanContext` +
 * `propagation.setBaggage` on `base` would give (a header without a valid value leaves `base`'s
 * value visible); `setValue`/`deleteValue` return an ordinary context with both values set. One
 * object per request instead of two context copies, and nothing parsed that is never used.
 */
class ExtractedContext implements Context {
  private span: Span | undefined | typeof PENDING = PENDING;
  private bag: Baggage | undefined | typeof PENDING = PENDING;

  constructor(
    private readonly base: Context,
    private readonly traceparent: string | undefined,
    private readonly tracestate: string | undefined,
    private readonly baggage: HeaderValue,
  ) {}

  private spanValue(): Span | undefined {
    if (this.span === PENDING) {
      try {
        this.span = this.traceparent === undefined ? undefined : receivedSpan(this.traceparent, this.tracestate);
      } catch {
        this.span = undefined;
      }
    }
    return this.span;
  }

  private baggageValue(): Baggage | undefined {
    if (this.bag === PENDING) this.bag = this.baggage === undefined ? undefined : receivedBaggage(this.baggage);
    return this.bag;
  }

  getValue(key: symbol): unknown {
    if (key === SPAN_KEY) {
      const span = this.spanValue();
      if (span !== undefined) return span;
    } else if (key === BAGGAGE_KEY) {
      const bag = this.baggageValue();
      if (bag !== undefined) return bag;
    }
    return this.base.getValue(key);
  }

  private materialize(): Context {
    let ctx = this.base;
    const span = this.spanValue();
    if (span !== undefined) ctx = ctx.setValue(SPAN_KEY, span);
    const bag = this.baggageValue();
    if (bag !== undefined) ctx = ctx.setValue(BAGGAGE_KEY, bag);
    return ctx;
  }

  setValue(key: symbol, value: unknown): Context {
    return this.materialize().setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return this.materialize().deleteValue(key);
  }
}

/**
 * The received member behind `bag`'s entry `key` (the routing key is read from its raw value):
 * for received baggage the member itself, for baggage derived from it the member when the entry
 * is unchanged. Undefined for baggage built through the API (its value is the raw value).
 */
export function receivedMember(bag: Baggage, key: string): BaggageMember | undefined {
  const members = bag instanceof ReceivedBaggage ? bag.members : RECEIVED.get(bag);
  if (members === undefined) return undefined;
  for (const m of members) {
    if (m.key !== key) continue;
    if (bag instanceof ReceivedBaggage) return m;
    const e = bag.getEntry(key);
    return e !== undefined && e.value === m.value ? m : undefined;
  }
  return undefined;
}

/**
 * Records that `derived` was made from `source` (e.g. by `setEntry`), so members it did not change
 * are still forwarded verbatim. Baggage derived through the plain OpenTelemetry API without this
 * link is serialized canonically (same entries, possibly different percent-encoding).
 */
export function linkDerivedBaggage(source: Baggage, derived: Baggage): void {
  if (source === derived || RECEIVED.has(derived)) return;
  const members = source instanceof ReceivedBaggage ? source.members : RECEIVED.get(source);
  if (members !== undefined) RECEIVED.set(derived, members);
}

/** The outbound `baggage` header value for `ctx`, or undefined when it carries no baggage. */
export function baggageHeader(ctx: Context, keyName: string = currentKeyName()): string | undefined {
  const bag = propagation.getBaggage(ctx);
  if (bag === undefined) return undefined;
  let header: string;
  if (bag instanceof ReceivedBaggage) {
    // Unchanged since extract: every member is what we received; serialize once per request.
    if (bag.header === undefined) {
      const texts: string[] = [];
      let priority = -1;
      for (const m of bag.members) {
        const t = m.key === keyName ? keyMemberText(m) : memberText(m);
        if (t === undefined) continue;
        if (m.key === keyName) priority = texts.length;
        texts.push(t);
      }
      bag.header = joinMembers(texts, priority);
    }
    header = bag.header;
  } else {
    header = serializeBaggage(bag, RECEIVED.get(bag), keyName);
  }
  return header === '' ? undefined : header;
}

/** W3C baggage + trace-context in one propagator (fields: traceparent, tracestate, baggage). */
export class MeshforkPropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    try {
      const sc = trace.getSpanContext(ctx);
      if (sc !== undefined && spanContextValid(sc)) {
        setter.set(carrier, TRACEPARENT_HEADER, `00-${sc.traceId}-${sc.spanId}-${FLAGS_HEX[sc.traceFlags & 0xff]!}`);
        const ts = sc.traceState?.serialize();
        if (ts) setter.set(carrier, TRACESTATE_HEADER, ts);
      }
      const b = baggageHeader(ctx);
      if (b !== undefined) setter.set(carrier, BAGGAGE_HEADER, b);
    } catch {
      // Propagation must never break the caller's request.
    }
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    try {
      const tpv = first(getter.get(carrier, TRACEPARENT_HEADER));
      const tp = tpv === undefined || typeof tpv === 'string' ? tpv : String(tpv);
      let tsText: string | undefined;
      if (tp !== undefined) {
        const tsv = getter.get(carrier, TRACESTATE_HEADER);
        const t: unknown = Array.isArray(tsv) ? tsv.join(',') : tsv;
        // A tracestate the getter returns as neither string nor array makes the whole extraction
        // fail (as it always has: the API's TraceState cannot parse it) when the traceparent is valid.
        if (t && typeof t !== 'string') return receivedSpan(tp, undefined) === undefined ? this.extractBaggageOnly(ctx, carrier, getter) : ctx;
        tsText = t === '' ? undefined : (t as string | undefined);
      }
      const b = getter.get(carrier, BAGGAGE_HEADER);
      if (tp === undefined && b === undefined) return ctx;
      if (LAZY_CONTEXT) return new ExtractedContext(ctx, tp, tsText, b);
      let out = ctx;
      const span = tp === undefined ? undefined : receivedSpan(tp, tsText);
      if (span !== undefined) out = trace.setSpan(out, span);
      if (b !== undefined) out = extractBaggage(out, b);
      return out;
    } catch {
      return ctx;
    }
  }

  private extractBaggageOnly(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const b = getter.get(carrier, BAGGAGE_HEADER);
    return b === undefined ? ctx : extractBaggage(ctx, b);
  }

  fields(): string[] {
    return [TRACEPARENT_HEADER, TRACESTATE_HEADER, BAGGAGE_HEADER];
  }
}

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
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  baggageEntryMetadataFromString,
  createTraceState,
  isSpanContextValid,
  propagation,
  trace,
} from '@opentelemetry/api';
import { type BaggageMember, type HeaderValue, encodeMember, joinMembers, memberText, parseBaggage } from './baggage.js';
import { currentKeyName } from './config.js';

export const BAGGAGE_HEADER = 'baggage';
export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

/**
 * The received members behind a Baggage derived from received baggage (by setEntry/removeEntry),
 * so members it did not change are still forwarded verbatim. Kept beside the Baggage rather than
 * in the context: a context value would cost one more context copy per request.
 */
const RECEIVED = new WeakMap<Baggage, readonly BaggageMember[]>();

const TRACEPARENT = /^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^ \t]*)?[ \t]*$/;

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
  /** Cached outbound header (computed on first inject). */
  header: string | undefined;

  constructor(readonly members: readonly BaggageMember[]) {}

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
      const t =
        m.raw !== undefined && e.value === m.value && metadataText(e) === m.metadata
          ? m.raw
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

/** Adds the baggage of `header` to `ctx` (replacing any baggage it had). Never throws. */
export function extractBaggage(ctx: Context, header: HeaderValue): Context {
  const members = parseBaggage(header);
  if (members.length === 0) return ctx;
  return propagation.setBaggage(ctx, new ReceivedBaggage(members));
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
        const t = memberText(m);
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
      if (sc !== undefined && isSpanContextValid(sc)) {
        const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
        setter.set(carrier, TRACEPARENT_HEADER, `00-${sc.traceId}-${sc.spanId}-${flags}`);
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
      let out = ctx;
      const tp = first(getter.get(carrier, TRACEPARENT_HEADER));
      if (tp !== undefined) {
        const m = TRACEPARENT.exec(tp);
        if (m !== null && m[1] !== 'ff' && !(m[1] === '00' && m[5] !== undefined)) {
          const sc = {
            traceId: m[2]!,
            spanId: m[3]!,
            traceFlags: parseInt(m[4]!, 16),
            isRemote: true,
            traceState: undefined as ReturnType<typeof createTraceState> | undefined,
          };
          if (isSpanContextValid(sc)) {
            const tsv = getter.get(carrier, TRACESTATE_HEADER);
            const tsText = Array.isArray(tsv) ? tsv.join(',') : tsv;
            if (tsText) sc.traceState = createTraceState(tsText);
            out = trace.setSpanContext(out, sc);
          }
        }
      }
      const b = getter.get(carrier, BAGGAGE_HEADER);
      if (b !== undefined) out = extractBaggage(out, b);
      return out;
    } catch {
      return ctx;
    }
  }

  fields(): string[] {
    return [TRACEPARENT_HEADER, TRACESTATE_HEADER, BAGGAGE_HEADER];
  }
}

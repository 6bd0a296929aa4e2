/**
 * The routing key of an incoming request, by meshfork's one precedence rule (the VirtualService
 * routes and the ingress guard apply the same rule; src/planner/routing-key.ts):
 *
 * The key is read from the FIRST carrier, in this order, that holds a member/header with the key
 * name (any value):
 *  1. `baggage` (repeated headers joined with ','): the LAST list member whose key text, OWS
 *     trimmed, is exactly the key name (OpenTelemetry JS and Go keep the last duplicate member);
 *  2. `tracestate` (joined with ','), when enabled: the LAST member whose key is exactly the key
 *     name (OpenTelemetry JS's W3C trace-context propagator keeps the last duplicate too);
 *  3. each configured plain header in order, then `uberctx-<keyName>` and `ot-baggage-<keyName>`
 *     when enabled: the whole value.
 * The key is that member's value as raw text (OWS trimmed, baggage `;properties` dropped, never
 * percent-decoded). When it is not `[a-z0-9]{4,32}` the request is untagged: there is no fallback
 * to another member or a later carrier. Member keys are compared as raw text: no percent-decoding,
 * no case folding, no Unicode trimming (`meshfork%2Drouting%2Dkey` or `Meshfork-Routing-Key` is
 * another key).
 *
 * Grammar (W3C Baggage / Trace Context): baggage `list-member = key OWS "=" OWS value *(OWS ";"
 * OWS property)`; tracestate `list-member = key "=" value`, with OWS only around members.
 * Pure functions, no OpenTelemetry globals.
 */
import { type HeaderValue, headerText, isRoutingKey } from './baggage.js';

/** Where the routing key may travel in a request (the planner's RoutingKeyConfig, SDK side). */
export interface KeyCarriers {
  /** Member key in `baggage` and `tracestate`. */
  readonly keyName: string;
  /** Read a `tracestate` member. @default true */
  readonly tracestate?: boolean;
  /** Plain headers (lower case) whose whole value is the key, in precedence order. @default [] */
  readonly headers?: readonly string[];
  /** Read `uberctx-<keyName>` and `ot-baggage-<keyName>`. @default false */
  readonly legacyHeaders?: boolean;
}

/** Which carrier decided, and the key it gave (undefined: untagged). */
export interface RequestKey {
  /** Header name of the first carrier holding the key name; undefined when none does. */
  readonly carrier: string | undefined;
  /** The routing key; undefined when the request is untagged. */
  readonly key: string | undefined;
}

export const NO_KEY: RequestKey = Object.freeze({ carrier: undefined, key: undefined });

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function skipOws(s: string, from: number, to: number): number {
  while (from < to && isOws(s.charCodeAt(from))) from++;
  return from;
}

function skipOwsBack(s: string, from: number, to: number): number {
  while (to > from && isOws(s.charCodeAt(to - 1))) to--;
  return to;
}

function textAt(s: string, from: number, to: number, expected: string): boolean {
  return to - from === expected.length && s.startsWith(expected, from);
}

/**
 * The raw value (OWS trimmed, properties dropped) of the LAST baggage member keyed exactly
 * `keyName`, or undefined when no member has that key.
 */
export function baggageKeyValue(text: string, keyName: string): string | undefined {
  if (!text.includes(keyName)) return undefined;
  let found: string | undefined;
  let eq = -2; // next '=' at or after `start` (-1: none left); searched again only once passed: linear
  let semi = -2;
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    if (eq !== -1 && eq < start) eq = text.indexOf('=', start);
    if (eq !== -1 && eq < end) {
      const ks = skipOws(text, start, eq);
      if (textAt(text, ks, skipOwsBack(text, ks, eq), keyName)) {
        if (semi !== -1 && semi < eq) semi = text.indexOf(';', eq);
        const vs = skipOws(text, eq + 1, end);
        found = text.slice(vs, skipOwsBack(text, vs, semi !== -1 && semi < end ? semi : end));
      }
    }
    start = end + 1;
  }
  return found;
}

/**
 * The raw value of the LAST tracestate member keyed exactly `keyName` (OWS trimmed around the
 * member only), or undefined when no member has that key.
 */
export function tracestateKeyValue(text: string, keyName: string): string | undefined {
  if (!text.includes(keyName)) return undefined;
  let found: string | undefined;
  let eq = -2; // as in baggageKeyValue: each '=' searched once
  for (let start = 0; start <= text.length; ) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const ms = skipOws(text, start, end);
    const me = skipOwsBack(text, ms, end);
    if (eq !== -1 && eq < ms) eq = text.indexOf('=', ms);
    if (eq !== -1 && eq < me && textAt(text, ms, eq, keyName)) found = text.slice(eq + 1, me);
    start = end + 1;
  }
  return found;
}

const HEADERS_OF = new WeakMap<KeyCarriers, readonly string[]>();

/** The carriers' header names in precedence order (each once; list headers never as plain ones). */
export function carrierHeaders(carriers: KeyCarriers): readonly string[] {
  let names = HEADERS_OF.get(carriers);
  if (names === undefined) {
    names = headerNames(carriers);
    HEADERS_OF.set(carriers, names);
  }
  return names;
}

function headerNames(carriers: KeyCarriers): string[] {
  const names = ['baggage'];
  if (carriers.tracestate !== false) names.push('tracestate');
  const plain = [...(carriers.headers ?? [])];
  if (carriers.legacyHeaders === true) plain.push(`uberctx-${carriers.keyName}`, `ot-baggage-${carriers.keyName}`);
  for (const h of plain) {
    const name = h.toLowerCase();
    if (name !== 'baggage' && name !== 'tracestate' && !names.includes(name)) names.push(name);
  }
  return names;
}

function decided(carrier: string, value: string | undefined): RequestKey {
  return { carrier, key: isRoutingKey(value) ? value : undefined };
}

/**
 * The routing key of a request by the precedence rule. `get` returns a header's value(s) by
 * lower-case name (repeated values are joined with ','). Never throws.
 */
export function requestRoutingKey(get: (name: string) => HeaderValue, carriers: KeyCarriers): RequestKey {
  try {
    for (const name of carrierHeaders(carriers)) {
      const text = headerText(get(name));
      if (text === undefined) continue;
      if (name === 'baggage' || name === 'tracestate') {
        const value = name === 'baggage' ? baggageKeyValue(text, carriers.keyName) : tracestateKeyValue(text, carriers.keyName);
        if (value !== undefined) return decided(name, value);
      } else {
        const s = skipOws(text, 0, text.length);
        return decided(name, text.slice(s, skipOwsBack(text, s, text.length)));
      }
    }
  } catch {
    // a getter that throws: treat as untagged
  }
  return NO_KEY;
}

/**
 * `get` for a plain headers object (Node's IncomingHttpHeaders, a fetch-style record): names
 * compared case-insensitively. Node's own header objects have lower-case names only, so the
 * names are lower-cased (once) only after a miss in an object that has other names.
 */
export function recordGetter(headers: Readonly<Record<string, unknown>>): (name: string) => HeaderValue {
  let lowered: Map<string, unknown> | null | undefined;
  return (name) => {
    const direct = headers[name];
    if (direct !== undefined) return direct as HeaderValue;
    if (lowered === undefined) {
      lowered = null;
      for (const k in headers) {
        const l = k.toLowerCase();
        if (l === k) continue;
        lowered ??= new Map();
        if (!lowered.has(l)) lowered.set(l, headers[k]);
      }
    }
    return lowered?.get(name) as HeaderValue;
  };
}

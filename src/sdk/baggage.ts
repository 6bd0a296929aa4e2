/**
 * Pure W3C baggage handling: parsing, canonical encoding, limits, routing-key members.
 *
 * No I/O and no OpenTelemetry globals here, so every rule is unit- and property-testable.
 *
 * Semantics relied on (W3C Baggage, https://www.w3.org/TR/baggage/):
 * - `baggage-string = list-member 0*179( OWS "," OWS list-member )`,
 *   `list-member = key OWS "=" OWS value *( OWS ";" OWS property )`,
 *   `property = key OWS "=" OWS value / key`, `key = token` (RFC 7230),
 *   `value = *baggage-octet` with baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E;
 *   values are percent-encoded, and undecodable sequences decode to U+FFFD.
 * - "Limits": a platform MUST propagate at least 64 list-members and 8192 bytes, and if it cannot
 *   propagate all baggage it MUST NOT propagate any partial list-member (whole members only).
 * - OpenTelemetry JS (`@opentelemetry/core` W3CBaggagePropagator) drops members it cannot parse and
 *   keeps the last of duplicate keys; we do the same so `propagation.getBaggage()` readers agree.
 * - Keys are taken as received (OWS trimmed): the grammar makes a key a token and never
 *   percent-encodes it. OpenTelemetry JS decodes keys with decodeURIComponent after a Unicode
 *   trim; we do not, so `meshfork%2Drouting%2Dkey` or `\u00a0meshfork-routing-key` is never read
 *   as the routing-key member, and a member whose key is not a token is dropped.
 */

/** Default baggage member name carrying the routing key. */
export const DEFAULT_KEY_NAME = 'meshfork-routing-key';
/** Member name used by Signadot-instrumented apps (the `signadot` compatibility preset). */
export const SIGNADOT_KEY_NAME = 'sd-routing-key';
/** Routing keys are short, random, lowercase alphanumerics (see DESIGN "The routing key"). */
export const ROUTING_KEY_PATTERN = /^[a-z0-9]{4,32}$/;
/** W3C minimum a platform must propagate; we propagate exactly up to these limits. */
export const MAX_MEMBERS = 64;
export const MAX_BYTES = 8192;

/** True when `value` is a well-formed routing key (`[a-z0-9]{4,32}`). */
export function isRoutingKey(value: unknown): value is string {
  return typeof value === 'string' && ROUTING_KEY_PATTERN.test(value);
}

const OWS = '[ \\t]*';
const TOKEN_SRC = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const VALUE_SRC = '[\\x21\\x23-\\x2B\\x2D-\\x3A\\x3C-\\x5B\\x5D-\\x7E]*';
/** One whole list-member exactly as the W3C grammar allows it (already trimmed of outer OWS). */
const VALID_MEMBER = new RegExp(
  `^${TOKEN_SRC}${OWS}=${OWS}${VALUE_SRC}(?:${OWS};${OWS}${TOKEN_SRC}(?:${OWS}=${OWS}${VALUE_SRC})?)*$`,
);
/** The property part (after the first `;`) of a valid member. */
const VALID_PROPERTIES = new RegExp(
  `^${OWS}${TOKEN_SRC}(?:${OWS}=${OWS}${VALUE_SRC})?(?:${OWS};${OWS}${TOKEN_SRC}(?:${OWS}=${OWS}${VALUE_SRC})?)*${OWS}$`,
);
/** Characters a value may carry unencoded (baggage-octet minus `%`, which must stay an escape). */
const PLAIN_VALUE = /^[\x21\x23\x24\x26-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
/** A key as the grammar allows it (a token); kept as is when encoding, other keys are percent-encoded. */
const TOKEN_KEY = new RegExp(`^${TOKEN_SRC}$`);

/** One parsed list-member. */
export interface BaggageMember {
  /** Name as received (a token, OWS trimmed; never percent-decoded). */
  readonly key: string;
  /** Percent-decoded value. */
  readonly value: string;
  /** Value as received (OWS trimmed, properties dropped); the routing key is read from this. */
  readonly rawValue: string;
  /** Properties after the first `;`, verbatim (OpenTelemetry's opaque "metadata"). */
  readonly metadata: string | undefined;
  /**
   * The member's text exactly as received (outer whitespace trimmed) when it is valid W3C, so it
   * can be forwarded byte for byte; undefined when it must be re-encoded canonically.
   */
  readonly raw: string | undefined;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Percent-decodes like the W3C spec asks: invalid UTF-8 sequences become U+FFFD instead of failing
 * (OpenTelemetry JS drops such members; we keep them, which the spec prefers). Never throws.
 */
export function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    const bytes: number[] = [];
    for (let i = 0; i < s.length; ) {
      if (s.charCodeAt(i) === 0x25 && HEX.test(s.slice(i + 1, i + 3))) {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 3;
      } else {
        const cp = s.codePointAt(i)!;
        const ch = String.fromCodePoint(cp); // whole code point: never split a surrogate pair
        for (const b of Buffer.from(ch, 'utf8')) bytes.push(b);
        i += ch.length;
      }
    }
    return new TextDecoder('utf-8', { fatal: false }).decode(Uint8Array.from(bytes));
  }
}

function percentEncode(s: string, plain: RegExp): string {
  if (plain.test(s)) return s;
  let out = '';
  // TextEncoder semantics: lone surrogates become U+FFFD rather than throwing (unlike encodeURIComponent).
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += b < 0x80 && plain.test(c) ? c : `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
  }
  return out;
}

/**
 * Canonical text for a member that cannot be forwarded verbatim (new or changed entries): key and
 * value percent-encoded to W3C-valid characters. Returns undefined when the metadata is not a valid
 * property list (such a member is dropped whole rather than forwarded in a form we cannot vouch for).
 */
export function encodeMember(key: string, value: string, metadata?: string): string | undefined {
  if (key.length === 0) return undefined;
  const k = percentEncode(key, TOKEN_KEY);
  const v = percentEncode(value, PLAIN_VALUE);
  if (metadata === undefined || metadata === '') return `${k}=${v}`;
  if (!VALID_PROPERTIES.test(metadata)) return undefined;
  return `${k}=${v};${metadata}`;
}

/** Header values as they come from Node (`string | string[]`), Kafka (`Buffer`) or gRPC metadata. */
export type HeaderValue = string | Uint8Array | readonly (string | Uint8Array)[] | null | undefined;

/** Joins a header value (repeated headers are joined with `,`, as Envoy and Node do). Never throws. */
export function headerText(value: HeaderValue): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (const v of value as readonly unknown[]) {
      const t = typeof v === 'string' || v instanceof Uint8Array ? headerText(v) : undefined;
      if (t !== undefined && t !== '') parts.push(t);
    }
    return parts.length === 0 ? undefined : parts.join(',');
  }
  return undefined;
}

function parseMember(text: string): BaggageMember | undefined {
  const member = trimOws(text);
  if (member === '') return undefined;
  const semi = member.indexOf(';');
  const pair = semi === -1 ? member : member.slice(0, semi);
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const key = trimOws(pair.slice(0, eq));
  if (!TOKEN_KEY.test(key)) return undefined; // key = token
  const rawValue = trimOws(pair.slice(eq + 1));
  const metadata = semi === -1 ? undefined : member.slice(semi + 1);
  const raw = VALID_MEMBER.test(member) ? member : undefined;
  return { key, value: percentDecode(rawValue), rawValue, metadata: metadata === '' ? undefined : metadata, raw };
}

/**
 * Parses a baggage header into members, in order, keeping only the last member of each key (at the
 * position of that last occurrence). Malformed members are skipped; never throws.
 */
export function parseBaggage(header: HeaderValue): BaggageMember[] {
  let text: string | undefined;
  try {
    text = headerText(header);
  } catch {
    return [];
  }
  if (text === undefined || text === '') return [];
  const all: BaggageMember[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const m = parseMember(text.slice(start, end));
    if (m !== undefined) all.push(m);
    start = end + 1;
  }
  // Deduplicate keeping the last occurrence (OpenTelemetry JS semantics).
  let dup = false;
  const seen = new Set<string>();
  for (const m of all) {
    if (seen.has(m.key)) {
      dup = true;
      break;
    }
    seen.add(m.key);
  }
  if (!dup) return all;
  seen.clear();
  const out: BaggageMember[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const m = all[i]!;
    if (!seen.has(m.key)) {
      seen.add(m.key);
      out.push(m);
    }
  }
  return out.reverse();
}

/** Text to emit for a parsed member: verbatim when valid, canonical otherwise. */
export function memberText(m: BaggageMember): string | undefined {
  return m.raw ?? encodeMember(m.key, m.value, m.metadata);
}

const WIRE_VALUE = new RegExp(`^${VALUE_SRC}$`);

/**
 * Text to emit for a received routing-key member: verbatim when valid; otherwise its raw value
 * (when it is wire-valid) without properties, or an empty value. Never re-encoded from the decoded
 * value (`%61bcd1234` must not become the key `abcd1234`) and never dropped (the next hop would then
 * read a later carrier): the next hop reads the same key, or none, as this one.
 */
export function keyMemberText(m: BaggageMember): string {
  return m.raw ?? `${m.key}=${WIRE_VALUE.test(m.rawValue) ? m.rawValue : ''}`;
}

/**
 * Joins member texts into one header value within the W3C limits: at most {@link MAX_MEMBERS}
 * members and {@link MAX_BYTES} bytes (separators included). Members that do not fit are dropped
 * whole, never truncated. The member at `priority` (the routing key) is budgeted first so that a
 * long foreign baggage can never push it out; output keeps the original order.
 * Texts are ASCII (verbatim members are W3C-valid, canonical ones percent-encoded), so length = bytes.
 */
export function joinMembers(texts: readonly string[], priority = -1): string {
  let count = 0;
  let bytes = 0;
  const p = priority >= 0 && priority < texts.length ? texts[priority]! : undefined;
  if (p !== undefined && p.length <= MAX_BYTES) {
    count = 1;
    bytes = p.length;
  }
  let all = true;
  let total = 0;
  for (const t of texts) total += t.length;
  if (texts.length > MAX_MEMBERS || total + texts.length - 1 > MAX_BYTES) all = false;
  if (all) return texts.join(',');
  const keep: boolean[] = new Array<boolean>(texts.length).fill(false);
  if (p !== undefined && count === 1) keep[priority] = true;
  for (let i = 0; i < texts.length; i++) {
    if (i === priority) continue;
    const len = texts[i]!.length;
    const add = count === 0 ? len : len + 1;
    if (count + 1 <= MAX_MEMBERS && bytes + add <= MAX_BYTES) {
      keep[i] = true;
      count++;
      bytes += add;
    }
  }
  let out = '';
  for (let i = 0; i < texts.length; i++) {
    if (!keep[i]) continue;
    out = out === '' ? texts[i]! : `${out},${texts[i]!}`;
  }
  return out;
}

/**
 * The routing key carried by a baggage header under `keyName`: the raw value of the last member
 * keyed exactly `keyName`, when it is `[a-z0-9]{4,32}` (never percent-decoded).
 */
export function routingKeyFromBaggage(header: HeaderValue, keyName: string = DEFAULT_KEY_NAME): string | undefined {
  const members = parseBaggage(header);
  for (const m of members) if (m.key === keyName) return isRoutingKey(m.rawValue) ? m.rawValue : undefined;
  return undefined;
}

/**
 * Returns `header` with the routing-key member set to `key`: every existing member named `keyName`
 * is removed, the new one is appended, foreign members are kept (verbatim when valid) and limits
 * are applied with the routing key budgeted first. Never throws.
 */
export function setRoutingKeyInBaggage(header: HeaderValue, key: string, keyName: string = DEFAULT_KEY_NAME): string {
  const texts: string[] = [];
  for (const m of parseBaggage(header)) {
    if (m.key === keyName) continue;
    const t = memberText(m);
    if (t !== undefined) texts.push(t);
  }
  const own = encodeMember(keyName, key);
  if (own === undefined) return joinMembers(texts);
  texts.push(own);
  return joinMembers(texts, texts.length - 1);
}

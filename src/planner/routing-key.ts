import { createHash } from 'node:crypto';

/**
 * Where a routing key travels in a request and how meshfork matches it.
 *
 * The precedence rule (the ingress guard and the SDK apply the same one): a request's routing key
 * is read from the FIRST carrier, in this order, that holds a member/header with the key name
 * (any value):
 *  1. `baggage` (repeated headers joined with ','): the LAST member whose key, OWS-trimmed, is
 *     exactly the key name (OpenTelemetry JS and Go keep the last duplicate member);
 *  2. `tracestate` (joined with ','), when enabled: the LAST member whose key is exactly the key
 *     name (OpenTelemetry JS's TraceState keeps the last duplicate; W3C Trace Context says keys
 *     are unique, and OpenTelemetry Go refuses a tracestate with a duplicate key altogether);
 *  3. each plain header in config order, then `uberctx-<keyName>` and `ot-baggage-<keyName>`
 *     when enabled: the whole value.
 * The key is that member's value as raw text (OWS trimmed, baggage `;properties` dropped, never
 * percent-decoded); when it is not `[a-z0-9]{4,32}` the request is UNTAGGED: there is no fallback
 * to another member or a later carrier. Member keys are compared as raw text.
 */
export interface RoutingKeyConfig {
  /** Member key in W3C `baggage` and `tracestate`. @default 'meshfork-routing-key' */
  readonly keyName: string;
  /** Also match a W3C `tracestate` list member `<keyName>=<key>`. @default true */
  readonly tracestate: boolean;
  /** Plain headers whose whole value is the routing key, e.g. `x-meshfork-routing-key`. @default [] */
  readonly headers: readonly string[];
  /** Also match the Jaeger (`uberctx-<keyName>`) and OpenTracing (`ot-baggage-<keyName>`) forms. @default false */
  readonly legacyHeaders: boolean;
}

export const DEFAULT_KEY_NAME = 'meshfork-routing-key';

export const DEFAULT_ROUTING_KEY_CONFIG: RoutingKeyConfig = Object.freeze({
  keyName: DEFAULT_KEY_NAME,
  tracestate: true,
  headers: Object.freeze([]) as readonly string[],
  legacyHeaders: false,
});

/** Named presets for `--compat`. `signadot` accepts what apps instrumented for Signadot send. */
export const COMPAT_PRESETS: Readonly<Record<string, RoutingKeyConfig>> = Object.freeze({
  signadot: Object.freeze({
    keyName: 'sd-routing-key',
    tracestate: true,
    headers: Object.freeze([]) as readonly string[],
    legacyHeaders: true,
  }),
});

/** A routing key: short, `[a-z0-9]` only, so it can never change the meaning of a regex. */
export const ROUTING_KEY_PATTERN = '^[a-z0-9]{4,32}$';
/**
 * A baggage/tracestate key meshfork accepts: lower-case token characters only, at most 42 of
 * them. The header regexes grow by about 19 characters per key-name character, and Istio refuses
 * a regex longer than 1024 characters (pilot validation `validateStringRegexp`); 42 is the longest
 * name whose regexes all fit, whatever its characters (checked by test/routing/regex-size.test.ts).
 */
export const KEY_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,41}$';
/** An HTTP header name as Istio's VirtualService header match requires it (lower case). */
export const HEADER_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,126}$';
/**
 * Header names that are never a plain routing-key header (`routing.headers`), whose whole value
 * would be the key and which the ingress guard removes wholesale: `baggage` and `tracestate` carry
 * the key as a list member among other members; `traceparent`, `host` and the framing headers
 * `content-length`, `te`, `connection` and `transfer-encoding` are needed by the request itself;
 * `x-meshfork-preview-token` is the guard's preview credential. The chart's values.schema.json
 * refuses the same names.
 */
export const RESERVED_HEADER_NAMES: readonly string[] = Object.freeze([
  'baggage',
  'tracestate',
  'traceparent',
  'host',
  'content-length',
  'te',
  'connection',
  'transfer-encoding',
  'x-meshfork-preview-token',
]);

/**
 * Derives a stable routing key for a sandbox without one, so that `synth` output is
 * byte-identical between runs. Derived keys are predictable from the sandbox's name; the ingress
 * guard, not the key's secrecy, stops outsiders from choosing a sandbox.
 */
export function deriveRoutingKey(kind: string, namespace: string, name: string): string {
  const digest = createHash('sha256').update(`meshfork/${kind}/${namespace}/${name}`).digest();
  // 12 base-36 characters from the first 8 bytes: ~62 bits, [a-z0-9] only.
  return digest.readBigUInt64BE(0).toString(36).padStart(13, '0').slice(-12);
}


/** Istio `HTTPMatchRequest`, restricted to what meshfork reads and writes. */
export interface HttpMatchRequest {
  name?: string;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  [field: string]: unknown;
}
/**
 * An Istio `StringMatch`. The empty match `{}` is a presence match: istiod turns an empty
 * StringMatch into an Envoy `present_match` (route.go `canBeConvertedToPresentMatch`), so in
 * `withoutHeaders` it means "the header is absent".
 */
export type StringMatch = { exact: string } | { prefix: string } | { regex: string } | PresenceMatch;
export type PresenceMatch = Record<string, never>;

/**
 * The routing-key match of one sandbox, as OR-ed Istio match blocks:
 *  - `keyed`: the request's routing key (by the precedence rule above) is one of the keys;
 *  - `untagged`: the request carries no key-name member in `baggage` or `tracestate` and none of
 *    the key headers, whatever their values (what a traffic split may take).
 */
export interface RoutingKeyMatch {
  readonly keyed: readonly HttpMatchRequest[];
  readonly untagged: readonly HttpMatchRequest[];
}

// ---------------------------------------------------------------------------------------------
// Header regexes
//
// Envoy (google_re2 `safe_regex`) and gRPC's proxyless xDS clients both FULL-match a header
// regex, on the header's values joined with ','. Older gRPC releases anchor the regex as '^' + re
// + '$' without a group, so no regex here has a top-level alternation. Key names are
// `[a-z0-9][a-z0-9._-]*` and keys `[a-z0-9]+`, so escaping '.' is all the quoting needed.
// ---------------------------------------------------------------------------------------------

/** RFC 9110 optional whitespace: spaces and horizontal tabs. */
const OWS = '[ \\t]*';
const KEY_NAME_RE = new RegExp(KEY_NAME_PATTERN);
const ROUTING_KEY_RE = new RegExp(ROUTING_KEY_PATTERN);

function checkedKeyName(keyName: string): string {
  if (!KEY_NAME_RE.test(keyName)) throw new Error(`key name ${JSON.stringify(keyName)} does not match ${KEY_NAME_PATTERN}`);
  return keyName;
}

function checkedKey(key: string): string {
  if (!ROUTING_KEY_RE.test(key)) throw new Error(`routing key ${JSON.stringify(key)} does not match ${ROUTING_KEY_PATTERN}`);
  return key;
}

/** Key-name text as an RE2 literal: only '.' needs quoting ('-' means itself outside a class). */
function literal(text: string): string {
  return text.replaceAll('.', '\\.');
}

/**
 * RE2 for one comma-free list segment that is NOT a member with key `keyName`, i.e. that does not
 * match `OWS keyName SEP .*` where SEP is `OWS "="` (baggage) or `"="` (tracestate). Built as the
 * complement over the key name's characters k1..kn: after the leading OWS, either the segment
 * DIVERGES — a character other than k(i+1) after k1..ki, or after the whole name (and OWS, for
 * baggage) a character other than '=' — followed by anything; or it ENDS early — a proper prefix
 * of the name, or the name (and OWS, for baggage) and nothing else. The two are disjoint and so
 * are the alternatives at each position: the regex is unambiguous and grows linearly.
 */
function nonMemberSegment(keyName: string, owsBeforeEquals: boolean): string {
  const chars = [...checkedKeyName(keyName)];
  let diverges = owsBeforeEquals ? `${OWS}[^,= \\t]` : '[^,=]';
  let endsEarly = owsBeforeEquals ? OWS : '';
  for (let i = chars.length - 1; i >= 0; i--) {
    const c = chars[i] as string;
    // In a class '.' and a final '-' mean themselves. At the first position the segment's
    // leading OWS has been consumed, so SP/HTAB are excluded too (the first character is never
    // '.' or '-').
    const other = i === 0 ? `[^, \\t${c}]` : `[^,${c}]`;
    diverges = `(?:${other}|${literal(c)}${diverges})`;
    endsEarly = `(?:${literal(c)}${endsEarly})?`;
  }
  return `${OWS}(?:${diverges}[^,]*|${endsEarly})`;
}

/**
 * RE2 that fully matches a joined `baggage` value whose LAST member with key `keyName` has the
 * value `key`: `^(.*,)? OWS K OWS = OWS V OWS (;props)? (,NOT_K)*$`. W3C Baggage:
 * list-member = key OWS "=" OWS value *( OWS ";" OWS property ), members separated by ",".
 * `xK=V`, `K=Vx`, `foo=1;K=V` (a property) and `foo=K=V` never match; neither does `K=V,K=W`.
 */
export function baggageMemberRegex(keyName: string, key: string): string {
  const k = literal(checkedKeyName(keyName));
  return `^(?:.*,)?${OWS}${k}${OWS}=${OWS}${checkedKey(key)}${OWS}(?:;[^,]*)?(?:,${nonMemberSegment(keyName, true)})*$`;
}

/**
 * RE2 that fully matches a joined `tracestate` value whose LAST member with key `keyName` is
 * `keyName=key`: `^(.*,)? OWS K=V OWS (,NOT_K)*$`, the construction of the baggage regex. W3C
 * Trace Context: list-member = key "=" value, members separated by OWS "," OWS; no whitespace
 * around "=" and no properties. `K=V,K=W`, `K =V` and `K=Vx` never match.
 */
export function tracestateMemberRegex(keyName: string, key: string): string {
  const k = literal(checkedKeyName(keyName));
  return `^(?:.*,)?${OWS}${k}=${checkedKey(key)}${OWS}(?:,${nonMemberSegment(keyName, false)})*$`;
}

/**
 * RE2 that fully matches a joined `baggage` (or `tracestate`) value with no member `keyName`:
 * every segment, each starting at the beginning of the value or after a ',', is a non-member.
 * (`(?:^|,)` keeps one copy of the segment regex: Istio refuses regexes over 1024 characters.)
 */
export function noMemberRegex(carrier: 'baggage' | 'tracestate', keyName: string): string {
  return `^(?:(?:^|,)${nonMemberSegment(keyName, carrier === 'baggage')})+$`;
}

// ---------------------------------------------------------------------------------------------
// Match blocks
// ---------------------------------------------------------------------------------------------

type Carrier = { readonly header: string; readonly list: 'baggage' | 'tracestate' | undefined };

/** The carriers of `config` in precedence order, each header once. */
function carriersOf(config: RoutingKeyConfig): Carrier[] {
  const carriers: Carrier[] = [{ header: 'baggage', list: 'baggage' }];
  if (config.tracestate) carriers.push({ header: 'tracestate', list: 'tracestate' });
  const plain = [...config.headers];
  if (config.legacyHeaders) plain.push(`uberctx-${config.keyName}`, `ot-baggage-${config.keyName}`);
  // A plain header named like a list carrier is never read as a whole value.
  for (const header of plain) {
    if (header !== 'baggage' && header !== 'tracestate' && !carriers.some((c) => c.header === header)) carriers.push({ header, list: undefined });
  }
  return carriers;
}

/**
 * The alternatives (OR) for "carrier `c` holds no key-name member / is not sent". A list header
 * needs two: absent (`withoutHeaders: {h: {}}`, an inverted `present_match`), or present with a
 * regex that finds no member. A `withoutHeaders` regex alone would be shorter but is wrong on
 * gRPC's proxyless clients: istiod sets `treat_missing_header_as_empty` on it (route.go
 * TranslateRouteMatch), which grpc-go ignores, so there a missing header never matches an
 * inverted regex (grpc-go internal/xds/matcher/matcher_header.go: `if !ok { return false }`).
 */
function absentAlternatives(c: Carrier, keyName: string): HttpMatchRequest[] {
  const absent: HttpMatchRequest = { withoutHeaders: { [c.header]: {} } };
  if (c.list === undefined) return [absent];
  return [absent, { headers: { [c.header]: { regex: noMemberRegex(c.list, keyName) } } }];
}

/** AND of header-only blocks (their header names are distinct). */
function andBlocks(a: HttpMatchRequest, b: HttpMatchRequest): HttpMatchRequest {
  const headers = { ...a.headers, ...b.headers };
  const withoutHeaders = { ...a.withoutHeaders, ...b.withoutHeaders };
  return {
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    ...(Object.keys(withoutHeaders).length > 0 ? { withoutHeaders } : {}),
  };
}

/** Every AND-combination of one alternative per carrier: "none of `carriers` holds the key name". */
function noneOf(carriers: readonly Carrier[], keyName: string): HttpMatchRequest[] {
  let blocks: HttpMatchRequest[] = [{}];
  for (const c of carriers) {
    const alternatives = absentAlternatives(c, keyName);
    blocks = blocks.flatMap((b) => alternatives.map((alt) => andBlocks(b, alt)));
  }
  return blocks;
}

function keyMatch(c: Carrier, keyName: string, key: string): StringMatch {
  if (c.list === 'baggage') return { regex: baggageMemberRegex(keyName, key) };
  if (c.list === 'tracestate') return { regex: tracestateMemberRegex(keyName, key) };
  return { exact: checkedKey(key) };
}

/**
 * The routing-key match for `keys` (a sandbox's own key first, then its RouteGroups' keys): for
 * each key and carrier, blocks saying "no earlier carrier holds the key name, and this one's
 * routing key is the key"; and the blocks of untagged requests.
 */
export function routingKeyMatchBlocks(config: RoutingKeyConfig, keys: readonly string[]): RoutingKeyMatch {
  const carriers = carriersOf(config);
  const keyed = keys.flatMap((key) =>
    carriers.flatMap((c, i) => {
      const own: HttpMatchRequest = { headers: { [c.header]: keyMatch(c, config.keyName, key) } };
      return noneOf(carriers.slice(0, i), config.keyName).map((earlier) => andBlocks(own, earlier));
    }),
  );
  return { keyed, untagged: noneOf(carriers, config.keyName) };
}

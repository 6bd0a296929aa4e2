/**
 * Shared by the routing property tests: an independent reference of the routing-key precedence
 * rule (no regex) and generators of requests carrying (or nearly carrying) routing keys.
 *
 * The reference:
 *  - baggage (W3C Baggage): members split on ',', trimmed of OWS (SP / HTAB); properties after the
 *    first ';' dropped; key and value split at the first '=' and trimmed of OWS;
 *  - tracestate (W3C Trace Context): members split on ',', trimmed of OWS; key and value split at
 *    the first '='; no OWS around '=' and no properties;
 *  - plain / legacy headers: the whole value;
 *  - precedence: the LAST baggage member with the key name, else the LAST tracestate member with
 *    it, else the first plain/legacy header sent; a value that is not `[a-z0-9]{4,32}` leaves the
 *    request untagged (no fallback).
 * Repeated headers are joined with ',' in arrival order, as Envoy and gRPC present them.
 */
import fc from 'fast-check';
import { COMPAT_PRESETS, DEFAULT_ROUTING_KEY_CONFIG, type RoutingKeyConfig } from '../../src/planner/routing-key.js';
import { joinedHeader, type RouteRequest } from '../../src/routing/evaluate.js';

// ------------------------------------------------------------------------------------------
// Independent oracle
// ------------------------------------------------------------------------------------------

/** RFC 7230 OWS: spaces and horizontal tabs only (String.prototype.trim would strip more). */
export function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

export function baggageMembers(headerValue: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rawMember of headerValue.split(',')) {
    const beforeProps = rawMember.split(';')[0] as string;
    const eq = beforeProps.indexOf('=');
    if (eq === -1) continue;
    out.push([trimOws(beforeProps.slice(0, eq)), trimOws(beforeProps.slice(eq + 1))]);
  }
  return out;
}

export function tracestateMembers(headerValue: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rawMember of headerValue.split(',')) {
    const member = trimOws(rawMember);
    const eq = member.indexOf('=');
    if (eq === -1) continue;
    out.push([member.slice(0, eq), member.slice(eq + 1)]);
  }
  return out;
}

/** All occurrences of header `name` (case-insensitive), each as sent. */
export function occurrences(headers: RouteRequest['headers'], name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) out.push(...(typeof v === 'string' ? [v] : v));
  }
  return out;
}

const ROUTING_KEY = /^[a-z0-9]{4,32}$/;

/** Plain-header carriers of `config`, in precedence order. */
export function plainCarriers(config: RoutingKeyConfig): string[] {
  return [...config.headers, ...(config.legacyHeaders ? [`uberctx-${config.keyName}`, `ot-baggage-${config.keyName}`] : [])];
}

/**
 * The raw routing-key text of a request by the precedence rule, or null when no carrier holds the
 * key name at all: the LAST baggage member with the key name, else the LAST tracestate member
 * with it (when enabled), else the first plain/legacy header sent (its whole joined value).
 */
export function routingKeyText(config: RoutingKeyConfig, headers: RouteRequest['headers']): string | null {
  const bag = joinedHeader(headers, 'baggage');
  const inBaggage = bag === undefined ? [] : baggageMembers(bag).filter(([k]) => k === config.keyName);
  if (inBaggage.length > 0) return (inBaggage[inBaggage.length - 1] as [string, string])[1];
  if (config.tracestate) {
    const ts = joinedHeader(headers, 'tracestate');
    const last = ts === undefined ? undefined : tracestateMembers(ts).findLast(([k]) => k === config.keyName);
    if (last !== undefined) return last[1];
  }
  for (const name of plainCarriers(config)) {
    const value = joinedHeader(headers, name);
    if (value !== undefined) return value;
  }
  return null;
}

/** The request's routing key by the precedence rule; undefined when it is untagged. */
export function routingKeyOf(config: RoutingKeyConfig, headers: RouteRequest['headers']): string | undefined {
  const text = routingKeyText(config, headers);
  return text !== null && ROUTING_KEY.test(text) ? text : undefined;
}

/** Whether any carrier holds the key name (any value): such a request is never split. */
export function holdsKeyName(config: RoutingKeyConfig, headers: RouteRequest['headers']): boolean {
  return routingKeyText(config, headers) !== null;
}

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

export const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const KEY_CHARS = `${ALNUM}._-`;
/** W3C baggage-octet: printable ASCII except SP, '"', ',', ';' and '\'. Includes '='. */
export const BAGGAGE_OCTETS = [...Array(0x7f - 0x21).keys()]
  .map((i) => String.fromCharCode(0x21 + i))
  .filter((c) => !'",;\\'.includes(c))
  .join('');
/** What may appear in a property: anything but ','. */
export const PROPERTY_CHARS = `${BAGGAGE_OCTETS};" \t\\`;

export const charOf = (chars: string): fc.Arbitrary<string> => fc.constantFrom(...chars);

/** Any key name meshfork accepts (KEY_NAME_PATTERN), biased short. */
export const anyKeyNameArb: fc.Arbitrary<string> = fc
  .tuple(charOf(ALNUM), fc.string({ unit: charOf(KEY_CHARS), maxLength: 14 }))
  .map(([first, rest]) => first + rest);
export const anyRoutingKeyArb = fc.string({ unit: charOf(ALNUM), minLength: 4, maxLength: 10 });

/*
 * Pools of configured key names and routing keys.
 *
 * re2-wasm needs ~1-6 ms to compile a pattern, and every (key name, routing key) pair is a new
 * pattern: drawing both freshly on every run would spend the whole time budget compiling. So the
 * CONFIGURED names and keys come from pools (compiled once, then cached by the evaluator), while
 * everything a request carries (members, near misses, properties, whitespace, repetition) stays
 * random per run. The pools are random too (fixed seed, override with MESHFORK_FC_POOL_SEED) and
 * built so that near misses are themselves configured keys: prefixes, suffixes and one-character
 * extensions of one another, which is what a badly anchored regex would confuse.
 */
export const POOL_SEED = Number(process.env.MESHFORK_FC_POOL_SEED ?? 20261127);
export const KEY_NAME_POOL: readonly string[] = [
  ...new Set([
    DEFAULT_ROUTING_KEY_CONFIG.keyName,
    (COMPAT_PRESETS.signadot as RoutingKeyConfig).keyName,
    'k',
    'a.b',
    'a-b_c.d',
    ...fc.sample(anyKeyNameArb, { numRuns: 3, seed: POOL_SEED }),
  ]),
];
export const ROUTING_KEY_POOL: readonly string[] = [
  ...new Set(
    fc.sample(anyRoutingKeyArb, { numRuns: 3, seed: POOL_SEED + 1 }).flatMap((base) => [
      base,
      `${base}0`,
      `${base}x`,
      `a${base}`,
      base.slice(0, -1).length >= 4 ? base.slice(0, -1) : `${base}${base}`,
    ]),
  ),
];
export const keyNameArb = fc.constantFrom(...KEY_NAME_POOL);
export const routingKeyArb = fc.constantFrom(...ROUTING_KEY_POOL);
export const owsArb = fc.constantFrom('', '', '', ' ', '\t', '  ', ' \t ');
export const headerNameArb = fc.string({ unit: charOf('abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 12 });

export const configArb: fc.Arbitrary<RoutingKeyConfig> = fc.record({
  keyName: keyNameArb,
  tracestate: fc.boolean(),
  headers: fc.oneof(fc.constant([] as string[]), fc.constant(['x-meshfork-routing-key']), fc.array(headerNameArb.map((h) => `x-${h}`), { maxLength: 2 })),
  legacyHeaders: fc.boolean(),
});

/*
 * Request generation. Arbitraries are built ONCE, as ctx-free templates, and rendered against
 * the configured key name / routing key in a plain function: building fast-check arbitraries
 * inside `chain` for every run costs milliseconds per run.
 */

/** Which near miss of a string to take (see `near`). */
export interface Near {
  kind: number;
  at: number;
  c: string;
}
export const nearSpecArb: fc.Arbitrary<Near> = fc.record({ kind: fc.nat(10), at: fc.nat(64), c: charOf(KEY_CHARS) });

/**
 * A string close to `s` but different from it: a prefix, a suffix, an extension on either side,
 * a doubled or upper-cased copy, or one changed character. These are what a regex without
 * member-boundary anchors (or without escaping '.') would confuse with `s`.
 */
export function near(s: string, n: Near): string {
  const at = n.at % s.length;
  const variants = [
    s.slice(0, -1),
    s.slice(1),
    `${s}x`,
    `x${s}`,
    `${s}0`,
    `0${s}`,
    `${s}.`,
    `-${s}`,
    s + s,
    s.toUpperCase(),
    s.slice(0, at) + n.c + s.slice(at + 1),
  ];
  const v = variants[n.kind % variants.length] as string;
  return v === s || v === '' ? `${s}x` : v;
}

export interface Ctx {
  keyName: string;
  key: string;
  /** Keys of other sandboxes that may legitimately appear. */
  otherKeys: readonly string[];
}

export type PropertyT = { t: 'random'; s: string } | { t: 'decoy'; a: string; b: string };
/** A property of a baggage member: random text, or the routing-key member itself as a property. */
export const propertyArb: fc.Arbitrary<[string, PropertyT]> = fc.tuple(
  owsArb,
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ t: fc.constant('random' as const), s: fc.string({ unit: charOf(PROPERTY_CHARS), maxLength: 10 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('decoy' as const), a: owsArb, b: owsArb }) },
  ),
);

export function renderProperty([w, p]: [string, PropertyT], ctx: Ctx): string {
  return `;${w}${p.t === 'random' ? p.s : `${p.a}${ctx.keyName}${p.b}=${p.b}${ctx.key}${p.a}`}`;
}

export type BaggageT =
  | { t: 'exact' }
  | { t: 'nearKey'; n: Near }
  | { t: 'nearValue'; n: Near }
  | { t: 'valueDecoy'; k: string }
  | { t: 'random'; k: string; v: string }
  | { t: 'other'; i: number }
  | { t: 'raw'; i: number };
export type BaggageMemberT = { m: BaggageT; ws: [string, string, string, string]; props: Array<[string, PropertyT]> };

export const randomMemberKeyArb = fc.oneof(anyKeyNameArb, keyNameArb, fc.string({ unit: charOf(BAGGAGE_OCTETS.replace('=', '')), minLength: 1, maxLength: 8 }));
export const randomBaggageValueArb = fc.string({ unit: charOf(BAGGAGE_OCTETS), maxLength: 10 });

export function baggageMemberArb(allowExact: boolean): fc.Arbitrary<BaggageMemberT> {
  const kinds: Array<fc.WeightedArbitrary<BaggageT>> = [
    { weight: 3, arbitrary: fc.record({ t: fc.constant('nearKey' as const), n: nearSpecArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('nearValue' as const), n: nearSpecArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('valueDecoy' as const), k: randomMemberKeyArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('random' as const), k: randomMemberKeyArb, v: randomBaggageValueArb }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('other' as const), i: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('raw' as const), i: fc.nat() }) },
  ];
  if (allowExact) kinds.push({ weight: 3, arbitrary: fc.record({ t: fc.constant('exact' as const) }) });
  return fc.record({
    m: fc.oneof(...kinds),
    ws: fc.tuple(owsArb, owsArb, owsArb, owsArb),
    props: fc.array(propertyArb, { maxLength: 2 }),
  });
}

/** One baggage list member, rendered. */
export function renderBaggageMember({ m, ws, props }: BaggageMemberT, ctx: Ctx): string {
  const member = (k: string, v: string): string =>
    `${ws[0]}${k}${ws[1]}=${ws[2]}${v}${ws[3]}${props.map((p) => renderProperty(p, ctx)).join('')}`;
  switch (m.t) {
    case 'exact':
      return member(ctx.keyName, ctx.key);
    case 'nearKey':
      return member(near(ctx.keyName, m.n), ctx.key);
    case 'nearValue':
      return member(ctx.keyName, near(ctx.key, m.n));
    case 'valueDecoy': // the key as the VALUE of another member: `foo=<keyName>=<key>`
      return member(m.k, `${ctx.keyName}=${ctx.key}`);
    case 'random':
      return member(m.k, m.v);
    case 'other':
      return ctx.otherKeys.length > 0 ? member(ctx.keyName, ctx.otherKeys[m.i % ctx.otherKeys.length] as string) : member('other', ctx.key);
    case 'raw': {
      // Not list members at all.
      const raws = ['', ' ', ctx.keyName, ctx.key, `${ctx.keyName}${ctx.key}`, `${ctx.keyName}==${ctx.key}`, `${ctx.keyName}:${ctx.key}`, `;${ctx.keyName}=${ctx.key}`];
      return raws[m.i % raws.length] as string;
    }
  }
}

export type TracestateT =
  | { t: 'exact' }
  | { t: 'nearKey'; n: Near }
  | { t: 'nearValue'; n: Near }
  | { t: 'random'; k: string; v: string }
  | { t: 'other'; i: number }
  | { t: 'raw'; i: number };
export type TracestateMemberT = { m: TracestateT; ws: [string, string] };

export function tracestateMemberArb(allowExact: boolean): fc.Arbitrary<TracestateMemberT> {
  const kinds: Array<fc.WeightedArbitrary<TracestateT>> = [
    { weight: 3, arbitrary: fc.record({ t: fc.constant('nearKey' as const), n: nearSpecArb }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('nearValue' as const), n: nearSpecArb }) },
    {
      weight: 3,
      arbitrary: fc.record({
        t: fc.constant('random' as const),
        k: fc.oneof(anyKeyNameArb, keyNameArb),
        v: fc.string({ unit: charOf(BAGGAGE_OCTETS.replace('=', '')), minLength: 1, maxLength: 10 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('other' as const), i: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('raw' as const), i: fc.nat() }) },
  ];
  if (allowExact) kinds.push({ weight: 3, arbitrary: fc.record({ t: fc.constant('exact' as const) }) });
  return fc.record({ m: fc.oneof(...kinds), ws: fc.tuple(owsArb, owsArb) });
}

/** One tracestate list member, rendered (OWS only around the member). */
export function renderTracestateMember({ m, ws }: TracestateMemberT, ctx: Ctx): string {
  const around = (inner: string): string => ws[0] + inner + ws[1];
  switch (m.t) {
    case 'exact':
      return around(`${ctx.keyName}=${ctx.key}`);
    case 'nearKey':
      return around(`${near(ctx.keyName, m.n)}=${ctx.key}`);
    case 'nearValue':
      return around(`${ctx.keyName}=${near(ctx.key, m.n)}`);
    case 'random':
      return around(`${m.k}=${m.v}`);
    case 'other':
      return around(`${ctx.keyName}=${ctx.otherKeys.length > 0 ? ctx.otherKeys[m.i % ctx.otherKeys.length] : 'other'}`);
    case 'raw': {
      const raws = [
        `${ctx.keyName} =${ctx.key}`,
        `${ctx.keyName}= ${ctx.key}`,
        `${ctx.keyName}=${ctx.key};p`,
        `${ctx.keyName}=${ctx.key}=x`,
        `x=${ctx.keyName}=${ctx.key}`,
        `${ctx.keyName}`,
        '',
      ];
      return around(raws[m.i % raws.length] as string);
    }
  }
}

/** 1..3 occurrences of a list header, each 0..5 members (joined with ',' when rendered). */
export function listHeaderArb<T>(memberArb: fc.Arbitrary<T>): fc.Arbitrary<T[][]> {
  return fc.array(fc.array(memberArb, { maxLength: 5 }), { minLength: 1, maxLength: 3 });
}

export const baggageHeaderArb = { exact: listHeaderArb(baggageMemberArb(true)), decoy: listHeaderArb(baggageMemberArb(false)) };
export const tracestateHeaderArb = { exact: listHeaderArb(tracestateMemberArb(true)), decoy: listHeaderArb(tracestateMemberArb(false)) };

export function renderBaggage(values: BaggageMemberT[][], ctx: Ctx): string[] {
  return values.map((ms) => ms.map((m) => renderBaggageMember(m, ctx)).join(','));
}
export function renderTracestate(values: TracestateMemberT[][], ctx: Ctx): string[] {
  return values.map((ms) => ms.map((m) => renderTracestateMember(m, ctx)).join(','));
}

/**
 * Puts header occurrences into a headers record, spreading them over name casings (`baggage`,
 * `Baggage`, `BAGGAGE`). The evaluator and the reference both join them in record order, which
 * may differ from `values` order (so member order in the joined value is shuffled too).
 */
export function addOccurrences(headers: Record<string, string | string[]>, name: string, values: string[], casing: number): void {
  const names = [name, name[0]?.toUpperCase() + name.slice(1), name.toUpperCase()];
  values.forEach((value, i) => {
    const n = names[(casing + i) % names.length] as string;
    const existing = headers[n];
    if (existing === undefined) headers[n] = value;
    else headers[n] = [...(typeof existing === 'string' ? [existing] : existing), value];
  });
}

/** A second sandbox key from the pool; every other time one that contains `key` or is contained in it. */
export function otherKey(key: string, pick: number): string {
  const others = ROUTING_KEY_POOL.filter((k) => k !== key);
  const nearOnes = others.filter((k) => k.includes(key) || key.includes(k));
  const from = pick % 2 === 0 && nearOnes.length > 0 ? nearOnes : others;
  return from[Math.floor(pick / 2) % from.length] as string;
}

export type PlainValueT = { t: 'exact' } | { t: 'near'; n: Near } | { t: 'other'; i: number } | { t: 'raw'; i: number };
export function plainValueArb(allowExact: boolean): fc.Arbitrary<PlainValueT> {
  const kinds: Array<fc.WeightedArbitrary<PlainValueT>> = [
    { weight: 2, arbitrary: fc.record({ t: fc.constant('near' as const), n: nearSpecArb }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('other' as const), i: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('raw' as const), i: fc.nat() }) },
  ];
  if (allowExact) kinds.push({ weight: 3, arbitrary: fc.record({ t: fc.constant('exact' as const) }) });
  return fc.oneof(...kinds);
}
/** Plain-header carriers: (index into the candidate names, 1..2 occurrences). */
export type PlainT = Array<[number, PlainValueT[]]>;
export function plainArb(allowExact: boolean): fc.Arbitrary<PlainT> {
  return fc.array(fc.tuple(fc.nat(), fc.array(plainValueArb(allowExact), { minLength: 1, maxLength: 2 })), { maxLength: 3 });
}
export const plainHeadersArb = { exact: plainArb(true), decoy: plainArb(false) };

/** Plain-header carriers (config headers, legacy forms) with values at or near the key. */
export function renderPlain(plain: PlainT, config: RoutingKeyConfig, ctx: Ctx): Record<string, string[]> {
  const names = [...config.headers, `uberctx-${config.keyName}`, `ot-baggage-${config.keyName}`];
  const out: Record<string, string[]> = {};
  for (const [i, values] of plain) {
    out[names[i % names.length] as string] = values.map((v): string => {
      switch (v.t) {
        case 'exact':
          return ctx.key;
        case 'near':
          return near(ctx.key, v.n);
        case 'other':
          return ctx.otherKeys.length > 0 ? (ctx.otherKeys[v.i % ctx.otherKeys.length] as string) : 'other';
        case 'raw':
          return ['', ` ${ctx.key}`, `${ctx.key},${ctx.key}`, `${ctx.key} `][v.i % 4] as string;
      }
    });
  }
  return out;
}


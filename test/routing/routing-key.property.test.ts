/**
 * Property tests: the routing-key match blocks from src/planner/routing-key.ts, placed in a
 * VirtualService and evaluated the way Envoy does (test/support/route-eval.ts: RE2 full match,
 * repeated headers joined with ','), choose a sandbox EXACTLY when the request carries its key.
 *
 * The expected answer comes from an independent W3C parser written here (no regex):
 *  - baggage (W3C Baggage): members split on ',', trimmed of OWS (SP / HTAB); properties after the
 *    first ';' dropped; key and value split at the first '=' and trimmed of OWS.
 *  - tracestate (W3C Trace Context): members split on ',', trimmed of OWS; key and value split at
 *    the first '='; no OWS around '=' and no properties.
 *  - plain / legacy headers: the header occurs once and its value is exactly the key.
 * Each header occurrence is parsed on its own (a member never spans two header lines), so the
 * oracle does not depend on Envoy's ',' join, which the evaluator models.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  baggageMemberRegex,
  COMPAT_PRESETS,
  DEFAULT_ROUTING_KEY_CONFIG,
  routingKeyMatchBlocks,
  tracestateMemberRegex,
  type RoutingKeyConfig,
} from '../../src/planner/routing-key.js';
import { evaluateRoute, re2FullMatch, type RouteRequest } from '../support/route-eval.js';

// ------------------------------------------------------------------------------------------
// Independent oracle
// ------------------------------------------------------------------------------------------

/** RFC 7230 OWS: spaces and horizontal tabs only (String.prototype.trim would strip more). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return s.slice(a, b);
}

function baggageMembers(headerValue: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const rawMember of headerValue.split(',')) {
    const beforeProps = rawMember.split(';')[0] as string;
    const eq = beforeProps.indexOf('=');
    if (eq === -1) continue;
    out.push([trimOws(beforeProps.slice(0, eq)), trimOws(beforeProps.slice(eq + 1))]);
  }
  return out;
}

function tracestateMembers(headerValue: string): Array<[string, string]> {
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
function occurrences(headers: RouteRequest['headers'], name: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) out.push(...(typeof v === 'string' ? [v] : v));
  }
  return out;
}

function baggageHas(headers: RouteRequest['headers'], keyName: string, key: string): boolean {
  return occurrences(headers, 'baggage').some((h) => baggageMembers(h).some(([k, v]) => k === keyName && v === key));
}

function tracestateHas(headers: RouteRequest['headers'], keyName: string, key: string): boolean {
  return occurrences(headers, 'tracestate').some((h) => tracestateMembers(h).some(([k, v]) => k === keyName && v === key));
}

function plainHas(headers: RouteRequest['headers'], name: string, key: string): boolean {
  const all = occurrences(headers, name);
  return all.length === 1 && all[0] === key;
}

/** Does the request carry routing key `key` in any carrier `config` accepts? */
function carries(config: RoutingKeyConfig, headers: RouteRequest['headers'], key: string): boolean {
  if (baggageHas(headers, config.keyName, key)) return true;
  if (config.tracestate && tracestateHas(headers, config.keyName, key)) return true;
  if (config.headers.some((h) => plainHas(headers, h, key))) return true;
  if (config.legacyHeaders) {
    if (plainHas(headers, `uberctx-${config.keyName}`, key)) return true;
    if (plainHas(headers, `ot-baggage-${config.keyName}`, key)) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------------
// Synthetic VirtualService
// ------------------------------------------------------------------------------------------

/** Routes 0..n-1: one per sandbox key (→ `reviews-<i>`); route n: the user's baseline route. */
function syntheticVs(config: RoutingKeyConfig, keys: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'default' },
    spec: {
      hosts: ['reviews'],
      http: [
        ...keys.map((key, i) => ({
          name: `meshfork-sb${i}`,
          match: routingKeyMatchBlocks(config, [key]),
          route: [{ destination: { host: `reviews-sb${i}` } }],
        })),
        { name: 'baseline', route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    },
  };
}

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const KEY_CHARS = `${ALNUM}._-`;
/** W3C baggage-octet: printable ASCII except SP, '"', ',', ';' and '\'. Includes '='. */
const BAGGAGE_OCTETS = [...Array(0x7f - 0x21).keys()]
  .map((i) => String.fromCharCode(0x21 + i))
  .filter((c) => !'",;\\'.includes(c))
  .join('');
/** What may appear in a property: anything but ','. */
const PROPERTY_CHARS = `${BAGGAGE_OCTETS};" \t\\`;

const charOf = (chars: string): fc.Arbitrary<string> => fc.constantFrom(...chars);

/** Any key name meshfork accepts (KEY_NAME_PATTERN), biased short. */
const anyKeyNameArb: fc.Arbitrary<string> = fc
  .tuple(charOf(ALNUM), fc.string({ unit: charOf(KEY_CHARS), maxLength: 14 }))
  .map(([first, rest]) => first + rest);
const anyRoutingKeyArb = fc.string({ unit: charOf(ALNUM), minLength: 4, maxLength: 10 });

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
const POOL_SEED = Number(process.env.MESHFORK_FC_POOL_SEED ?? 20261127);
const KEY_NAME_POOL: readonly string[] = [
  ...new Set([
    DEFAULT_ROUTING_KEY_CONFIG.keyName,
    (COMPAT_PRESETS.signadot as RoutingKeyConfig).keyName,
    'k',
    'a.b',
    'a-b_c.d',
    ...fc.sample(anyKeyNameArb, { numRuns: 3, seed: POOL_SEED }),
  ]),
];
const ROUTING_KEY_POOL: readonly string[] = [
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
const keyNameArb = fc.constantFrom(...KEY_NAME_POOL);
const routingKeyArb = fc.constantFrom(...ROUTING_KEY_POOL);
const owsArb = fc.constantFrom('', '', '', ' ', '\t', '  ', ' \t ');
const headerNameArb = fc.string({ unit: charOf('abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 12 });

const configArb: fc.Arbitrary<RoutingKeyConfig> = fc.record({
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
interface Near {
  kind: number;
  at: number;
  c: string;
}
const nearSpecArb: fc.Arbitrary<Near> = fc.record({ kind: fc.nat(10), at: fc.nat(64), c: charOf(KEY_CHARS) });

/**
 * A string close to `s` but different from it: a prefix, a suffix, an extension on either side,
 * a doubled or upper-cased copy, or one changed character. These are what a regex without
 * member-boundary anchors (or without escaping '.') would confuse with `s`.
 */
function near(s: string, n: Near): string {
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

interface Ctx {
  keyName: string;
  key: string;
  /** Keys of other sandboxes that may legitimately appear. */
  otherKeys: readonly string[];
}

type PropertyT = { t: 'random'; s: string } | { t: 'decoy'; a: string; b: string };
/** A property of a baggage member: random text, or the routing-key member itself as a property. */
const propertyArb: fc.Arbitrary<[string, PropertyT]> = fc.tuple(
  owsArb,
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ t: fc.constant('random' as const), s: fc.string({ unit: charOf(PROPERTY_CHARS), maxLength: 10 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('decoy' as const), a: owsArb, b: owsArb }) },
  ),
);

function renderProperty([w, p]: [string, PropertyT], ctx: Ctx): string {
  return `;${w}${p.t === 'random' ? p.s : `${p.a}${ctx.keyName}${p.b}=${p.b}${ctx.key}${p.a}`}`;
}

type BaggageT =
  | { t: 'exact' }
  | { t: 'nearKey'; n: Near }
  | { t: 'nearValue'; n: Near }
  | { t: 'valueDecoy'; k: string }
  | { t: 'random'; k: string; v: string }
  | { t: 'other'; i: number }
  | { t: 'raw'; i: number };
type BaggageMemberT = { m: BaggageT; ws: [string, string, string, string]; props: Array<[string, PropertyT]> };

const randomMemberKeyArb = fc.oneof(anyKeyNameArb, keyNameArb, fc.string({ unit: charOf(BAGGAGE_OCTETS.replace('=', '')), minLength: 1, maxLength: 8 }));
const randomBaggageValueArb = fc.string({ unit: charOf(BAGGAGE_OCTETS), maxLength: 10 });

function baggageMemberArb(allowExact: boolean): fc.Arbitrary<BaggageMemberT> {
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
function renderBaggageMember({ m, ws, props }: BaggageMemberT, ctx: Ctx): string {
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

type TracestateT =
  | { t: 'exact' }
  | { t: 'nearKey'; n: Near }
  | { t: 'nearValue'; n: Near }
  | { t: 'random'; k: string; v: string }
  | { t: 'other'; i: number }
  | { t: 'raw'; i: number };
type TracestateMemberT = { m: TracestateT; ws: [string, string] };

function tracestateMemberArb(allowExact: boolean): fc.Arbitrary<TracestateMemberT> {
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
function renderTracestateMember({ m, ws }: TracestateMemberT, ctx: Ctx): string {
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
function listHeaderArb<T>(memberArb: fc.Arbitrary<T>): fc.Arbitrary<T[][]> {
  return fc.array(fc.array(memberArb, { maxLength: 5 }), { minLength: 1, maxLength: 3 });
}

const baggageHeaderArb = { exact: listHeaderArb(baggageMemberArb(true)), decoy: listHeaderArb(baggageMemberArb(false)) };
const tracestateHeaderArb = { exact: listHeaderArb(tracestateMemberArb(true)), decoy: listHeaderArb(tracestateMemberArb(false)) };

function renderBaggage(values: BaggageMemberT[][], ctx: Ctx): string[] {
  return values.map((ms) => ms.map((m) => renderBaggageMember(m, ctx)).join(','));
}
function renderTracestate(values: TracestateMemberT[][], ctx: Ctx): string[] {
  return values.map((ms) => ms.map((m) => renderTracestateMember(m, ctx)).join(','));
}

/**
 * Puts header occurrences into a headers record, spreading them over name casings (`baggage`,
 * `Baggage`, `BAGGAGE`). The evaluator then joins them in record order, which may differ from
 * `values` order; neither the oracle nor a member-anchored regex depends on member order.
 */
function addOccurrences(headers: Record<string, string | string[]>, name: string, values: string[], casing: number): void {
  const names = [name, name[0]?.toUpperCase() + name.slice(1), name.toUpperCase()];
  values.forEach((value, i) => {
    const n = names[(casing + i) % names.length] as string;
    const existing = headers[n];
    if (existing === undefined) headers[n] = value;
    else headers[n] = [...(typeof existing === 'string' ? [existing] : existing), value];
  });
}

const RUNS = { baggage: 2000, decoys: 1000, twoKeys: 1000, tracestate: 1000, carriers: 1000, untagged: 500, regex: 2000 };

function routeIndexFor(vs: unknown, headers: RouteRequest['headers']): number | undefined {
  return evaluateRoute(vs, { headers })?.routeIndex;
}

/** A second sandbox key from the pool; every other time one that contains `key` or is contained in it. */
function otherKey(key: string, pick: number): string {
  const others = ROUTING_KEY_POOL.filter((k) => k !== key);
  const nearOnes = others.filter((k) => k.includes(key) || key.includes(k));
  const from = pick % 2 === 0 && nearOnes.length > 0 ? nearOnes : others;
  return from[Math.floor(pick / 2) % from.length] as string;
}

type PlainValueT = { t: 'exact' } | { t: 'near'; n: Near } | { t: 'other'; i: number } | { t: 'raw'; i: number };
function plainValueArb(allowExact: boolean): fc.Arbitrary<PlainValueT> {
  const kinds: Array<fc.WeightedArbitrary<PlainValueT>> = [
    { weight: 2, arbitrary: fc.record({ t: fc.constant('near' as const), n: nearSpecArb }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('other' as const), i: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('raw' as const), i: fc.nat() }) },
  ];
  if (allowExact) kinds.push({ weight: 3, arbitrary: fc.record({ t: fc.constant('exact' as const) }) });
  return fc.oneof(...kinds);
}
/** Plain-header carriers: (index into the candidate names, 1..2 occurrences). */
type PlainT = Array<[number, PlainValueT[]]>;
function plainArb(allowExact: boolean): fc.Arbitrary<PlainT> {
  return fc.array(fc.tuple(fc.nat(), fc.array(plainValueArb(allowExact), { minLength: 1, maxLength: 2 })), { maxLength: 3 });
}
const plainHeadersArb = { exact: plainArb(true), decoy: plainArb(false) };

/** Plain-header carriers (config headers, legacy forms) with values at or near the key. */
function renderPlain(plain: PlainT, config: RoutingKeyConfig, ctx: Ctx): Record<string, string[]> {
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

interface Scenario {
  config: RoutingKeyConfig;
  keys: string[];
  headers: Record<string, string | string[]>;
}

/**
 * A request for a VS with sandboxes `keys` (1 or 2 of them). Members are built around keys[0]
 * (the key under test) and may carry the other sandbox's key.
 */
function scenarioArb(opts: { sandboxes: 1 | 2; allowExact: boolean; carriers: 'baggage' | 'tracestate' | 'all' }): fc.Arbitrary<Scenario> {
  const which = opts.allowExact ? 'exact' : 'decoy';
  const none = fc.constant([] as never[]);
  return fc
    .record({
      config: configArb,
      key: routingKeyArb,
      pick: fc.nat(),
      baggage: opts.carriers === 'tracestate' ? none : fc.oneof(baggageHeaderArb[which], none),
      tracestate: opts.carriers === 'baggage' ? none : fc.oneof(tracestateHeaderArb[which], none),
      plain: opts.carriers === 'all' ? plainHeadersArb[which] : fc.constant([] as PlainT),
      casing: fc.nat(2),
    })
    .map(({ config, key, pick, baggage, tracestate, plain, casing }) => {
      const others = opts.sandboxes === 2 ? [otherKey(key, pick)] : [];
      const ctx: Ctx = { keyName: config.keyName, key, otherKeys: others };
      const headers: Record<string, string | string[]> = { 'x-request-id': 'r-1' };
      addOccurrences(headers, 'baggage', renderBaggage(baggage, ctx), casing);
      addOccurrences(headers, 'tracestate', renderTracestate(tracestate, ctx), casing);
      for (const [name, vals] of Object.entries(renderPlain(plain, config, ctx))) addOccurrences(headers, name, vals, casing);
      return { config, keys: [key, ...others], headers };
    });
}

/** The route the oracle expects: the first sandbox whose key the request carries, else baseline. */
function expectedRoute(s: Scenario): number {
  const hit = s.keys.findIndex((k) => carries(s.config, s.headers, k));
  return hit === -1 ? s.keys.length : hit;
}

/** Runs a scenario property and checks that both outcomes actually occurred often enough. */
function checkScenarios(arb: fc.Arbitrary<Scenario>, numRuns: number, minShare: { sandbox: number; baseline: number }): void {
  let sandbox = 0;
  let baseline = 0;
  fc.assert(
    fc.property(arb, (s) => {
      const vs = syntheticVs(s.config, s.keys);
      const want = expectedRoute(s);
      const got = evaluateRoute(vs, { headers: s.headers });
      expect(got?.routeIndex).toBe(want);
      expect(got?.destinations).toEqual(
        want === s.keys.length ? [{ host: 'reviews', subset: 'v1' }] : [{ host: `reviews-sb${want}` }],
      );
      if (want === s.keys.length) baseline++;
      else sandbox++;
    }),
    { numRuns },
  );
  // Guard against a generator that never (or always) produces the key: the property would be vacuous.
  expect(sandbox).toBeGreaterThanOrEqual(Math.floor(numRuns * minShare.sandbox));
  expect(baseline).toBeGreaterThanOrEqual(Math.floor(numRuns * minShare.baseline));
}

describe('routing-key member regexes under RE2 full match', () => {
  it(`baggageMemberRegex matches the joined header exactly when some member carries the key (${RUNS.regex} runs)`, () => {
    const arb = fc
      .tuple(keyNameArb, routingKeyArb, baggageHeaderArb.exact)
      .map(([keyName, key, t]) => ({ keyName, key, values: renderBaggage(t, { keyName, key, otherKeys: [] }) }));
    fc.assert(
      fc.property(arb, ({ keyName, key, values }) => {
        const regex = baggageMemberRegex(keyName, key);
        const expected = values.some((h) => baggageMembers(h).some(([k, v]) => k === keyName && v === key));
        expect(re2FullMatch(regex, values.join(','))).toBe(expected);
      }),
      { numRuns: RUNS.regex },
    );
  });

  it(`tracestateMemberRegex matches the joined header exactly when some member carries the key (${RUNS.regex} runs)`, () => {
    const arb = fc
      .tuple(keyNameArb, routingKeyArb, tracestateHeaderArb.exact)
      .map(([keyName, key, t]) => ({ keyName, key, values: renderTracestate(t, { keyName, key, otherKeys: [] }) }));
    fc.assert(
      fc.property(arb, ({ keyName, key, values }) => {
        const regex = tracestateMemberRegex(keyName, key);
        const expected = values.some((h) => tracestateMembers(h).some(([k, v]) => k === keyName && v === key));
        expect(re2FullMatch(regex, values.join(','))).toBe(expected);
      }),
      { numRuns: RUNS.regex },
    );
  });

  it('the regexes have no top-level alternation and are anchored', () => {
    fc.assert(
      fc.property(keyNameArb, routingKeyArb, (keyName, key) => {
        for (const re of [baggageMemberRegex(keyName, key), tracestateMemberRegex(keyName, key)]) {
          expect(re.startsWith('^') && re.endsWith('$')).toBe(true);
          let depth = 0;
          for (let i = 0; i < re.length; i++) {
            const c = re[i];
            if (c === '\\') i++;
            else if (c === '(') depth++;
            else if (c === ')') depth--;
            else if (c === '|') expect(depth).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('routing-key match blocks in a VirtualService, evaluated as an Istio sidecar does', () => {
  it(`baggage: the sandbox route is taken exactly when baggage carries the member (${RUNS.baggage} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: true, carriers: 'baggage' }), RUNS.baggage, { sandbox: 0.2, baseline: 0.2 });
  });

  it(`baggage/tracestate decoys (prefix, suffix, property, value, near key names) never match (${RUNS.decoys} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: false, carriers: 'all' }), RUNS.decoys, { sandbox: 0, baseline: 1 });
  });

  it(`two sandboxes: key A never routes on carriers holding only key B, even when B is a prefix/suffix of A (${RUNS.twoKeys} runs)`, () => {
    // keys[0] is the key under test (B's members are generated around it), keys[1] is A.
    // The VS lists A's route FIRST so a regex that confused them would send B's traffic to A.
    const arb = scenarioArb({ sandboxes: 2, allowExact: true, carriers: 'all' }).map((s) => ({ ...s, keys: [s.keys[1] as string, s.keys[0] as string] }));
    let bOnly = 0;
    fc.assert(
      fc.property(arb, (s) => {
        const [a, b] = s.keys as [string, string];
        const got = routeIndexFor(syntheticVs(s.config, s.keys), s.headers);
        expect(got).toBe(expectedRoute(s));
        if (!carries(s.config, s.headers, a)) {
          expect(got).not.toBe(0);
          if (carries(s.config, s.headers, b)) bOnly++;
        }
      }),
      { numRuns: RUNS.twoKeys },
    );
    expect(bOnly).toBeGreaterThan(RUNS.twoKeys * 0.1);
  });

  it(`tracestate: the sandbox route is taken exactly when tracestate carries the member and the config accepts it (${RUNS.tracestate} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 1, allowExact: true, carriers: 'tracestate' }), RUNS.tracestate, { sandbox: 0.1, baseline: 0.2 });
  });

  it(`all carriers together (baggage, tracestate, plain and legacy headers) (${RUNS.carriers} runs)`, () => {
    checkScenarios(scenarioArb({ sandboxes: 2, allowExact: true, carriers: 'all' }), RUNS.carriers, { sandbox: 0.2, baseline: 0.05 });
  });

  it(`untagged requests always reach the baseline route (${RUNS.untagged} runs)`, () => {
    const untagged = fc.record({
      config: configArb,
      key: routingKeyArb,
      headers: fc.dictionary(
        headerNameArb.filter((h) => !['baggage', 'tracestate'].includes(h) && !h.startsWith('x-')),
        fc.string({ unit: charOf(`${BAGGAGE_OCTETS} ,;`), maxLength: 20 }),
        { maxKeys: 4 },
      ),
      baggage: fc.array(fc.tuple(fc.oneof(anyKeyNameArb, keyNameArb), fc.string({ unit: charOf(BAGGAGE_OCTETS), maxLength: 8 })), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(untagged, ({ config, key, headers, baggage }) => {
        const members = baggage.filter(([k]) => k !== config.keyName).map(([k, v]) => `${k}=${v}`);
        const h: Record<string, string | string[]> = { ...headers };
        if (members.length > 0) h.baggage = members.join(',');
        const got = evaluateRoute(syntheticVs(config, [key]), { headers: h });
        expect(got).toMatchObject({ routeIndex: 1, routeName: 'baseline', destinations: [{ host: 'reviews', subset: 'v1' }] });
        expect(evaluateRoute(syntheticVs(config, [key]), { headers: {} })?.routeIndex).toBe(1);
      }),
      { numRuns: RUNS.untagged },
    );
  });
});

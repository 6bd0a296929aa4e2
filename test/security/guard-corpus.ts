/**
 * Hostile requests against the ingress guard: every way found to spell the routing-key member or
 * header so that some downstream propagator (or a later hop) reads it as the key, and
 * combinations. Header values are byte strings (one char per byte, as Node and Envoy see them):
 * `utf8(0xa0)` is the two bytes C2 A0, `'\xa0'` the single obs-text byte.
 */
export const KEY = 'meshfork-routing-key';
export const HEADER = 'x-meshfork-routing-key';
export const RK = 'abcd1234';

/** Trace context for every propagator, so each one extracts (OT needs its ids to read baggage). */
export const TRACE_HEADERS: Array<[string, string]> = [
  ['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
  ['uber-trace-id', '4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:01'],
  ['ot-tracer-traceid', 'a3ce929d0e0e4736'],
  ['ot-tracer-spanid', '00f067aa0ba902b7'],
  ['ot-tracer-sampled', 'true'],
];

export const utf8 = (cp: number): string => Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1');

/** What JavaScript's String.prototype.trim removes (ECMAScript WhiteSpace + LineTerminator). */
export const JS_TRIM = [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, ...Array.from({ length: 11 }, (_, i) => 0x2000 + i), 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff];

export interface HostileRequest {
  readonly id: string;
  readonly headers: Array<[string, string]>;
}

const bag = (id: string, value: string): HostileRequest => ({ id, headers: [['baggage', `a=1,${value},b=2`]] });
const ts = (id: string, value: string): HostileRequest => ({ id, headers: [['tracestate', `${value},v=1`]] });
/** Jaeger's ad-hoc baggage header (`k1=v1, k2=v2`). */
const jb = (id: string, value: string): HostileRequest => ({ id, headers: [['jaeger-baggage', `a=1, ${value}, b=2`]] });
/** The W3C Correlation Context draft header (.NET, early OpenTelemetry). */
const cc = (id: string, value: string): HostileRequest => ({ id, headers: [['correlation-context', `a=1,${value},b=2`]] });

export const CORPUS: HostileRequest[] = [
  bag('baggage plain', `${KEY}=${RK}`),
  bag('baggage OWS', `\t${KEY} = ${RK} ;p`),
  bag('baggage duplicate, last wins', `${KEY}=zzzz9999,${KEY}=${RK}`),
  bag('baggage %2D', `meshfork%2Drouting%2Dkey=${RK}`),
  bag('baggage %6D', `%6Deshfork-routing-key=${RK}`),
  bag('baggage double-encoded', `%256Deshfork-routing-key=${RK}`),
  bag('baggage upper case', `Meshfork-Routing-Key=${RK}`),
  bag('baggage upper case, percent', `MESHFORK%2DROUTING%2DKEY=${RK}`),
  bag('baggage encoded value', `${KEY}=%61bcd1234`),
  bag('baggage raw A0 before', `\xa0${KEY}=${RK}`),
  bag('baggage raw A0 after', `${KEY}\xa0=${RK}`),
  bag('baggage encoded NBSP', `%C2%A0${KEY}=${RK}`),
  bag('baggage NEL (U+0085)', `${utf8(0x85)}${KEY}=${RK}`),
  ...JS_TRIM.map((cp) => bag(`baggage U+${cp.toString(16).padStart(4, '0').toUpperCase()} (UTF-8) before and after`, `${utf8(cp)}${KEY}${utf8(cp)}=${RK}`)),
  bag('baggage key decoding to KEY=value;', `${KEY}%3D${RK}%3B=x`),
  ts('tracestate plain', `${KEY}=${RK}`),
  ts('tracestate raw A0', `\xa0${KEY}=${RK}`),
  ts('tracestate NBSP (UTF-8)', `${utf8(0xa0)}${KEY}=${RK}`),
  ts('tracestate U+3000 (UTF-8)', `${utf8(0x3000)}${KEY}=${RK}`),
  ts('tracestate upper case', `Meshfork-Routing-Key=${RK}`),
  ts('tracestate percent', `meshfork%2Drouting%2Dkey=${RK}`),
  jb('jaeger-baggage plain', `${KEY}=${RK}`),
  jb('jaeger-baggage OWS', `${KEY} = ${RK}`),
  jb('jaeger-baggage upper case', `Meshfork-Routing-Key=${RK}`),
  jb('jaeger-baggage raw A0', `\xa0${KEY}=${RK}`),
  { id: 'jaeger-baggage, repeated lines', headers: [['jaeger-baggage', 'a=1'], ['jaeger-baggage', `${KEY}=${RK}`]] },
  cc('correlation-context plain', `${KEY}=${RK}`),
  cc('correlation-context percent', `meshfork%2Drouting%2Dkey=${RK};p=1`),
  cc('correlation-context NBSP (UTF-8)', `${utf8(0xa0)}${KEY}=${RK}`),
  { id: 'plain header', headers: [[HEADER, RK]] },
  { id: 'plain header, mixed case name', headers: [['X-Meshfork-Routing-Key', RK]] },
  { id: 'uberctx', headers: [[`uberctx-${KEY}`, RK]] },
  { id: 'uberctx, upper-case name', headers: [['Uberctx-Meshfork-Routing-Key', RK]] },
  { id: 'uberctx, encoded value', headers: [[`uberctx-${KEY}`, '%61bcd1234']] },
  { id: 'ot-baggage', headers: [[`ot-baggage-${KEY}`, RK]] },
  { id: 'ot-baggage, upper-case name', headers: [['OT-Baggage-Meshfork-Routing-Key', RK]] },
  {
    id: 'combination: every carrier, several tricks per line, repeated lines',
    headers: [
      ['baggage', `a=1, %6Deshfork-routing-key=${RK};p, \xa0${KEY}=zzzz9999`],
      ['baggage', `Meshfork-Routing-Key=${RK},${utf8(0xfeff)}${KEY}${utf8(0x3000)}=${RK},c=3`],
      ['tracestate', `${utf8(0xa0)}${KEY}=${RK},${KEY}=${RK},v=1`],
      [`uberctx-${KEY}`, RK],
      [`ot-baggage-${KEY}`, RK],
      [HEADER, RK],
      ['jaeger-baggage', `c=3, ${KEY}=${RK}`],
      ['correlation-context', `%6Deshfork-routing-key=${RK}`],
    ],
  },
];

import { createHash } from 'node:crypto';

/**
 * Where a routing key travels in a request and how meshfork matches it.
 *
 * Every carrier becomes one Istio `HTTPMatchRequest`; Istio ORs the match blocks of one route,
 * so a request is routed to a sandbox when ANY carrier holds its key.
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
/** A baggage/tracestate key meshfork accepts: lower-case token characters only. */
export const KEY_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
/** An HTTP header name as Istio's VirtualService header match requires it (lower case). */
export const HEADER_NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,126}$';

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

function escapeRegex(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * RE2 pattern that FULLY matches a `baggage` header value (repeated headers joined with `,`)
 * holding the list member `<keyName>=<value>`, with optional whitespace around key, `=` and
 * value and optional `;properties`. Anchored at member boundaries: `xKEY=V`, `KEY=Vx`,
 * `foo=1;KEY=V` (a property of another member) and `foo=KEY=V` never match.
 * W3C Baggage: list-member = key OWS "=" OWS value *( OWS ";" OWS property ), members split by ",".
 * There is no top-level alternation: gRPC's proxyless clients wrap the regex as `^` + re + `$`.
 */
export function baggageMemberRegex(keyName: string, value: string): string {
  return `^(.*,)?[ \\t]*${escapeRegex(keyName)}[ \\t]*=[ \\t]*${escapeRegex(value)}[ \\t]*(;[^,]*)?(,.*)?$`;
}

/**
 * RE2 pattern that fully matches a `tracestate` header holding list member `<keyName>=<value>`.
 * W3C Trace Context: list-member = key "=" value, members split by OWS "," OWS; no properties.
 */
export function tracestateMemberRegex(keyName: string, value: string): string {
  return `^(.*,)?[ \\t]*${escapeRegex(keyName)}=${escapeRegex(value)}[ \\t]*(,.*)?$`;
}

/** Istio `HTTPMatchRequest`, restricted to what meshfork reads and writes. */
export interface HttpMatchRequest {
  name?: string;
  headers?: Record<string, StringMatch>;
  [field: string]: unknown;
}
export type StringMatch = { exact: string } | { prefix: string } | { regex: string };

/** The header name and string match of each carrier of one routing key, in a fixed order. */
export function routingKeyHeaderMatches(config: RoutingKeyConfig, key: string): Array<[string, StringMatch]> {
  const matches: Array<[string, StringMatch]> = [['baggage', { regex: baggageMemberRegex(config.keyName, key) }]];
  if (config.tracestate) matches.push(['tracestate', { regex: tracestateMemberRegex(config.keyName, key) }]);
  for (const header of config.headers) matches.push([header, { exact: key }]);
  if (config.legacyHeaders) {
    matches.push([`uberctx-${config.keyName}`, { exact: key }]);
    matches.push([`ot-baggage-${config.keyName}`, { exact: key }]);
  }
  return matches;
}

/**
 * One match block per (key, carrier): a request carrying any of `keys` in any carrier matches.
 * Keys are matched in the order given (a sandbox's own key first, then its RouteGroups' keys).
 */
export function routingKeyMatchBlocks(config: RoutingKeyConfig, keys: readonly string[]): HttpMatchRequest[] {
  return keys.flatMap((key) =>
    routingKeyHeaderMatches(config, key).map(([header, match]) => ({ headers: { [header]: match } })),
  );
}

/** Process-wide SDK settings: the routing-key member name and the carriers read from requests. */
import { DEFAULT_KEY_NAME, SIGNADOT_KEY_NAME } from './baggage.js';
import type { KeyCarriers } from './request-key.js';

/** Named member-name presets: `meshfork` (default) and `signadot` (`sd-routing-key`). */
export const PRESETS = { meshfork: DEFAULT_KEY_NAME, signadot: SIGNADOT_KEY_NAME } as const;
export type Preset = keyof typeof PRESETS;

let keyName: string = DEFAULT_KEY_NAME;
let carriers: KeyCarriers = Object.freeze({ keyName, tracestate: true, headers: [], legacyHeaders: false });

/** The baggage member name the SDK reads and writes. @default 'meshfork-routing-key' */
export function currentKeyName(): string {
  return keyName;
}

/** Where the SDK reads an incoming request's routing key (same settings as meshfork's routing config). */
export function currentCarriers(): KeyCarriers {
  return carriers;
}

/**
 * A member name meshfork's routes can match (its KEY_NAME_PATTERN): lower-case, at most 42
 * characters, the longest whose header regexes stay within Istio's 1024-character regex limit.
 */
const NAME = /^[a-z0-9][a-z0-9._-]{0,41}$/;
const HEADER = /^[a-z0-9][a-z0-9-]{0,126}$/;
/** Never plain routing-key headers (meshfork's RESERVED_HEADER_NAMES): read by member, or needed as they are. */
const RESERVED = ['baggage', 'tracestate', 'traceparent', 'host', 'content-length', 'te', 'connection', 'transfer-encoding', 'x-meshfork-preview-token'];

/** `name` when meshfork's routes can match it as the routing-key member name; else throws a TypeError. */
export function checkedKeyName(name: string): string {
  if (!NAME.test(name)) throw new TypeError(`meshfork: invalid routing-key member name ${JSON.stringify(name)} (must match ${NAME.source})`);
  return name;
}

export interface CarrierOptions {
  readonly keyName?: string | undefined;
  readonly preset?: Preset | undefined;
  /** Read a `tracestate` member (meshfork's `routing.tracestate`). @default true */
  readonly tracestate?: boolean | undefined;
  /** Plain headers holding the key, in precedence order (meshfork's `routing.headers`). @default [] */
  readonly headers?: readonly string[] | undefined;
  /** Read `uberctx-<key>` / `ot-baggage-<key>` (meshfork's `routing.legacyHeaders`). @default true for the signadot preset, else false */
  readonly legacyHeaders?: boolean | undefined;
}

/**
 * Sets the member name from an explicit `keyName` or a `preset` (an explicit name wins) and the
 * carriers read from requests; settings not given keep their current values.
 */
export function setKeyName(opts: CarrierOptions): void {
  const next = opts.keyName ?? (opts.preset !== undefined ? PRESETS[opts.preset] : undefined);
  if (next !== undefined) checkedKeyName(next);
  const headers = opts.headers?.map((h) => h.toLowerCase());
  for (const h of headers ?? []) {
    if (!HEADER.test(h)) throw new TypeError(`meshfork: invalid routing-key header name ${JSON.stringify(h)}`);
    if (RESERVED.includes(h)) throw new TypeError(`meshfork: ${JSON.stringify(h)} cannot be a plain routing-key header (not allowed: ${RESERVED.join(', ')})`);
  }
  if (next !== undefined) keyName = next;
  carriers = Object.freeze({
    keyName,
    tracestate: opts.tracestate ?? carriers.tracestate,
    headers: Object.freeze(headers ?? [...(carriers.headers ?? [])]),
    legacyHeaders: opts.legacyHeaders ?? (opts.preset !== undefined ? opts.preset === 'signadot' : carriers.legacyHeaders),
  });
}

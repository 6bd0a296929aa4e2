/** Process-wide SDK settings (the routing-key member name). */
import { DEFAULT_KEY_NAME, SIGNADOT_KEY_NAME } from './baggage.js';

/** Named member-name presets: `meshfork` (default) and `signadot` (`sd-routing-key`). */
export const PRESETS = { meshfork: DEFAULT_KEY_NAME, signadot: SIGNADOT_KEY_NAME } as const;
export type Preset = keyof typeof PRESETS;

let keyName: string = DEFAULT_KEY_NAME;

/** The baggage member name the SDK reads and writes. @default 'meshfork-routing-key' */
export function currentKeyName(): string {
  return keyName;
}

const NAME = /^[!#$&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Sets the member name from an explicit `keyName` or a `preset`; an explicit name wins. */
export function setKeyName(opts: { keyName?: string | undefined; preset?: Preset | undefined }): void {
  const next = opts.keyName ?? (opts.preset !== undefined ? PRESETS[opts.preset] : undefined);
  if (next === undefined) return;
  if (!NAME.test(next)) throw new TypeError(`meshfork: invalid routing-key member name ${JSON.stringify(next)}`);
  keyName = next;
}

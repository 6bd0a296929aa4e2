/**
 * The flags of `meshfork routes` and their parsers: cheap to load (the command is declared with
 * every other; the evaluator, ./routes.ts, is loaded when the command runs). A bad value is a
 * usage error naming the flag.
 */
import { InvalidArgumentError } from 'commander';

/** The request and viewpoint flags of `meshfork routes`. */
export interface RoutesFlags {
  header?: Array<[string, string]>;
  uri?: string;
  method?: string;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateway?: string;
  output?: 'table' | 'yaml' | 'json';
}

/** An HTTP header name (RFC 9110 token); pseudo-headers are given with --uri/--method. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `--header 'name: value'` or `--header name=value` (split at the first `:` or `=`, whichever
 * comes first; a value may hold either, as baggage values do). Repeated names are sent as
 * repeated headers (Envoy matches them joined with `,`).
 */
export function parseHeader(text: string, previous: Array<[string, string]> = []): Array<[string, string]> {
  const at = [text.indexOf(':'), text.indexOf('=')].filter((i) => i >= 0);
  const split = at.length === 0 ? -1 : Math.min(...at);
  const name = split < 0 ? '' : text.slice(0, split).trim();
  if (split <= 0 || !TOKEN.test(name)) throw new InvalidArgumentError("give a header as name=value or 'name: value' (a header name is letters, digits and !#$%&'*+.^_`|~-)");
  return [...previous, [name.toLowerCase(), text.slice(split + 1).replace(/^[ \t]+|[ \t]+$/g, '')]];
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** `--source-labels app=web,version=v1`: the client pod's labels, for `sourceLabels` matches. */
export function parseSourceLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (eq <= 0 || !LABEL_KEY.test(key) || !LABEL_VALUE.test(value)) throw new InvalidArgumentError('give the client\'s pod labels as key=value pairs separated by commas (e.g. app=web,version=v1)');
    Object.defineProperty(labels, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return labels;
}

export function parsePort(text: string): number {
  const n = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || n < 1 || n > 65535) throw new InvalidArgumentError('give a port number from 1 to 65535');
  return n;
}

/** `--gateway`: `mesh` (sidecars) or `<namespace>/<name>` of an Istio Gateway. */
export function parseGateway(text: string): string {
  if (text === 'mesh' || /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(text)) return text;
  throw new InvalidArgumentError('give mesh (sidecars) or <namespace>/<name> of a Gateway');
}

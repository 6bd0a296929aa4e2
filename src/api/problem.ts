/**
 * One thing wrong with the input, reported as `<file>: <object>: <field.path>: <message>`.
 * `object` reads `<Kind> <namespace>/<name>`; `path` is a dotted field path with `[i]` indices.
 */
export interface Problem {
  file?: string;
  object?: string;
  path: string;
  message: string;
  /** Machine-readable class, where callers need to tell problems apart. */
  code?: 'BaselineNotFound';
}

/**
 * Characters that change how a terminal shows text, escaped wherever input text is shown: C0
 * controls (newline and tab included, so input cannot start a forged problem line), DEL, C1
 * controls (U+0080–U+009F; U+009B is a one-byte CSI), the Unicode line and paragraph separators,
 * and the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
 * U+202A–U+202E, U+2066–U+2069; the "Trojan Source" characters, CVE-2021-42574).
 */
const UNSAFE_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with the characters of UNSAFE_TEXT written as `\n`, `\r`, `\t`, `\xHH` or `\uHHHH`. */
export function escapeText(text: string): string {
  return text.replace(UNSAFE_TEXT, (c) => {
    const named = NAMED_ESCAPES[c];
    if (named !== undefined) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** One line of text: `<file>: <object>: <field.path>: <message>`, input text escaped (escapeText). */
export function formatProblem(problem: Problem): string {
  return [problem.file ?? '<input>', problem.object ?? '-', problem.path || '.', problem.message].map(escapeText).join(': ');
}

/** How a value of the wrong type reads in a message: `a list`, `null`, `the string "x"`, `the number 7`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** Thrown by entry points that refuse to produce output for bad input; carries every problem. */
export class InputError extends Error {
  constructor(readonly problems: readonly Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'InputError';
  }
}

/** Formats a JSON-pointer-like path (`/spec/forks/0/name`) as `spec.forks[0].name`. */
export function fieldPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number' || /^\d+$/.test(segment)) out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

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

export function formatProblem(problem: Problem): string {
  return [problem.file ?? '<input>', problem.object ?? '-', problem.path || '.', problem.message].join(': ');
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

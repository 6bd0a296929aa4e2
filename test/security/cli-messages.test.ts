/**
 * Issue 8 item 11: text from the input (field names, object names, file names) cannot rewrite
 * the terminal or forge problem lines: control characters, C1 controls and bidirectional
 * overrides are escaped wherever a Problem is formatted.
 */
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeText, formatProblem, InputError } from '../../src/api/problem.js';
import { cli } from '../support/cli.js';

const FILE = new URL('inputs/cli-messages/forged-lines.yaml', import.meta.url).pathname;
const work = realpathSync(mkdtempSync(join(tmpdir(), 'meshfork-messages-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('problems print one line each, input text escaped', () => {
  it('escape sequences, a forged line, C1 controls and bidi overrides in field and object names', () => {
    const result = cli('validate', '-f', FILE);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toEqual([
      `${FILE}:3: Sandbox default/demo: spec.\\x1b[2J\\x1b[31mcolor\\nx.yaml:1: Sandbox default/demo: spec: looks fine: unknown field`,
      `${FILE}:3: Sandbox default/demo: spec.safe\\u202eevil\\u2066\\x85\\x9b31m\\x7f\\t: unknown field`,
      `${FILE}:12: Deployment default/web\\r\\x1b]0;title\\x07: metadata.name: must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters)`,
      'meshfork: 3 problems; nothing written',
      '',
    ]);
    // Nothing a terminal would act on is left.
    expect(result.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  });

  it('a file name with a newline and an escape', () => {
    const file = join(work, 'evil\n\u001b[1Aok.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: "9"}\n');
    const result = cli('validate', '-f', file);
    expect(result.stderr).toBe(
      `${work}/evil\\n\\x1b[1Aok.yaml:1: Service default/9: metadata.name: must be an RFC 1035 label (a-z, 0-9 and -, a letter first, at most 63 characters), as Service names are\nmeshfork: 1 problem; nothing written\n`,
    );
  });
});

describe('escapeText', () => {
  const cases: Array<[string, string]> = [
    ['plain text: a/b.c [0] "q" \\ é ü 日本', 'plain text: a/b.c [0] "q" \\ é ü 日本'],
    ['\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u001f', '\\x00\\x01\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x1b\\x1f'],
    ['\u007f\u0080\u0085\u009b\u009f\u00a0', '\\x7f\\x80\\x85\\x9b\\x9f\u00a0'],
    ['\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069', '\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069'],
    ['\u061c\u200e\u200f\u2028\u2029', '\\u061c\\u200e\\u200f\\u2028\\u2029'],
  ];
  for (const [input, output] of cases) {
    it(JSON.stringify(input), () => expect(escapeText(input)).toBe(output));
  }

  it('applies to every part of a formatted problem, and to InputError (cdk8s)', () => {
    const problem = { file: 'f\n', object: 'o\u001b', path: 'p\u202e', message: 'm\u0085' };
    expect(formatProblem(problem)).toBe('f\\n: o\\x1b: p\\u202e: m\\x85');
    expect(new InputError([problem, problem]).message).toBe('f\\n: o\\x1b: p\\u202e: m\\x85\nf\\n: o\\x1b: p\\u202e: m\\x85');
  });
});

describe('usage errors', () => {
  it('quote arguments escaped', () => {
    const result = cli('validate', '--max-file-size', '\u001b]0;x\u0007', '-f', 'x');
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "error: option '--max-file-size <bytes>' argument '\\x1b]0;x\\x07' is invalid. give a positive number of bytes, optionally with Ki, Mi or Gi (e.g. 8Mi)\n",
    );
  });
});

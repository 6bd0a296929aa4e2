/**
 * Issue 8 item 5: duplicate YAML map keys stay problems at the repeated key's line and column
 * now that the loader checks them itself in one pass (the parser's own check is quadratic in the
 * keys of one map; the cost is tracked by the `manifests-map-keys` benchmark in bench/, not here).
 * Inputs are in inputs/input-yaml-keys/.
 */
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { duplicateKeyOffsets } from '../../src/manifests/load.js';
import { cli } from '../support/cli.js';

const INPUTS = new URL('inputs/input-yaml-keys/', import.meta.url).pathname;

function expectProblems(result: { code: number; stdout: string; stderr: string }, lines: string[]): void {
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toEqual([...lines, `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`]);
  expect(result.code).toBe(1);
}

const DUP = 'YAML: Map keys must be unique';

describe('duplicate map keys', () => {
  it('are problems at the repeated key, in block and flow maps, at any depth, for keys equal as YAML values', () => {
    const file = `${INPUTS}duplicates.yaml`;
    expectProblems(cli('validate', '-f', file), [
      `${file}:6:31: -: .: ${DUP}`, // flow map: app twice
      `${file}:10:3: -: .: ${DUP}`, // "k" after k
      `${file}:13:7: -: .: ${DUP}`, // in a map inside a list
      `${file}:16:3: -: .: ${DUP}`, // 1.0 after 1 (the number one)
      `${file}:19:9: -: .: ${DUP}`, // !!str an after &anchor an
      `${file}:22:3: -: .: ${DUP}`, // explicit after ? explicit
      `${file}:26:28: -: .: ${DUP}`, // metadata {name, name}
      `${file}:33:57: -: .: ${DUP}`, // ~ after null (.nan twice is not a duplicate)
    ]);
  });

  it('are reported with the document\'s syntax errors, in the order of their position', () => {
    const file = `${INPUTS}duplicate-and-syntax.yaml`;
    expectProblems(cli('validate', '-f', file), [
      `${file}:8:3: -: .: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      `${file}:8:3: -: .: ${DUP}`,
    ]);
  });

  it('are found 400 levels deep (before the depth limit refuses the document)', () => {
    const file = `${INPUTS}deep-duplicate.yaml`;
    expectProblems(cli('validate', '-f', file), [`${file}:5:422: -: .: ${DUP}`]);
  });

  it('duplicateKeyOffsets: one offset per repeated key, none for distinct keys, lists or alias keys', () => {
    const offsets = (text: string) => duplicateKeyOffsets(parseDocument(text, { uniqueKeys: false }).contents);
    expect(offsets('a: 1\nb: 2\na: 3\na: 4\n')).toEqual([10, 15]);
    expect(offsets('a: 1\nb: [a, a]\nc: {a: 1}\n"a b": 1\n')).toEqual([]);
    expect(offsets('x: &k a\n*k : 1\n? [1]\n: 2\n? [1]\n: 3\n')).toEqual([]);
    expect(offsets('true: 1\nTrue: 2\n"true": 3\n0x10: 4\n16: 5\n')).toEqual([8, 34]);
    expect(offsets('b: {x: 1, x: 2}\na: 1\na: 2\n')).toEqual([10, 21]);
  });
});

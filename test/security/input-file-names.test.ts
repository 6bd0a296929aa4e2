/**
 * Issue 8 item 11: a file or directory name in a walked tree that is not valid UTF-8 is a problem
 * naming its bytes (escaped), never a false "no such file or directory" for a name decoded with
 * U+FFFD replacements. The names are made in a temporary directory (they cannot be committed
 * portably).
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from '../support/cli.js';

const work = realpathSync(mkdtempSync(join(tmpdir(), 'meshfork-input-names-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const CONFIGMAP = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\n`;
/** A path under `dir` whose last component is the given raw bytes. */
const rawPath = (dir: string, ...parts: Array<string | number[]>) =>
  Buffer.concat([Buffer.from(`${dir}/`), ...parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))]);
const NOT_UTF8 = 'file name is not valid UTF-8 (shown with \\xHH for each byte that is not printable ASCII, and for \\); rename it to have it read';

describe('file names that are not UTF-8', () => {
  it('are problems naming the bytes (in name order), for manifests and directories; other names are skipped; UTF-8 names are read', () => {
    const d = join(work, 'tree');
    mkdirSync(d);
    writeFileSync(rawPath(d, 'b', [0xff, 0xfe], '.yaml'), CONFIGMAP('b'));
    writeFileSync(rawPath(d, 'back', [0x5c, 0xe9], '.yml'), CONFIGMAP('c'));
    writeFileSync(rawPath(d, 'notes', [0xff], '.txt'), 'not a manifest');
    mkdirSync(rawPath(d, [0xc3, 0x28], 'dir'));
    writeFileSync(rawPath(d, [0xc3, 0x28], 'dir/inner.yaml'), CONFIGMAP('inner'));
    writeFileSync(join(d, 'café.yaml'), 'kind: ConfigMap\n'); // read: its own problem names it
    const result = cli('validate', '-f', d);
    expect(result.stdout).toBe('');
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      `${d}/\\xc3(dir: -: .: ${NOT_UTF8}`,
      `${d}/b\\xff\\xfe.yaml: -: .: ${NOT_UTF8}`,
      `${d}/back\\x5c\\xe9.yml: -: .: ${NOT_UTF8}`,
      `${d}/café.yaml:1: -: apiVersion: required field is missing`,
      'meshfork: 4 problems; nothing written',
    ]);
    expect(result.code).toBe(1);
  });
});

/**
 * Issue 8 items 5 and 11: hostile input files are problems, never stack traces, hangs or reads
 * outside the tree given. Manifests are files in inputs/input-files/; links, FIFOs and
 * permissions are made in a temporary directory.
 */
import { chmodSync, statSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, copyFileSync, realpathSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeUtf8 } from '../../src/manifests/files.js';
import { cli, cliProcess } from '../support/cli.js';

const INPUTS = new URL('inputs/input-files/', import.meta.url).pathname;
const SHAPES = new URL('inputs/input-shapes/', import.meta.url).pathname;
const work = realpathSync(mkdtempSync(join(tmpdir(), 'meshfork-input-files-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh directory under the work directory. */
function dir(name: string): string {
  const path = join(work, name);
  mkdirSync(path, { recursive: true });
  return path;
}

const CONFIGMAP = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n';

function expectProblems(result: { code: number | null; stdout: string; stderr: string }, lines: string[]): void {
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toEqual([...lines, `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`]);
  expect(result.code).toBe(1);
}

describe('YAML that expands without bound', () => {
  it('an alias bomb (billion laughs) is refused by the alias count', () => {
    const file = `${INPUTS}alias-bomb.yaml`;
    expectProblems(cli('validate', '-f', file), [`${file}:2: -: .: YAML: Excessive alias count indicates a resource exhaustion attack`]);
  });

  it('few aliases of a large node are refused by the bytes they expand to', () => {
    const file = `${INPUTS}alias-bytes.yaml`;
    expectProblems(cli('validate', '--max-file-size', '64Ki', '-f', file), [
      `${file}:3: -: .: document 1 expands (YAML aliases resolved) to more than the per-file limit (--max-file-size) of 65536 bytes`,
    ]);
    // The same file is fine under the default limit (4 MiB): the bound is on bytes, not on aliases.
    expect(cli('validate', '-f', file)).toEqual({ code: 0, stdout: 'ok: 0 Sandboxes, 0 RouteGroups (no Deployments given: forks not checked)\n', stderr: '' });
  });
});

describe('deep nesting', () => {
  it('is refused before anything walks the object recursively', () => {
    const file = `${INPUTS}deep.yaml`;
    expectProblems(cli('validate', '-f', file), [`${file}:2: -: .: document 1 nests more than 100 levels deep`]);
  });
});

describe('the --config file is read like a manifest', () => {
  it('a FIFO is refused without blocking; non-UTF-8 is refused', () => {
    const d = dir('config');
    execFileSync('mkfifo', [join(d, 'fifo.yaml')]);
    expectProblems(cli('validate', '--config', join(d, 'fifo.yaml'), '-f', `${SHAPES}base.yaml`), [`${d}/fifo.yaml: -: .: a FIFO; only regular files are read`]);
    const latin1 = `${INPUTS}latin1.yaml`;
    expectProblems(cli('validate', '--config', latin1, '-f', `${SHAPES}base.yaml`), [`${latin1}: -: .: not valid UTF-8 (first invalid byte at offset 70); manifests must be UTF-8 text`]);
  });
});

describe('size limits', () => {
  it('a file over --max-file-size', () => {
    const file = `${SHAPES}base.yaml`;
    expectProblems(cli('validate', '--max-file-size', '100', '-f', file), [`${file}: -: .: ${statSync(file).size} bytes, more than the per-file limit (--max-file-size) of 100 bytes`]);
  });

  it('files adding up to more than --max-input-size: the rest is not read', () => {
    const d = dir('total');
    for (const name of ['a', 'b', 'c']) writeFileSync(join(d, `${name}.yaml`), CONFIGMAP.replace('ok', name));
    expectProblems(cli('validate', '--max-input-size', '100', '-f', d), [
      `${d}/b.yaml: -: .: the files given add up to more than the total input limit (--max-input-size) of 100 bytes; this file and the ones after it are not read`,
    ]);
  });

  it('limits take Ki/Mi/Gi and refuse nonsense', () => {
    const result = cli('validate', '--max-file-size', '-1', '-f', INPUTS);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "error: option '--max-file-size <bytes>' argument '-1' is invalid. give a positive number of bytes, optionally with Ki, Mi or Gi (e.g. 8Mi)\n",
    );
  });
});

describe('text that is not UTF-8', () => {
  it('is a problem with the offset of the first bad byte, not replaced by U+FFFD', () => {
    const file = `${INPUTS}latin1.yaml`;
    expectProblems(cli('validate', '-f', file), [`${file}: -: .: not valid UTF-8 (first invalid byte at offset 70); manifests must be UTF-8 text`]);
  });
});

describe('links and special files in a directory tree', () => {
  it('a symlink loop', () => {
    const d = dir('loop');
    symlinkSync('b.yaml', join(d, 'a.yaml'));
    symlinkSync('a.yaml', join(d, 'b.yaml'));
    expectProblems(cli('validate', '-f', d), [
      `${d}/a.yaml: -: .: symlink loop (too many levels of symbolic links)`,
      `${d}/b.yaml: -: .: symlink loop (too many levels of symbolic links)`,
    ]);
  });

  it('a dangling symlink, in a tree and given directly', () => {
    const d = dir('dangling');
    symlinkSync('gone.yaml', join(d, 'x.yaml'));
    expectProblems(cli('validate', '-f', d, join(d, 'x.yaml')), [
      `${d}/x.yaml: -: .: dangling symlink (its target does not exist)`,
      `${d}/x.yaml: -: .: dangling symlink (its target does not exist)`,
    ]);
  });

  it('a symlink out of the tree is not followed; one inside it is, and a directory reached twice is read once', () => {
    const outside = dir('outside');
    writeFileSync(join(outside, 'secret.yaml'), CONFIGMAP.replace('ok', 'secret'));
    const d = dir('tree');
    writeFileSync(join(d, 'a.yaml'), CONFIGMAP);
    symlinkSync(join(outside, 'secret.yaml'), join(d, 'secret.yaml'));
    symlinkSync(outside, join(d, 'etc'));
    symlinkSync('../outside/secret.yaml', join(d, 'notes.txt')); // not a manifest name: skipped silently
    symlinkSync('.', join(d, 'self')); // a cycle inside the tree
    symlinkSync('a.yaml', join(d, 'same.yaml')); // the same file again
    expectProblems(cli('validate', '-f', d), [
      `${d}/etc: -: .: symlink to ${outside}, outside ${d}; not followed`,
      `${d}/secret.yaml: -: .: symlink to ${outside}/secret.yaml, outside ${d}; not followed`,
    ]);
    rmSync(join(d, 'etc'));
    rmSync(join(d, 'secret.yaml'));
    // Without the outside links: a.yaml read once (no "defined twice"), the cycle ends.
    expect(cli('validate', '-f', d).code).toBe(0);
  });

  it('a path given directly is followed even when it is a link (the user named it)', () => {
    const d = dir('direct');
    symlinkSync(`${INPUTS}../input-shapes/base.yaml`, join(d, 'base.yaml'));
    expect(cli('validate', '-f', join(d, 'base.yaml')).stdout).toBe('ok: 1 Sandbox, 0 RouteGroups, forks checked against 1 Deployments\n');
  });

  it('a FIFO is refused without blocking, in a tree and given directly', () => {
    const d = dir('fifo');
    execFileSync('mkfifo', [join(d, 'pipe.yaml')]);
    expectProblems(cli('validate', '-f', d, join(d, 'pipe.yaml')), [
      `${d}/pipe.yaml: -: .: a FIFO; only regular files are read`,
      `${d}/pipe.yaml: -: .: a FIFO; only regular files are read`,
    ]);
  });

  it('a directory that does not exist', () => {
    expectProblems(cli('validate', '-f', join(work, 'nope')), [`${work}/nope: -: .: no such file or directory`]);
  });
});

describe('unreadable files and directories', () => {
  // Root reads every file whatever its mode: run the CLI as an unprivileged user then.
  const asRoot = process.getuid?.() === 0;
  const run = (argv: string[]) => (asRoot ? cliProcess(argv, { uid: 65534, gid: 65534 }) : cli(...argv));

  it('are problems naming them', () => {
    const d = dir('perms');
    chmodSync(work, 0o755);
    chmodSync(d, 0o755);
    copyFileSync(`${SHAPES}base.yaml`, join(d, 'a.yaml'));
    writeFileSync(join(d, 'b.yaml'), CONFIGMAP);
    chmodSync(join(d, 'b.yaml'), 0o000);
    mkdirSync(join(d, 'locked'), { mode: 0o000 });
    chmodSync(join(d, 'locked'), 0o000);
    // Directories are listed before files are read, so a directory's problem comes first.
    expectProblems(run(['validate', '-f', d]), [`${d}/locked: -: .: cannot read directory: permission denied`, `${d}/b.yaml: -: .: permission denied`]);
  });
});

describe('decodeUtf8 finds the first invalid byte', () => {
  const cases: Array<[number[], number | undefined]> = [
    [[0x61, 0xc3, 0xa9], undefined], // "aé"
    [[0x61, 0xc3, 0xa9, 0x80], 3], // a lone continuation byte after a complete sequence
    [[0x61, 0xe2, 0x82], 1], // a truncated 3-byte sequence at the end
    [[0x61, 0xe2, 0x82, 0x41], 1], // a truncated sequence before ASCII
    [[0xf0, 0x9f, 0x98, 0x80, 0xff], 4], // 0xFF never occurs in UTF-8
    [[0xc0, 0xaf], 0], // an overlong encoding of "/"
    [[0xed, 0xa0, 0x80], 0], // a UTF-16 surrogate encoded in UTF-8
  ];
  for (const [bytes, offset] of cases) {
    it(bytes.map((b) => b.toString(16)).join(' '), () => {
      const result = decodeUtf8(new Uint8Array(bytes));
      expect('invalidAt' in result ? result.invalidAt : undefined).toBe(offset);
    });
  }
});

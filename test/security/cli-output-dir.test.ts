/**
 * Issue 8 items 4 and 5: `meshfork synth -o <dir>` writes only inside <dir>, one file per object
 * under an unambiguous name, and nothing at all when anything fails.
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { objectFilePath, writeObjectFiles } from '../../src/cli/output.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { cli, FIXTURES } from '../support/cli.js';

const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const SHAPES = new URL('inputs/input-shapes/', import.meta.url).pathname;
const work = realpathSync(mkdtempSync(join(tmpdir(), 'meshfork-output-')));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SANDBOX = join(work, 'sandbox.yaml');
writeFileSync(SANDBOX, 'apiVersion: meshfork.dev/v1alpha1\nkind: Sandbox\nmetadata: {name: demo}\nspec: {routingKey: demokey1, forks: [{forkOf: {kind: Deployment, name: reviews-v3}}]}\n');

/** Every path under `dir`, relative, sorted (links listed, not followed). */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const entry of readdirSync(d).sort()) {
      const path = join(d, entry);
      out.push(prefix + entry);
      if (lstatSync(path).isDirectory()) walk(path, `${prefix}${entry}/`);
    }
  };
  walk(dir, '');
  return out;
}

function object(kind: string, namespace: string | undefined, name: string): KubeObject {
  return { apiVersion: 'v1', kind, metadata: { name, ...(namespace === undefined ? {} : { namespace }) } };
}

describe('file scheme <namespace>/<kind>-<name>.yaml', () => {
  it('names that collided as kind-namespace-name get different files', () => {
    // Before: service-a-b-c.yaml for both.
    const a = object('Service', 'a-b', 'c');
    const b = object('Service', 'a', 'b-c');
    expect([objectFilePath(a), objectFilePath(b)]).toEqual([{ path: 'a-b/service-c.yaml' }, { path: 'a/service-b-c.yaml' }]);
    const out = join(work, 'scheme');
    expect(writeObjectFiles(out, [a, b, object('Namespace', undefined, 'a')])).toEqual([]);
    expect(tree(out)).toEqual(['_cluster', '_cluster/namespace-a.yaml', 'a', 'a/service-b-c.yaml', 'a-b', 'a-b/service-c.yaml']);
    expect(readFileSync(join(out, 'a-b/service-c.yaml'), 'utf8')).toBe('apiVersion: v1\nkind: Service\nmetadata:\n  name: c\n  namespace: a-b\n');
  });

  it('names are checked as DNS names before any path is built; nothing is written', () => {
    const out = join(work, 'hostile');
    const hostile = [
      object('Service', 'default', '../../escape'),
      object('Service', 'default', '/etc/passwd'),
      object('Service', '..', 'x'),
      object('Service', 'a/b', 'x'),
      object('Service/..', 'default', 'x'),
      object('Service', 'default', 'a'.repeat(254)),
      object('Service', 'default', '.'),
    ];
    expect(writeObjectFiles(out, hostile)).toEqual([
      { file: '<output>', object: 'Service default/../../escape', path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters) to name an output file' },
      { file: '<output>', object: 'Service default//etc/passwd', path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters) to name an output file' },
      { file: '<output>', object: 'Service ../x', path: 'metadata.namespace', message: 'must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters) to name an output directory' },
      { file: '<output>', object: 'Service a/b/x', path: 'metadata.namespace', message: 'must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters) to name an output directory' },
      { file: '<output>', object: 'Service/.. default/x', path: 'kind', message: 'must be letters and digits to name an output file' },
      { file: '<output>', object: `Service default/${'a'.repeat(254)}`, path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters) to name an output file' },
      { file: '<output>', object: 'Service default/.', path: 'metadata.name', message: 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters) to name an output file' },
    ]);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(join(work, '..', 'escape'))).toBe(false);
  });

  it('two objects for one file are refused', () => {
    const out = join(work, 'twice');
    expect(writeObjectFiles(out, [object('Service', 'a', 'x'), object('Service', 'a', 'x')])).toEqual([
      { file: '<output>', object: 'Service a/x', path: 'metadata.name', message: 'would be written to a/service-x.yaml twice' },
    ]);
    expect(existsSync(out)).toBe(false);
  });

  it('an inventory name that would climb out of the directory stops synth before -o writes', () => {
    const out = join(work, 'traversal');
    const file = `${SHAPES}deployment-name-traversal.yaml`;
    const result = cli('synth', '-f', file, '-o', out);
    expect(result.stderr).toBe(
      `${file}:1: Deployment default/../../../tmp/evil: metadata.name: must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters)\nmeshfork: 1 problem; nothing written\n`,
    );
    expect(existsSync(out)).toBe(false);
  });
});

describe('-n', () => {
  it('is checked as a namespace name: it names output directories', () => {
    const out = join(work, 'ns');
    const result = cli('synth', '-n', '../../escape', '-f', BOOKINFO, SANDBOX, '-o', out);
    expect(result).toEqual({ code: 1, stdout: '', stderr: '<flags>: -: --namespace: must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters)\nmeshfork: 1 problem; nothing written\n' });
    expect(existsSync(out)).toBe(false);
  });
});

describe('-o target', () => {
  it('an existing file is a problem and stays as it was', () => {
    const file = join(work, 'a-file');
    writeFileSync(file, 'mine\n');
    const result = cli('synth', '-f', BOOKINFO, SANDBOX, '-o', file);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `${file}: -: .: -o names an existing file; give a directory\nmeshfork: 1 problem; nothing written\n` });
    expect(readFileSync(file, 'utf8')).toBe('mine\n');
  });

  it('a symlink is not followed', () => {
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const link = join(work, 'link-out');
    symlinkSync(elsewhere, link);
    const result = cli('synth', '-f', BOOKINFO, SANDBOX, '-o', link);
    expect(result.stderr).toBe(`${link}: -: .: -o names a symlink; give a directory (the link is not followed)\nmeshfork: 1 problem; nothing written\n`);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('a directory holding other files (or links) is left alone', () => {
    const out = join(work, 'foreign');
    mkdirSync(join(out, 'default'), { recursive: true });
    writeFileSync(join(out, 'kustomization.yaml'), 'resources: []\n');
    symlinkSync('/etc', join(out, 'default', 'service-x.yaml'));
    const result = cli('synth', '-f', BOOKINFO, SANDBOX, '-o', out);
    expect(result.stderr).toBe(
      `${out}: -: .: -o directory holds files meshfork does not write (default/service-x.yaml, kustomization.yaml); it is replaced whole, so give an empty or new directory\nmeshfork: 1 problem; nothing written\n`,
    );
    expect(tree(out)).toEqual(['default', 'default/service-x.yaml', 'kustomization.yaml']);
  });

  it('a previous output is replaced whole: objects no longer planned disappear', () => {
    const out = join(work, 'again');
    expect(cli('synth', '-f', BOOKINFO, SANDBOX, '-o', out).code).toBe(0);
    writeFileSync(join(out, 'default', 'service-gone.yaml'), 'stale\n');
    expect(cli('synth', '-f', BOOKINFO, SANDBOX, '-o', out)).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(tree(out)).toEqual([
      'default',
      'default/deployment-reviews-v3-demo.yaml',
      'default/envoyfilter-reviews-v3-demo-affinity.yaml',
      'default/service-reviews-demo.yaml',
      'default/virtualservice-reviews-meshfork.yaml',
    ]);
    // No staging or backup directories are left beside it.
    expect(readdirSync(work).filter((e) => e.includes('meshfork'))).toEqual([]);
  });

  it('bad input writes nothing, not even the directory', () => {
    const out = join(work, 'never');
    const bad = join(work, 'bad.yaml');
    writeFileSync(bad, 'apiVersion: meshfork.dev/v1alpha1\nkind: Sandbox\nmetadata: {name: bad}\nspec: {forks: [{forkOf: {kind: Deployment, name: nope}}]}\n');
    expect(cli('synth', '-f', BOOKINFO, bad, '-o', out).code).toBe(1);
    expect(existsSync(out)).toBe(false);
  });

  it('a write error leaves nothing behind', () => {
    const blocker = join(work, 'blocker');
    writeFileSync(blocker, '');
    const out = join(blocker, 'out');
    const result = cli('synth', '-f', BOOKINFO, SANDBOX, '-o', out);
    expect(result.stderr).toBe(`${out}: -: .: cannot use the output directory: ENOTDIR: lstat failed\nmeshfork: 1 problem; nothing written\n`);
    expect(readFileSync(blocker, 'utf8')).toBe('');
  });
});

describe('-o modes', () => {
  it('the output directory gets the usual mode (umask applied), not a temporary directory 0700', () => {
    const out = join(work, 'mode');
    expect(cli('synth', '-f', BOOKINFO, SANDBOX, '-o', out).code).toBe(0);
    const umask = process.umask(0o022);
    process.umask(umask);
    expect(lstatSync(out).mode & 0o777).toBe(0o777 & ~umask);
    expect(lstatSync(join(out, 'default', 'service-reviews-demo.yaml')).mode & 0o777).toBe(0o644 & ~umask);
  });
});

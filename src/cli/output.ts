/**
 * `meshfork synth -o <dir>`: one file per object, written so that nothing lands outside <dir>
 * and a failed run leaves <dir> as it was.
 *
 * File scheme: `<namespace>/<kind>-<name>.yaml`, cluster-scoped objects under `_cluster/`.
 * The kind is lowercased and holds only letters and digits, so the first `-` ends it; names are
 * RFC 1123 subdomains and namespaces RFC 1123 labels (checked before any path is built), so no
 * part can be `..`, hold a `/` or start a second path, and `_cluster` is no namespace. Two
 * objects share a file only if they have the same kind, namespace and name (refused too).
 *
 * Writing: every file goes into a new directory created beside <dir> under a random name (mkdir
 * fails on an existing name, so nothing in it is a symlink planted by someone else; files are
 * opened with O_EXCL). Only when all are written is
 * it renamed to <dir>. An existing <dir> must be a real directory (not a symlink) holding only
 * what this scheme writes; it is replaced whole, so objects no longer planned disappear with it.
 */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import type { Problem } from '../api/problem.js';
import { DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN } from '../api/schema.js';
import { NAMESPACE_RULE } from '../planner/inventory.js';
import type { KubeObject } from '../planner/kube.js';
import { toYaml } from './yaml.js';

const KIND = /^[A-Za-z][A-Za-z0-9]*$/;
const NAME = new RegExp(DNS_SUBDOMAIN_PATTERN);
const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);
const CLUSTER_DIR = '_cluster';
/** What an existing output directory may hold: this scheme's directories and files. */
const SCHEME_DIR = new RegExp(`(${DNS_LABEL_PATTERN})|^${CLUSTER_DIR}$`);
const SCHEME_FILE = /^[a-z0-9]+-[a-z0-9.-]+\.yaml$/;

/** Path of an object's file relative to the output directory, or the problem with its identity. */
export function objectFilePath(object: KubeObject): { path: string } | { problem: Problem } {
  const { kind, metadata } = object;
  const ref = `${kind} ${metadata.namespace ?? ''}/${metadata.name}`;
  const bad = (path: string, message: string) => ({ problem: { file: '<output>', object: ref, path, message } });
  if (typeof kind !== 'string' || !KIND.test(kind)) return bad('kind', 'must be letters and digits to name an output file');
  if (typeof metadata.name !== 'string' || metadata.name.length > 253 || !NAME.test(metadata.name)) {
    return bad('metadata.name', 'must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters) to name an output file');
  }
  const namespace = metadata.namespace;
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !NAMESPACE.test(namespace))) {
    return bad('metadata.namespace', `${NAMESPACE_RULE} to name an output directory`);
  }
  return { path: join(namespace ?? CLUSTER_DIR, `${kind.toLowerCase()}-${metadata.name}.yaml`) };
}

function errorText(e: unknown): string {
  const error = e as NodeJS.ErrnoException;
  return error.code !== undefined ? `${error.code}: ${error.syscall ?? 'write'} failed` : String(error.message ?? e);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Files and directories in an existing output directory that this scheme does not write. */
function foreignEntries(dir: string): string[] {
  const foreign: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !SCHEME_DIR.test(entry.name)) {
      foreign.push(entry.name);
      continue;
    }
    for (const file of readdirSync(join(dir, entry.name), { withFileTypes: true })) {
      if (!file.isFile() || !SCHEME_FILE.test(file.name)) foreign.push(join(entry.name, file.name));
    }
  }
  return foreign.sort();
}

/**
 * Writes one file per object into `dir` (see the module comment). Returns the problems; when
 * there are any, nothing was changed on disk.
 */
export function writeObjectFiles(dir: string, objects: readonly KubeObject[]): Problem[] {
  const problems: Problem[] = [];
  const files = new Map<string, KubeObject>();
  for (const object of objects) {
    const result = objectFilePath(object);
    if ('problem' in result) {
      problems.push(result.problem);
      continue;
    }
    if (files.has(result.path)) {
      problems.push({ file: '<output>', object: `${object.kind} ${object.metadata.namespace ?? ''}/${object.metadata.name}`, path: 'metadata.name', message: `would be written to ${result.path} twice` });
    }
    files.set(result.path, object);
  }
  if (problems.length > 0) return problems;

  const target = resolve(dir);
  const fail = (message: string) => [{ file: dir, path: '', message }];
  let existing: Stats | undefined;
  try {
    existing = lstatOrUndefined(target);
    if (existing?.isSymbolicLink()) return fail('-o names a symlink; give a directory (the link is not followed)');
    if (existing !== undefined && !existing.isDirectory()) return fail('-o names an existing file; give a directory');
    if (existing !== undefined) {
      const foreign = foreignEntries(target);
      if (foreign.length > 0) {
        const shown = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, and ${foreign.length - 5} more` : '');
        return fail(`-o directory holds files meshfork does not write (${shown}); it is replaced whole, so give an empty or new directory`);
      }
    }
    mkdirSync(dirname(target), { recursive: true });
  } catch (e) {
    return fail(`cannot use the output directory: ${errorText(e)}`);
  }

  let staging: string | undefined;
  /** Where the existing directory is moved while the new one is put in place. */
  let previous: string | undefined;
  /** Set while the existing directory is moved away and not yet replaced or restored. */
  let keepPrevious = false;
  try {
    // A new directory (mkdir fails if the name exists), with the usual mode: it becomes <dir>.
    const name = join(dirname(target), `.${basename(target)}.meshfork-${randomBytes(8).toString('hex')}`);
    mkdirSync(name, { mode: 0o777 });
    staging = name;
    for (const [path, object] of files) {
      mkdirSync(join(staging, dirname(path)), { recursive: true });
      writeFileSync(join(staging, path), toYaml(object), { flag: 'wx', mode: 0o644 });
    }
    if (existing !== undefined) {
      previous = mkdtempSync(join(dirname(target), `.${basename(target)}.meshfork-old-`));
      renameSync(target, join(previous, 'out'));
      keepPrevious = true;
    }
    try {
      renameSync(staging, target);
    } catch (e) {
      if (previous !== undefined) {
        renameSync(join(previous, 'out'), target);
        keepPrevious = false;
      }
      throw e;
    }
    staging = undefined;
    keepPrevious = false;
    return [];
  } catch (e) {
    const note = keepPrevious ? `the previous contents are in ${join(previous!, 'out')}` : 'nothing was changed';
    return fail(`cannot write the output directory: ${errorText(e)}; ${note}`);
  } finally {
    if (staging !== undefined) rmSync(staging, { recursive: true, force: true });
    if (previous !== undefined && !keepPrevious) rmSync(previous, { recursive: true, force: true });
  }
}

/**
 * Finds and reads manifest files safely. Every way a file system can be hostile ends as a
 * Problem naming the path, never as an exception:
 *  - only regular files are read (FIFOs, sockets and devices are refused: reading them can block
 *    or never end);
 *  - a symlink inside a given directory is followed only when its target lies inside that
 *    directory (the tree the user named); a target outside it, a dangling link and a link loop
 *    are each reported; a directory reached twice is read once;
 *  - a path given directly (`-f link.yaml`) is the user's own choice and is followed;
 *  - unreadable files and directories are reported with the system's reason;
 *  - a per-file and a total size cap bound the bytes read (checked on the open descriptor, so a
 *    file growing between stat and read is still cut off);
 *  - text must be valid UTF-8 (decoded with a fatal decoder, never silently replaced), and so
 *    must the names of the files and directories a walk would read (shown with their bytes
 *    escaped, never decoded with replacement characters into a name that does not exist).
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, join, relative, isAbsolute, resolve, sep } from 'node:path';
import type { Problem } from '../api/problem.js';

export interface InputLimits {
  /** Largest file read, in bytes (after YAML alias expansion too). @default 4 MiB */
  readonly maxFileSize: number;
  /** Largest total of all files read, in bytes (after YAML alias expansion too). @default 32 MiB */
  readonly maxInputSize: number;
}

export const MIB = 1024 * 1024;
/** How the limits are named in problems (after the CLI flags that set them). */
export const FILE_LIMIT = 'per-file limit (--max-file-size)';
export const INPUT_LIMIT = 'total input limit (--max-input-size)';
export const DEFAULT_INPUT_LIMITS: InputLimits = { maxFileSize: 4 * MIB, maxInputSize: 32 * MIB };

/** Manifest file names picked up when walking a directory. */
const MANIFEST_FILE = /\.(ya?ml|json)$/;
/** The file that makes a directory a Helm chart (https://helm.sh/docs/topics/charts/). */
export const HELM_CHART_FILE = 'Chart.yaml';

/** A chart's own files, relative to the chart directory: what `helm template` reads as templates, values or subcharts. */
const CHART_OWN_FILE = /^(Chart\.yaml|values\.yaml|values\.schema\.json|(templates|charts|crds)\/.*)$/;

function isRegularFile(path: string | Buffer): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The outermost directory at or above `dir` that holds a Chart.yaml (a chart's subcharts are rendered with it), if any. */
function chartAbove(dir: string): string | undefined {
  let chart: string | undefined;
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (isRegularFile(join(d, HELM_CHART_FILE))) chart = d;
    if (dirname(d) === d) return chart;
  }
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'symlink loop (too many levels of symbolic links)';
    case 'ENAMETOOLONG':
      return 'path name too long';
    case 'ENOTDIR':
      return 'a path component is not a directory';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code !== undefined ? `cannot read (${code})` : 'cannot read';
  }
}

const NOT_UTF8_NAME = 'file name is not valid UTF-8 (shown with \\xHH for each byte that is not printable ASCII, and for \\); rename it to have it read';

/** A directory entry: its name, or for a name that is not UTF-8 its bytes escaped and the raw bytes. */
interface Entry {
  readonly name: string;
  readonly raw?: Buffer;
}

function entryOf(raw: Buffer): Entry {
  const decoded = decodeUtf8(raw);
  if ('text' in decoded) return { name: decoded.text };
  let name = '';
  for (const b of raw) name += b >= 0x20 && b <= 0x7e && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return { name, raw };
}

function isDirectory(path: Buffer): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function kindOf(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * The manifest files under `paths`: files as given, directories walked in name order for
 * `*.yaml`, `*.yml` and `*.json`. Each file is listed once, by the path it was reached by
 * (`<dir>/<entry>`), with its real path (symlinks resolved) in `realPaths`, and in `charts` with
 * the Helm chart directory it belongs to, if any (the outermost directory with a Chart.yaml at or
 * above it).
 */
export function expandPaths(paths: readonly string[]): { files: string[]; realPaths: Map<string, string>; charts: Map<string, string>; problems: Problem[] } {
  const files: string[] = [];
  const realPaths = new Map<string, string>();
  const charts = new Map<string, string>();
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const problem = (file: string, message: string) => problems.push({ file, path: '', message });

  const walkDirectory = (shown: string, real: string, root: string, chart: string | undefined) => {
    if (seen.has(real)) return;
    seen.add(real);
    let entries: Entry[];
    try {
      // Names as bytes: a name that is not UTF-8 would otherwise be decoded lossily into a
      // path that does not exist.
      entries = readdirSync(real, { encoding: 'buffer' })
        .map(entryOf)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (e) {
      problem(shown, `cannot read directory: ${reason(e)}`);
      return;
    }
    if (chart === undefined && entries.some((e) => e.name === HELM_CHART_FILE && e.raw === undefined) && isRegularFile(join(real, HELM_CHART_FILE))) chart = shown;
    for (const { name: entry, raw } of entries) {
      const child = join(shown, entry);
      if (raw !== undefined) {
        // Said only of names that would otherwise be read: manifests and directories.
        if (MANIFEST_FILE.test(entry) || isDirectory(Buffer.concat([Buffer.from(`${real}${sep}`), raw]))) problem(child, NOT_UTF8_NAME);
        continue;
      }
      const realChild = join(real, entry);
      let stat: Stats;
      try {
        stat = lstatSync(realChild);
      } catch (e) {
        problem(child, reason(e));
        continue;
      }
      let target = realChild;
      if (stat.isSymbolicLink()) {
        try {
          target = realpathSync(realChild);
          stat = statSync(target);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          // A named manifest that cannot be reached is reported; other names are not manifests.
          if (code === 'ELOOP' || MANIFEST_FILE.test(entry)) problem(child, code === 'ENOENT' ? 'dangling symlink (its target does not exist)' : reason(e));
          continue;
        }
        if (!isInside(root, target)) {
          // Said only of links that would otherwise be read: directories and manifest names.
          if (stat.isDirectory() || MANIFEST_FILE.test(entry)) problem(child, `symlink to ${target}, outside ${root}; not followed`);
          continue;
        }
      }
      if (stat.isDirectory()) walkDirectory(child, target, root, chart);
      else if (MANIFEST_FILE.test(entry)) addFile(child, target, stat, chart);
    }
  };

  const addFile = (shown: string, real: string, stat: Stats, chart: string | undefined) => {
    if (!stat.isFile()) {
      problem(shown, `${kindOf(stat)}; only regular files are read`);
      return;
    }
    if (seen.has(real)) return;
    seen.add(real);
    files.push(shown);
    realPaths.set(shown, real);
    if (chart !== undefined) charts.set(shown, chart);
  };

  for (const path of paths) {
    let real: string;
    let stat: Stats;
    try {
      real = realpathSync(path);
      stat = statSync(real);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      let dangling = false;
      try {
        dangling = code === 'ENOENT' && lstatSync(path).isSymbolicLink();
      } catch {
        // The path itself does not exist.
      }
      problem(path, dangling ? 'dangling symlink (its target does not exist)' : reason(e));
      continue;
    }
    // A directory inside a chart (`-f chart/templates`) belongs to it as much as the chart itself;
    // a file named directly only when it is one of the chart's own files (a file rendered with
    // `helm template` into the chart directory is a manifest).
    const chart = chartAbove(stat.isDirectory() ? path : dirname(path));
    const shownChart = chart === resolve(path) ? path : chart;
    if (stat.isDirectory()) walkDirectory(path, real, real, shownChart);
    else addFile(path, real, stat, chart !== undefined && CHART_OWN_FILE.test(relative(chart, resolve(path))) ? shownChart : undefined);
  }
  return { files, realPaths, charts, problems };
}

/** A file's bytes, or why it was not read (`overLimit` when it has more than `limit` bytes). */
export type ReadResult = { bytes: Buffer } | { problem: Problem; overLimit?: true };

/**
 * Reads a whole regular file of at most `limit` bytes. `file` names it in problems; `real` is the
 * path opened (resolved and checked by expandPaths). `limitName` names the limit in the message.
 */
export function readLimited(file: string, real: string, limit: number, limitName: string): ReadResult {
  const fail = (message: string) => ({ problem: { file, path: '', message } });
  const over = (size: number, qualifier = '') => ({ ...fail(`${qualifier}${size} bytes, more than the ${limitName} of ${limit} bytes`), overLimit: true as const });
  let fd: number;
  try {
    // O_NOFOLLOW: a symlink swapped in after expandPaths checked the path is refused.
    // O_NONBLOCK: opening a FIFO swapped in never blocks (it is refused below).
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    return fail(reason(e));
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return fail(`${kindOf(stat)}; only regular files are read`);
    if (stat.size > limit) return over(stat.size);
    let buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        // The file grew since fstat: keep reading, up to one byte past the limit.
        if (length > limit) return over(length, 'at least ');
        const grown = Buffer.alloc(Math.min(buffer.length * 2, limit + 1));
        buffer.copy(grown);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return { bytes: buffer.subarray(0, length) };
  } catch (e) {
    return fail(reason(e));
  } finally {
    closeSync(fd);
  }
}

export function notUtf8(offset: number): string {
  return `not valid UTF-8 (first invalid byte at offset ${offset}); manifests must be UTF-8 text`;
}

/** A file named directly (symlinks followed: the user named it), as UTF-8 text of at most `limit` bytes. */
export function readTextFile(file: string, limit: number): { text: string } | { problem: Problem } {
  let real: string;
  try {
    real = realpathSync(file);
  } catch (e) {
    return { problem: { file, path: '', message: reason(e) } };
  }
  const read = readLimited(file, real, limit, FILE_LIMIT);
  if ('problem' in read) return { problem: read.problem };
  const decoded = decodeUtf8(read.bytes);
  return 'text' in decoded ? decoded : { problem: { file, path: '', message: notUtf8(decoded.invalidAt) } };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 text, or the byte offset of the first invalid sequence. */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { invalidAt: number } {
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    // Narrow down the first bad byte: the longest prefix that decodes (a sequence is at most 4 bytes).
    let lo = 0;
    let hi = bytes.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (decodesAsPrefix(bytes.subarray(0, mid))) lo = mid;
      else hi = mid - 1;
    }
    // `lo` may end inside the bad sequence (an incomplete sequence is a valid stream prefix): if
    // the last sequence of the prefix is incomplete, the error starts at its lead byte.
    let lead = lo;
    while (lead > 0 && lo - lead < 3 && ((bytes[lead - 1] ?? 0) & 0xc0) === 0x80) lead--;
    const first = bytes[lead - 1] ?? 0;
    const length = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
    const start = lead > 0 && first >= 0xc0 && lead - 1 + length > lo ? lead - 1 : lo;
    return { invalidAt: start };
  }
}

/** Whether `bytes` is valid UTF-8 up to a possibly incomplete last sequence. */
function decodesAsPrefix(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

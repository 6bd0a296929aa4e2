/**
 * Pid files for test control planes, so that a run killed midway (Ctrl-C, SIGKILL, a timeout)
 * leaves no etcd/kube-apiserver behind for long: the next {@link reapStrayControlPlanes} kills
 * every process recorded by a control plane whose owning (test worker) process is gone, or whose
 * worker's test runner is gone, and removes its temporary directory.
 *
 * Each record names processes by pid AND start time (field 22 of /proc/<pid>/stat), so a pid
 * reused by an unrelated process is never signalled. A control plane whose owner is still
 * alive (another test file running at the same time) is left alone.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PIDFILE_DIR = join(tmpdir(), 'meshfork-control-plane');

export interface RecordedProcess {
  readonly name: string;
  readonly pid: number;
  /** Start time in clock ticks since boot; null where /proc is not readable. */
  readonly start: number | null;
}

export interface PidRecord {
  readonly owner: RecordedProcess;
  /**
   * The owner's parent when the owner is an IPC-forked worker (vitest's `forks` pool): a worker
   * orphaned by a killed test runner counts as dead too, even while it lingers.
   */
  readonly ownerParent?: RecordedProcess;
  readonly tmpDir: string;
  readonly processes: RecordedProcess[];
}

/** Start time of `pid` (clock ticks after boot), or null if it does not exist. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]); // field 22 overall; fields[] starts at field 3
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

/** Whether the exact process (pid + start time) still exists. */
export function isSameProcessAlive(p: RecordedProcess): boolean {
  const now = processStartTime(p.pid);
  if (now === null) {
    // No /proc: fall back to a signal-0 probe.
    if (p.start !== null) return false;
    try {
      process.kill(p.pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  return p.start === null || p.start === now;
}

export function describeSelf(name = 'owner'): RecordedProcess {
  return { name, pid: process.pid, start: processStartTime(process.pid) };
}

/** This process's parent, recorded only when it forked us with an IPC channel (a test runner). */
export function describeRunner(): RecordedProcess | undefined {
  if (!process.connected) return undefined;
  return { name: 'test-runner', pid: process.ppid, start: processStartTime(process.ppid) };
}

/** Writes (atomically replaces) the pid file `<PIDFILE_DIR>/<id>.json`. */
export function writePidRecord(id: string, record: PidRecord): string {
  mkdirSync(PIDFILE_DIR, { recursive: true });
  const file = join(PIDFILE_DIR, `${id}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2));
  renameSync(`${file}.tmp`, file);
  return file;
}

export function removePidRecord(file: string): void {
  rmSync(file, { force: true });
}

/** SIGKILLs the process group led by `p` (the harness spawns each server as a group leader). */
export function killRecorded(p: RecordedProcess, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!isSameProcessAlive(p)) return false;
  try {
    process.kill(-p.pid, signal);
  } catch {
    try {
      process.kill(p.pid, signal);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Kills the processes of every recorded control plane whose owner is dead and removes its
 * temporary directory and pid file. Returns what it killed, for a log line.
 */
export function reapStrayControlPlanes(): RecordedProcess[] {
  let files: string[];
  try {
    files = readdirSync(PIDFILE_DIR).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const killed: RecordedProcess[] = [];
  for (const f of files) {
    const file = join(PIDFILE_DIR, f);
    let rec: PidRecord;
    try {
      rec = JSON.parse(readFileSync(file, 'utf8')) as PidRecord;
    } catch {
      rmSync(file, { force: true });
      continue;
    }
    const ownerAlive = rec.owner && isSameProcessAlive(rec.owner);
    const runnerAlive = !rec.ownerParent || isSameProcessAlive(rec.ownerParent);
    if (ownerAlive && runnerAlive) continue;
    for (const p of rec.processes ?? []) {
      if (killRecorded(p)) killed.push(p);
    }
    if (rec.tmpDir && rec.tmpDir.startsWith(tmpdir())) rmSync(rec.tmpDir, { recursive: true, force: true });
    rmSync(file, { force: true });
  }
  return killed;
}

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { runCli } from '../../src/cli/main.js';

/** Runs the meshfork CLI in-process and captures its output. */
export function cli(...argv: string[]): { code: number; stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  const code = runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

export const FIXTURES = new URL('../../../shared/fixtures/', import.meta.url).pathname;
export const GOLDEN_INPUTS = new URL('../golden/inputs/', import.meta.url).pathname;

const REPO = new URL('../../', import.meta.url).pathname;

/** Arguments that start the CLI as its own Node process (TypeScript through tsx), from the repository root. */
export function cliProcessArgs(...argv: string[]): { command: string; args: string[]; cwd: string } {
  return { command: process.execPath, args: ['--import', 'tsx', `${REPO}src/bin/meshfork.ts`, ...argv], cwd: REPO };
}

/** Runs the CLI as a real child process (for what only a process has: pipes, user ids). */
export function cliProcess(argv: readonly string[], options: Omit<SpawnSyncOptions, 'encoding'> = {}): { code: number | null; stdout: string; stderr: string } {
  const { command, args, cwd } = cliProcessArgs(...argv);
  const result = spawnSync(command, args, { cwd, ...options, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

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

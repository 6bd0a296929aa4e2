/**
 * Issue 8 item 5: a closed stdout (`meshfork synth ... | head -1`) ends the CLI quietly: no
 * stack trace, no "write EPIPE". Runs the CLI as a real child process whose stdout reader is
 * gone before it writes.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cliProcessArgs, FIXTURES } from '../support/cli.js';

const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const SANDBOX = new URL('inputs/input-shapes/base.yaml', import.meta.url).pathname;

function runWithClosedStdout(...argv: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const { command, args, cwd } = cliProcessArgs(...argv);
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  // The reader goes away at once, as `head` does after its first line: the CLI's writes hit EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

describe('closed stdout', () => {
  it('synth exits quietly with its status', async () => {
    // crds prints ~40 KB and synth the Bookinfo forks: both outlive the pipe.
    expect(await runWithClosedStdout('synth', '-f', BOOKINFO, SANDBOX)).toEqual({ code: 0, signal: null, stderr: '' });
    expect(await runWithClosedStdout('crds')).toEqual({ code: 0, signal: null, stderr: '' });
  }, 60_000);
});

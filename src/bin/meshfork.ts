#!/usr/bin/env node
/**
 * The `meshfork` executable: the CLI's offline commands (src/cli), its cluster commands
 * (src/cli/cluster: apply, get, list, delete, status, doctor, routes) and `meshfork controller` (src/controller)
 * on one commander program. The two shells never import each other; this file
 * is the only place that knows both.
 */
import { CommanderError } from 'commander';
import { ExitError, buildProgram, quietOnClosedPipes } from '../cli/main.js';
import { clusterCommands } from '../cli/cluster/command.js';
import { controllerCommand } from '../controller/command.js';

/** Runs the program; resolves to the exit status (usage errors 2, as runCli). */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  program.addCommand(controllerCommand().copyInheritedSettings(program));
  let status = 0;
  const out = { stdout: (t: string) => void process.stdout.write(t), stderr: (t: string) => void process.stderr.write(t) };
  for (const command of clusterCommands(out, (code) => (status = code))) program.addCommand(command.copyInheritedSettings(program));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
}

quietOnClosedPipes();
const code = await main(process.argv.slice(2));
// The controller sets a failure status itself and resolves normally.
if (code !== 0) process.exitCode = code;

#!/usr/bin/env node
/**
 * `meshfork` command line. Offline commands:
 *   synth     inventory + Sandbox/RouteGroup manifests -> every object meshfork adds or changes
 *   validate  checks Sandbox/RouteGroup manifests (and their forks, when inventory is given)
 *   crds      prints the meshfork.dev CustomResourceDefinitions
 * Bad input: every problem on stderr as `<file>: <object>: <field.path>: <message>`, nothing on
 * stdout, exit status 1. Usage errors exit 2.
 */
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { formatProblem, type Problem } from '../api/problem.js';
import { resolveConfig } from '../api/config.js';
import { customResourceDefinitions } from '../api/crd.js';
import { plan, type PlanConfig } from '../planner/plan.js';
import type { KubeObject } from '../planner/kube.js';
import { loadInputs, withSources } from './load.js';
import { toYamlDocuments, toYaml } from './yaml.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

interface CommonOptions {
  file: string[];
  namespace: string;
  config?: string;
  keyName?: string;
  compat?: string;
  header?: string[];
  ingressGuard?: boolean;
}

class ExitError extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function fail(io: CliIo, problems: readonly Problem[]): never {
  for (const p of problems) io.stderr(`${formatProblem(p)}\n`);
  io.stderr(`meshfork: ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing written\n`);
  throw new ExitError(1);
}

function loadConfig(io: CliIo, options: CommonOptions): PlanConfig {
  let file: unknown;
  if (options.config !== undefined) {
    try {
      file = parseYaml(readFileSync(options.config, 'utf8'));
    } catch (e) {
      fail(io, [{ file: options.config, path: '', message: (e as Error).message.split('\n')[0] ?? 'unreadable' }]);
    }
  }
  const { config, problems } = resolveConfig(file, {
    ...(options.compat !== undefined ? { compat: options.compat } : {}),
    ...(options.keyName !== undefined ? { keyName: options.keyName } : {}),
    ...(options.header !== undefined ? { headers: options.header } : {}),
  });
  if (config === undefined) fail(io, problems.map((p) => ({ ...p, file: p.path.startsWith('--') ? '<flags>' : options.config ?? '<config>' })));
  if (options.ingressGuard) return { ...config, ingressGuard: { ...config.ingressGuard, enabled: true } };
  return config;
}

function synth(io: CliIo, options: CommonOptions & { output?: string }): void {
  const config = loadConfig(io, options);
  const input = loadInputs(options.file, options.namespace);
  if (input.problems.length > 0) fail(io, input.problems);
  const result = plan({ inventory: input.inventory, sandboxes: input.sandboxes, routeGroups: input.routeGroups, config });
  if (result.problems.length > 0) fail(io, withSources(result.problems, input.sources));
  for (const note of withSources(result.notes, input.sources)) io.stderr(`note: ${formatProblem(note)}\n`);
  if (options.output !== undefined) writeObjectFiles(options.output, result.objects);
  else io.stdout(toYamlDocuments(result.objects));
}

export function objectFileName(object: KubeObject): string {
  return `${object.kind.toLowerCase()}-${object.metadata.namespace ?? 'cluster'}-${object.metadata.name}.yaml`;
}

function writeObjectFiles(dir: string, objects: readonly KubeObject[]): void {
  mkdirSync(dir, { recursive: true });
  for (const object of objects) writeFileSync(join(dir, objectFileName(object)), toYaml(object));
}

function validate(io: CliIo, options: CommonOptions): void {
  const config = loadConfig(io, options);
  const input = loadInputs(options.file, options.namespace);
  if (input.problems.length > 0) fail(io, input.problems);
  // Forks are checked against the inventory only when the input holds one.
  const hasInventory = input.inventory.deployments.length > 0;
  const result = plan({ inventory: input.inventory, sandboxes: input.sandboxes, routeGroups: input.routeGroups, config });
  const problems = hasInventory ? result.problems : result.problems.filter((p) => p.code !== 'BaselineNotFound');
  if (problems.length > 0) fail(io, withSources(problems, input.sources));
  io.stdout(
    `ok: ${input.sandboxes.length} Sandbox${input.sandboxes.length === 1 ? '' : 'es'}, ${input.routeGroups.length} RouteGroup${input.routeGroups.length === 1 ? '' : 's'}` +
      `${hasInventory ? `, forks checked against ${input.inventory.deployments.length} Deployments` : ' (no Deployments given: forks not checked)'}\n`,
  );
}

export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('meshfork')
    .description('Sandboxes in a shared Kubernetes + Istio cluster, routed by OpenTelemetry baggage.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const common = (command: Command) =>
    command
      .requiredOption('-f, --file <path...>', 'manifest files or directories (inventory and Sandbox/RouteGroup objects)')
      .option('-n, --namespace <namespace>', 'namespace of objects that name none', 'default')
      .option('--config <file>', 'meshfork configuration file (routing keys, ingress guard)')
      .option('--key-name <name>', 'baggage member key of the routing key (default meshfork-routing-key)')
      .addOption(new Option('--compat <preset>', 'routing-key compatibility preset').choices(['signadot']))
      .option('--header <name...>', 'extra plain headers that carry the routing key')
      .option('--ingress-guard', 'also emit the mesh-wide ingress guard EnvoyFilter (preview tokens come from --config)');
  common(program.command('synth').description('generate the Istio routing and forked workloads for the sandboxes'))
    .option('-o, --output <dir>', 'write one file per object into <dir> instead of stdout')
    .action((options: CommonOptions & { output?: string }) => synth(io, options));
  common(program.command('validate').description('check Sandbox and RouteGroup manifests')).action((options: CommonOptions) => validate(io, options));
  program
    .command('crds')
    .description('print the meshfork.dev CustomResourceDefinitions')
    .action(() => io.stdout(toYamlDocuments(customResourceDefinitions())));
  return program;
}

/** Runs the CLI; returns the exit status instead of exiting (tests call this directly). */
export function runCli(argv: readonly string[], io: CliIo = processIo): number {
  try {
    buildProgram(io).parse([...argv], { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof ExitError) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    throw e;
  }
}

const entry = process.argv[1];
if (entry !== undefined && pathToFileURL(realpathSync(entry)).href === import.meta.url) {
  process.exitCode = runCli(process.argv.slice(2));
}

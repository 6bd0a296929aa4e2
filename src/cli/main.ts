/**
 * `meshfork` command line. Offline commands:
 *   synth     inventory + Sandbox/RouteGroup manifests -> every object meshfork adds or changes
 *   validate  checks Sandbox/RouteGroup manifests (and their forks, when inventory is given)
 *   crds      prints the meshfork.dev CustomResourceDefinitions
 * Bad input: every problem on stderr as `<file>: <object>: <field.path>: <message>` (input text
 * escaped, see formatProblem), nothing on stdout, exit status 1. Usage errors exit 2. A closed
 * stdout (`meshfork synth ... | head -1`) ends the output quietly.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { escapeText, formatProblem, type Problem } from '../api/problem.js';
import { resolveConfig } from '../api/config.js';
import { customResourceDefinitions } from '../api/crd.js';
import { DNS_LABEL_PATTERN } from '../api/schema.js';
import { NAMESPACE_RULE } from '../planner/inventory.js';
import { plan, type PlanConfig, type PlanResult } from '../planner/plan.js';
import { DEFAULT_INPUT_LIMITS, loadInputs, withSources, type LoadedInput } from '../manifests/load.js';
import { MIB, readTextFile } from '../manifests/files.js';
import { writeObjectFiles } from './output.js';
import { toYamlDocuments } from './yaml.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Set once a reader closed stdout or stderr (EPIPE): further output to it is dropped. */
const closed = { stdout: false, stderr: false };

const processIo: CliIo = {
  stdout: (t) => void (closed.stdout || process.stdout.write(t)),
  stderr: (t) => void (closed.stderr || process.stderr.write(t)),
};

/**
 * A reader that stops early (`| head -1`) closes the pipe; Node reports that as an 'error' event
 * (EPIPE) on the stream, which would otherwise end the process with a stack trace. The output
 * is simply not wanted any more: drop it and keep the exit status.
 */
export function quietOnClosedPipes(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    process[name].on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      closed[name] = true;
    });
  }
}

interface CommonOptions {
  file: string[];
  namespace: string;
  config?: string;
  keyName?: string;
  compat?: string;
  header?: string[];
  routingMode?: string;
  hostRoutingMode?: string[];
  ingressGuard?: boolean;
  maxFileSize: number;
  maxInputSize: number;
}

export class ExitError extends Error {
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
    const read = readTextFile(options.config, options.maxFileSize);
    if ('problem' in read) fail(io, [read.problem]);
    try {
      file = parseYaml(read.text);
    } catch (e) {
      fail(io, [{ file: options.config, path: '', message: (e as Error).message.split('\n')[0] ?? 'unreadable' }]);
    }
  }
  const { config, problems } = resolveConfig(file, {
    ...(options.compat !== undefined ? { compat: options.compat } : {}),
    ...(options.keyName !== undefined ? { keyName: options.keyName } : {}),
    ...(options.header !== undefined ? { headers: options.header } : {}),
    ...(options.routingMode !== undefined ? { mode: options.routingMode } : {}),
    ...(options.hostRoutingMode !== undefined ? { hostModes: options.hostRoutingMode } : {}),
  });
  if (config === undefined) fail(io, problems.map((p) => ({ ...p, file: p.path.startsWith('--') ? '<flags>' : options.config ?? '<config>' })));
  if (options.ingressGuard) return { ...config, ingressGuard: { ...config.ingressGuard, enabled: true } };
  return config;
}

/**
 * Loads the input and plans it. Sandboxes and RouteGroups with schema problems are planned in
 * their valid parts (LoadedInput.partial) so that their rule problems come in the same run;
 * input the loader could not fully read is not planned (objects would look missing).
 */
function loadAndPlan(io: CliIo, options: CommonOptions): { input: LoadedInput; result: PlanResult; problems: Problem[] } {
  const config = loadConfig(io, options);
  if (options.namespace.length > 63 || !NAMESPACE.test(options.namespace)) fail(io, [{ file: '<flags>', path: '--namespace', message: NAMESPACE_RULE }]);
  const input = loadInputs(options.file, options.namespace, { maxFileSize: options.maxFileSize, maxInputSize: options.maxInputSize });
  // How the input was read (kustomizations not applied) matters whatever the outcome: said first.
  for (const note of input.notes) io.stderr(`note: ${formatProblem(note)}\n`);
  if (!input.complete) fail(io, input.problems);
  const result = plan({
    inventory: input.inventory,
    sandboxes: [...input.sandboxes, ...input.partial.sandboxes],
    routeGroups: [...input.routeGroups, ...input.partial.routeGroups],
    config,
  });
  const planned = withSources(result.problems, input.sources).map((p) => forkIndexRestored(p, input.partial.forkIndex));
  return { input, result, problems: [...input.problems, ...planned] };
}

/** A planner problem of a partial Sandbox, with its fork indices as the user wrote them. */
function forkIndexRestored(problem: Problem, forkIndex: ReadonlyMap<string, readonly number[]>): Problem {
  const index = problem.object === undefined ? undefined : forkIndex.get(problem.object);
  if (index === undefined) return problem;
  const restore = (text: string) => text.replace(/spec\.forks\[(\d+)\]/g, (_m, i: string) => `spec.forks[${index[Number(i)] ?? i}]`);
  return { ...problem, path: restore(problem.path), message: restore(problem.message) };
}

/** The planner's notes on stderr, one `note: <file>: <object>: <field.path>: <message>` line each. */
function printNotes(io: CliIo, result: PlanResult, input: LoadedInput): void {
  for (const note of withSources(result.notes, input.sources)) io.stderr(`note: ${formatProblem(note)}\n`);
}

function synth(io: CliIo, options: CommonOptions & { output?: string }): void {
  const { input, result, problems } = loadAndPlan(io, options);
  if (problems.length > 0) fail(io, problems);
  printNotes(io, result, input);
  if (options.output !== undefined) {
    const written = writeObjectFiles(options.output, result.objects);
    if (written.length > 0) fail(io, written);
  } else {
    io.stdout(toYamlDocuments(result.objects));
  }
}

/** Validates as synth plans, without writing objects: the same problems, and the same notes on success. */
function validate(io: CliIo, options: CommonOptions): void {
  const { input, result, problems: all } = loadAndPlan(io, options);
  // Forks are checked against the inventory only when the input holds one.
  const hasInventory = input.inventory.deployments.length + (input.inventory.workloads?.length ?? 0) > 0;
  const problems = hasInventory ? all : all.filter((p) => p.code !== 'BaselineNotFound');
  if (problems.length > 0) fail(io, problems);
  printNotes(io, result, input);
  io.stdout(
    `ok: ${input.sandboxes.length} Sandbox${input.sandboxes.length === 1 ? '' : 'es'}, ${input.routeGroups.length} RouteGroup${input.routeGroups.length === 1 ? '' : 's'}` +
      `${hasInventory ? `, forks checked against ${input.inventory.deployments.length} Deployments` : ' (no Deployments given: forks not checked)'}\n`,
  );
}

const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);

/** `--max-file-size 8Mi`: bytes, or a number with Ki, Mi or Gi. */
function parseSize(text: string): number {
  const m = /^([0-9]{1,10})(Ki|Mi|Gi)?$/.exec(text);
  const size = m === null ? NaN : Number(m[1]) * ({ Ki: 1024, Mi: MIB, Gi: 1024 * MIB }[m[2] ?? ''] ?? 1);
  if (!Number.isSafeInteger(size) || size <= 0) throw new InvalidArgumentError('give a positive number of bytes, optionally with Ki, Mi or Gi (e.g. 8Mi)');
  return size;
}

export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('meshfork')
    .description('Sandboxes in a shared Kubernetes + Istio cluster, routed by OpenTelemetry baggage.')
    .version('0.1.0')
    .exitOverride()
    // Usage errors quote the arguments (which may come from file names a script passes on): escaped per line.
    .configureOutput({ writeOut: io.stdout, writeErr: (text) => io.stderr(text.split('\n').map(escapeText).join('\n')) });
  const common = (command: Command) =>
    command
      .requiredOption('-f, --file <path...>', 'manifest files or directories (inventory and Sandbox/RouteGroup objects)')
      .option('-n, --namespace <namespace>', 'namespace of objects that name none', 'default')
      .option('--config <file>', 'meshfork configuration file (routing keys, ingress guard)')
      .option('--key-name <name>', 'baggage member key of the routing key (default meshfork-routing-key)')
      .addOption(new Option('--compat <preset>', 'routing-key compatibility preset').choices(['signadot']))
      .option('--header <name...>', 'extra plain headers that carry the routing key')
      .addOption(new Option('--routing-mode <mode>', 'how forked hosts are routed (overrides routing.mode; default auto)').choices(['auto', 'virtualService', 'gatewayAPI']))
      .option('--host-routing-mode <host=mode...>', 'routing mode of one host, <service>.<namespace>=<mode> (overrides routing.hosts)')
      .option('--ingress-guard', 'also emit the mesh-wide ingress guard EnvoyFilter (preview tokens come from --config)')
      .option('--max-file-size <bytes>', 'largest manifest file read, after YAML alias expansion (e.g. 8Mi)', parseSize, DEFAULT_INPUT_LIMITS.maxFileSize)
      .option('--max-input-size <bytes>', 'largest total of all manifest files read (e.g. 64Mi)', parseSize, DEFAULT_INPUT_LIMITS.maxInputSize);
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

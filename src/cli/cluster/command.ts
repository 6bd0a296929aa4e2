/**
 * The cluster commands' flags, as kubectl has them: `--kubeconfig`, `--context`, `-n`, `-A`,
 * `-o table|yaml|json`. The client (./run.ts) is imported when a command runs.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DNS_LABEL_PATTERN } from '../../api/schema.js';
import type { ClusterFlags, Output } from './run.js';
import { CommandFailed } from '../failed.js';
import { parseGateway, parseHeader, parsePort, parseSourceLabels, type RoutesFlags } from '../routes-flags.js';

const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);

function parseNamespace(text: string): string {
  if (text.length > 63 || !NAMESPACE.test(text)) throw new InvalidArgumentError('must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters)');
  return text;
}

/** `--wait` alone waits 5 minutes; `--wait=90s`, `--wait=5m`, `--wait=1h`. */
function parseWait(text: string): number {
  const m = /^([0-9]{1,6})(s|m|h)?$/.exec(text);
  if (m === null) throw new InvalidArgumentError('give a duration such as 90s, 5m or 1h');
  return Number(m[1]) * ({ s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000);
}
const DEFAULT_WAIT_MS = 5 * 60_000;

function clusterOptions(command: Command, lists = false): Command {
  command
    .option('--kubeconfig <file>', 'kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('-n, --namespace <namespace>', "namespace (default: the context's, else default)", parseNamespace);
  if (lists) command.option('-A, --all-namespaces', 'every namespace');
  return command.addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'yaml', 'json']).default('table'));
}

/** Runs `fn`; a CommandFailed (already explained) becomes the exit status, another error status 1. */
async function guarded(fn: () => Promise<void>, out: Output): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (error) {
    if (error instanceof CommandFailed) return error.code;
    out.stderr(`meshfork: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/** Runs `fn` from ./run.js (the Kubernetes client, loaded now), guarded. */
async function runWith(fn: (run: typeof import('./run.js'), out: Output) => Promise<void>, out: Output): Promise<number> {
  return guarded(async () => fn(await import('./run.js'), out), out);
}

/** `apply`, `get`, `list`, `delete`, `status`, `doctor`, `routes`; `setExit` receives each command's exit status. */
export function clusterCommands(out: Output, setExit: (code: number) => void): Command[] {
  const kindArg = async (text: string | undefined, run: typeof import('./run.js')) => {
    const kind = text === undefined ? 'sandboxes' : run.kindOf(text);
    if (kind === undefined) {
      out.stderr(`meshfork: unknown kind "${text}"; give sandboxes or routegroups\n`);
      throw new run.CommandFailed(2);
    }
    return kind;
  };
  const apply = clusterOptions(new Command('apply').description('create or update Sandboxes and RouteGroups (server-side apply)'))
    .requiredOption('-f, --file <path...>', 'manifest files or directories')
    .addOption(new Option('--wait [timeout]', 'wait until each Sandbox is Ready (default 5m), one progress line per change').argParser(parseWait))
    .action(async ({ wait: given, ...flags }: ClusterFlags & { file: string[]; wait?: number | true }) => {
      const wait = given === true ? DEFAULT_WAIT_MS : given;
      setExit(await runWith((run) => run.apply({ ...flags, ...(wait !== undefined ? { wait } : {}) }, out), out));
    });
  const get = (name: string) =>
    clusterOptions(new Command(name).description('list Sandboxes (default) or RouteGroups like kubectl get').argument('[kind]', 'sandboxes or routegroups').argument('[name]', 'one object'), true).action(
      async (kind: string | undefined, objectName: string | undefined, flags: ClusterFlags) => {
        setExit(await runWith(async (run) => run.get({ ...flags, kind: await kindArg(kind, run), ...(objectName !== undefined ? { name: objectName } : {}) }, out), out));
      },
    );
  const del = clusterOptions(new Command('delete').description('delete a Sandbox (or routegroup/<name>)').argument('<name>', 'sandbox name, or <kind>/<name>'))
    .addOption(new Option('--wait [timeout]', 'wait until its routes and forks are gone (default 5m)').argParser(parseWait))
    .action(async (target: string, { wait: given, ...flags }: ClusterFlags & { wait?: number | true }) => {
      const wait = given === true ? DEFAULT_WAIT_MS : given;
      setExit(
        await runWith(async (run) => {
          const [kindText, name] = target.includes('/') ? target.split('/', 2) : [undefined, target];
          await run.remove({ ...flags, kind: await kindArg(kindText, run), name: name ?? '', ...(wait !== undefined ? { wait } : {}) }, out);
        }, out),
      );
    });
  const status = clusterOptions(new Command('status').description('conditions, forks, the routes carrying the key, and what to send').argument('<name>', 'sandbox name'))
    .option('--key-name <name>', 'baggage member key of the routing key, as the controller is configured (default meshfork-routing-key)')
    .action(async (name: string, flags: ClusterFlags & { keyName?: string }) => {
      setExit(await runWith((run) => run.status({ ...flags, name }, out), out));
    });
  const doctor = clusterOptions(new Command('doctor').description('preflight: Istio and meshfork CRDs, the controller, mesh mode of fork namespaces, conflicting VirtualServices'))
    .option('--lease-namespace <namespace>', "namespace of the controller's Lease (the chart's release namespace)", parseNamespace, 'meshfork-system')
    .option('--lease-name <name>', "name of the controller's Lease", 'meshfork-controller')
    .action(async (flags: ClusterFlags & { leaseNamespace: string; leaseName: string }) => {
      setExit(await runWith((run) => run.runDoctor(flags, out), out));
    });
  const routes = clusterOptions(
    new Command('routes')
      .description("a host's effective route table (which VirtualService, each route's owner and destinations), or with a request the route it takes")
      .argument('<host>', 'host of a Service (name, name.namespace or FQDN) or of a VirtualService'),
  )
    .option('--header <name=value>', "request header, name=value or 'name: value' (repeat for more)", parseHeader)
    .option('--uri <path>', 'request path (and ?query)')
    .option('--method <method>', 'request method')
    .option('--port <port>', 'port the request is sent to (for routes matching on port)', parsePort)
    .option('--source-labels <k=v,...>', "the client pod's labels (for routes matching on sourceLabels)", parseSourceLabels)
    .option('--gateway <namespace/name>', "route as this Gateway's proxy does instead of the sidecars of --namespace", parseGateway)
    .option('-f, --file <path...>', 'read VirtualServices, DestinationRules and Services from these files or directories instead of the cluster')
    .action(async (host: string, flags: ClusterFlags & RoutesFlags & { file?: string[] }) => {
      if (flags.file !== undefined) {
        const { routesFromFiles } = await import('../routes.js');
        setExit(await guarded(async () => routesFromFiles(flags.file!, host, flags.namespace ?? 'default', flags, out), out));
        return;
      }
      setExit(await runWith((run) => run.routes({ ...flags, host }, out), out));
    });
  return [apply, get('get'), get('list'), del, status, doctor, routes];
}

/** The cluster commands on their own program, in-process (tests; the executable is src/bin/meshfork.ts). */
export async function runClusterCli(argv: readonly string[], out: Output): Promise<number> {
  let status = 0;
  const program = new Command('meshfork').exitOverride().configureOutput({ writeOut: out.stdout, writeErr: out.stderr });
  for (const command of clusterCommands(out, (code) => (status = code))) program.addCommand(command.copyInheritedSettings(program));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
}

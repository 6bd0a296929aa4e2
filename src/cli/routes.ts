/**
 * `meshfork routes <host>`: the effective HTTP route table of a host as a proxy uses it (which
 * VirtualService, its routes in the order Envoy tries them, whose each route is: a sandbox's,
 * meshfork's or the user's, and where each sends requests), and with a request (`--header`,
 * `--uri`, `--method`) the route it takes and where it lands. The objects come from the cluster
 * (src/cli/cluster/run.ts) or from files (`-f`, read like synth's input); the answer from
 * src/routing (Istio's first-match semantics, RE2 header regexes, delegates, subsets).
 */
import { escapeText, formatProblem } from '../api/problem.js';
import { loadInputs } from '../manifests/load.js';
import { RouteEvalError, type RouteRequest } from '../routing/evaluate.js';
import { UnknownHostError, hostFqdn, hostRoutes, traceRequest, type HostRoute, type HostRoutes, type ResolvedDestination, type RouteTrace, type RoutingObjects, type Viewpoint } from '../routing/host-routes.js';
import { table } from './cluster/present.js';
import { toYamlDocuments } from './yaml.js';
import type { RoutesFlags } from './routes-flags.js';
import { CommandFailed } from './failed.js';

export interface RoutesOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Whether the flags describe a request to trace (else the table of routes is printed). */
function hasRequest(flags: RoutesFlags): boolean {
  return (flags.header?.length ?? 0) > 0 || flags.uri !== undefined || flags.method !== undefined;
}

/** The request the flags describe, headers grouped by name in the order given. */
function requestOf(flags: RoutesFlags): RouteRequest {
  const headers: Record<string, string[]> = {};
  for (const [name, value] of flags.header ?? []) {
    if (!Object.hasOwn(headers, name)) Object.defineProperty(headers, name, { value: [], enumerable: true, writable: true, configurable: true });
    (headers[name] as string[]).push(value);
  }
  return {
    headers,
    ...(flags.uri !== undefined ? { uri: flags.uri } : {}),
    ...(flags.method !== undefined ? { method: flags.method } : {}),
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    // Not given: a route on sourceLabels makes the evaluator ask for them (never a guess).
    ...(flags.sourceLabels !== undefined ? { sourceLabels: flags.sourceLabels } : {}),
  };
}

/** The evaluator's "the request must give X" in terms of this command's flags. */
const FLAG_OF: Record<string, string> = { sourceLabels: "--source-labels (the client pod's labels)", port: '--port', method: '--method', authority: "--header 'host: <authority>'" };

function explain(error: RouteEvalError, virtualService: string | undefined): string {
  const message = error.message.replace(/^route-eval: /, '');
  const needed = /the request must give (\w+)$/.exec(message);
  const flag = needed ? FLAG_OF[needed[1] as string] : undefined;
  return `${virtualService ? `VirtualService ${virtualService}: ` : ''}${message}${flag ? `: give ${flag}` : ''}`;
}

const percent = (share: number) => `${Number.isInteger(share) ? share : share.toFixed(1)}%`;

function destinationText(d: ResolvedDestination): string {
  return `${d.host}${d.subset ? ` subset ${d.subset}` : ''}${d.port ? ` port ${d.port}` : ''} ${percent(d.share)}`;
}

function ownerText(route: HostRoute): string {
  const o = route.owner;
  return 'sandbox' in o ? `sandbox ${o.sandbox}` : 'meshfork' in o ? `meshfork ${o.meshfork}` : 'user';
}

function targetsText(route: HostRoute): string {
  if (route.action === 'redirect') return 'redirect';
  if (route.action === 'directResponse') return 'direct response';
  return [...route.destinations.map(destinationText), ...route.mirrors.map((m) => `mirror ${m.host}${m.subset ? ` subset ${m.subset}` : ''} ${percent(m.percentage)}`)].join(', ');
}

function heading(result: HostRoutes, viewpoint: Viewpoint): string {
  const sidecars = (viewpoint.gateway ?? 'mesh') === 'mesh';
  const proxy = sidecars ? `sidecars of namespace ${viewpoint.namespace}` : `gateway ${viewpoint.gateway}`;
  if (result.virtualService === undefined) return `Host ${result.host}: no VirtualService applies to ${proxy}; Istio's default route sends every request to the Service`;
  return `Host ${result.host}: VirtualService ${result.virtualService}${result.delegates.length > 0 ? ` with delegates ${result.delegates.join(', ')}` : ''}, as ${proxy} ${sidecars ? 'use' : 'uses'} it`;
}

/** The route table, one row per route in the order Envoy tries them. */
export function routesTable(result: HostRoutes, viewpoint: Viewpoint): string {
  const rows = result.routes.map((r) => [String(r.index), r.name ?? '-', ownerText(r), targetsText(r), r.match.length === 0 ? '*' : r.match.join(' or ')]);
  return `${escapeText(heading(result, viewpoint))}\n${table(['#', 'ROUTE', 'OWNER', 'DESTINATIONS', 'MATCH'], rows)}`;
}

/** Where one request goes: the route taken (or none), the block that matched, each destination. */
export function traceReport(result: RouteTrace, viewpoint: Viewpoint, request: RouteRequest): string {
  const lines = [heading(result, viewpoint)];
  const sent = Object.entries(request.headers).flatMap(([name, values]) => (typeof values === 'string' ? [values] : values).map((v) => `${name}: ${v}`));
  lines.push(`Request: ${request.method ?? 'any method'} ${request.uri ?? '/'}${request.port !== undefined ? ` port ${request.port}` : ''}${sent.length > 0 ? `, ${sent.join(', ')}` : ', no headers'}`);
  const taken = result.taken;
  if (taken === undefined) {
    lines.push('No route matches: the proxy answers 404 (NR)');
    return lines.map(escapeText).join('\n') + '\n';
  }
  const matched = result.matchIndex === undefined ? 'matches every request' : `match[${result.matchIndex}]: ${taken.match[result.matchIndex] ?? ''}`;
  lines.push(`Takes route ${taken.index} ${taken.name ?? '(unnamed)'} (${ownerText(taken)}), ${matched}`);
  if (taken.action !== 'route') lines.push(`  ${targetsText(taken)}`);
  for (const d of taken.destinations) {
    const subset = d.subsetLabels ? ` (DestinationRule ${d.destinationRule}: ${Object.entries(d.subsetLabels).map(([k, v]) => `${k}=${v}`).join(',')})` : '';
    lines.push(`  -> ${destinationText(d)}${subset}${d.problem ? `: ${d.problem}` : ''}`);
  }
  for (const m of taken.mirrors) lines.push(`  mirrored to ${m.host}${m.subset ? ` subset ${m.subset}` : ''} ${percent(m.percentage)}`);
  return lines.map(escapeText).join('\n') + '\n';
}

/**
 * Prints the routes of `host` (as the user named it; short names are in `namespace`) from
 * `objects`: the table, or with a request the route it takes. Problems (an unknown host,
 * routing the evaluator cannot decide) go to stderr and end the command with status 1.
 */
export function printRoutes(objects: RoutingObjects, host: string, namespace: string, flags: RoutesFlags, out: RoutesOutput): void {
  const fqdn = hostFqdn(host, namespace);
  const viewpoint: Viewpoint = { namespace, ...(flags.gateway !== undefined ? { gateway: flags.gateway } : {}) };
  const request = requestOf(flags);
  let result: HostRoutes | RouteTrace;
  try {
    result = hasRequest(flags) ? traceRequest(objects, fqdn, viewpoint, request) : hostRoutes(objects, fqdn, viewpoint);
  } catch (error) {
    if (error instanceof UnknownHostError) {
      out.stderr(`meshfork: unknown host ${escapeText(JSON.stringify(host))}: ${escapeText(error.message)}; check the host, --namespace (the client's namespace) and --gateway\n`);
      throw new CommandFailed(1);
    }
    if (error instanceof RouteEvalError) {
      let virtualService: string | undefined;
      try {
        virtualService = hostRoutes(objects, fqdn, viewpoint).virtualService;
      } catch {
        virtualService = undefined; // the table itself is what failed
      }
      out.stderr(`meshfork: ${escapeText(explain(error, virtualService))}\n`);
      throw new CommandFailed(1);
    }
    throw error;
  }
  if (flags.output === 'json' || flags.output === 'yaml') {
    out.stdout(flags.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : toYamlDocuments([result]));
  } else {
    out.stdout(hasRequest(flags) ? traceReport(result, viewpoint, request) : routesTable(result, viewpoint));
  }
  // A subset nobody defines fails every request sent to it: said whatever the output format.
  for (const r of result.routes) for (const d of r.destinations) if (d.problem) out.stderr(`warning: route ${r.index} ${r.name ?? '(unnamed)'}: ${escapeText(d.problem)}\n`);
}

/** `meshfork routes <host> -f <files>`: the objects from manifest files, read like synth's input. */
export function routesFromFiles(files: readonly string[], host: string, namespace: string, flags: RoutesFlags, out: RoutesOutput): void {
  const input = loadInputs(files, namespace);
  for (const note of input.notes) out.stderr(`note: ${formatProblem(note)}\n`);
  if (!input.complete) {
    const problems = input.problems;
    for (const p of problems) out.stderr(`${formatProblem(p)}\n`);
    out.stderr(`meshfork: ${problems.length} problem${problems.length === 1 ? '' : 's'} reading the files\n`);
    throw new CommandFailed(1);
  }
  const { virtualServices, destinationRules, services } = input.inventory;
  printRoutes({ virtualServices, destinationRules, services }, host, namespace, flags, out);
}

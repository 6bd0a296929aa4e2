/**
 * How the cluster commands show Sandboxes and RouteGroups (pure): `kubectl get`-style tables,
 * the one-line progress of `apply --wait`, and `status`'s report with what to send.
 */
import { escapeText } from '../../api/problem.js';

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface SandboxLike {
  metadata: { name: string; namespace?: string; creationTimestamp?: string | Date; deletionTimestamp?: string | Date };
  spec?: { routingKey?: string; forks?: Array<{ forkOf?: { name?: string } }> };
  status?: {
    routingKey?: string;
    conditions?: Condition[];
    expiresAt?: string;
    forkNames?: string;
    forks?: Array<{ forkOf: string; deployment: string; ready: boolean; message?: string }>;
  };
}

export interface RouteGroupLike {
  metadata: { name: string; namespace?: string; creationTimestamp?: string | Date };
  spec?: { routingKey?: string };
  status?: { routingKey?: string; members?: string[]; conditions?: Condition[] };
}

/** Age as kubectl prints it: 45s, 12m, 3h, 2d (the largest whole unit). */
export function age(from: string | Date | undefined, now: Date): string {
  if (from === undefined) return '<unknown>';
  const seconds = Math.max(0, Math.floor((now.getTime() - new Date(from).getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 48 * 3600) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** Time left until `at` (`in 7h`), `expired`, or `-` when there is no expiry. */
export function expiry(at: string | undefined, now: Date): string {
  if (at === undefined) return '-';
  const left = new Date(at).getTime() - now.getTime();
  return left <= 0 ? 'expired' : `in ${age(new Date(now.getTime() - left), now)}`;
}

export function condition(object: { status?: { conditions?: Condition[] } }, type: string): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

/** Columns padded to their widest cell, separated by three spaces, as kubectl does. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const cells = [header, ...rows].map((row) => row.map((cell) => escapeText(cell)));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('   ')).join('\n') + '\n';
}

const readyCell = (o: { status?: { conditions?: Condition[] } }) => condition(o, 'Ready')?.status ?? 'Unknown';

export function sandboxTable(sandboxes: readonly SandboxLike[], now: Date, allNamespaces: boolean): string {
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'READY', 'KEY', 'FORKS', 'AGE', 'EXPIRES'];
  const rows = sandboxes.map((s) => [
    ...(allNamespaces ? [s.metadata.namespace ?? 'default'] : []),
    s.metadata.name,
    s.metadata.deletionTimestamp !== undefined ? 'Deleting' : readyCell(s),
    s.status?.routingKey ?? s.spec?.routingKey ?? '<pending>',
    s.status?.forkNames ?? (s.spec?.forks ?? []).map((f) => f.forkOf?.name ?? '?').join(','),
    age(s.metadata.creationTimestamp, now),
    expiry(s.status?.expiresAt, now),
  ]);
  return table(header, rows);
}

export function routeGroupTable(groups: readonly RouteGroupLike[], now: Date, allNamespaces: boolean): string {
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'READY', 'KEY', 'MEMBERS', 'AGE'];
  const rows = groups.map((g) => [
    ...(allNamespaces ? [g.metadata.namespace ?? 'default'] : []),
    g.metadata.name,
    readyCell(g),
    g.status?.routingKey ?? g.spec?.routingKey ?? '<pending>',
    (g.status?.members ?? []).join(',') || '-',
    age(g.metadata.creationTimestamp, now),
  ]);
  return table(header, rows);
}

/**
 * One progress line for `apply --wait`: Ready, or the first condition that is not True with its
 * reason and message (what the user can act on).
 */
export function progressLine(sandbox: SandboxLike): string {
  const ref = `sandbox/${sandbox.metadata.name}`;
  const ready = condition(sandbox, 'Ready');
  if (ready?.status === 'True') return `${ref}: Ready (key ${sandbox.status?.routingKey ?? sandbox.spec?.routingKey ?? '?'})`;
  // Ready=False carries the planner's message for an invalid Sandbox; otherwise the first
  // condition that is not True says what is missing.
  const failing = ready?.status === 'False' ? ready : ((sandbox.status?.conditions ?? []).find((c) => c.type !== 'Ready' && c.status !== 'True') ?? ready);
  if (failing === undefined) return `${ref}: waiting for the controller`;
  return escapeText(`${ref}: ${failing.type}=${failing.status} ${failing.reason ?? ''}${failing.message ? `: ${failing.message}` : ''}`.replace(/ :/, ':'));
}

/** A route of a live VirtualService that carries a sandbox's key. */
export interface KeyedRoute {
  readonly virtualService: string;
  readonly hosts: readonly string[];
  readonly route: string;
  readonly destinations: readonly string[];
}

/** A fork Service and the baseline Service it stands in for. */
export interface ForkedService {
  readonly baseline: string;
  readonly namespace: string;
  readonly ports: ReadonlyArray<{ name?: string; port: number; appProtocol?: string }>;
}

const isGrpc = (p: { name?: string; appProtocol?: string }) => /^grpc/.test(p.appProtocol ?? '') || /^grpc(-|$)/.test(p.name ?? '');

/** `meshfork status`: conditions, forks, the routes carrying the key, and what to send. */
export function statusReport(args: { sandbox: SandboxLike; routes: readonly KeyedRoute[]; services: readonly ForkedService[]; keyName: string; now: Date }): string {
  const { sandbox, routes, services, keyName, now } = args;
  const key = sandbox.status?.routingKey ?? sandbox.spec?.routingKey;
  const lines: string[] = [];
  lines.push(`Sandbox ${sandbox.metadata.namespace ?? 'default'}/${sandbox.metadata.name}`);
  lines.push(`  routing key: ${key ?? '<not yet assigned>'}`);
  lines.push(`  age: ${age(sandbox.metadata.creationTimestamp, now)}, expires: ${expiry(sandbox.status?.expiresAt, now)}`);
  lines.push('Conditions:');
  const conditions = sandbox.status?.conditions ?? [];
  if (conditions.length === 0) lines.push('  (none yet: is the controller running?)');
  for (const c of conditions) lines.push(`  ${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`);
  lines.push('Forks:');
  const forks = sandbox.status?.forks ?? [];
  if (forks.length === 0) lines.push('  (none reported yet)');
  for (const f of forks) lines.push(`  ${f.forkOf} -> Deployment ${f.deployment}: ${f.ready ? 'available' : `not available${f.message ? ` (${f.message})` : ''}`}`);
  lines.push('Routes carrying the key:');
  if (routes.length === 0) lines.push('  (none: keyed requests reach the baseline)');
  for (const r of routes) lines.push(`  VirtualService ${r.virtualService} (${r.hosts.join(', ')}) route ${r.route} -> ${r.destinations.join(', ')}`);
  if (key !== undefined) {
    const header = `baggage: ${keyName}=${key}`;
    lines.push('Send:');
    lines.push(`  ${header}`);
    for (const s of services) {
      const host = `${s.baseline}.${s.namespace}`;
      for (const p of s.ports) {
        if (isGrpc(p)) lines.push(`  grpcurl -plaintext -H '${header}' ${host}:${p.port} list`);
        else lines.push(`  curl -H '${header}' http://${host}:${p.port}/`);
      }
    }
  }
  return lines.map((l) => escapeText(l)).join('\n') + '\n';
}

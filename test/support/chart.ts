/** The Helm chart (charts/meshfork) as rendered by the real helm from the testbin. */
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { testbinPath } from './control-plane.js';

export const CHART = new URL('../../charts/meshfork', import.meta.url).pathname;

/**
 * The literal environment of the controller container as the Helm chart deploys it (`helm
 * template` with its default values; NODE_OPTIONS, MALLOC_ARENA_MAX): the bench measures the
 * process that is deployed, V8 heap flags and allocator settings included.
 */
export function chartControllerEnv(): Record<string, string> {
  const rendered = execFileSync(testbinPath('helm'), ['template', 'mf', CHART, '--namespace', 'meshfork-system'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  type Container = { name: string; env?: Array<{ name: string; value?: string }> };
  const deployments = parseAllDocuments(rendered)
    .map((d) => d.toJS() as { kind?: string; spec?: { template: { spec: { containers: Container[] } } } } | null)
    .filter((o) => o?.kind === 'Deployment');
  const containers = deployments.flatMap((d) => d!.spec!.template.spec.containers).filter((c) => c.name === 'controller');
  if (containers.length !== 1) throw new Error(`the chart renders ${containers.length} controller containers, expected 1`);
  return Object.fromEntries((containers[0]!.env ?? []).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])));
}

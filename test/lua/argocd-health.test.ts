// The Argo CD health checks of examples/argocd/argocd-cm.yaml (resource.customizations.health.
// meshfork.dev_Sandbox / _RouteGroup) under LuaJIT with Argo CD's calling convention: the resource
// in the global `obj`, the returned `hs` table read back, only the libraries Argo CD opens without
// useOpenLibs (test/lua/argocd-health-driver.lua). The objects are the status objects the real
// controller wrote, recorded by test/integration/controller-argocd.test.ts.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { luajitAvailable, runArgoHealth } from './harness.js';

const hasLuajit = luajitAvailable();
const cm = parse(readFileSync(new URL('../../examples/argocd/argocd-cm.yaml', import.meta.url), 'utf8')) as { data: Record<string, string> };
const SANDBOX = cm.data['resource.customizations.health.meshfork.dev_Sandbox']!;
const ROUTE_GROUP = cm.data['resource.customizations.health.meshfork.dev_RouteGroup']!;

type Recorded = { kind: string; status?: { conditions?: Array<{ type: string; message?: string }> } };
const recorded = (name: string) => JSON.parse(readFileSync(new URL(`./argocd-health/${name}.json`, import.meta.url), 'utf8')) as Recorded;
const readyMessage = (o: Recorded) => o.status?.conditions?.find((c) => c.type === 'Ready')?.message;

describe.skipIf(!hasLuajit)('Argo CD health of Sandbox and RouteGroup (recorded from the controller)', () => {
  const cases: Array<[file: string, script: string, expected: (o: Recorded) => { status: string; message?: string }]> = [
    ['sandbox-new', SANDBOX, () => ({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 1' })],
    ['sandbox-progressing', SANDBOX, (o) => ({ status: 'Progressing', message: `ForksUnavailable: ${readyMessage(o)}` })],
    ['sandbox-healthy', SANDBOX, () => ({ status: 'Healthy', message: 'forks available and routed' })],
    ['sandbox-generation-lag', SANDBOX, () => ({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 2' })],
    ['sandbox-invalid', SANDBOX, () => ({ status: 'Degraded', message: 'InvalidSpec: spec.forks[0].forkOf.name: Deployment "reviews-v9" not found in namespace "argo"' })],
    ['sandbox-gitops-namespace', SANDBOX, (o) => ({ status: 'Degraded', message: `NamespaceClaimedByGitOps: ${readyMessage(o)}` })],
    ['routegroup-new', ROUTE_GROUP, () => ({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 1' })],
    ['routegroup-healthy', ROUTE_GROUP, () => ({ status: 'Healthy', message: '1 member' })],
    ['routegroup-conflict', ROUTE_GROUP, (o) => ({ status: 'Degraded', message: `KeyConflict: ${readyMessage(o)}` })],
  ];
  for (const [file, script, expected] of cases) {
    it(`${file}: ${expected(recorded(file)).status}`, () => {
      const object = recorded(file);
      expect(runArgoHealth(script, object)).toEqual(expected(object));
    });
  }

  it('the recorded degraded messages name the cause', () => {
    expect(readyMessage(recorded('sandbox-gitops-namespace'))).toContain('belongs to the GitOps path');
    expect(readyMessage(recorded('routegroup-conflict'))).toMatch(/^spec\.routingKey: routing key "[a-z0-9]+" is already used by Sandbox argo\/pr-42$/);
  });

  it('is null-safe: no metadata, status without conditions, a Ready condition without reason or message', () => {
    const sandbox = { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox' };
    expect(runArgoHealth(SANDBOX, sandbox)).toEqual({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation nil' });
    expect(runArgoHealth(SANDBOX, { ...sandbox, metadata: { generation: 3 }, status: { observedGeneration: 3 } })).toEqual({ status: 'Progressing', message: 'waiting for the Ready condition' });
    expect(runArgoHealth(SANDBOX, { ...sandbox, metadata: { generation: 3 }, status: { observedGeneration: 3, conditions: [{ type: 'Ready', status: 'False' }] } })).toEqual({ status: 'Degraded', message: 'nil: nil' });
    expect(runArgoHealth(ROUTE_GROUP, { kind: 'RouteGroup', status: { observedGeneration: 1, conditions: [] } })).toEqual({ status: 'Progressing', message: 'waiting for the Ready condition' });
  });

  it('a Ready condition newer than a stale generation still waits (observedGeneration lags)', () => {
    const healthy = recorded('sandbox-healthy') as Recorded & { metadata: { generation: number } };
    expect(runArgoHealth(SANDBOX, { ...healthy, metadata: { ...healthy.metadata, generation: 5 } })).toEqual({ status: 'Progressing', message: 'waiting for the meshfork controller to observe generation 5' });
  });
});

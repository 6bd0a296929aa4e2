// Admission decisions (src/controller/admission.ts) on the fixture cluster: the mutation is the
// controller's own splice (the host reconcile then has nothing to write), ignored and meshfork's
// own VirtualServices are left alone, and the Sandbox/RouteGroup refusals and warnings carry the
// planner's messages.
import { describe, expect, it } from 'vitest';
import { admitVirtualService, jsonPatchOf, validateRouteGroupAdmission, validateSandboxAdmission, type AdmissionRequest } from '../../src/controller/admission.js';
import { planSandbox, type SandboxVerdict } from '../../src/controller/sandbox-plan.js';
import { planHost, userVirtualService } from '../../src/controller/routing.js';
import type { ClusterView } from '../../src/controller/view.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { NS, baseView, routeGroup, sandbox, userPayVirtualService, withApplied, withVirtualServices } from './fixtures.js';

const verdicts = (view: ClusterView) => new Map<string, SandboxVerdict>(view.sandboxes.map((s) => [s.metadata.name, planSandbox(s, view, undefined)]));

function request(object: unknown, operation: AdmissionRequest['operation'] = 'UPDATE', oldObject?: unknown): AdmissionRequest {
  const o = object as KubeObject;
  return { uid: 'u-1', kind: { group: '', version: 'v1', kind: o.kind }, operation, namespace: NS, name: o.metadata.name, object, ...(oldObject ? { oldObject } : {}) };
}

function applyPatch(object: KubeObject, patch: string): KubeObject {
  const out = structuredClone(object) as unknown as Record<string, Record<string, unknown>>;
  for (const op of JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Array<{ path: string; value: unknown }>) {
    const [, first, second] = op.path.split('/');
    if (second === undefined) out[first!] = op.value as Record<string, unknown>;
    else out[first!]![second] = op.value;
  }
  return out as unknown as KubeObject;
}

describe('mutating webhook for VirtualServices', () => {
  const alice = sandbox('alice', ['pay-v1']);
  const up = withApplied(baseView({ sandboxes: [alice] }), alice, 1);
  const routed = withVirtualServices(up, planHost(up, { namespace: NS, service: 'pay' }, verdicts(up), undefined).update);
  const stored = routed.virtualServices.find((vs) => vs.metadata.name === 'pay')!;
  // The Git version with one route changed, as a sync writes it: no meshfork route.
  const synced: KubeObject = { ...userPayVirtualService, spec: { ...(userPayVirtualService.spec as object), http: [(userPayVirtualService.spec as { http: unknown[] }).http[0], { name: 'default', route: [{ destination: { host: 'pay' } }], timeout: '9s' }] } };

  it('splices the current sandbox routes into a write that dropped them: what the host reconcile would store', () => {
    const response = admitVirtualService(request(synced), { view: routed, config: undefined });
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    const result = applyPatch(synced, response.patch!);
    expect((result.spec as { http: Array<{ name: string }> }).http.map((r) => r.name)).toEqual(['meshfork-alice-0', 'canary', 'meshfork-alice-1', 'default']);
    const afterWrite = withVirtualServices(routed, [result]);
    const plan = planHost(afterWrite, { namespace: NS, service: 'pay' }, verdicts(afterWrite), undefined);
    expect(userVirtualService(afterWrite, plan.input, result, undefined)).toBeUndefined();
  });

  it('answers without a patch when the routes are there, when ignored, for meshfork\'s own, before the caches synced, and for a host nobody forks', () => {
    expect(admitVirtualService(request(stored), { view: routed, config: undefined })).toEqual({ uid: 'u-1', allowed: true });
    const ignored = { ...synced, metadata: { ...synced.metadata, annotations: { 'meshfork.dev/ignore': 'true' } } };
    expect(admitVirtualService(request(ignored), { view: routed, config: undefined })).toEqual({ uid: 'u-1', allowed: true });
    const own = { ...synced, metadata: { ...synced.metadata, labels: { 'app.kubernetes.io/managed-by': 'meshfork' } } };
    expect(admitVirtualService(request(own), { view: routed, config: undefined })).toEqual({ uid: 'u-1', allowed: true });
    expect(admitVirtualService(request(synced), { view: undefined, config: undefined })).toEqual({ uid: 'u-1', allowed: true });
    expect(admitVirtualService(request(synced), { view: baseView(), config: undefined })).toEqual({ uid: 'u-1', allowed: true });
  });

  it('a VirtualService the planner refuses is allowed unchanged with a warning naming the field (not an error)', () => {
    const http = (synced.spec as { http: Array<Record<string, unknown>> }).http;
    const bad: KubeObject = { ...synced, spec: { ...(synced.spec as object), http: [http[0], { ...http[1], route: [{ destination: { host: 'pay' }, weight: 'most' }] }] } };
    expect(admitVirtualService(request(bad), { view: routed, config: undefined })).toEqual({
      uid: 'u-1',
      allowed: true,
      warnings: ['meshfork: no sandbox routes added to VirtualService shop/pay: spec.http[1].route[0].weight: must be an integer from 0 to 100, not the string "most"'],
    });
  });

  it('jsonPatchOf adds what is absent and replaces what differs', () => {
    const from: KubeObject = { apiVersion: 'v1', kind: 'X', metadata: { name: 'a' }, spec: { a: 1 } };
    expect(jsonPatchOf(from, { ...from, metadata: { name: 'a', annotations: { k: 'v' } }, spec: { a: 2 } })).toEqual([
      { op: 'replace', path: '/spec', value: { a: 2 } },
      { op: 'add', path: '/metadata/annotations', value: { k: 'v' } },
    ]);
  });

  it('jsonPatchOf sees no change where only the order of keys differs', () => {
    const from: KubeObject = { apiVersion: 'v1', kind: 'X', metadata: { name: 'a', labels: { x: '1', y: '2' } }, spec: { a: 1, b: { c: 2, d: 3 } } };
    expect(jsonPatchOf(from, { ...from, metadata: { name: 'a', labels: { y: '2', x: '1' } }, spec: { b: { d: 3, c: 2 }, a: 1 } })).toEqual([]);
  });
});

describe('validating webhook for Sandboxes and RouteGroups', () => {
  const alice = sandbox('alice', ['cart-v1'], { labels: { team: 'a' } });
  const view = baseView({ sandboxes: [alice] });

  it('refuses a routing key another Sandbox holds with the planner\'s message', () => {
    const taken = sandbox('bob', ['pay-v1'], { routingKey: planSandbox(alice, view, undefined).routingKey });
    const { metadata, ...rest } = taken;
    const incoming = { ...rest, metadata: { name: metadata.name, namespace: NS } };
    expect(validateSandboxAdmission(request(incoming, 'CREATE'), { view, config: undefined })).toEqual({
      uid: 'u-1',
      allowed: false,
      status: { code: 422, reason: 'Invalid', message: `Sandbox ${NS}/bob: spec.routingKey: routing key "${planSandbox(alice, view, undefined).routingKey}" is already used by Sandbox ${NS}/alice` },
    });
  });

  it('a missing baseline Deployment is a warning, not a refusal', () => {
    const response = validateSandboxAdmission(request(sandbox('carol', ['ghost-v1']), 'CREATE'), { view, config: undefined });
    expect(response.allowed).toBe(true);
    expect(response.warnings).toHaveLength(1);
    expect(response.warnings![0]).toMatch(new RegExp(`^Sandbox ${NS}/carol: spec\\.forks\\[0\\]\\.forkOf\\.name: .*ghost-v1.* \\(the Sandbox waits for it\\)$`));
  });

  it('the quotas: the Sandbox over maxSandboxesPerNamespace on create; an update touching only metadata passes', () => {
    const config = { policy: { maxSandboxesPerNamespace: 1 } };
    const dave = sandbox('dave', ['pay-v1']);
    const created = { ...dave, metadata: { name: 'dave', namespace: NS } };
    expect(validateSandboxAdmission(request(created, 'CREATE'), { view, config }).status?.message).toBe(
      `Sandbox ${NS}/dave: metadata.namespace: namespace "${NS}" holds 2 Sandboxes and at most 1 are served (policy.maxSandboxesPerNamespace); the oldest 1 are, this one is number 2: delete a Sandbox of the namespace or raise the quota`,
    );
    const over = { ...dave, metadata: { ...dave.metadata, creationTimestamp: '2026-11-30T12:00:00Z' } };
    const finalizer = { ...over, metadata: { ...over.metadata, finalizers: ['meshfork.dev/cleanup'] } };
    expect(validateSandboxAdmission(request(finalizer, 'UPDATE', over), { view: { ...view, sandboxes: [alice, over] }, config })).toEqual({ uid: 'u-1', allowed: true });
  });

  it('refuses a RouteGroup whose members fork one workload, and a Sandbox whose labels would make it such a member', () => {
    const bob = sandbox('bob', ['cart-v1'], { labels: { team: 'a' }, created: '2026-11-30T10:05:00Z' });
    const both = baseView({ sandboxes: [alice, bob] });
    const group = routeGroup('team', 'team', 'a');
    const refused = validateRouteGroupAdmission(request(group, 'CREATE'), { view: both, config: undefined });
    expect(refused.allowed).toBe(false);
    expect(refused.status?.message).toMatch(new RegExp(`^RouteGroup ${NS}/team: spec\\.match: .*"alice".*"bob".*cart-v1`));
    const withGroup = { ...baseView({ sandboxes: [alice], routeGroups: [group] }) };
    const joining = validateSandboxAdmission(request(bob, 'CREATE'), { view: withGroup, config: undefined });
    expect(joining.allowed).toBe(false);
    expect(joining.status?.message).toMatch(new RegExp(`^Sandbox ${NS}/bob: metadata\\.labels: makes it a member of RouteGroup ${NS}/team, refused there: spec\\.match: `));
  });
});

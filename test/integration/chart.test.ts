/**
 * The Helm chart, rendered by the real helm (built by `npm run testbin`): its CRDs are meshfork's,
 * and its ingress guard is the EnvoyFilter `meshfork synth --ingress-guard` emits for the same
 * settings (the Lua compared without comments: the chart inlines the commented file).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { customResourceDefinitions } from '../../src/api/crd.js';
import { stripComments } from '../../src/lua/index.js';
import { ingressGuardEnvoyFilter } from '../../src/planner/envoy-filter.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { chartControllerEnv } from '../support/chart.js';
import { requireTestbin, testbinPath } from '../support/control-plane.js';

const CHART = new URL('../../charts/meshfork', import.meta.url).pathname;
const TOKEN_SHA = 'ab'.repeat(32);

function helm(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(testbinPath('helm'), args, { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function objects(yaml: string): KubeObject[] {
  return parseAllDocuments(yaml).map((d) => d.toJS() as KubeObject).filter((o) => o !== null);
}

/** The EnvoyFilters of a rendering (the controller's objects are rendered beside them). */
function envoyFilters(yaml: string): KubeObject[] {
  return objects(yaml).filter((o) => o.kind === 'EnvoyFilter');
}

type LuaPatch = { patch: { value: { typed_config: { default_source_code: { inline_string: string } } } } };
function withoutLuaComments(filter: KubeObject): KubeObject {
  const copy = structuredClone(filter) as KubeObject & { spec: { configPatches: LuaPatch[] } };
  for (const p of copy.spec.configPatches) {
    const source = p.patch.value.typed_config.default_source_code;
    source.inline_string = stripComments(source.inline_string);
  }
  return copy;
}

describe.skipIf(!requireTestbin())('Helm chart (charts/meshfork)', () => {
  it('passes helm lint', () => {
    const r = helm('lint', CHART);
    console.log(execFileSync(testbinPath('helm'), ['version', '--short'], { encoding: 'utf8' }).trim(), r.stdout.trim());
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('installs exactly the CRDs meshfork generates, and nothing else with the controller and user roles off', () => {
    const r = helm('template', 'mf', CHART, '--include-crds', '--set', 'controller.enabled=false', '--set', 'userRoles.enabled=false');
    expect(r.code, r.stderr).toBe(0);
    expect(objects(r.stdout)).toEqual(customResourceDefinitions());
  });

  it('installs the controller and the aggregated user roles by default, with no ingress guard', () => {
    const r = helm('template', 'mf', CHART, '--namespace', 'meshfork-system');
    expect(r.code, r.stderr).toBe(0);
    expect(objects(r.stdout).map((o) => `${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`)).toEqual([
      'PodDisruptionBudget meshfork-system/meshfork-controller',
      'ServiceAccount meshfork-system/meshfork-controller',
      'ConfigMap meshfork-system/meshfork-config',
      'ClusterRole -/meshfork-controller',
      'ClusterRole -/meshfork-edit',
      'ClusterRole -/meshfork-view',
      'ClusterRoleBinding -/meshfork-controller',
      'Role meshfork-system/meshfork-controller',
      'RoleBinding meshfork-system/meshfork-controller',
      'Service meshfork-system/meshfork-controller-metrics',
      'Service meshfork-system/meshfork-webhook',
      'Deployment meshfork-system/meshfork-controller',
      'MutatingWebhookConfiguration -/meshfork',
      'ValidatingWebhookConfiguration -/meshfork',
    ]);
  });

  it("controller.nodeOptions and controller.mallocArenaMax are the controller container's NODE_OPTIONS and MALLOC_ARENA_MAX (the controller bench starts the controller with them); empty: unset", () => {
    const env = (...set: string[]) => {
      const r = helm('template', 'mf', CHART, '--namespace', 'meshfork-system', ...set.flatMap((s) => ['--set', s]));
      expect(r.code, r.stderr).toBe(0);
      const deployment = objects(r.stdout).find((o) => o.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: Array<{ name: string; env: Array<{ name: string }> }> } } } };
      return deployment.spec.template.spec.containers.find((c) => c.name === 'controller')!.env;
    };
    const defaults = parse(readFileSync(`${CHART}/values.yaml`, 'utf8')) as { controller: { nodeOptions: string; mallocArenaMax: string } };
    expect(defaults.controller.nodeOptions).toMatch(/--max-old-space-size=\d+/);
    expect(env().slice(0, 2)).toEqual([
      { name: 'NODE_OPTIONS', value: defaults.controller.nodeOptions },
      { name: 'MALLOC_ARENA_MAX', value: '2' },
    ]);
    expect(chartControllerEnv()).toEqual({ NODE_OPTIONS: defaults.controller.nodeOptions, MALLOC_ARENA_MAX: '2' });
    expect(env('controller.nodeOptions=--max-semi-space-size=4')[0]).toEqual({ name: 'NODE_OPTIONS', value: '--max-semi-space-size=4' });
    expect(env('controller.nodeOptions=', 'controller.mallocArenaMax=').map((e) => e.name)).toEqual(['POD_NAMESPACE']);
    // A number (--set, a values file) is as good as a string; anything else is refused.
    expect(env('controller.mallocArenaMax=4')[1]).toEqual({ name: 'MALLOC_ARENA_MAX', value: '4' });
    for (const bad of ['0', 'x', '1000']) expect(helm('template', 'mf', CHART, '--set', `controller.mallocArenaMax=${bad}`).code, bad).not.toBe(0);
  });

  it('webhooks: the mutating one for VirtualServices is fail-open with a short timeout and reinvocation, the validating one follows values; cert-manager on request', () => {
    const r = helm('template', 'mf', CHART, '--namespace', 'meshfork-system', '--set', 'webhooks.timeoutSeconds=3', '--set', 'webhooks.validating.failurePolicy=Fail');
    expect(r.code, r.stderr).toBe(0);
    type Webhook = Record<string, unknown> & { name: string; clientConfig: { service: { path: string } } };
    const rendered = objects(r.stdout) as Array<KubeObject & { webhooks?: Webhook[] }>;
    const mutating = rendered.find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks!;
    expect(mutating.map((w) => [w.name, w['failurePolicy'], w['timeoutSeconds'], w['sideEffects'], w['reinvocationPolicy'], w.clientConfig.service.path])).toEqual([
      ['virtualservices.meshfork.dev', 'Ignore', 3, 'None', 'IfNeeded', '/mutate/virtualservices'],
    ]);
    expect(mutating[0]!['objectSelector']).toEqual({ matchExpressions: [{ key: 'app.kubernetes.io/managed-by', operator: 'NotIn', values: ['meshfork'] }] });
    const validating = rendered.find((o) => o.kind === 'ValidatingWebhookConfiguration')!.webhooks!;
    expect(validating.map((w) => [w.name, w['failurePolicy'], w.clientConfig.service.path])).toEqual([
      ['sandboxes.meshfork.dev', 'Fail', '/validate/sandboxes'],
      ['routegroups.meshfork.dev', 'Fail', '/validate/routegroups'],
    ]);
    // The mutating webhook's failurePolicy is not a value: a controller outage never blocks a user's write.
    expect(helm('template', 'mf', CHART, '--set', 'webhooks.failurePolicy=Fail').code).not.toBe(0);

    const withCertManager = objects(helm('template', 'mf', CHART, '--namespace', 'meshfork-system', '--set', 'webhooks.certManager.enabled=true').stdout);
    expect(withCertManager.filter((o) => o.kind === 'Certificate' || o.kind === 'Issuer').map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(['Certificate meshfork-webhook', 'Issuer meshfork-webhook']);
    const args = (withCertManager.find((o) => o.kind === 'Deployment')!.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0]!.args;
    expect(args.filter((a) => a.startsWith('--webhook-'))).toEqual(['--webhook-address=0.0.0.0:9443', '--webhook-configuration=meshfork', '--webhook-cert-dir=/etc/meshfork/webhook-tls']);
    // cert-manager's cainjector writes the caBundle: the controller gets no Secret or configuration rights.
    const rules = withCertManager.filter((o) => o.kind.endsWith('Role')).flatMap((o) => (o as KubeObject & { rules: Array<{ resources: string[] }> }).rules);
    expect(rules.flatMap((rule) => rule.resources).filter((x) => x === 'secrets' || x.endsWith('webhookconfigurations'))).toEqual([]);
  });

  it("runs the controller hardened: non-root, read-only root filesystem, no privilege escalation, no capabilities, probes on /healthz and /readyz, the configuration from values", () => {
    const r = helm('template', 'mf', CHART, '--namespace', 'meshfork-system', '--set', 'controller.config.policy.maxSplitWeight=20', '--set', 'controller.namespaces={shop,pay}');
    expect(r.code, r.stderr).toBe(0);
    const rendered = objects(r.stdout);
    const pod = (rendered.find((o) => o.kind === 'Deployment')!.spec as { template: { spec: Record<string, unknown> & { containers: Array<Record<string, unknown>> } } }).template.spec;
    expect(pod['securityContext']).toEqual({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0]!;
    expect(container['securityContext']).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } });
    expect(container['livenessProbe']).toMatchObject({ httpGet: { path: '/healthz', port: 'http-metrics' } });
    expect(container['readinessProbe']).toMatchObject({ httpGet: { path: '/readyz', port: 'http-metrics' } });
    expect(container['resources']).toEqual({ requests: { cpu: '50m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } });
    expect(container['image']).toBe('ghcr.io/meshfork/meshfork:0.1.0');
    expect(container['args']).toContain('--namespaces=shop,pay');
    const config = rendered.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> };
    expect(config.data).toEqual({ 'config.yaml': 'policy:\n  maxSplitWeight: 20\n' });
    // No rule grants a wildcard; Secrets only in the release namespace's Role: its webhook
    // certificate Secret by name (get, update), and create (which RBAC cannot limit by name).
    type Rule = { resources: string[]; verbs: string[]; resourceNames?: string[] };
    const rules = rendered.filter((o) => o.kind.endsWith('Role')).flatMap((o) => (o as KubeObject & { rules: Rule[] }).rules.map((rule) => ({ kind: o.kind, ...rule })));
    expect(rules.flatMap((rule) => [...rule.resources, ...rule.verbs]).filter((x) => x.includes('*'))).toEqual([]);
    expect(rules.filter((rule) => rule.resources.includes('secrets'))).toEqual([
      { kind: 'Role', apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      { kind: 'Role', apiGroups: [''], resources: ['secrets'], resourceNames: ['meshfork-webhook-tls'], verbs: ['get', 'update'] },
    ]);
  });

  it('refuses controller values the controller would refuse: an unknown config field, a bad namespace, zero replicas', () => {
    for (const [set, message] of [
      ['controller.config.routing.keyName=Bad Key', "- at '/controller/config/routing/keyName'"],
      ['controller.config.polcy.maxSplitWeight=20', "- at '/controller/config': additional properties 'polcy' not allowed"],
      ['controller.namespaces={Shop}', "- at '/controller/namespaces/0'"],
      ['controller.replicas=0', "- at '/controller/replicas'"],
    ] as const) {
      const r = helm('template', 'mf', CHART, '--set', set);
      expect(r.code, set).not.toBe(0);
      expect(r.stderr, set).toContain(message);
    }
  });

  it('renders the same ingress guard as the planner for the same settings', () => {
    const r = helm(
      'template', 'mf', CHART,
      '--set', 'ingressGuard.enabled=true',
      '--set', `ingressGuard.tokenSha256[0]=${TOKEN_SHA}`,
      '--set', 'routing.keyNames[0]=sd-routing-key',
      '--set', 'routing.headers={uberctx-sd-routing-key,ot-baggage-sd-routing-key}',
      '--set', 'ingressGuard.gatewaySelector.istio=edge-gateway',
    );
    expect(r.code, r.stderr).toBe(0);
    const rendered = envoyFilters(r.stdout);
    expect(rendered).toHaveLength(1);
    const expected = ingressGuardEnvoyFilter({
      keyNames: ['sd-routing-key'],
      headers: ['uberctx-sd-routing-key', 'ot-baggage-sd-routing-key'],
      tokenSha256: [TOKEN_SHA],
      gatewaySelector: { istio: 'edge-gateway' },
    });
    expect(withoutLuaComments(rendered[0]!)).toEqual(withoutLuaComments(expected));
  });

  it('quotes every value: YAML 1.1 look-alikes stay strings', () => {
    const r = helm(
      'template', 'mf', CHART,
      '--set', 'ingressGuard.enabled=true',
      '--set', 'ingressGuard.namespace=on',
      '--set-string', 'ingressGuard.gatewaySelector.istio=true',
      '--set', 'ingressGuard.gatewaySelector.y=0o7',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  namespace: "on"\n');
    expect(r.stdout).toContain('      "istio": "true"\n      "y": "0o7"\n');
    const expected = ingressGuardEnvoyFilter({
      namespace: 'on',
      keyNames: ['meshfork-routing-key'],
      headers: [],
      tokenSha256: [],
      gatewaySelector: { istio: 'true', y: '0o7' },
    });
    expect(withoutLuaComments(envoyFilters(r.stdout)[0]!)).toEqual(withoutLuaComments(expected));
  });

  /**
   * `helm template` and `helm lint` with `args` (`--set`/`--set-json` pairs) must fail with exactly
   * these schema errors (helm's own report: the path of the value, and the value where the
   * validator prints it).
   */
  function refused(args: string[], errors: string[]): void {
    const r = helm('template', 'mf', CHART, '--set', 'ingressGuard.enabled=true', ...args);
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toContain("values don't meet the specifications of the schema(s) in the following chart(s):\nmeshfork:\n");
    expect(schemaErrors(r.stderr), r.stderr).toEqual(errors);
    const lint = helm('lint', CHART, '--set', 'ingressGuard.enabled=true', ...args);
    expect(lint.code, lint.stdout).not.toBe(0);
    expect(lint.stdout + lint.stderr).toContain(errors[0]!.slice(2));
  }

  it('refuses a missing or empty key-name list and invalid key names', () => {
    refused(['--set', 'routing.keyNames=null'], ["- at '/routing': missing property 'keyNames'"]);
    refused(['--set-json', 'routing.keyNames=[]'], ["- at '/routing/keyNames': minItems: got 0, want 1"]);
    refused(['--set', 'routing.keyNames={Bad Key}'], ["- at '/routing/keyNames/0': 'Bad Key' does not match pattern '^[a-z0-9][a-z0-9._-]{0,41}$'"]);
    // 42 characters at most (KEY_NAME_PATTERN: the longest name whose regexes fit Istio's 1024-character limit)
    const name43 = `k${'.'.repeat(42)}`;
    refused(['--set', `routing.keyNames={${name43}}`], [`- at '/routing/keyNames/0': '${name43}' does not match pattern '^[a-z0-9][a-z0-9._-]{0,41}$'`]);
  });

  it('refuses host, baggage, tracestate, the token header, pseudo-headers and invalid names as strip headers', () => {
    for (const header of ['host', 'baggage', 'tracestate', 'traceparent', 'content-length', 'te', 'connection', 'transfer-encoding', 'x-meshfork-preview-token']) {
      refused(['--set', `routing.headers={${header}}`], ["- at '/routing/headers/0': 'not' failed"]);
      // Rendered without the schema, the template's own check names the header.
      const r = helm('template', 'mf', CHART, '--skip-schema-validation', '--set', 'ingressGuard.enabled=true', '--set', `routing.headers={${header}}`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`routing.headers: the ingress guard cannot remove the ${header} header wholesale`);
    }
    refused(['--set', 'routing.headers={x-ok,:authority}'], ["- at '/routing/headers/1': ':authority' does not match pattern '^[A-Za-z0-9][A-Za-z0-9-]{0,126}$'"]);
  });

  it('header names are case-insensitive like --header and routing.headers: lower-cased, reserved names refused in any case, ASCII letters only', () => {
    const r = helm('template', 'mf', CHART, '--set', 'ingressGuard.enabled=true', '--set', 'routing.headers={X-Sandbox,x-sandbox,Uberctx-Key}');
    expect(r.code, r.stderr).toBe(0);
    const expected = ingressGuardEnvoyFilter({ keyNames: ['meshfork-routing-key'], headers: ['x-sandbox', 'uberctx-key'], tokenSha256: [], gatewaySelector: { istio: 'ingressgateway' } });
    expect(withoutLuaComments(envoyFilters(r.stdout)[0]!)).toEqual(withoutLuaComments(expected));
    for (const header of ['Host', 'BAGGAGE', 'Transfer-Encoding', 'X-Meshfork-Preview-Token']) {
      refused(['--set', `routing.headers={${header}}`], ["- at '/routing/headers/0': 'allOf' failed", "- at '/routing/headers/0': 'not' failed"]);
      const skipped = helm('template', 'mf', CHART, '--skip-schema-validation', '--set', 'ingressGuard.enabled=true', '--set', `routing.headers={${header}}`);
      expect(skipped.code).not.toBe(0);
      expect(skipped.stderr).toContain(`routing.headers: the ingress guard cannot remove the ${header.toLowerCase()} header wholesale`);
    }
    // The Kelvin sign (U+212A) lower-cases to "k" in Go: refused before lower-casing, by the schema and by the template.
    refused(['--set', 'routing.headers={X-\u212Aey}'], ["- at '/routing/headers/0': 'X-\u212Aey' does not match pattern '^[A-Za-z0-9][A-Za-z0-9-]{0,126}$'"]);
    const kelvin = helm('template', 'mf', CHART, '--skip-schema-validation', '--set', 'ingressGuard.enabled=true', '--set', 'routing.headers={X-\u212Aey}');
    expect(kelvin.code).not.toBe(0);
    expect(kelvin.stderr).toContain('routing.headers: invalid header name');
  });

  it('refuses an empty gateway selector, a bad namespace and a token digest that is not lower-case hex SHA-256', () => {
    refused(['--set', 'ingressGuard.gatewaySelector.istio=null'], ["- at '/ingressGuard/gatewaySelector': minProperties: got 0, want 1"]);
    refused(['--set', 'ingressGuard.namespace=Istio System'], ["- at '/ingressGuard/namespace': 'Istio System' does not match pattern '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"]);
    refused(['--set', 'ingressGuard.tokenSha256[0]=not-a-digest'], ["- at '/ingressGuard/tokenSha256/0': 'not-a-digest' does not match pattern '^[0-9a-f]{64}$'"]);
    refused(['--set', `ingressGuard.tokenSha256[0]=${'AB'.repeat(32)}`], [`- at '/ingressGuard/tokenSha256/0': '${'AB'.repeat(32)}' does not match pattern '^[0-9a-f]{64}$'`]);
  });
});

/** The error lines of helm's schema report (after the chart name line). */
function schemaErrors(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('- '));
}

/**
 * The Helm chart, rendered by the real helm (built by `npm run testbin`): its CRDs are meshfork's,
 * and its ingress guard is the EnvoyFilter `meshfork synth --ingress-guard` emits for the same
 * settings (the Lua compared without comments: the chart inlines the commented file).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { customResourceDefinitions } from '../../src/api/crd.js';
import { stripComments } from '../../src/lua/index.js';
import { ingressGuardEnvoyFilter } from '../../src/planner/envoy-filter.js';
import type { KubeObject } from '../../src/planner/kube.js';
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

  it('installs exactly the CRDs meshfork generates, and nothing else by default', () => {
    const r = helm('template', 'mf', CHART, '--include-crds');
    expect(r.code, r.stderr).toBe(0);
    expect(objects(r.stdout)).toEqual(customResourceDefinitions());
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
    const rendered = objects(r.stdout);
    expect(rendered).toHaveLength(1);
    const expected = ingressGuardEnvoyFilter({
      keyNames: ['sd-routing-key'],
      headers: ['uberctx-sd-routing-key', 'ot-baggage-sd-routing-key'],
      tokenSha256: [TOKEN_SHA],
      gatewaySelector: { istio: 'edge-gateway' },
    });
    expect(withoutLuaComments(rendered[0]!)).toEqual(withoutLuaComments(expected));
  });

  it('refuses a token digest that is not a hex SHA-256, naming the value', () => {
    const r = helm('template', 'mf', CHART, '--set', 'ingressGuard.enabled=true', '--set', 'ingressGuard.tokenSha256[0]=not-a-digest');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ingressGuard.tokenSha256: not a hex SHA-256');
  });
});

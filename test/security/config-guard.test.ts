/**
 * Issue 8 items 5 and 10: every bad ingress-guard setting in `--config` (or a flag) is a problem
 * naming the field, with exit 1 and nothing written, never a stack trace; and the CLI config is at
 * least as strict as the chart's values.schema.json: the gateway selector is non-empty with valid
 * Kubernetes label keys and values, the namespace is a DNS label, and the headers the guard
 * removes wholesale are never `host`, pseudo-headers, the headers it edits (`baggage`,
 * `tracestate`), `traceparent`, the token header or framing headers. Configs are files in
 * inputs/config-guard/.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { cli, cliProcess } from '../support/cli.js';

const INPUTS = new URL('inputs/config-guard/', import.meta.url).pathname;
const BASE = new URL('inputs/input-shapes/base.yaml', import.meta.url).pathname;
const NOT_ALLOWED = 'not allowed: baggage, tracestate, traceparent, host, content-length, te, connection, transfer-encoding, x-meshfork-preview-token';
const KEY_RULE = 'is not a Kubernetes label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters (letters, digits, "-", "_", "."), beginning and ending with a letter or digit';
const VALUE_RULE = 'is not a Kubernetes label value: at most 63 characters (letters, digits, "-", "_", "."), beginning and ending with a letter or digit, or empty';
const LONG_KEY = `a-very-long-prefix-${'a'.repeat(227)}.example/x`;

function expectRejected(result: { code: number | null; stdout: string; stderr: string }, lines: string[]): void {
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toEqual([...lines, `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`]);
  expect(result.code).toBe(1);
}

const synth = (config: string, ...flags: string[]) => cli('synth', '--config', `${INPUTS}${config}`, ...flags, '-f', BASE);

describe('ingress-guard settings in --config', () => {
  it('an empty gateway selector', () => {
    expectRejected(synth('selector-empty.yaml'), [
      `${INPUTS}selector-empty.yaml: -: ingressGuard.gatewaySelector: must name at least one label of the ingress gateway pods; an empty selector would patch every gateway, egress gateways included`,
    ]);
  });

  it('gateway selector label keys and values Kubernetes refuses, each named', () => {
    const file = `${INPUTS}selector-labels.yaml`;
    expect(LONG_KEY.indexOf('/')).toBe(254); // one past the longest DNS-subdomain prefix
    expectRejected(synth('selector-labels.yaml'), [
      `${file}: -: ingressGuard.gatewaySelector["bad key!"]: "bad key!" ${KEY_RULE}`,
      `${file}: -: ingressGuard.gatewaySelector["bad key!"]: the string "v\\n" ${VALUE_RULE}`,
      `${file}: -: ingressGuard.gatewaySelector["app.example.com/name"]: the string "-dash" ${VALUE_RULE}`,
      `${file}: -: ingressGuard.gatewaySelector["${LONG_KEY}"]: "${LONG_KEY}" ${KEY_RULE}`,
    ]);
    expectRejected(synth('selector-number.yaml'), [`${INPUTS}selector-number.yaml: -: ingressGuard.gatewaySelector.istio: must be string`]);
  });

  it('a namespace that is not a DNS label', () => {
    expectRejected(synth('namespace.yaml'), [
      `${INPUTS}namespace.yaml: -: ingressGuard.namespace: must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters), not the string "Bad/../NS"`,
    ]);
  });

  it('headers the guard would remove wholesale: host, framing headers, the token header (file or flag)', () => {
    expectRejected(synth('header-host.yaml'), [
      `${INPUTS}header-host.yaml: -: routing.headers[0]: "host" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
    ]);
    expectRejected(synth('header-framing.yaml'), [
      `${INPUTS}header-framing.yaml: -: routing.headers[1]: "connection" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
      `${INPUTS}header-framing.yaml: -: routing.headers[2]: "transfer-encoding" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
    ]);
    expectRejected(cli('synth', '--ingress-guard', '--header', 'x-meshfork-preview-token', '-f', BASE), [
      `<flags>: -: --header: "x-meshfork-preview-token" cannot be a plain routing-key header: it is the ingress guard's preview credential; ${NOT_ALLOWED}`,
    ]);
    expectRejected(cli('synth', '--ingress-guard', '--header', ':authority', 'Host', '-f', BASE), [
      '<flags>: -: --header: ":authority" must match ^[A-Za-z0-9][A-Za-z0-9-]{0,126}$ (letters are lower-cased)',
      `<flags>: -: --header: "host" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
    ]);
  });

  it('a key name with "." and "_" and legacy headers on plans the guard (its legacy header names take them too)', () => {
    const result = synth('key-name-legacy.yaml');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const guard = parseAllDocuments(result.stdout)
      .map((d) => d.toJS())
      .find((o) => o.kind === 'EnvoyFilter' && o.metadata.name === 'meshfork-ingress-guard');
    const lua: string = guard.spec.configPatches[0].patch.value.typed_config.default_source_code.inline_string;
    expect(lua).toContain('  keyNames = { ["team.a_key"] = true },\n  headers = { "ot-baggage-team.a_key", "uberctx-team.a_key" },\n');
  });

  it('as a separate process: exit 1, the problem line, no stack trace (the reviewer\'s crash)', () => {
    const result = cliProcess(['synth', '--config', `${INPUTS}selector-empty.yaml`, '-f', BASE]);
    expectRejected(result, [
      `${INPUTS}selector-empty.yaml: -: ingressGuard.gatewaySelector: must name at least one label of the ingress gateway pods; an empty selector would patch every gateway, egress gateways included`,
    ]);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('the chart refuses what the CLI config refuses', () => {
  const schema = JSON.parse(readFileSync(new URL('../../charts/meshfork/values.schema.json', import.meta.url), 'utf8'));
  const defaults = parseYaml(readFileSync(new URL('../../charts/meshfork/values.yaml', import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const values = (guard: Record<string, unknown>, routing: Record<string, unknown> = {}) => ({
    ...defaults,
    ingressGuard: { ...defaults.ingressGuard, ...guard },
    routing: { ...defaults.routing, ...routing },
  });

  it('chart defaults pass; every refused setting above is refused by values.schema.json too', () => {
    expect(validate(defaults)).toBe(true);
    for (const [guard, routing] of [
      [{ gatewaySelector: {} }],
      [{ gatewaySelector: { 'bad key!': 'v' } }],
      [{ gatewaySelector: { istio: 'v\n' } }],
      [{ gatewaySelector: { istio: '-dash' } }],
      [{ gatewaySelector: { istio: 5 } }],
      [{ namespace: 'Bad/../NS' }],
      [{}, { headers: ['host'] }],
      [{}, { headers: ['connection'] }],
      [{}, { headers: ['transfer-encoding'] }],
      [{}, { headers: ['x-meshfork-preview-token'] }],
      [{}, { headers: [':authority'] }],
    ] as Array<[Record<string, unknown>, Record<string, unknown>?]>) {
      expect(validate(values(guard, routing)), JSON.stringify([guard, routing])).toBe(false);
    }
  });
});

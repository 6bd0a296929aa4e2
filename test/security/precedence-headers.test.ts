/**
 * The routing-key carriers a configuration may name: `baggage` and `tracestate` are read by
 * member (routing.keyName), never as a plain header's whole value; `traceparent`, `host`,
 * `content-length` and `te` are needed by every request as they are; `x-meshfork-preview-token`
 * is the ingress guard's credential. As `routing.headers` (config file) or `--header` (flag) each
 * is a problem naming the field; bad input writes nothing. A key name is at most 42 characters
 * (KEY_NAME_PATTERN: the longest whose regexes fit Istio's 1024-character limit), in the config,
 * the chart's values.schema.json and the SDK alike.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/api/config.js';
import { KEY_NAME_PATTERN, RESERVED_HEADER_NAMES } from '../../src/planner/routing-key.js';
import { cli, FIXTURES } from '../support/cli.js';

const INPUTS = new URL('./inputs/precedence-headers/', import.meta.url).pathname;
const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const SANDBOXES = new URL('./inputs/precedence-routes/sandboxes.yaml', import.meta.url).pathname;
const NOT_ALLOWED = 'not allowed: baggage, tracestate, traceparent, host, content-length, te, connection, transfer-encoding, x-meshfork-preview-token';
const MESSAGES: Record<string, string> = {
  baggage: `"baggage" cannot be a plain routing-key header: meshfork reads the routing key from its "<keyName>=<key>" member (routing.keyName), never from the whole header; ${NOT_ALLOWED}`,
  tracestate: `"tracestate" cannot be a plain routing-key header: meshfork reads the routing key from its "<keyName>=<key>" member (routing.keyName, routing.tracestate), never from the whole header; ${NOT_ALLOWED}`,
  traceparent: `"traceparent" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
  'x-meshfork-preview-token': `"x-meshfork-preview-token" cannot be a plain routing-key header: it is the ingress guard's preview credential; ${NOT_ALLOWED}`,
  host: `"host" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}`,
};

function expectRejected(result: ReturnType<typeof cli>, lines: string[]): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toEqual([...lines, `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`]);
}

describe('reserved headers are never plain routing-key headers', () => {
  it('the reserved list is what the chart schema refuses', () => {
    const schema = JSON.parse(readFileSync(new URL('../../charts/meshfork/values.schema.json', import.meta.url), 'utf8'));
    expect([...schema.properties.routing.properties.headers.items.not.enum].sort()).toEqual([...RESERVED_HEADER_NAMES].sort());
  });

  it('routing.headers in the config file: one problem per reserved header, at its index', () => {
    const file = `${INPUTS}reserved-headers.yaml`;
    const names = ['baggage', 'tracestate', 'traceparent', 'x-meshfork-preview-token', 'host'];
    expectRejected(
      cli('synth', '--config', file, '-f', BOOKINFO, SANDBOXES),
      names.map((h, i) => `${file}: -: routing.headers[${i + 1}]: ${MESSAGES[h]}`),
    );
    const { config, problems } = resolveConfig({ routing: { headers: ['x-ok', 'content-length', 'te'] } }, {});
    expect(config).toBeUndefined();
    expect(problems).toEqual([
      { path: 'routing.headers[1]', message: `"content-length" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}` },
      { path: 'routing.headers[2]', message: `"te" cannot be a plain routing-key header: every request needs it as it is; ${NOT_ALLOWED}` },
    ]);
  });

  it('--header: the flag is named', () => {
    expectRejected(cli('synth', '--header', 'x-ok', 'baggage', '--header', 'tracestate', '-f', BOOKINFO, SANDBOXES), [
      `<flags>: -: --header: ${MESSAGES.baggage}`,
      `<flags>: -: --header: ${MESSAGES.tracestate}`,
    ]);
    // the flag replaces the file's list, and is what is checked
    expect(resolveConfig({ routing: { headers: ['baggage'] } }, { headers: ['x-meshfork-routing-key'] }).problems).toEqual([]);
    expect(resolveConfig({ routing: { headers: ['x-ok'] } }, { headers: ['x-meshfork-preview-token'] }).problems).toEqual([
      { path: '--header', message: MESSAGES['x-meshfork-preview-token'] },
    ]);
  });

  it('other header names are still routing-key headers', () => {
    const { config, problems } = resolveConfig({ routing: { headers: ['x-meshfork-routing-key', 'baggage-x', 'x-tracestate'] } }, {});
    expect(problems).toEqual([]);
    expect(config?.routing.headers).toEqual(['x-meshfork-routing-key', 'baggage-x', 'x-tracestate']);
  });
});

describe('key names: at most 42 characters everywhere', () => {
  const name42 = 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnop';
  const name43 = `${name42}q`;

  it('the config file and --key-name', () => {
    expect(name42).toHaveLength(42);
    expect(resolveConfig({ routing: { keyName: name42 } }, {}).problems).toEqual([]);
    const file = `${INPUTS}long-key-name.yaml`;
    expectRejected(cli('synth', '--config', file, '-f', BOOKINFO, SANDBOXES), [`${file}: -: routing.keyName: must match pattern "${KEY_NAME_PATTERN}"`]);
    expectRejected(cli('synth', '--key-name', name43, '-f', BOOKINFO, SANDBOXES), [`<flags>: -: --key-name: must match ${KEY_NAME_PATTERN}`]);
  });

  it("the chart's values.schema.json uses KEY_NAME_PATTERN", () => {
    const schema = JSON.parse(readFileSync(new URL('../../charts/meshfork/values.schema.json', import.meta.url), 'utf8'));
    expect(schema.properties.routing.properties.keyNames.items.pattern).toBe(KEY_NAME_PATTERN);
  });
});

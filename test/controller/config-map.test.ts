// The controller's configuration from a ConfigMap: the same schema as --config; problems name the
// data key and the field.
import { describe, expect, it } from 'vitest';
import { configFromData } from '../../src/controller/config-map.js';
import { KEY_NAME_PATTERN } from '../../src/planner/routing-key.js';

describe('configFromData', () => {
  it('reads config.yaml like a --config file', () => {
    const result = configFromData({ 'config.yaml': 'routing:\n  keyName: team-key\n  headers: [x-team-key]\npolicy:\n  maxSplitWeight: 20\n' });
    expect(result).toMatchObject({ config: { routing: { keyName: 'team-key', headers: ['x-team-key'], tracestate: true, legacyHeaders: false }, policy: { maxSplitWeight: 20 } } });
    expect(configFromData({ 'config.yaml': '' })).toMatchObject({ config: { routing: { keyName: 'meshfork-routing-key' } } });
  });

  it('reports what is wrong, with the data key in the path', () => {
    expect(configFromData(undefined)).toEqual({ problems: [{ path: 'data["config.yaml"]', message: 'is missing; put the configuration (as for meshfork synth --config) under this key' }] });
    expect(configFromData({ 'config.yaml': 'routing:\n  keyName: UPPER\n  color: red\n' })).toEqual({
      problems: [
        { path: 'data["config.yaml"].routing.color', message: 'unknown field' },
        { path: 'data["config.yaml"].routing.keyName', message: `must match pattern "${KEY_NAME_PATTERN}"` },
      ],
    });
    const broken = configFromData({ 'config.yaml': 'routing: [\n' });
    expect('problems' in broken && broken.problems[0]?.message.startsWith('is not valid YAML: ')).toBe(true);
    const bomb = configFromData({ 'config.yaml': `a: &a [x, x]\n${Array.from({ length: 120 }, (_, i) => `k${i}: *a`).join('\n')}\n` });
    expect('problems' in bomb && bomb.problems[0]?.message.startsWith('is not valid YAML: ')).toBe(true);
  });
});

describe('configFromData: quotas and the default TTL', () => {
  it('reads policy.defaultTtl, policy.maxSandboxesPerNamespace and policy.maxForksPerSandbox', () => {
    const result = configFromData({ 'config.yaml': 'policy:\n  defaultTtl: {duration: 8h, offsetFrom: updatedAt}\n  maxSandboxesPerNamespace: 20\n  maxForksPerSandbox: 5\n' });
    expect(result).toMatchObject({ config: { policy: { defaultTtl: { duration: '8h', offsetFrom: 'updatedAt' }, maxSandboxesPerNamespace: 20, maxForksPerSandbox: 5 } } });
  });

  it('reports bad values with the field', () => {
    expect(configFromData({ 'config.yaml': 'policy:\n  defaultTtl: {duration: 8 hours}\n  maxSandboxesPerNamespace: 0\n  maxForksPerSandbox: many\n' })).toEqual({
      problems: [
        { path: 'data["config.yaml"].policy.defaultTtl.duration', message: expect.stringMatching(/^must match pattern /) },
        { path: 'data["config.yaml"].policy.maxSandboxesPerNamespace', message: 'must be >= 1' },
        { path: 'data["config.yaml"].policy.maxForksPerSandbox', message: 'must be integer' },
      ],
    });
  });

  it('accepts the gatewayAPI routing mode (the controller watches HTTPRoutes, GRPCRoutes and Namespaces), all hosts or one', () => {
    expect(configFromData({ 'config.yaml': 'routing:\n  mode: gatewayAPI\n  hosts:\n    cart.shop: {mode: gatewayAPI}\n    pay.shop: {mode: virtualService}\n' })).toMatchObject({
      config: { routingModes: { mode: 'gatewayAPI', hosts: { 'cart.shop': { mode: 'gatewayAPI' }, 'pay.shop': { mode: 'virtualService' } } } },
    });
    expect(configFromData({ 'config.yaml': 'routing:\n  mode: auto\n  hosts:\n    pay.shop: {mode: virtualService}\n' })).toMatchObject({ config: { routingModes: { mode: 'auto', hosts: { 'pay.shop': { mode: 'virtualService' } } } } });
    expect(configFromData({ 'config.yaml': 'routing:\n  mode: gateway\n' })).toEqual({ problems: [{ path: 'data["config.yaml"].routing.mode', message: 'must be one of auto, virtualService, gatewayAPI' }] });
  });
});

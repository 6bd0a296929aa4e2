/**
 * The Gateway API route oracle (test/support/gateway-route-eval.ts) on the precedence list of the
 * HTTPRouteRule spec, one tie-break at a time, so the property tests built on it rest on checked
 * ground.
 */
import { describe, expect, it } from 'vitest';
import { evaluateGatewayRoutes, type GatewayRequest } from '../support/gateway-route-eval.js';

const route = (name: string, created: string, rules: unknown[]) => ({ metadata: { name, namespace: 'ns', creationTimestamp: created }, spec: { rules } });
const rule = (id: string, ...matches: unknown[]) => ({ ...(matches.length > 0 ? { matches } : {}), backendRefs: [{ name: id, port: 80 }] });
const taken = (routes: unknown[], request: Partial<GatewayRequest>) => {
  const d = evaluateGatewayRoutes(routes as never, { path: '/', method: 'GET', headers: {}, ...request });
  return d === undefined ? '404' : (d.rule['backendRefs'] as Array<{ name: string }>)[0]!.name;
};
const T1 = '2026-01-01T00:00:00Z';
const T2 = '2026-02-01T00:00:00Z';

describe('gateway-route-eval follows the HTTPRoute precedence', () => {
  it('Exact path, then the longest PathPrefix (on path elements), then RegularExpression', () => {
    const routes = [route('r', T1, [rule('prefix-a', { path: { type: 'PathPrefix', value: '/a' } }), rule('regex', { path: { type: 'RegularExpression', value: '/a.*' } }), rule('exact', { path: { type: 'Exact', value: '/a/b' } }), rule('prefix-ab', { path: { type: 'PathPrefix', value: '/a/b' } })])];
    expect(taken(routes, { path: '/a/b' })).toBe('exact');
    expect(taken(routes, { path: '/a/b/c' })).toBe('prefix-ab');
    expect(taken(routes, { path: '/a/c' })).toBe('prefix-a');
    expect(taken(routes, { path: '/ab' })).toBe('regex');
    expect(taken(routes, { path: '/b' })).toBe('404');
  });

  it('then method, then header count, then query count', () => {
    const routes = [route('r', T1, [rule('query', { queryParams: [{ name: 'q', value: '1' }] }), rule('header', { headers: [{ name: 'x-a', value: '1' }] }), rule('method', { method: 'POST' }), rule('any')])];
    expect(taken(routes, { method: 'POST', headers: { 'X-A': '1' }, query: { q: '1' } })).toBe('method');
    expect(taken(routes, { headers: { 'x-a': '1' }, query: { q: '1' } })).toBe('header');
    expect(taken(routes, { query: { q: '1' } })).toBe('query');
    expect(taken(routes, {})).toBe('any');
  });

  it('ties: the oldest route, then namespace/name, then the first rule', () => {
    expect(taken([route('b', T1, [rule('b')]), route('a', T2, [rule('a')])], {})).toBe('b');
    expect(taken([route('b', T1, [rule('b')]), route('a', T1, [rule('a')])], {})).toBe('a');
    expect(taken([route('a', T1, [rule('first'), rule('second')])], {})).toBe('first');
  });

  it('regex header values must match the whole (joined) value', () => {
    const routes = [route('r', T1, [rule('re', { headers: [{ name: 'x-a', type: 'RegularExpression', value: '[12]' }] }), rule('any')])];
    expect(taken(routes, { headers: { 'x-a': '2' } })).toBe('re');
    expect(taken(routes, { headers: { 'x-a': '12' } })).toBe('any');
    expect(taken(routes, { headers: { 'x-a': ['1', '2'] } })).toBe('any');
  });
});

/**
 * routing.mode / routing.hosts in meshfork's configuration file and the --routing-mode /
 * --host-routing-mode flags: resolved into PlanConfig.routingModes, bad values refused with a
 * problem naming the field.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/api/config.js';

describe('routing mode settings', () => {
  it('file settings, flags over them', () => {
    expect(resolveConfig({ routing: { mode: 'gatewayAPI', hosts: { 'reviews.default': { mode: 'virtualService' } } } }, {}).config?.routingModes).toEqual({
      mode: 'gatewayAPI',
      hosts: { 'reviews.default': { mode: 'virtualService' } },
    });
    expect(resolveConfig({ routing: { mode: 'gatewayAPI', hosts: { 'reviews.default': { mode: 'virtualService' } } } }, { mode: 'auto', hostModes: ['reviews.default=gatewayAPI', 'ratings.bookinfo.svc.cluster.local=virtualService'] }).config?.routingModes).toEqual({
      mode: 'auto',
      hosts: { 'reviews.default': { mode: 'gatewayAPI' }, 'ratings.bookinfo.svc.cluster.local': { mode: 'virtualService' } },
    });
    expect(resolveConfig({}, {}).config?.routingModes).toBeUndefined();
  });

  it('bad hosts and modes name the field', () => {
    expect(resolveConfig({ routing: { mode: 'istio', hosts: { Reviews: { mode: 'auto' }, 'x.y': { mode: 'nope' }, 'a.b': { mode: 'auto', weight: 1 } } } }, {}).problems).toEqual([
      { path: 'routing.mode', message: 'must be one of auto, virtualService, gatewayAPI' },
      { path: 'routing.hosts["Reviews"]', message: '"Reviews" is not a host <service>.<namespace> (or its FQDN <service>.<namespace>.svc.cluster.local)' },
      { path: 'routing.hosts["x.y"].mode', message: 'must be one of auto, virtualService, gatewayAPI' },
      { path: 'routing.hosts["a.b"].weight', message: 'unknown field' },
    ]);
    expect(resolveConfig({}, { mode: 'sidecar', hostModes: ['reviews=auto', 'reviews.default=vs'] }).problems).toEqual([
      { path: '--routing-mode', message: '"sidecar" is not a routing mode; one of auto, virtualService, gatewayAPI' },
      { path: '--host-routing-mode', message: '"reviews=auto": "reviews" is not a host <service>.<namespace>; give <service>.<namespace>=<mode>' },
      { path: '--host-routing-mode', message: '"reviews.default=vs": "vs" is not a routing mode; one of auto, virtualService, gatewayAPI' },
    ]);
  });
});

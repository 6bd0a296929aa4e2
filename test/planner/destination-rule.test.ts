import { describe, expect, it } from 'vitest';
import { forkDestinationRule } from '../../src/planner/destination-rule.js';
import type { KubeObject } from '../../src/planner/kube.js';

const baselineRule: KubeObject = {
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'default' },
  spec: {
    host: 'reviews',
    trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } },
      { name: 'v3', labels: { version: 'v3', app: 'reviews' } },
      { name: 'all' },
    ],
  },
};
const v2 = { baselineLabels: { app: 'reviews', version: 'v2' }, labelRewrites: { app: 'reviews-sb', version: 'v2-sb' } };
const v3 = { baselineLabels: { app: 'reviews', version: 'v3' }, labelRewrites: { app: 'reviews-sb', version: 'v3-sb' } };
const args = { baselineRule, name: 'reviews-sb', namespace: 'default', forkHost: 'reviews-sb.default.svc.cluster.local', sandbox: 'sb' };

describe('forkDestinationRule', () => {
  it('carries the subsets that select forked pods, labels as on the fork pods, with their traffic policy', () => {
    expect(forkDestinationRule({ ...args, forks: [v2, v3] })).toEqual({
      forkedSubsets: ['v2', 'v3', 'all'],
      rule: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'reviews-sb', namespace: 'default', labels: { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'sb' } },
        spec: {
          host: 'reviews-sb.default.svc.cluster.local',
          trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
          subsets: [
            { name: 'v2', labels: { version: 'v2-sb' }, trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } },
            { name: 'v3', labels: { version: 'v3-sb', app: 'reviews-sb' } },
            { name: 'all' },
          ],
        },
      },
    });
  });

  it('leaves out a label the forks of one subset carry with different values', () => {
    const rule = { ...baselineRule, spec: { host: 'reviews', subsets: [{ name: 'reviews', labels: { app: 'reviews' } }] } };
    const other = { baselineLabels: { app: 'reviews', version: 'v1' }, labelRewrites: { version: 'v1-sb' } };
    expect(forkDestinationRule({ ...args, baselineRule: rule, forks: [v2, other] }).rule?.spec).toEqual({ host: args.forkHost, subsets: [{ name: 'reviews' }] });
  });

  it('emits nothing when the baseline has no traffic policy and no subset selects a fork', () => {
    const rule = { ...baselineRule, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } };
    expect(forkDestinationRule({ ...args, baselineRule: rule, forks: [v2] })).toEqual({ forkedSubsets: [] });
  });
});

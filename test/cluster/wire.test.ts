// client-node's typed serialization of built-in kinds reads model attribute names: a wire-form
// NetworkPolicy's `from` peers would be dropped (a rule admitting every source). toModel/toWire
// keep every field across the round trip the writer and the informer make.
import { describe, expect, it } from 'vitest';
import type { KubernetesObject } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { toModel, toWire } from '../../src/cluster/wire.js';

const netpol: KubernetesObject & { spec: Record<string, unknown> } = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'web-ingress', namespace: 'shop', creationTimestamp: '2026-11-30T10:00:00.000Z' as unknown as Date },
  spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'frontend' } } }], ports: [{ protocol: 'TCP', port: 8080 }] }] },
};

describe('wire form of built-in kinds', () => {
  it('a NetworkPolicy keeps its `from` peers through the typed serialization the writer sends', () => {
    // What KubernetesObjectApi.patch does with the body it is given.
    const sent = (body: unknown) => JSON.parse(JSON.stringify(ObjectSerializer.serialize(body, 'V1NetworkPolicy', ''))) as unknown;
    expect(sent(toModel(netpol))).toEqual(netpol);
    expect((sent(netpol) as typeof netpol).spec.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 8080 }] }]); // the loss toModel prevents
  });

  it('a listed model instance comes back as wire JSON; custom resources pass through', () => {
    expect(toWire(toModel(netpol))).toEqual(netpol);
    const policy = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny' }, spec: { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['x'] } }] }] } };
    expect(toModel(policy)).toBe(policy);
    expect(toWire(policy)).toEqual(policy);
  });
});

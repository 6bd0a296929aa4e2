// LeaderElector.release() keeps why the Lease could not be released (releaseError), which the
// controller reports as unfinished at shutdown (test/integration/controller-operations.test.ts
// runs it against a stopped kube-apiserver). The CoordinationV1Api is faked: it is the boundary.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../src/controller/leader-election.js';

function elector(api: Partial<CoordinationV1Api>, errors: unknown[] = []): LeaderElector {
  return new LeaderElector({ api: api as CoordinationV1Api, namespace: 'ns', name: 'lease', identity: 'me', onStartedLeading: () => {}, onStoppedLeading: () => {}, onError: (e) => errors.push(e) });
}

const held: V1Lease = { metadata: { name: 'lease', namespace: 'ns' }, spec: { holderIdentity: 'me', leaseDurationSeconds: 12 } };

describe('LeaderElector.release', () => {
  it('keeps the error when the API server cannot be reached, and reports it', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    const errors: unknown[] = [];
    const e = elector({ readNamespacedLease: () => Promise.reject(refused) }, errors);
    await e.release();
    expect([e.releaseError, errors]).toEqual([refused, [refused]]);
  });

  it('has no error once released, or when another holds the Lease', async () => {
    const replaced: V1Lease[] = [];
    const e = elector({ readNamespacedLease: async () => held, replaceNamespacedLease: async ({ body }: { body: V1Lease }) => (replaced.push(body), body) } as unknown as Partial<CoordinationV1Api>);
    e.releaseError = new Error('an earlier failure');
    await e.release();
    expect([e.releaseError, replaced.map((l) => l.spec?.holderIdentity)]).toEqual([undefined, [undefined]]);
    const other = elector({ readNamespacedLease: async () => ({ ...held, spec: { holderIdentity: 'other' } }) });
    await other.release();
    expect(other.releaseError).toBeUndefined();
  });
});

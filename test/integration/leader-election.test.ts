// Lease-based leader election against a real kube-apiserver: one leader among candidates,
// hand-over on release, take-over after a leader dies silently, never two leaders at once.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../src/controller/leader-election.js';
import { requireTestbin } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';

const hasBins = requireTestbin();

interface Candidate {
  identity: string;
  elector: LeaderElector;
  abort: AbortController;
  done: Promise<void>;
  log: string[];
}

describe.skipIf(!hasBins)('leader election on a coordination.k8s.io Lease', () => {
  const cp = useSharedControlPlane();
  const timing = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 };

  function start(lease: string, identity: string, leaders: Set<string>, overlaps: string[]): Candidate {
    const api = cp().kubeConfig.makeApiClient(CoordinationV1Api);
    const log: string[] = [];
    const abort = new AbortController();
    const elector = new LeaderElector({
      api,
      namespace: 'default',
      name: lease,
      identity,
      ...timing,
      onStartedLeading: () => {
        if (leaders.size > 0) overlaps.push(`${identity} started while ${[...leaders].join(',')} led`);
        leaders.add(identity);
        log.push('started');
      },
      onStoppedLeading: () => {
        leaders.delete(identity);
        log.push('stopped');
      },
      onError: (e) => log.push(`error: ${String(e)}`),
    });
    return { identity, elector, abort, done: elector.run(abort.signal), log };
  }

  async function until(condition: () => boolean, ms: number): Promise<number> {
    const t0 = Date.now();
    while (!condition()) {
      if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - t0;
  }

  it('elects exactly one of three candidates and hands over at once when the leader releases', async () => {
    const leaders = new Set<string>();
    const overlaps: string[] = [];
    const candidates = ['a', 'b', 'c'].map((id) => start('handover', id, leaders, overlaps));
    await until(() => leaders.size === 1, 10_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(leaders.size).toBe(1);
    const first = candidates.find((c) => c.elector.isLeader)!;
    const lease = await cp().kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'handover', namespace: 'default' });
    expect(lease.spec?.holderIdentity).toBe(first.identity);
    expect(lease.spec?.leaseDurationSeconds).toBe(3);

    first.abort.abort();
    await first.done;
    expect(first.log).toEqual(['started', 'stopped']);
    const handover = await until(() => leaders.size === 1, 5_000);
    expect(handover).toBeLessThan(1_500); // the next retry, not the lease duration
    expect(overlaps).toEqual([]);
    const rest = candidates.filter((c) => c !== first);
    for (const c of rest) c.abort.abort();
    await Promise.all(rest.map((c) => c.done));
    expect(leaders.size).toBe(0);
    expect(rest.flatMap((c) => c.log).filter((l) => l.startsWith('error'))).toEqual([]);
  });

  it('a standby takes over after the leader stops renewing, within the lease duration plus one retry', async () => {
    const leaders = new Set<string>();
    const overlaps: string[] = [];
    const a = start('takeover', 'a', leaders, overlaps);
    await until(() => a.elector.isLeader, 10_000);
    const b = start('takeover', 'b', leaders, overlaps);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(b.elector.isLeader).toBe(false);
    // A leader whose API calls all fail from now on (a partitioned or frozen process) never
    // releases; it must stop leading on its own before the standby may take over.
    (a.elector as unknown as { options: { api: unknown } }).options.api = new Proxy({}, { get: () => () => Promise.reject(new Error('killed')) });
    const killedAt = Date.now();
    const took = await until(() => b.elector.isLeader, 10_000);
    expect(took).toBeGreaterThanOrEqual(timing.leaseDurationMs - 1_000);
    expect(Date.now() - killedAt).toBeLessThan(timing.leaseDurationMs + 2 * timing.retryPeriodMs + 1_000);
    expect(a.elector.isLeader).toBe(false);
    // Its failed renewals are reported, then it stops leading on its own.
    expect(a.log.filter((l) => !l.startsWith('error'))).toEqual(['started', 'stopped']);
    expect(a.log.filter((l) => l.startsWith('error')).every((l) => l === 'error: Error: killed')).toBe(true);
    expect(a.log).toContain('error: Error: killed');
    expect(overlaps).toEqual([]);
    a.abort.abort();
    b.abort.abort();
    await Promise.all([a.done, b.done]);
  });
});

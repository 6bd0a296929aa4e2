/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics
 * (k8s.io/client-go/tools/leaderelection):
 *
 *  - A candidate takes the Lease when it is free (no holder) or when its record has not changed
 *    for `leaseDuration`, measured on the candidate's own clock from the moment it last saw the
 *    record change (so clocks of different machines never need to agree).
 *  - The leader renews every `retryPeriod`; if it cannot renew for `renewDeadline` it stops
 *    leading (`onStoppedLeading`) before another candidate may take over (renewDeadline <
 *    leaseDuration), so two leaders never act at once.
 *  - Every write is an update with the read resourceVersion: of two candidates racing for a free
 *    Lease, the API server accepts one and answers the other 409 Conflict.
 *  - On shutdown the leader releases the Lease (no holder, leaseDurationSeconds 1) so a standby
 *    takes over at its next retry instead of waiting for the lease to expire.
 */
import { ApiException, type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node';

export interface LeaderElectionOptions {
  readonly api: CoordinationV1Api;
  readonly namespace: string;
  readonly name: string;
  /** This candidate's identity, unique among replicas (pod name + random suffix). */
  readonly identity: string;
  /**
   * How long a silent holder keeps the Lease. With the retry period this bounds fail-over after
   * a leader dies without releasing: at most leaseDuration + 1.2 * retryPeriod (14.4 s).
   * @default 12_000
   */
  readonly leaseDurationMs?: number;
  /** @default 8_000 */
  readonly renewDeadlineMs?: number;
  /** @default 2_000 */
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
  /** Called when the observed holder changes (including to this candidate). */
  readonly onNewLeader?: (identity: string | undefined) => void;
  /** Called with API errors other than the expected 404/409 (they are retried). */
  readonly onError?: (error: unknown) => void;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

export class LeaderElector {
  private leading = false;
  private observed: { holder: string | undefined; renewTime: string | undefined; version: string | undefined } | undefined;
  private observedAt = 0;
  private lastRenew = 0;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(private readonly options: LeaderElectionOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 12_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 8_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadline must be shorter than leaseDuration');
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns and renews until `signal` aborts (then releases the Lease if held) or leadership
   * is lost (then returns after `onStoppedLeading`; a controller should exit and restart).
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const held = await this.tryAcquireOrRenew();
      const now = Date.now();
      if (held) {
        this.lastRenew = now;
        if (!this.leading) {
          this.leading = true;
          this.options.onStartedLeading();
        }
      } else if (this.leading && now - this.lastRenew >= this.renewDeadlineMs) {
        this.leading = false;
        this.options.onStoppedLeading();
        return;
      }
      // Standbys retry with jitter so replicas do not stampede a released Lease.
      const wait = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + Math.random() * 0.2);
      await sleep(wait, signal);
    }
    if (this.leading) {
      await this.release();
      this.leading = false;
      this.options.onStoppedLeading();
    }
  }

  /**
   * Why the last release of the Lease failed (the API server unreachable, ...); undefined when it
   * was released or never held. A standby then takes the Lease over only once it expires.
   */
  releaseError: unknown = undefined;

  /** Gives the Lease up now if this candidate holds it; a failure is kept in `releaseError`. */
  async release(): Promise<void> {
    this.releaseError = undefined;
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      await this.options.api.replaceNamespacedLease({
        name: this.options.name,
        namespace: this.options.namespace,
        body: {
          ...lease,
          spec: { ...lease.spec, holderIdentity: undefined, leaseDurationSeconds: 1, renewTime: new V1MicroTime() },
        },
      });
    } catch (error) {
      this.releaseError = error;
      this.options.onError?.(error);
    }
  }

  private async read(): Promise<V1Lease | undefined> {
    try {
      return await this.options.api.readNamespacedLease({ name: this.options.name, namespace: this.options.namespace });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.options;
    const now = new V1MicroTime();
    const seconds = Math.ceil(this.leaseDurationMs / 1000);
    try {
      const lease = await this.read();
      if (lease === undefined) {
        await api.createNamespacedLease({
          namespace,
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        this.observe(identity, now.toISOString(), undefined);
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity || undefined;
      this.observe(holder, spec.renewTime ? new Date(spec.renewTime).toISOString() : undefined, lease.metadata?.resourceVersion);
      const observedDuration = (spec.leaseDurationSeconds ?? seconds) * 1000;
      if (holder !== undefined && holder !== identity && Date.now() < this.observedAt + observedDuration) return false;
      const mine = holder === identity;
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          ...lease,
          spec: {
            ...spec,
            holderIdentity: identity,
            leaseDurationSeconds: seconds,
            renewTime: now,
            acquireTime: mine && spec.acquireTime ? spec.acquireTime : now,
            leaseTransitions: mine ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
          },
        },
      });
      this.observe(identity, now.toISOString(), undefined);
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status !== 409 && status !== 404) this.options.onError?.(error);
      return false;
    }
  }

  private observe(holder: string | undefined, renewTime: string | undefined, version: string | undefined): void {
    const previous = this.observed;
    if (previous === undefined || previous.holder !== holder || previous.renewTime !== renewTime) {
      this.observedAt = Date.now();
      if (previous?.holder !== holder) this.options.onNewLeader?.(holder);
    }
    this.observed = { holder, renewTime, version };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

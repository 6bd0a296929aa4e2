/**
 * The reconciler's work queue, with the semantics of client-go's rate-limited delaying queue:
 *
 *  - A key is a string naming what to reconcile (a Sandbox, a forked host), never an event:
 *    adding a key that is already waiting does nothing (de-duplication).
 *  - A key handed out by `get()` is *processing* until `done(key)`. Adding it meanwhile marks it
 *    dirty; `done` puts it back in line, so one key is never processed twice at once and a
 *    change seen during a reconcile is never lost.
 *  - `addAfter(key, ms)` adds the key once the delay has passed (the earliest pending delay wins).
 *  - `addRateLimited(key)` adds it after a per-key exponential backoff (base * 2^failures, capped);
 *    `forget(key)` resets the count after a successful reconcile.
 *  - With `fast`, a key it gives a rank (0 most urgent) goes in that fast lane, the others in
 *    the normal line: a waiting fast key is handed out before the normal line's keys, lower
 *    ranks first, except that the fast lanes and the normal line alternate while both have keys
 *    (a stream of fast keys never starves the others); each lane in the order its keys became
 *    ready. Without it, one line in order.
 *  - `shutdown()` stops handing out keys: waiting `get()` calls resolve to `undefined`; keys
 *    being processed finish normally (`drained()` resolves when the last one is done).
 *
 * The clock and timers are injectable so tests can drive time.
 */

export interface QueueClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemClock: QueueClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle = setTimeout(fn, ms);
    handle.unref?.();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface WorkQueueOptions {
  /** First retry delay after a failure. @default 5 */
  readonly baseDelayMs?: number;
  /** Longest retry delay. @default 300_000 */
  readonly maxDelayMs?: number;
  readonly clock?: QueueClock;
  /** The fast lane of a key (0 most urgent; e.g. keys whose reconcile unblocks many others), undefined for the normal line. @default none */
  readonly fast?: (key: string) => number | undefined;
}

export interface QueueMetrics {
  /** Keys waiting to be handed out (not counting delayed ones). */
  readonly depth: number;
  /** Keys waiting for their delay to pass. */
  readonly delayed: number;
  /** Keys being processed. */
  readonly processing: number;
}

export class WorkQueue {
  /** Waiting keys of each fast lane (by rank), then the others. */
  private readonly fastLanes: string[][] = [];
  private readonly queue: string[] = [];
  /** Keys waiting in `queue` or marked to re-run after processing. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly delayed = new Map<string, { at: number; handle: unknown }>();
  private readonly failures = new Map<string, number>();
  /** When each waiting key was added, for queue latency. */
  private readonly addedAt = new Map<string, number>();
  private drainWaiters: Array<() => void> = [];
  private stopped = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly clock: QueueClock;
  private readonly fast: ((key: string) => number | undefined) | undefined;
  /** Whether the last key handed out came from a fast lane. */
  private lastWasFast = false;

  /** Called with the time a key waited in line each time `get()` hands one out. */
  onDequeue?: (key: string, waitedMs: number) => void;

  constructor(options: WorkQueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 300_000;
    this.clock = options.clock ?? systemClock;
    this.fast = options.fast;
  }

  get isShutdown(): boolean {
    return this.stopped;
  }

  metrics(): QueueMetrics {
    return { depth: this.fastLanes.reduce((n, lane) => n + lane.length, 0) + this.queue.length, delayed: this.delayed.size, processing: this.processing.size };
  }

  /** Whether a delayed key becomes due within `ms`. */
  nextDelayedWithin(ms: number): boolean {
    const limit = this.clock.now() + ms;
    for (const { at } of this.delayed.values()) if (at <= limit) return true;
    return false;
  }

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // re-queued by done()
    this.enqueue(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      this.clock.clearTimeout(pending.handle);
    }
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { at, handle });
  }

  /** Adds `key` after its backoff; returns the delay used. */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 52));
    this.addAfter(key, delay);
    return delay;
  }

  /** How many times `key` was rate-limited since it was last forgotten. */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** The next key to process, or `undefined` once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    const key = this.next();
    if (key !== undefined) return Promise.resolve(this.handOut(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    if (!this.processing.delete(key)) return;
    if (this.dirty.has(key) && !this.stopped) this.enqueue(key);
    if (this.processing.size === 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }

  shutdown(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    for (const resolve of this.waiters.splice(0)) resolve(undefined);
  }

  /** Resolves when no key is being processed. */
  drained(): Promise<void> {
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private next(): string | undefined {
    const lane = this.fastLanes.find((l) => l.length > 0);
    const fromFast = lane !== undefined && (!this.lastWasFast || this.queue.length === 0);
    const key = fromFast ? lane.shift() : this.queue.shift();
    if (key !== undefined) this.lastWasFast = fromFast;
    return key;
  }

  private enqueue(key: string): void {
    this.addedAt.set(key, this.clock.now());
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(this.handOut(key));
    else {
      const rank = this.fast?.(key);
      if (rank === undefined) this.queue.push(key);
      else {
        for (let r = this.fastLanes.length; r <= rank; r++) this.fastLanes.push([]);
        this.fastLanes[rank]!.push(key);
      }
    }
  }

  private handOut(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.onDequeue?.(key, this.clock.now() - added);
    return key;
  }
}

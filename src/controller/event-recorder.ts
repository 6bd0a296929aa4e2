/**
 * Sends the controller's Kubernetes Events off the reconcile path. A reconcile hands its Event
 * over and returns; at most `concurrency` POSTs are in flight, so in a burst the Events wait for
 * the API server instead of holding a worker each while the writes that route Sandboxes queue
 * behind them (ADR 0019 point 20). At most `capacity` Events wait; beyond that the oldest waiting
 * one is dropped and counted, as client-go's event broadcaster drops what does not fit in its
 * queue of 1,000 (k8s.io/client-go/tools/record: maxQueuedEvents) — an Event is a report, never
 * state anyone reconciles on. Each Event keeps the time it was recorded at (set by the caller).
 */
export interface EventRecorderOptions<E> {
  /** Posts one Event; a rejection is the sender's to log (it is not retried). */
  readonly send: (event: E) => Promise<void>;
  /** POSTs in flight at once. @default 2 */
  readonly concurrency?: number;
  /** Events waiting at most; the oldest is dropped beyond. @default 1000 */
  readonly capacity?: number;
  /** Called with each Event dropped for want of room. */
  readonly onDrop?: (event: E) => void;
}

export class EventRecorder<E> {
  private readonly waiting: E[] = [];
  private inFlight = 0;
  private readonly idleWaiters: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly capacity: number;

  constructor(private readonly options: EventRecorderOptions<E>) {
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.capacity = Math.max(1, options.capacity ?? 1000);
  }

  /** Queues `event` for sending; returns at once. */
  record(event: E): void {
    if (this.waiting.length >= this.capacity) {
      const dropped = this.waiting.shift() as E;
      this.options.onDrop?.(dropped);
    }
    this.waiting.push(event);
    this.pump();
  }

  /** Events waiting or in flight. */
  get pending(): number {
    return this.waiting.length + this.inFlight;
  }

  /** Resolves once every Event recorded so far (and any recorded meanwhile) has been sent or failed. */
  flush(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.waiting.length > 0) {
      const event = this.waiting.shift() as E;
      this.inFlight += 1;
      void this.sendOne(event);
    }
    if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private async sendOne(event: E): Promise<void> {
    try {
      await this.options.send(event);
    } catch {
      // The sender logs its own failures; one failed Event never stops the others.
    } finally {
      this.inFlight -= 1;
      this.pump();
    }
  }
}

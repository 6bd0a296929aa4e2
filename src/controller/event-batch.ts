/**
 * Informer events handed on in batches: the events delivered in one turn of the event loop (the
 * watch events of one response chunk, several informers' sockets read in one poll, a resync that
 * hands every cached object again) reach `flush` together, once, from a `setImmediate` callback
 * (Node's check phase, after the I/O callbacks of the turn). The controller maps each batch to
 * work keys against one snapshot of its caches instead of one snapshot per event: a snapshot and
 * the indexes built on it cost O(objects), so a burst of N events cost O(N × objects) before.
 * Order is kept; an event added during `flush` goes to the next batch.
 */
export class EventBatch<E> {
  private pending: E[] = [];

  constructor(private readonly flush: (events: readonly E[]) => void) {}

  add(event: E): void {
    if (this.pending.push(event) > 1) return;
    setImmediate(() => {
      const events = this.pending;
      this.pending = [];
      this.flush(events);
    });
  }
}

import { describe, expect, it } from 'vitest';
import { WorkQueue, type QueueClock } from '../../src/controller/work-queue.js';

/** A clock whose time only moves when the test says so. */
class ManualClock implements QueueClock {
  time = 0;
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private next = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    this.time += ms;
    const due = this.timers.filter((t) => t.at <= this.time).sort((a, b) => a.at - b.at);
    this.timers = this.timers.filter((t) => t.at > this.time);
    for (const t of due) t.fn();
  }
  get pending(): number {
    return this.timers.length;
  }
}

describe('WorkQueue', () => {
  it('hands out fast keys before the others, lower ranks first, alternating with the normal line while both wait, each lane in order', async () => {
    const q = new WorkQueue({ fast: (key) => (key.startsWith('Host/') ? 0 : key.startsWith('Begun/') ? 1 : undefined) });
    for (const key of ['Sandbox/n1', 'Begun/b1', 'Sandbox/n2', 'Begun/b2', 'Host/h1', 'Sandbox/n3', 'Begun/b3']) q.add(key);
    const ranked = [];
    for (let i = 0; i < 7; i++) ranked.push(await q.get());
    expect(ranked).toEqual(['Host/h1', 'Sandbox/n1', 'Begun/b1', 'Sandbox/n2', 'Begun/b2', 'Sandbox/n3', 'Begun/b3']);
  });

  it('with one fast lane: its keys first, alternating while both lines wait, each line in order', async () => {
    const q = new WorkQueue({ fast: (key) => (key.startsWith('Host/') ? 0 : undefined) });
    for (const key of ['Sandbox/a', 'Sandbox/b', 'Sandbox/c', 'Host/x', 'Host/y', 'Host/z', 'Sandbox/a']) q.add(key);
    expect(q.metrics()).toEqual({ depth: 6, delayed: 0, processing: 0 });
    const order = [];
    for (let i = 0; i < 6; i++) order.push(await q.get());
    expect(order).toEqual(['Host/x', 'Sandbox/a', 'Host/y', 'Sandbox/b', 'Host/z', 'Sandbox/c']);
    // A Host key re-added while processing goes back to its line and comes next.
    q.add('Host/x');
    q.add('Sandbox/d');
    q.add('Sandbox/e');
    q.done('Host/x');
    expect([await q.get(), await q.get(), await q.get()]).toEqual(['Host/x', 'Sandbox/d', 'Sandbox/e']);
  });

  it('hands out each waiting key once, in order, however often it was added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.metrics()).toEqual({ depth: 2, delayed: 0, processing: 0 });
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.metrics()).toEqual({ depth: 0, delayed: 0, processing: 2 });
  });

  it('never hands out a key being processed; an add meanwhile re-queues it on done', async () => {
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.metrics().depth).toBe(0);
    let next: string | undefined;
    void q.get().then((k) => (next = k));
    await Promise.resolve();
    expect(next).toBeUndefined();
    q.done('a');
    await Promise.resolve();
    expect(next).toBe('a');
    q.done('a');
    expect(q.metrics()).toEqual({ depth: 0, delayed: 0, processing: 0 });
  });

  it('a key processed without a new add is not re-queued', async () => {
    const q = new WorkQueue();
    q.add('a');
    await q.get();
    q.done('a');
    expect(q.metrics().depth).toBe(0);
  });

  it('addAfter adds the key when its delay passes; the earliest pending delay wins', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    q.addAfter('a', 100);
    q.addAfter('a', 50);
    q.addAfter('a', 200);
    expect(q.metrics()).toEqual({ depth: 0, delayed: 1, processing: 0 });
    clock.advance(49);
    expect(q.metrics().depth).toBe(0);
    clock.advance(1);
    expect(q.metrics()).toEqual({ depth: 1, delayed: 0, processing: 0 });
    expect(clock.pending).toBe(0);
    expect(await q.get()).toBe('a');
  });

  it('backs off exponentially per key up to the cap, and forget resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 100, clock: new ManualClock() });
    expect([1, 2, 3, 4, 5, 6].map(() => q.addRateLimited('a'))).toEqual([10, 20, 40, 80, 100, 100]);
    expect(q.addRateLimited('b')).toBe(10);
    expect(q.retries('a')).toBe(6);
    q.forget('a');
    expect(q.retries('a')).toBe(0);
    expect(q.addRateLimited('a')).toBe(10);
  });

  it('reports how long a key waited in line', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    const waits: Array<[string, number]> = [];
    q.onDequeue = (key, ms) => waits.push([key, ms]);
    q.add('a');
    clock.advance(30);
    await q.get();
    expect(waits).toEqual([['a', 30]]);
  });

  it('shutdown releases waiting consumers, drops delayed keys and lets in-flight work drain', async () => {
    const clock = new ManualClock();
    const q = new WorkQueue({ clock });
    q.add('a');
    expect(await q.get()).toBe('a');
    const waiting = q.get();
    q.addAfter('b', 10);
    q.shutdown();
    expect(await waiting).toBeUndefined();
    expect(clock.pending).toBe(0);
    q.add('c');
    expect(await q.get()).toBeUndefined();
    let drained = false;
    const drain = q.drained().then(() => (drained = true));
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done('a');
    await drain;
    expect(drained).toBe(true);
  });
});

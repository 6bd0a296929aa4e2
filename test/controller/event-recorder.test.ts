import { describe, expect, it } from 'vitest';
import { EventRecorder } from '../../src/controller/event-recorder.js';

/** A sender whose POSTs finish when the test says so. */
function gatedSender() {
  const started: string[] = [];
  const gates = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  let inFlight = 0;
  let maxInFlight = 0;
  const send = (event: string) =>
    new Promise<void>((resolve, reject) => {
      started.push(event);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = () => (inFlight -= 1);
      gates.set(event, { resolve: () => (done(), resolve()), reject: (e) => (done(), reject(e)) });
    });
  return { send, started, gates, maxInFlight: () => maxInFlight };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('EventRecorder', () => {
  it('returns at once, sends in order with at most `concurrency` in flight, and a failed send does not stop the rest', async () => {
    const s = gatedSender();
    const recorder = new EventRecorder<string>({ send: s.send, concurrency: 2 });
    for (const e of ['a', 'b', 'c', 'd']) recorder.record(e);
    expect(s.started).toEqual(['a', 'b']);
    expect(recorder.pending).toBe(4);
    let flushed = false;
    const flush = recorder.flush().then(() => (flushed = true));
    s.gates.get('a')!.reject(new Error('HTTP 500'));
    await tick();
    expect(s.started).toEqual(['a', 'b', 'c']);
    s.gates.get('b')!.resolve();
    s.gates.get('c')!.resolve();
    await tick();
    expect(s.started).toEqual(['a', 'b', 'c', 'd']);
    expect(flushed).toBe(false);
    s.gates.get('d')!.resolve();
    await flush;
    expect(recorder.pending).toBe(0);
    expect(s.maxInFlight()).toBe(2);
    await recorder.flush(); // nothing pending: resolves at once
  });

  it('beyond `capacity` waiting, drops the oldest waiting Event and reports it', async () => {
    const s = gatedSender();
    const dropped: string[] = [];
    const recorder = new EventRecorder<string>({ send: s.send, concurrency: 1, capacity: 2, onDrop: (e) => dropped.push(e) });
    for (const e of ['a', 'b', 'c', 'd']) recorder.record(e);
    // 'a' is in flight; 'b' and 'c' waited, 'd' pushed 'b' out.
    expect(dropped).toEqual(['b']);
    expect(recorder.pending).toBe(3);
    for (const e of ['a', 'c', 'd']) {
      await tick();
      s.gates.get(e)!.resolve();
    }
    await recorder.flush();
    expect(s.started).toEqual(['a', 'c', 'd']);
  });
});

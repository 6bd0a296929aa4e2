// Informer events of one turn of the event loop reach the controller's key mapping together, once.
import { describe, expect, it } from 'vitest';
import { EventBatch } from '../../src/controller/event-batch.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('EventBatch', () => {
  it('hands the events added in one turn to one flush, in order, and later ones to the next', async () => {
    const flushed: string[][] = [];
    const batch = new EventBatch<string>((events) => {
      flushed.push([...events]);
      if (events.includes('b')) batch.add('added during flush');
    });
    batch.add('a');
    batch.add('b');
    batch.add('c');
    expect(flushed).toEqual([]);
    await nextTurn();
    expect(flushed).toEqual([['a', 'b', 'c']]);
    batch.add('d');
    await nextTurn();
    await nextTurn();
    expect(flushed).toEqual([['a', 'b', 'c'], ['added during flush', 'd']]);
  });
});

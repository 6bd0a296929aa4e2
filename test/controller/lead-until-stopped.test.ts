// leadUntilStopped: the order of a leader's graceful stop (issue 10: stop taking work, finish in
// flight, release the Lease), with an elector and a controller that record what happens when.
import { describe, expect, it } from 'vitest';
import { leadUntilStopped } from '../../src/controller/run.js';

function recorder() {
  const steps: string[] = [];
  let finishReconcile!: () => void;
  const reconcileInFlight = new Promise<void>((resolve) => (finishReconcile = resolve));
  const controller = {
    stopWorkers: async () => {
      steps.push('stop taking work');
      await reconcileInFlight;
      steps.push('reconciles finished');
    },
    stop: async () => {
      steps.push('Events sent, informers stopped');
    },
  };
  return { steps, controller, finishReconcile };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('leadUntilStopped', () => {
  it('asked to stop: finishes the reconciles in flight while holding the Lease, releases it, then sends the Events', async () => {
    const { steps, controller, finishReconcile } = recorder();
    const elector = {
      run: async (signal: AbortSignal) => {
        steps.push('leading');
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        steps.push('Lease released');
      },
    };
    const stop = new AbortController();
    const done = leadUntilStopped(elector, controller, stop.signal, () => steps.push('error'));
    await tick();
    stop.abort();
    await tick();
    // Still holding the Lease while a reconcile is in flight.
    expect(steps).toEqual(['leading', 'stop taking work']);
    finishReconcile();
    await done;
    expect(steps).toEqual(['leading', 'stop taking work', 'reconciles finished', 'Lease released', 'Events sent, informers stopped']);
  });

  it('a failure while stopping the workers is reported and the Lease is still released', async () => {
    const steps: string[] = [];
    const elector = {
      run: async (signal: AbortSignal) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        steps.push('Lease released');
      },
    };
    const controller = {
      stopWorkers: async () => {
        throw new Error('queue broken');
      },
      stop: async () => void steps.push('stopped'),
    };
    const stop = new AbortController();
    stop.abort();
    await leadUntilStopped(elector, controller, stop.signal, (error) => steps.push(`error: ${(error as Error).message}`));
    expect(steps).toEqual(['error: queue broken', 'Lease released', 'stopped']);
  });

  it('leadership lost (the elector returns by itself): stops the controller without waiting for a signal', async () => {
    const steps: string[] = [];
    const elector = { run: async () => void steps.push('Lease lost') };
    const controller = { stopWorkers: async () => void steps.push('stop taking work'), stop: async () => void steps.push('stopped') };
    await leadUntilStopped(elector, controller, new AbortController().signal, () => steps.push('error'));
    expect(steps).toEqual(['Lease lost', 'stopped']);
  });
});

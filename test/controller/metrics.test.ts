import { describe, expect, it } from 'vitest';
import { ControllerMetrics } from '../../src/controller/metrics.js';

describe('ControllerMetrics', () => {
  it('exposes the event-loop delay since start as p50, p99 and max, in seconds', async () => {
    const metrics = new ControllerMetrics({ depth: () => ({ depth: 0, delayed: 0, processing: 0 }), managed: () => ({}) });
    const text = await metrics.registry.metrics();
    const stats = [...text.matchAll(/^meshfork_event_loop_delay_seconds\{stat="(\w+)"\} (\S+)$/gm)].map((m) => [m[1], Number.isFinite(Number(m[2])) && Number(m[2]) >= 0]);
    expect(stats).toEqual([
      ['p50', true],
      ['p99', true],
      ['max', true],
    ]);
  });
});

describe('ControllerMetrics Events', () => {
  it('exposes the Events waiting to be sent and counts the dropped ones', async () => {
    let pending = 3;
    const metrics = new ControllerMetrics({ depth: () => ({ depth: 0, delayed: 0, processing: 0 }), managed: () => ({}), events: () => pending });
    metrics.eventsDropped.inc();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^meshfork_events_pending 3$/m);
    expect(text).toMatch(/^meshfork_events_dropped_total 1$/m);
    pending = 0;
    expect(await metrics.registry.metrics()).toMatch(/^meshfork_events_pending 0$/m);
  });
});

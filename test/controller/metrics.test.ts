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

/**
 * Three hops with real processes on loopback: client → A → B → C.
 * A and C use the meshfork SDK; B uses only the official OpenTelemetry NodeSDK with its HTTP and
 * gRPC auto-instrumentations. C reports the routing key it sees (`routingKey()` after async work)
 * and the raw `baggage` it received.
 *
 * The `PROPAGATION=off` topologies run the very same A or C without the SDK and assert the key is
 * lost: they keep in the suite the proof that these tests detect a missing propagation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Service, start, stop, stopAll } from './processes.js';

interface Observation {
  service: string;
  routingKey: string | null;
  baggage: string | string[] | null;
  traceparent: string | null;
}

type Outbound = 'fetch' | 'node-http' | 'grpc';

interface Topology {
  readonly title: string;
  /** A's call to B (and B's call to C use the same protocol family). */
  readonly via: Outbound;
  readonly aPropagation: 'on' | 'off';
  readonly cPropagation: 'on' | 'off';
}

async function chain(t: Topology): Promise<Service[]> {
  const grpcHops = t.via === 'grpc';
  const c = await start('C', 'meshfork-service.ts', {
    INBOUND: grpcHops ? 'grpc' : 'http',
    OUTBOUND: 'none',
    PROPAGATION: t.cPropagation,
  });
  const b = await start('B', 'otel-service.cjs', {
    INBOUND: grpcHops ? 'grpc' : 'http',
    OUTBOUND: grpcHops ? 'grpc' : 'node-http',
    NEXT: grpcHops ? `127.0.0.1:${c.port}` : `http://127.0.0.1:${c.port}`,
  }).catch(async (e: unknown) => {
    await stop([c]);
    throw e;
  });
  const a = await start('A', 'meshfork-service.ts', {
    INBOUND: 'http',
    OUTBOUND: t.via,
    NEXT: grpcHops ? `127.0.0.1:${b.port}` : `http://127.0.0.1:${b.port}`,
    PROPAGATION: t.aPropagation,
  }).catch(async (e: unknown) => {
    await stop([b, c]);
    throw e;
  });
  return [a, b, c];
}

async function call(port: number, headers: Record<string, string>, path = '/'): Promise<Observation> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${text}`);
  return JSON.parse(text) as Observation;
}

const baggageText = (b: Observation['baggage']): string => (Array.isArray(b) ? b.join(',') : (b ?? ''));

function keyFor(i: number): string {
  return `k${(i % 37).toString(36).padStart(2, '0')}${(i * 7919).toString(36)}`.slice(0, 32);
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const ON: Topology[] = [
  { title: 'fetch A→B, node:http B→C', via: 'fetch', aPropagation: 'on', cPropagation: 'on' },
  { title: 'node:http A→B and B→C', via: 'node-http', aPropagation: 'on', cPropagation: 'on' },
  { title: 'gRPC A→B and B→C (grpc-js interceptors ↔ OpenTelemetry grpc instrumentation)', via: 'grpc', aPropagation: 'on', cPropagation: 'on' },
];

for (const t of ON) {
  describe(`three hops, ${t.title}`, () => {
    let services: Service[] = [];
    beforeAll(async () => {
      services = await chain(t);
    }, 120_000);
    afterAll(async () => {
      await stop(services);
      stopAll();
    });
    const port = (): number => services[0]!.port;

    it('delivers the client routing key to C, with foreign members and trace context intact', async () => {
      const obs = await call(port(), {
        baggage: 'tenant=acme;prio=1, meshfork-routing-key=pr1234abc, user=a%20b',
        traceparent: TRACEPARENT,
      });
      expect(obs.service).toBe('C');
      expect(obs.routingKey).toBe('pr1234abc');
      const b = baggageText(obs.baggage);
      expect(b).toMatch(/(^|,)\s*meshfork-routing-key=pr1234abc\s*(,|$)/);
      expect(b).toContain('tenant=acme;prio=1');
      expect(b).toContain('user=a%20b');
      // Same trace across the three hops (B adds its own span ids, the trace id stays).
      expect(obs.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-0[01]$/);
    });

    it('a request without a routing key carries none', async () => {
      const obs = await call(port(), {});
      expect(obs.routingKey).toBeNull();
      expect(baggageText(obs.baggage)).not.toContain('meshfork-routing-key');
      const foreign = await call(port(), { baggage: 'tenant=acme' });
      expect(foreign.routingKey).toBeNull();
      expect(baggageText(foreign.baggage)).toBe('tenant=acme');
    });

    it('hundreds of concurrent interleaved requests with different keys never mix', async () => {
      const N = 300;
      const results = await Promise.all(
        Array.from({ length: N }, async (_, i) => {
          // Every 5th request has no key; the rest use 37 interleaved keys; `req` is unique.
          const key = i % 5 === 0 ? undefined : keyFor(i);
          const baggage = key === undefined ? `req=${i}` : `req=${i},meshfork-routing-key=${key}`;
          const obs = await call(port(), { baggage }, `/r/${i}`);
          return { i, key, obs };
        }),
      );
      let keyed = 0;
      for (const { i, key, obs } of results) {
        expect(obs.routingKey, `request ${i}`).toBe(key ?? null);
        const b = baggageText(obs.baggage);
        expect(b, `request ${i}`).toMatch(new RegExp(`(^|,)req=${i}(,|$)`));
        if (key !== undefined) keyed++;
        else expect(b).not.toContain('meshfork-routing-key');
      }
      expect(keyed).toBe(240);
    }, 60_000);
  });
}

const OFF: Topology[] = [
  { title: 'A without the SDK', via: 'fetch', aPropagation: 'off', cPropagation: 'on' },
  { title: 'C without the SDK', via: 'fetch', aPropagation: 'on', cPropagation: 'off' },
  { title: 'A without the SDK, gRPC', via: 'grpc', aPropagation: 'off', cPropagation: 'on' },
];

for (const t of OFF) {
  describe(`three hops, ${t.title}: the routing key is lost (the tests above would fail)`, () => {
    let services: Service[] = [];
    beforeAll(async () => {
      services = await chain(t);
    }, 120_000);
    afterAll(async () => {
      await stop(services);
      stopAll();
    });

    it('C does not see the client routing key', async () => {
      const obs = await call(services[0]!.port, { baggage: 'meshfork-routing-key=pr1234abc' });
      expect(obs.service).toBe('C');
      expect(obs.routingKey).toBeNull();
      if (t.aPropagation === 'off') expect(baggageText(obs.baggage)).not.toContain('pr1234abc');
      else expect(baggageText(obs.baggage)).toContain('pr1234abc'); // it arrived; C just did not read it
    });
  });
}

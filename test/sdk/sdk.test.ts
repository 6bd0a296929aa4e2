/** The SDK in one process with nothing else installed: meshfork registers its own propagation. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as sdk from '../../src/sdk/index.js';

interface Seen {
  key: string | null;
  baggage: string | null;
  traceparent: string | null;
}

/** A server that echoes what it received (not instrumented: it only reports headers). */
let echo: http.Server;
let echoUrl = '';
beforeAll(async () => {
  expect(sdk.install()).toEqual({
    propagator: 'installed',
    contextManager: 'installed',
    outbound: true,
    propagatesBaggage: true,
    keyName: 'meshfork-routing-key',
  });
  echo = http.createServer((req, res) => {
    const h = req.headers;
    res.end(JSON.stringify({ key: null, baggage: h.baggage ?? null, traceparent: h.traceparent ?? null }));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
});
afterAll(() => {
  echo.close();
  sdk.uninstall();
});

function nodeGet(url: string, headers: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
}

describe('context helpers', () => {
  it('routingKey() is undefined outside any request', () => {
    expect(sdk.routingKey()).toBeUndefined();
  });

  it('withRoutingKey scopes the key across async continuations and nests', async () => {
    await sdk.withRoutingKey('abcd1234', async () => {
      expect(sdk.routingKey()).toBe('abcd1234');
      await sleep(1);
      expect(sdk.routingKey()).toBe('abcd1234');
      await sdk.withRoutingKey('zzzz9999', async () => {
        await sleep(1);
        expect(sdk.routingKey()).toBe('zzzz9999');
      });
      sdk.withRoutingKey(undefined, () => expect(sdk.routingKey()).toBeUndefined());
      expect(sdk.routingKey()).toBe('abcd1234');
    });
    expect(sdk.routingKey()).toBeUndefined();
  });

  it('rejects malformed routing keys from code, never from the wire', () => {
    expect(() => sdk.withRoutingKey('NOPE', () => 1)).toThrow(TypeError);
    expect(() => sdk.headersForSandbox('a b')).toThrow(TypeError);
    expect(() => sdk.extractRoutingKey({ baggage: 'meshfork-routing-key=NOPE' })).not.toThrow();
  });

  it('headersForSandbox builds the baggage header (default, explicit name, signadot preset)', () => {
    expect(sdk.headersForSandbox('pr42abcd')).toEqual({ baggage: 'meshfork-routing-key=pr42abcd' });
    expect(sdk.headersForSandbox('pr42abcd', { preset: 'signadot' })).toEqual({ baggage: 'sd-routing-key=pr42abcd' });
    expect(sdk.headersForSandbox('pr42abcd', { keyName: 'x-key' })).toEqual({ baggage: 'x-key=pr42abcd' });
  });

  it('reads a tracestate member when baggage has none', () => {
    const ctx = sdk.inboundContext({
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'meshfork-routing-key=ts12key,other=1',
    });
    expect(sdk.routingKeyIn(ctx)).toBe('ts12key');
  });
});

describe('received baggage is an ordinary OpenTelemetry Baggage', () => {
  it('reads, derives and serializes through the API and through @opentelemetry/core', async () => {
    const { propagation, ROOT_CONTEXT, defaultTextMapSetter } = await import('@opentelemetry/api');
    const { W3CBaggagePropagator } = await import('@opentelemetry/core');
    const ctx = sdk.inboundContext({ baggage: 'a=1;p=q, b = x%20y, meshfork-routing-key=abcd1234' }, ROOT_CONTEXT);
    const bag = propagation.getBaggage(ctx)!;
    expect(bag.getEntry('b')).toEqual({ value: 'x y' });
    expect(bag.getEntry('a')?.metadata?.toString()).toBe('p=q');
    expect(bag.getAllEntries().map(([k]) => k)).toEqual(['a', 'b', 'meshfork-routing-key']);
    expect(bag.removeEntry('a').getAllEntries().map(([k]) => k)).toEqual(['b', 'meshfork-routing-key']);
    expect(bag.removeEntries('a', 'b').getAllEntries()).toHaveLength(1);
    expect(bag.clear().getAllEntries()).toEqual([]);
    // Derived baggage still forwards untouched members verbatim.
    expect(sdk.baggageHeader(propagation.setBaggage(ctx, bag.setEntry('c', { value: '3' })))).toBe(
      'a=1;p=q,b = x%20y,meshfork-routing-key=abcd1234,c=3',
    );
    const carrier: Record<string, string> = {};
    new W3CBaggagePropagator().inject(ctx, carrier, defaultTextMapSetter);
    expect(carrier.baggage).toBe('a=1;p=q,b=x%20y,meshfork-routing-key=abcd1234');
  });
});

describe('outbound hooks', () => {
  it('fetch and node:http carry the active baggage and trace context', async () => {
    const inbound = {
      baggage: 'a=1;p, meshfork-routing-key=abcd1234',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    };
    await sdk.withInboundHeaders(inbound, async () => {
      const viaFetch = JSON.parse(await (await fetch(echoUrl)).text()) as Seen;
      const viaHttp = JSON.parse(await nodeGet(echoUrl)) as Seen;
      for (const seen of [viaFetch, viaHttp]) {
        expect(seen.baggage).toBe('a=1;p,meshfork-routing-key=abcd1234');
        expect(seen.traceparent).toBe(inbound.traceparent);
      }
    });
  });

  it('an explicit baggage header is kept and only gains a missing routing key', async () => {
    await sdk.withRoutingKey('abcd1234', async () => {
      const f = JSON.parse(await (await fetch(echoUrl, { headers: { Baggage: 'mine=1' } })).text()) as Seen;
      expect(f.baggage).toBe('mine=1,meshfork-routing-key=abcd1234');
      const h = JSON.parse(await nodeGet(echoUrl, { baggage: 'mine=1,meshfork-routing-key=other99' })) as Seen;
      expect(h.baggage).toBe('mine=1,meshfork-routing-key=other99');
      expect(sdk.injectHeaders({ BAGGAGE: 'x=1' })).toEqual({ BAGGAGE: 'x=1,meshfork-routing-key=abcd1234' });
    });
  });

  it('adds nothing outside a request', async () => {
    expect((JSON.parse(await (await fetch(echoUrl)).text()) as Seen).baggage).toBeNull();
    expect((JSON.parse(await nodeGet(echoUrl)) as Seen).baggage).toBeNull();
  });
});

describe('inbound middleware', () => {
  it('node:http httpHandler and Express middleware expose the request key to handlers', async () => {
    const app = express();
    app.use(sdk.expressMiddleware());
    app.get('/', async (_req, res) => {
      await sleep(Math.random() * 3);
      const downstream = JSON.parse(await (await fetch(echoUrl)).text()) as Seen;
      res.json({ key: sdk.routingKey() ?? null, baggage: downstream.baggage, traceparent: null });
    });
    const plain = http.createServer(
      sdk.httpHandler((_req, res) => {
        setTimeout(() => res.end(JSON.stringify({ key: sdk.routingKey() ?? null })), Math.random() * 3);
      }),
    );
    const ex = app.listen(0);
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      for (const server of [ex, plain]) {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
        const results = await Promise.all(
          Array.from({ length: 60 }, async (_, i) => {
            const key = i % 3 === 0 ? undefined : `key${i.toString().padStart(3, '0')}`;
            const r = await fetch(url, { headers: key ? sdk.headersForSandbox(key) : {} });
            return { key, seen: JSON.parse(await r.text()) as Seen };
          }),
        );
        for (const { key, seen } of results) {
          expect(seen.key).toBe(key ?? null);
          if (server === ex) expect(seen.baggage).toBe(key ? `meshfork-routing-key=${key}` : null);
        }
      }
    } finally {
      ex.close();
      plain.close();
    }
  });
});

describe('gRPC interceptors', () => {
  it('client interceptor sends baggage metadata; server interceptor runs the handler in its context', async () => {
    const server = new grpc.Server({ interceptors: [sdk.grpcServerInterceptor(grpc)] });
    const service = {
      echo: {
        path: '/t.T/Echo',
        requestStream: false,
        responseStream: false,
        requestSerialize: (v: string) => Buffer.from(v),
        requestDeserialize: (b: Buffer) => b.toString(),
        responseSerialize: (v: string) => Buffer.from(v),
        responseDeserialize: (b: Buffer) => b.toString(),
      },
    } satisfies grpc.ServiceDefinition;
    server.addService(service, {
      echo: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
        const md = call.metadata.get('baggage').map(String).join(',');
        setTimeout(() => cb(null, JSON.stringify({ key: sdk.routingKey() ?? null, baggage: md || null })), Math.random() * 3);
      },
    });
    const port = await new Promise<number>((ok, ko) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? ko(e) : ok(p))),
    );
    const Client = grpc.makeGenericClientConstructor(service, 'T');
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      interceptors: [sdk.grpcClientInterceptor(grpc)],
    });
    const call = (): Promise<Seen> =>
      new Promise((ok, ko) =>
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        (client as any).echo('x', (e: Error | null, v: string) => (e ? ko(e) : ok(JSON.parse(v) as Seen))),
      );
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          const key = i % 4 === 0 ? undefined : `grpc${i.toString().padStart(4, '0')}`;
          return sdk.withRoutingKey(key, () => call().then((seen) => ({ key, seen })));
        }),
      );
      for (const { key, seen } of results) {
        expect(seen.key).toBe(key ?? null);
        expect(seen.baggage).toBe(key ? `meshfork-routing-key=${key}` : null);
      }
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe('message queues', () => {
  it('injectRoutingKey / extractRoutingKey on Kafka-style headers (Buffer or string)', () => {
    const headers: Record<string, unknown> = { baggage: Buffer.from('tenant=acme'), 'content-type': Buffer.from('json') };
    sdk.withRoutingKey('mq12key', () => sdk.injectRoutingKey(headers));
    expect(headers.baggage).toBe('tenant=acme,meshfork-routing-key=mq12key');
    expect(sdk.extractRoutingKey({ baggage: Buffer.from(headers.baggage as string) })).toBe('mq12key');
    expect(sdk.extractRoutingKey({ Baggage: ['x=1', Buffer.from('meshfork-routing-key=abcd')] })).toBe('abcd');
    expect(sdk.extractRoutingKey({})).toBeUndefined();
    expect(sdk.extractRoutingKey(undefined)).toBeUndefined();
    expect(sdk.injectRoutingKey({ a: 1 })).toEqual({ a: 1 }); // no key in context: unchanged
  });

  it('shouldConsume: forks take their own records, the baseline the rest', () => {
    const withConsumer = new Set(['sbx1key']);
    const base = { sandbox: undefined, sandboxesWithConsumer: withConsumer };
    expect(sdk.shouldConsume(undefined, base)).toBe(true);
    expect(sdk.shouldConsume('sbx1key', base)).toBe(false); // the sandbox's own consumer handles it
    expect(sdk.shouldConsume('sbx2key', base)).toBe(true); // sandbox without a consumer: baseline handles it
    expect(sdk.shouldConsume('sbx1key', { sandbox: undefined, sandboxesWithConsumer: (k) => k === 'sbx1key' })).toBe(false);
    expect(sdk.shouldConsume('sbx1key', { sandbox: undefined })).toBe(true); // no knowledge: never lose a record
    expect(sdk.shouldConsume('sbx1key', { sandbox: 'sbx1key' })).toBe(true);
    expect(sdk.shouldConsume('sbx2key', { sandbox: 'sbx1key' })).toBe(false);
    expect(sdk.shouldConsume(undefined, { sandbox: 'sbx1key' })).toBe(false);
    expect(sdk.shouldConsume('BAD!', base)).toBe(true); // malformed key = unkeyed
  });
});

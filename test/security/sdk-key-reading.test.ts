/**
 * The SDK reads a routing key only from a member whose raw key text is exactly the key name, by
 * the precedence rule (issue 8 items 8 and 9), with meshfork's own propagator and on top of an
 * installed OpenTelemetry SDK (whose W3C baggage propagator percent-decodes and trims keys).
 */
import { ROOT_CONTEXT, context, defaultTextMapSetter, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterEach, describe, expect, it } from 'vitest';
import * as sdk from '../../src/sdk/index.js';

const K = 'meshfork-routing-key';
const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** Requests whose key member is spelled so that only a normalising reader finds it: untagged. */
const NOT_KEYS: Record<string, string>[] = [
  { baggage: `meshfork%2Drouting%2Dkey=abcd1234` },
  { baggage: `%6Deshfork-routing-key=abcd1234` },
  { baggage: `Meshfork-Routing-Key=abcd1234` },
  { baggage: `\u00a0${K}=abcd1234` },
  { baggage: `${K}\u3000=abcd1234` },
  { baggage: `${K}=%61bcd1234` },
  { traceparent: TP, tracestate: `\u00a0${K}=abcd1234` },
  { traceparent: TP, tracestate: `${K}=abcd1234,${K}=ab=cd` },
  { traceparent: TP, tracestate: `${K}=abcd1234,v=1,${K}=BAD!` },
  { baggage: `${K}=BAD!`, traceparent: TP, tracestate: `${K}=abcd1234` },
];

function outbound(ctx: ReturnType<typeof sdk.inboundContext>): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier, defaultTextMapSetter);
  return carrier;
}

describe('SDK key reading on hostile requests', () => {
  afterEach(() => {
    sdk.uninstall();
    propagation.disable();
    context.disable();
  });

  it("meshfork's propagator: normalised spellings are not the key, and are not re-created downstream", () => {
    sdk.install({ outbound: false });
    for (const headers of NOT_KEYS) {
      const ctx = sdk.inboundContext(headers, ROOT_CONTEXT);
      expect(sdk.routingKeyIn(ctx), JSON.stringify(headers)).toBeUndefined();
      const next = outbound(ctx);
      expect(sdk.routingKeyIn(sdk.inboundContext(next, ROOT_CONTEXT)), JSON.stringify(next)).toBeUndefined();
      expect(next.baggage ?? '', JSON.stringify(headers)).not.toMatch(new RegExp(`(^|,)[ \\t]*${K}[ \\t]*=[ \\t]*abcd1234`));
    }
  });

  it('with an OpenTelemetry SDK installed: the rule wins over what its propagators decoded', () => {
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    sdk.install({ outbound: false });
    for (const headers of NOT_KEYS) {
      const extracted = propagation.extract(ROOT_CONTEXT, headers);
      const ctx = sdk.inboundContext(headers, extracted);
      expect(sdk.routingKeyIn(ctx), JSON.stringify(headers)).toBeUndefined();
    }
    // The member OpenTelemetry decoded is replaced by an empty one: untagged at the next hop too.
    const headers = { baggage: `a=1,%6Deshfork-routing-key=abcd1234` };
    const extracted = propagation.extract(ROOT_CONTEXT, headers);
    expect(propagation.getBaggage(extracted)?.getEntry(K)?.value).toBe('abcd1234'); // what core read
    expect(outbound(sdk.inboundContext(headers, extracted)).baggage).toBe(`a=1,${K}=`);
  });

  it('a key from a plain or legacy header is carried on in baggage', () => {
    sdk.install({ outbound: false, headers: ['x-meshfork-routing-key'], legacyHeaders: true });
    try {
      const ctx = sdk.inboundContext({ 'x-meshfork-routing-key': 'abcd1234', baggage: 'a=1' }, ROOT_CONTEXT);
      expect(sdk.routingKeyIn(ctx)).toBe('abcd1234');
      expect(outbound(ctx).baggage).toBe(`a=1,${K}=abcd1234`);
      const legacy = sdk.inboundContext({ [`uberctx-${K}`]: 'zzzz9999' }, ROOT_CONTEXT);
      expect(sdk.routingKeyIn(legacy)).toBe('zzzz9999');
      // the first carrier decides, and an invalid value there means untagged
      const untagged = sdk.inboundContext({ 'x-meshfork-routing-key': 'no!', [`uberctx-${K}`]: 'zzzz9999' }, ROOT_CONTEXT);
      expect(sdk.routingKeyIn(untagged)).toBeUndefined();
    } finally {
      sdk.install({ headers: [], legacyHeaders: false });
    }
  });
});

/**
 * With an OpenTelemetry SDK already registered (global propagator and context manager), the
 * meshfork SDK registers nothing and its helpers work on top of OpenTelemetry's propagation.
 */
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterAll, describe, expect, it } from 'vitest';
import * as sdk from '../../src/sdk/index.js';

describe('with an OpenTelemetry SDK installed first', () => {
  const otelPropagator = new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] });
  propagation.setGlobalPropagator(otelPropagator);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  afterAll(() => {
    sdk.uninstall();
    propagation.disable();
    context.disable();
  });

  it('install() adds nothing but helpers', () => {
    expect(sdk.install({ preset: 'signadot' })).toEqual({
      propagator: 'existing',
      contextManager: 'existing',
      outbound: false,
      propagatesBaggage: true,
      keyName: 'sd-routing-key',
    });
  });

  it('helpers read and write through OpenTelemetry propagation (signadot preset)', async () => {
    const ctx = sdk.inboundContext({ baggage: 'sd-routing-key=sig1key,x=1' });
    expect(sdk.routingKeyIn(ctx)).toBe('sig1key');
    await context.with(ctx, async () => {
      await new Promise((r) => setTimeout(r, 1));
      expect(sdk.routingKey()).toBe('sig1key');
      const carrier: Record<string, string> = {};
      sdk.withRoutingKey('new1key', () => propagation.inject(context.active(), carrier));
      expect(carrier.baggage).toBe('sd-routing-key=new1key,x=1');
    });
    expect(sdk.headersForSandbox('abcd')).toEqual({ baggage: 'sd-routing-key=abcd' });
  });
});

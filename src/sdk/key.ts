/** Reading and setting the routing key in an OpenTelemetry context. */
import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { isRoutingKey } from './baggage.js';
import { currentKeyName } from './config.js';
import { linkDerivedBaggage } from './propagator.js';

/**
 * The routing key in `ctx`: the baggage member named {@link currentKeyName} (the primary carrier),
 * else a `tracestate` member of that name. Undefined when absent or not `[a-z0-9]{4,32}`.
 */
export function routingKeyIn(ctx: Context): string | undefined {
  const name = currentKeyName();
  const entry = propagation.getBaggage(ctx)?.getEntry(name);
  if (entry !== undefined) return isRoutingKey(entry.value) ? entry.value : undefined;
  const ts = trace.getSpanContext(ctx)?.traceState?.get(name);
  return ts !== undefined && isRoutingKey(ts) ? ts : undefined;
}

/** `ctx` with the routing key set (every other baggage entry kept), or removed when `key` is undefined. */
export function contextWithRoutingKey(ctx: Context, key: string | undefined): Context {
  const name = currentKeyName();
  const bag = propagation.getBaggage(ctx);
  if (key === undefined) {
    if (bag === undefined || bag.getEntry(name) === undefined) return ctx;
    const next = bag.removeEntry(name);
    linkDerivedBaggage(bag, next);
    return propagation.setBaggage(ctx, next);
  }
  if (!isRoutingKey(key)) throw new TypeError(`meshfork: routing key must match [a-z0-9]{4,32}, got ${JSON.stringify(key)}`);
  const base = bag ?? propagation.createBaggage();
  const next = base.setEntry(name, { value: key });
  linkDerivedBaggage(base, next);
  return propagation.setBaggage(ctx, next);
}

/** The routing key of the active context, or undefined. */
export function routingKey(): string | undefined {
  return routingKeyIn(context.active());
}

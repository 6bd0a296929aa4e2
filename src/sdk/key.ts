/** Reading and setting the routing key in an OpenTelemetry context. */
import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { isRoutingKey } from './baggage.js';
import { currentCarriers, currentKeyName } from './config.js';
import { ReceivedTraceState, linkDerivedBaggage, receivedMember } from './propagator.js';
import { tracestateKeyValue } from './request-key.js';

/**
 * The routing key in `ctx`, by the precedence rule (request-key.ts): the baggage member named
 * {@link currentKeyName} when there is one (its raw value), else, when tracestate is read, the
 * last `tracestate` member of that name. Undefined when absent or not `[a-z0-9]{4,32}`.
 */
export function routingKeyIn(ctx: Context): string | undefined {
  const name = currentKeyName();
  const bag = propagation.getBaggage(ctx);
  const entry = bag?.getEntry(name);
  if (entry !== undefined) {
    const value = receivedMember(bag!, name)?.rawValue ?? entry.value;
    return isRoutingKey(value) ? value : undefined;
  }
  if (currentCarriers().tracestate === false) return undefined;
  const ts = trace.getSpanContext(ctx)?.traceState;
  if (ts === undefined) return undefined;
  const value = ts instanceof ReceivedTraceState ? tracestateKeyValue(ts.text, name) : ts.get(name);
  return isRoutingKey(value) ? value : undefined;
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

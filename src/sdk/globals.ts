/**
 * Direct access to what meshfork registered, for the per-request paths.
 *
 * `context.active()`, `context.with()`, `propagation.extract()`/`inject()` each look the global
 * up through @opentelemetry/api's registry (a version-compatibility check per call). When the
 * registered context manager / propagator is meshfork's own, the middleware and hooks call it
 * directly; otherwise (an OpenTelemetry SDK is installed, or nothing is) they go through the API as
 * before. The registry is the object @opentelemetry/api 1.x keeps under
 * `Symbol.for('opentelemetry.js.api.1')` (shared by every copy of the API); reading it directly
 * gives the object `getGlobal()` would return whenever it is one of ours, since meshfork
 * registered it through a compatible API.
 */
import { type Context, type TextMapGetter, type TextMapSetter, context, defaultTextMapGetter, defaultTextMapSetter, propagation } from '@opentelemetry/api';
import { AlsContextManager } from './context-manager.js';
import { MeshforkPropagator } from './propagator.js';

const API_REGISTRY = Symbol.for('opentelemetry.js.api.1');

function registered(type: 'context' | 'propagation'): unknown {
  return (globalThis as unknown as Record<symbol, Record<string, unknown> | undefined>)[API_REGISTRY]?.[type];
}

/** meshfork's context manager when it is the registered one, else undefined. */
export function ownContextManager(): AlsContextManager | undefined {
  const m = registered('context');
  return m instanceof AlsContextManager ? m : undefined;
}

/** Whether meshfork's propagator is the registered one. */
export function ownPropagator(): boolean {
  return registered('propagation') instanceof MeshforkPropagator;
}

/** `context.active()`. */
export function activeContext(): Context {
  const m = registered('context');
  return m instanceof AlsContextManager ? m.active() : context.active();
}

/** `propagation.extract(ctx, carrier, getter)`. */
export function extractContext<C>(ctx: Context, carrier: C, getter: TextMapGetter<C> = defaultTextMapGetter): Context {
  const p = registered('propagation');
  return p instanceof MeshforkPropagator ? p.extract(ctx, carrier, getter as TextMapGetter) : propagation.extract(ctx, carrier, getter);
}

/** `propagation.inject(ctx, carrier, setter)`. */
export function injectContext<C>(ctx: Context, carrier: C, setter: TextMapSetter<C> = defaultTextMapSetter): void {
  const p = registered('propagation');
  if (p instanceof MeshforkPropagator) p.inject(ctx, carrier, setter as TextMapSetter);
  else propagation.inject(ctx, carrier, setter);
}

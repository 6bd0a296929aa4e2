/** Inbound propagation: node:http request listeners and Express middleware. */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type Context, context, propagation, trace } from '@opentelemetry/api';
import type { HeaderValue } from './baggage.js';
import { currentCarriers, currentKeyName } from './config.js';
import { activeContext, extractContext, ownContextManager, ownPropagator } from './globals.js';
import { ensureInstalled } from './install.js';
import { contextWithRoutingKey, routingKeyIn } from './key.js';
import { linkDerivedBaggage } from './propagator.js';
import { type KeyCarriers, carrierHeaders, recordGetter, requestRoutingKey } from './request-key.js';

/** True when `ctx` already carries baggage or a span context (an instrumentation extracted it). */
export function alreadyExtracted(ctx: Context): boolean {
  return propagation.getBaggage(ctx) !== undefined || trace.getSpanContext(ctx) !== undefined;
}

/**
 * The context to handle an inbound request in. When the active context already carries baggage or
 * a span (an OpenTelemetry HTTP instrumentation extracted it and started a server span), it is kept
 * as is: re-extracting would replace that server span with its remote parent. Either way the
 * routing key is then made to follow the precedence rule (see {@link withRequestKey}). Never throws.
 */
export function inboundContext(headers: IncomingHttpHeaders | Record<string, unknown>, base: Context = activeContext()): Context {
  try {
    if (alreadyExtracted(base)) return withRequestKey(base, recordGetter(headers), false);
    return withRequestKey(extractContext(base, headers), recordGetter(headers), ownPropagator());
  } catch {
    return base;
  }
}

/** Whether the request has a carrier other than `baggage` (with baggage alone our context agrees). */
function carrierBeyondBaggage(get: (name: string) => HeaderValue, carriers: KeyCarriers): boolean {
  const names = carrierHeaders(carriers);
  for (let i = 1; i < names.length; i++) if (get(names[i]!) !== undefined) return true;
  return false;
}

/**
 * `ctx` (extracted from a request) with the routing key the request carries by the precedence
 * rule (request-key.ts), so that `routingKeyIn` and the outbound calls agree with the mesh's
 * routes:
 * - a key read from a carrier the context does not hold (a plain or legacy header, a `tracestate`
 *   without a valid `traceparent`) is set as the baggage member, which carries it on;
 * - a context in which another propagator read a key the rule does not accept (OpenTelemetry JS
 *   percent-decodes and Unicode-trims baggage keys; its TraceState trims members) gets the
 *   member with an empty value instead: untagged here, and at every later hop (baggage is read
 *   first).
 * `ownExtraction`: meshfork's propagator extracted `ctx`, whose baggage and tracestate readers
 * already follow the rule, so nothing is parsed when the key (if any) is in baggage.
 */
export function withRequestKey(ctx: Context, get: (name: string) => HeaderValue, ownExtraction: boolean): Context {
  const carriers = currentCarriers();
  if (ownExtraction && !carrierBeyondBaggage(get, carriers)) return ctx;
  const r = requestRoutingKey(get, carriers);
  if (ownExtraction && (r.carrier === undefined || r.carrier === 'baggage')) return ctx;
  if (routingKeyIn(ctx) === r.key) return ctx;
  if (r.key !== undefined) return contextWithRoutingKey(ctx, r.key);
  const bag = propagation.getBaggage(ctx) ?? propagation.createBaggage();
  const next = bag.setEntry(currentKeyName(), { value: '' });
  linkDerivedBaggage(bag, next);
  return propagation.setBaggage(ctx, next);
}

/** Runs `fn` in the context carried by inbound `headers` (for servers the SDK has no wrapper for). */
export function withInboundHeaders<T>(headers: IncomingHttpHeaders | Record<string, unknown>, fn: () => T): T {
  ensureInstalled();
  return context.with(inboundContext(headers), fn);
}

/**
 * Wraps a `node:http` (or `node:https`) request listener so the request's `baggage` and
 * trace context are active while it is handled: `http.createServer(httpHandler((req, res) => ...))`.
 */
export function httpHandler<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  listener: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  return function meshforkHttpHandler(this: unknown, req: Req, res: Res): void {
    ensureInstalled();
    const manager = ownContextManager(); // meshfork's own: called directly (same effect as context.with)
    if (manager !== undefined) manager.run2(inboundContext(req.headers, manager.active()), listener, this, req, res);
    else context.with(inboundContext(req.headers), listener, this, req, res);
  };
}

/** The part of an Express request the middleware needs. */
export interface RequestWithHeaders {
  readonly headers: IncomingHttpHeaders;
}

/**
 * Express (4 or 5) middleware: `app.use(expressMiddleware())` as the first middleware. Everything
 * that runs after `next()` — later middleware, handlers and their async continuations — sees the
 * request's context.
 */
export function expressMiddleware(): (req: RequestWithHeaders, res: unknown, next: (err?: unknown) => void) => void {
  return function meshforkExpress(req, _res, next): void {
    ensureInstalled();
    (ownContextManager() ?? context).with(inboundContext(req.headers), next);
  };
}

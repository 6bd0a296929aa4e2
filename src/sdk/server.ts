/** Inbound propagation: node:http request listeners and Express middleware. */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type Context, context, propagation, trace } from '@opentelemetry/api';
import { activeContext, extractContext, ownContextManager } from './globals.js';
import { ensureInstalled } from './install.js';

/** True when `ctx` already carries baggage or a span context (an instrumentation extracted it). */
export function alreadyExtracted(ctx: Context): boolean {
  return propagation.getBaggage(ctx) !== undefined || trace.getSpanContext(ctx) !== undefined;
}

/**
 * The context to handle an inbound request in. When the active context already carries baggage or
 * a span (an OpenTelemetry HTTP instrumentation extracted it and started a server span), it is kept
 * as is: re-extracting would replace that server span with its remote parent. Never throws.
 */
export function inboundContext(headers: IncomingHttpHeaders | Record<string, unknown>, base: Context = activeContext()): Context {
  try {
    if (alreadyExtracted(base)) return base;
    return extractContext(base, headers);
  } catch {
    return base;
  }
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

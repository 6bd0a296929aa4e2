/**
 * Outbound propagation for global `fetch` / undici and `node:http` clients, through Node's
 * diagnostics channels (no monkey-patching):
 * - `undici:request:create` is published by undici (and the undici bundled in Node for global
 *   `fetch`) when a request is created; subscribers may call `request.addHeader()` (undici docs,
 *   "Diagnostics Channel Support"). In undici >= 6 `request.headers` is a flat [name, value, ...]
 *   array, in older versions raw `name: value\r\n` text.
 * - `http.client.request.created` is published by `node:http` once a ClientRequest exists and
 *   before its headers are sent (Node >= 22.14 / 23.2), so `setHeader()` still works there.
 *   (`http.client.request.start` comes too late: headers may already be flushed.)
 * Subscribers run synchronously in the caller's async context, so `context.active()` is the
 * context of the code that made the call.
 *
 * Rule for headers the application set itself: an explicit `traceparent`/`tracestate` is left
 * alone; an explicit `baggage` is kept and only gains the routing-key member if it has none.
 */
import dc from 'node:diagnostics_channel';
import { type Context, propagation, trace } from '@opentelemetry/api';
import { type HeaderValue, parseBaggage, setRoutingKeyInBaggage } from './baggage.js';
import { currentKeyName } from './config.js';
import { activeContext, injectContext } from './globals.js';
import { routingKeyIn } from './key.js';

const UNDICI_CREATE = 'undici:request:create';
const HTTP_CREATED = 'http.client.request.created';

/**
 * The value to send for `baggage` when the request already has `existing`: undefined when the
 * existing header should stay as is, else the merged header (routing key added).
 */
export function mergeBaggage(existing: HeaderValue, ctx: Context): string | undefined {
  const key = routingKeyIn(ctx);
  if (key === undefined) return undefined;
  const name = currentKeyName();
  for (const m of parseBaggage(existing)) if (m.key === name) return undefined;
  return setRoutingKeyInBaggage(existing, key, name);
}

/** The propagation fields for `ctx` (lowercase names), or undefined when there is nothing to send. */
export function outboundFields(ctx: Context): Record<string, string> | undefined {
  if (propagation.getBaggage(ctx) === undefined && trace.getSpanContext(ctx) === undefined) return undefined;
  const carrier: Record<string, string> = {};
  injectContext(ctx, carrier);
  for (const _ in carrier) return carrier;
  return undefined;
}

/**
 * Adds the active context's propagation headers to a plain headers object (for clients that are
 * not hooked). Existing headers follow the same rule as the automatic hooks. Never throws.
 */
export function injectHeaders<H extends Record<string, unknown>>(headers: H, ctx: Context = activeContext()): H {
  try {
    const fields = outboundFields(ctx);
    if (fields === undefined) return headers;
    const lower = new Map<string, string>();
    for (const k of Object.keys(headers)) lower.set(k.toLowerCase(), k);
    const h = headers as Record<string, unknown>;
    for (const [name, value] of Object.entries(fields)) {
      const existingName = lower.get(name);
      if (existingName === undefined) h[name] = value;
      else if (name === 'baggage') {
        const merged = mergeBaggage(h[existingName] as HeaderValue, ctx);
        if (merged !== undefined) h[existingName] = merged;
      }
    }
  } catch {
    // never break the caller
  }
  return headers;
}

interface UndiciRequest {
  headers?: unknown;
  addHeader?: (name: string, value: string) => unknown;
}

function onUndiciRequest(message: unknown): void {
  try {
    const request = (message as { request?: UndiciRequest }).request;
    if (request === undefined || typeof request.addHeader !== 'function') return;
    const ctx = activeContext();
    const fields = outboundFields(ctx);
    if (fields === undefined) return;
    const headers = request.headers;
    for (const [name, value] of Object.entries(fields)) {
      if (Array.isArray(headers)) {
        let idx = -1;
        for (let i = 0; i + 1 < headers.length; i += 2) {
          if (String(headers[i]).toLowerCase() === name) {
            idx = i;
            break;
          }
        }
        if (idx === -1) request.addHeader(name, value);
        else if (name === 'baggage') {
          const merged = mergeBaggage(headers[idx + 1] as HeaderValue, ctx);
          if (merged !== undefined) headers[idx + 1] = merged;
        }
      } else if (typeof headers === 'string') {
        // Old undici: raw header text; add only when absent.
        if (!new RegExp(`(^|\\r\\n)${name}:`, 'i').test(headers)) request.addHeader(name, value);
      } else {
        request.addHeader(name, value);
      }
    }
  } catch {
    // never break the caller
  }
}

interface NodeClientRequest {
  headersSent?: boolean;
  getHeader(name: string): unknown;
  setHeader(name: string, value: string): unknown;
}

function onHttpRequest(message: unknown): void {
  try {
    const request = (message as { request?: NodeClientRequest }).request;
    if (request === undefined || request.headersSent === true) return;
    if ((request as { _header?: unknown })._header) return; // raw-array headers are flushed at construction
    const ctx = activeContext();
    const fields = outboundFields(ctx);
    if (fields === undefined) return;
    for (const name in fields) {
      const value = fields[name]!;
      const existing = request.getHeader(name);
      if (existing === undefined) request.setHeader(name, value);
      else if (name === 'baggage') {
        const merged = mergeBaggage(existing as HeaderValue, ctx);
        if (merged !== undefined) request.setHeader(name, merged);
      }
    }
  } catch {
    // never break the caller
  }
}

let subscribed = false;

/** Subscribes the fetch/undici and node:http hooks (idempotent). */
export function subscribeOutbound(): void {
  if (subscribed) return;
  dc.subscribe(UNDICI_CREATE, onUndiciRequest);
  dc.subscribe(HTTP_CREATED, onHttpRequest);
  subscribed = true;
}

/** Removes the hooks added by {@link subscribeOutbound}. */
export function unsubscribeOutbound(): void {
  if (!subscribed) return;
  dc.unsubscribe(UNDICI_CREATE, onUndiciRequest);
  dc.unsubscribe(HTTP_CREATED, onHttpRequest);
  subscribed = false;
}

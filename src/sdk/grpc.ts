/**
 * `@grpc/grpc-js` client and server interceptors carrying the context in gRPC metadata under the
 * same names as HTTP (`baggage`, `traceparent`, `tracestate`), which is what Envoy matches and what
 * OpenTelemetry's grpc instrumentation reads and writes.
 *
 * The SDK does not depend on grpc-js: pass the module in (`grpcClientInterceptor(grpc)`), so the
 * application's own copy and version are used. Client interceptors were added in grpc-js 1.x;
 * server interceptors need grpc-js >= 1.10.
 */
import { type Context, type TextMapGetter, type TextMapSetter, context, propagation } from '@opentelemetry/api';
import type { HeaderValue } from './baggage.js';
import { ownPropagator } from './globals.js';
import { alreadyExtracted, withRequestKey } from './server.js';
import { ensureInstalled } from './install.js';
import { mergeBaggage } from './outbound.js';

/** The subset of grpc-js `Metadata` used here. */
export interface MetadataLike {
  get(key: string): (string | Uint8Array)[];
  set(key: string, value: string): void;
  getMap(): Record<string, unknown>;
}

/** The subset of the grpc-js module used here (pass `import * as grpc from '@grpc/grpc-js'`). */
export interface GrpcModuleLike {
  // grpc-js' own constructor types are structurally richer; `any` keeps the SDK free of them.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly InterceptingCall: new (nextCall: any, requester?: any) => any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly ServerInterceptingCall?: new (call: any, responder?: any) => any;
}

const metadataGetter: TextMapGetter<MetadataLike> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key);
    if (v.length === 0) return undefined;
    return v.map((x) => (typeof x === 'string' ? x : Buffer.from(x).toString('utf8')));
  },
};

const metadataSetter: TextMapSetter<MetadataLike> = {
  set: (md, key, value) => {
    const existing = md.get(key);
    if (existing.length === 0) {
      md.set(key, value);
      return;
    }
    // Values the application set explicitly win; baggage only gains a missing routing key.
    if (key === 'baggage') {
      const merged = mergeBaggage(existing as HeaderValue, context.active());
      if (merged !== undefined) md.set(key, merged);
    }
  },
};

/** Injects `ctx` into outgoing metadata following the explicit-headers rule. Never throws. */
export function injectMetadata(ctx: Context, md: MetadataLike): void {
  try {
    context.with(ctx, () => propagation.inject(ctx, md, metadataSetter));
  } catch {
    // never break the call
  }
}

/** The context carried by incoming metadata. Never throws. */
export function extractMetadata(md: MetadataLike, base: Context = context.active()): Context {
  try {
    return propagation.extract(base, md, metadataGetter);
  } catch {
    return base;
  }
}

/**
 * Client interceptor: `new Client(addr, creds, { interceptors: [grpcClientInterceptor(grpc)] })`
 * or per call. Captures the caller's context when the call is created.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function grpcClientInterceptor(grpc: GrpcModuleLike): (options: any, nextCall: (options: any) => any) => any {
  return (options, nextCall) => {
    ensureInstalled();
    const ctx = context.active();
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata: MetadataLike, listener: unknown, next: (md: MetadataLike, l: unknown) => void) {
        injectMetadata(ctx, metadata);
        next(metadata, listener);
      },
    });
  };
}

/**
 * Server interceptor: `new grpc.Server({ interceptors: [grpcServerInterceptor(grpc)] })`. The
 * handler (invoked from the metadata, message or half-close event, depending on the method kind)
 * runs in the context extracted from the request metadata.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function grpcServerInterceptor(grpc: GrpcModuleLike): (methodDescriptor: any, call: any) => any {
  const Ctor = grpc.ServerInterceptingCall;
  if (Ctor === undefined) throw new TypeError('meshfork: this @grpc/grpc-js has no server interceptors (need >= 1.10)');
  return (_method, call) => {
    ensureInstalled();
    let ctx: Context | undefined;
    const run = (fn: () => void): void => {
      if (ctx === undefined) fn();
      else context.with(ctx, fn);
    };
    return new Ctor(call, {
      start(next: (listener: object) => void) {
        next({
          onReceiveMetadata(md: MetadataLike, mdNext: (md: MetadataLike) => void) {
            ctx = inboundMetadataContext(md);
            run(() => mdNext(md));
          },
          onReceiveMessage(message: unknown, msgNext: (m: unknown) => void) {
            run(() => msgNext(message));
          },
          onReceiveHalfClose(hcNext: () => void) {
            run(hcNext);
          },
        });
      },
    });
  };
}

function inboundMetadataContext(md: MetadataLike): Context {
  const base = context.active();
  const get = (name: string): HeaderValue => {
    const v = md.get(name);
    return v.length === 0 ? undefined : v;
  };
  // Same rules as HTTP: keep a context an OpenTelemetry instrumentation already extracted, and
  // make the routing key follow the precedence rule.
  if (alreadyExtracted(base)) return withRequestKey(base, get, false);
  return withRequestKey(extractMetadata(md, base), get, ownPropagator());
}

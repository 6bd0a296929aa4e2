/**
 * Set-up: use an installed OpenTelemetry SDK when there is one, else register a minimal one.
 *
 * @opentelemetry/api keeps one global propagator and one global context manager per process (shared
 * by every copy of the API with a compatible version). If an OpenTelemetry SDK already registered
 * them, meshfork adds nothing but its helpers: the SDK's own propagators and instrumentations carry
 * `baggage` (OTel's default OTEL_PROPAGATORS is `tracecontext,baggage`). Otherwise `install()`
 * registers the {@link MeshforkPropagator} and an AsyncLocalStorage context manager and subscribes
 * the outbound fetch/node:http hooks.
 *
 * Registration is lazy by default (first request through a middleware/interceptor, or first
 * `withRoutingKey`), so that an OpenTelemetry SDK started later in the program's start-up still wins:
 * registering first would make the SDK's own registration fail as a duplicate.
 */
import { ROOT_CONTEXT, context, createContextKey, diag, propagation } from '@opentelemetry/api';
import { type Preset, currentKeyName, setKeyName } from './config.js';
import { AlsContextManager } from './context-manager.js';
import { subscribeOutbound, unsubscribeOutbound } from './outbound.js';
import { MeshforkPropagator } from './propagator.js';

export interface InstallOptions {
  /** Baggage member name carrying the routing key. @default 'meshfork-routing-key' */
  readonly keyName?: string;
  /** Member-name preset; `signadot` uses `sd-routing-key`. Ignored when `keyName` is set. @default 'meshfork' */
  readonly preset?: Preset;
  /** Read a routing key from a `tracestate` member, as meshfork's `routing.tracestate`. @default true */
  readonly tracestate?: boolean;
  /**
   * Plain request headers whose whole value is the routing key, in precedence order, as meshfork's
   * `routing.headers` (e.g. `x-meshfork-routing-key`). A key read from one is carried on in `baggage`.
   * @default []
   */
  readonly headers?: readonly string[];
  /** Read `uberctx-<keyName>` and `ot-baggage-<keyName>`, as meshfork's `routing.legacyHeaders`. @default true for the signadot preset, else false */
  readonly legacyHeaders?: boolean;
  /**
   * Subscribe the outbound hooks for global fetch/undici and node:http clients.
   * `'auto'`: only when meshfork registered the propagator (an installed OpenTelemetry SDK brings
   * its own HTTP/undici instrumentations). @default 'auto'
   */
  readonly outbound?: boolean | 'auto';
}

export interface InstallResult {
  /** `installed`: meshfork registered its W3C propagator; `existing`: one was already registered. */
  readonly propagator: 'installed' | 'existing';
  /** `installed`: meshfork registered its AsyncLocalStorage context manager. */
  readonly contextManager: 'installed' | 'existing';
  /** Whether the outbound fetch/node:http hooks are subscribed. */
  readonly outbound: boolean;
  /** False when the global propagator does not list a `baggage` field (routing would break). */
  readonly propagatesBaggage: boolean;
  readonly keyName: string;
}

let state: { result: InstallResult; ownPropagator: boolean; ownContextManager: boolean } | undefined;

const PROBE = createContextKey('meshfork context-manager probe');

/** True when a working context manager is registered (the no-op one does not carry values). */
function contextManagerWorks(): boolean {
  return context.with(ROOT_CONTEXT.setValue(PROBE, true), () => context.active().getValue(PROBE) === true);
}

/**
 * Registers what is missing (propagator, context manager, outbound hooks). Idempotent: later calls
 * only return the first result (and may change `keyName`).
 */
export function install(options: InstallOptions = {}): InstallResult {
  setKeyName(options);
  if (state !== undefined) {
    if (options.outbound === true && !state.result.outbound) {
      subscribeOutbound();
      state.result = { ...state.result, outbound: true };
    }
    state.result = { ...state.result, keyName: currentKeyName() };
    return state.result;
  }
  let ownPropagator = false;
  if (propagation.fields().length === 0) ownPropagator = propagation.setGlobalPropagator(new MeshforkPropagator());
  let ownContextManager = false;
  if (!contextManagerWorks()) ownContextManager = context.setGlobalContextManager(new AlsContextManager());
  const outbound = options.outbound === true || ((options.outbound ?? 'auto') === 'auto' && ownPropagator);
  if (outbound) subscribeOutbound();
  const propagatesBaggage = propagation.fields().includes('baggage');
  if (!propagatesBaggage) {
    diag.warn(
      'meshfork: the registered OpenTelemetry propagator does not propagate W3C baggage; ' +
        'sandbox routing keys will be lost (set OTEL_PROPAGATORS=tracecontext,baggage)',
    );
  }
  const result: InstallResult = {
    propagator: ownPropagator ? 'installed' : 'existing',
    contextManager: ownContextManager ? 'installed' : 'existing',
    outbound,
    propagatesBaggage,
    keyName: currentKeyName(),
  };
  state = { result, ownPropagator, ownContextManager };
  return result;
}

/** Auto-setup used by middlewares, interceptors and `withRoutingKey`: `install()` once. */
export function ensureInstalled(): void {
  if (state === undefined) install();
}

/** Undoes what `install()` registered (for tests and benchmarks). */
export function uninstall(): void {
  if (state === undefined) return;
  unsubscribeOutbound();
  if (state.ownPropagator) propagation.disable();
  if (state.ownContextManager) context.disable();
  state = undefined;
}

/**
 * `meshfork/sdk` — carry a sandbox's routing key through a Node service.
 *
 * meshfork routes a request to a sandbox's forks when its W3C `baggage` carries the sandbox's
 * routing key (`meshfork-routing-key=<key>` by default). The mesh can only route what arrives; the
 * service must copy the inbound request's context onto the calls it makes. This module does that on
 * @opentelemetry/api: with an OpenTelemetry SDK already installed it only adds helpers, otherwise
 * `install()` (or the first use of a middleware/interceptor) registers a minimal W3C baggage +
 * trace-context propagator and an AsyncLocalStorage context manager, and hooks global `fetch` and
 * `node:http` clients.
 *
 * Standalone: depends on nothing but `@opentelemetry/api`.
 */
import { context } from '@opentelemetry/api';
import { isRoutingKey } from './baggage.js';
import { PRESETS, type Preset, checkedKeyName, currentKeyName } from './config.js';
import { ensureInstalled } from './install.js';
import { contextWithRoutingKey } from './key.js';

export {
  DEFAULT_KEY_NAME,
  SIGNADOT_KEY_NAME,
  MAX_BYTES,
  MAX_MEMBERS,
  ROUTING_KEY_PATTERN,
  type BaggageMember,
  type HeaderValue,
  isRoutingKey,
  parseBaggage,
  routingKeyFromBaggage,
  setRoutingKeyInBaggage,
} from './baggage.js';
export { PRESETS, type Preset, currentKeyName as routingKeyName } from './config.js';
export { AlsContextManager } from './context-manager.js';
export { install, uninstall, type InstallOptions, type InstallResult } from './install.js';
export { routingKey, routingKeyIn } from './key.js';
export { type KeyCarriers, type RequestKey, recordGetter, requestRoutingKey } from './request-key.js';
export { injectHeaders } from './outbound.js';
export { MeshforkPropagator, baggageHeader, extractBaggage } from './propagator.js';
export { expressMiddleware, httpHandler, inboundContext, withInboundHeaders, withRequestKey, type RequestWithHeaders } from './server.js';
export {
  type GrpcModuleLike,
  type MetadataLike,
  extractMetadata,
  grpcClientInterceptor,
  grpcServerInterceptor,
  injectMetadata,
} from './grpc.js';
export { type ConsumeOptions, type RecordHeaders, extractRoutingKey, injectRoutingKey, shouldConsume } from './queue.js';

/**
 * Runs `fn` with `key` as the routing key (replacing any inherited one; every other baggage member
 * is kept); outbound calls made inside carry it. `undefined` runs `fn` with no routing key.
 * Throws a TypeError when `key` is not `[a-z0-9]{4,32}`.
 */
export function withRoutingKey<T>(key: string | undefined, fn: () => T): T {
  ensureInstalled();
  return context.with(contextWithRoutingKey(context.active(), key), fn);
}

export interface SandboxHeaderOptions {
  /** Member name. @default the configured name ('meshfork-routing-key') */
  readonly keyName?: string;
  /** Member-name preset, used when `keyName` is not given. */
  readonly preset?: Preset;
}

/**
 * Request headers that address a sandbox, for tests and scripts (curl, Playwright
 * `extraHTTPHeaders`, k6 `headers`): `{ baggage: 'meshfork-routing-key=<key>' }`.
 */
export function headersForSandbox(key: string, options: SandboxHeaderOptions = {}): { baggage: string } {
  if (!isRoutingKey(key)) throw new TypeError(`meshfork: routing key must match [a-z0-9]{4,32}, got ${JSON.stringify(key)}`);
  const name = options.keyName !== undefined ? checkedKeyName(options.keyName) : options.preset !== undefined ? PRESETS[options.preset] : currentKeyName();
  return { baggage: `${name}=${key}` };
}

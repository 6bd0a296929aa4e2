/**
 * Message queues: the routing key travels in a `baggage` record header, exactly as over HTTP.
 *
 * The pattern (see docs/propagation.md, "Message queues"): producers call `injectRoutingKey()` on
 * the record headers; every consumer — baseline and forks — reads the topic, and
 * `shouldConsume()` decides which one handles a record:
 * - a sandbox's forked consumer (its own consumer group) handles only records carrying its key;
 * - the baseline consumer handles unkeyed records and records for sandboxes that run no consumer
 *   of their own, and skips records addressed to a sandbox that does.
 * Handle the record inside `withRoutingKey(extractRoutingKey(headers), ...)` so the calls it makes
 * stay in the sandbox.
 */
import { type HeaderValue, isRoutingKey, routingKeyFromBaggage, setRoutingKeyInBaggage } from './baggage.js';
import { currentKeyName } from './config.js';
import { routingKey } from './key.js';

/** Kafka-style record headers (kafkajs `IHeaders`, node-rdkafka, AMQP header tables, ...). */
export type RecordHeaders = Record<string, HeaderValue | unknown>;

function findBaggageName(headers: RecordHeaders): string | undefined {
  if ('baggage' in headers) return 'baggage';
  for (const k of Object.keys(headers)) if (k.toLowerCase() === 'baggage') return k;
  return undefined;
}

/**
 * Sets the routing-key member in `headers.baggage` (a string or Buffer; other members are kept) and
 * returns `headers`. `key` defaults to the active context's routing key; with no key the headers are
 * returned unchanged. Throws only for an explicit malformed `key`.
 */
export function injectRoutingKey<H extends RecordHeaders>(headers: H, key: string | undefined = routingKey()): H {
  if (key === undefined) return headers;
  if (!isRoutingKey(key)) throw new TypeError(`meshfork: routing key must match [a-z0-9]{4,32}, got ${JSON.stringify(key)}`);
  const name = findBaggageName(headers) ?? 'baggage';
  const existing = (headers as Record<string, unknown>)[name] as HeaderValue;
  (headers as Record<string, unknown>)[name] = setRoutingKeyInBaggage(existing, key, currentKeyName());
  return headers;
}

/** The routing key in record headers (`baggage` as string, Buffer or array of them), or undefined. Never throws. */
export function extractRoutingKey(headers: RecordHeaders | null | undefined): string | undefined {
  try {
    if (headers === null || headers === undefined) return undefined;
    const name = findBaggageName(headers);
    if (name === undefined) return undefined;
    return routingKeyFromBaggage(headers[name] as HeaderValue, currentKeyName());
  } catch {
    return undefined;
  }
}

export interface ConsumeOptions {
  /**
   * The routing key of the sandbox this consumer runs in; undefined for the baseline consumer.
   * A fork gets it from its environment (`MESHFORK_ROUTING_KEY`, injected by meshfork).
   */
  readonly sandbox: string | undefined;
  /**
   * For the baseline consumer: the routing keys of sandboxes that run their own consumer of this
   * topic. Records for those keys are skipped; records for any other key are handled by the
   * baseline. @default none (the baseline handles every record; no record is ever lost, but a
   * sandbox consumer's records are then handled twice)
   */
  readonly sandboxesWithConsumer?: ReadonlySet<string> | ((key: string) => boolean);
}

/** Whether this consumer should handle a record whose routing key is `key` (see module docs). */
export function shouldConsume(key: string | undefined, options: ConsumeOptions): boolean {
  const k = isRoutingKey(key) ? key : undefined;
  if (options.sandbox !== undefined) return k === options.sandbox;
  if (k === undefined) return true;
  const owners = options.sandboxesWithConsumer;
  if (owners === undefined) return true;
  return typeof owners === 'function' ? !owners(k) : !owners.has(k);
}

/**
 * A minimal AsyncLocalStorage context manager for @opentelemetry/api, registered only when no
 * context manager is installed. Same model as `@opentelemetry/context-async-hooks`'
 * AsyncLocalStorageContextManager (the context of `with()` follows every async continuation it
 * starts), without its EventEmitter binding, which the SDK does not need.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type Context, type ContextManager, ROOT_CONTEXT } from '@opentelemetry/api';

function call2<A, B>(fn: (this: unknown, a: A, b: B) => unknown, thisArg: unknown, a: A, b: B): unknown {
  return fn.call(thisArg, a, b);
}

export class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    if (thisArg === undefined || thisArg === null) return this.als.run(ctx, fn, ...args);
    // Reflect.apply keeps `this` without allocating a bound function per call.
    return this.als.run(ctx, Reflect.apply, fn, thisArg, args) as ReturnType<F>;
  }

  /** `with(ctx, fn, thisArg, a, b)` for two-argument callbacks (request listeners), without the rest-argument arrays. */
  run2<A, B>(ctx: Context, fn: (this: unknown, a: A, b: B) => unknown, thisArg: unknown, a: A, b: B): void {
    this.als.run(ctx, call2, fn, thisArg, a, b);
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const manager = this;
    const fn = target as unknown as (...a: unknown[]) => unknown;
    const bound = function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, () => fn.apply(this, args));
    };
    Object.defineProperty(bound, 'length', { value: fn.length });
    return bound as unknown as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.als.disable();
    return this;
  }
}

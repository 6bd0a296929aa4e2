/**
 * A shared informer for one kind (optionally one namespace): client-node's ListWatch cache plus
 * the two things it leaves to its users (client-go's SharedInformer has them):
 *
 *  - **Restart after errors.** ListWatch stops for good when a list or watch fails with anything
 *    but 410 Gone or a client timeout (an API server restart, a refused connection); this
 *    informer starts it again with capped exponential backoff. A restarted ListWatch lists
 *    again (or resumes from its resourceVersion), reports objects deleted meanwhile as deletes,
 *    and so no change is lost: handlers are level-based and only ever see the latest state.
 *    A started informer keeps the process alive until `stop()`, also while it waits to restart.
 *  - **Periodic resync.** Every `resyncMs` each cached object is handed to the handlers again
 *    (type `resync`), so a reconcile that was dropped or raced is retried from the cache.
 *
 * `start()` resolves once the first list has been delivered (the cache is synced).
 */
import { KubeConfig, KubernetesObjectApi, ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { toWire } from './wire.js';

export type InformerEventType = 'add' | 'update' | 'delete' | 'resync';
export type InformerHandler<T> = (type: InformerEventType, object: T) => void;

export interface InformerTarget {
  /** e.g. `apps/v1`, `v1`, `networking.istio.io/v1`. */
  readonly apiVersion: string;
  readonly kind: string;
  /** Lower-case plural resource name, e.g. `deployments`. */
  readonly plural: string;
  /** Only this namespace; all namespaces when absent. */
  readonly namespace?: string;
  /** Only objects with these labels (a Kubernetes label selector). */
  readonly labelSelector?: string;
}

export interface InformerOptions<T = KubernetesObject> {
  /** @default 600_000 (10 min); 0 disables resync */
  readonly resyncMs?: number;
  /** First restart delay after an error; doubles up to 30 s. @default 500 */
  readonly restartDelayMs?: number;
  /** Told about every list/watch error (they are retried). */
  readonly onError?: (target: InformerTarget, error: unknown) => void;
  /**
   * Applied to every object as it arrives (list items and watch events), before it is cached and
   * handed to handlers: the cache holds what it returns (client-go's `SetTransform`). @default none
   */
  readonly transform?: (object: T) => T;
  /**
   * The kind may not be served (an optional CRD such as Gateway API's): while the API server
   * answers that it does not serve it (notServed), the cache counts as synced and empty, so
   * `start()` resolves, and the list is retried with the usual backoff (up to 30 s), so the kind
   * is cached once its CRD is installed. @default false (start() waits until a list succeeds)
   */
  readonly optional?: boolean;
}

/**
 * Whether a list/watch error says the API server does not serve the kind: 404 from discovery or
 * the list (no such group/version), or client-node's discovery finding no such kind in it.
 */
export function notServed(error: unknown): boolean {
  const code = (error as { code?: unknown; statusCode?: unknown } | undefined)?.code ?? (error as { statusCode?: unknown } | undefined)?.statusCode;
  return code === 404 || (error instanceof Error && error.message.startsWith('Unrecognized API version and kind'));
}

/**
 * Drops `metadata.managedFields`: server-side apply's field ownership record, as large as the
 * object's spec again for objects meshfork applies, and read by nothing that reads a cache
 * (controller-runtime's caches commonly strip it the same way: `cache.TransformStripManagedFields`,
 * https://pkg.go.dev/sigs.k8s.io/controller-runtime/pkg/cache#TransformStripManagedFields).
 */
export function stripManagedFields<T extends KubernetesObject>(object: T): T {
  if (object.metadata?.managedFields === undefined) return object;
  const { managedFields: _dropped, ...metadata } = object.metadata;
  return { ...object, metadata };
}

/**
 * The informer's Watch: hands every ADDED/MODIFIED/DELETED object through `transform` first (when
 * given), and opens no watch for a stopped informer. client-node's ListWatch checks that it was
 * stopped before it lists, not after: a stop() while the list is in flight let the watch start
 * anyway, with nothing left to abort it, and its open connection kept a stopping process alive.
 * A watch asked for once the informer is stopped is never sent, and one that was being opened
 * when it stopped is aborted as soon as it is open.
 */
class InformerWatch<T> extends Watch {
  constructor(
    kubeConfig: KubeConfig,
    private readonly transform: ((object: T) => T) | undefined,
    private readonly stopped: () => boolean,
  ) {
    super(kubeConfig);
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: any, watchObj?: any) => void, done: (err: any) => void): Promise<AbortController> {
    if (this.stopped()) return new AbortController();
    const transform = this.transform;
    const request = await super.watch(
      path,
      queryParams,
      transform === undefined ? callback : (phase, object: T, raw) => callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? transform(object) : object, raw),
      done,
    );
    if (this.stopped()) request.abort();
    return request;
  }
}

export function resourcePath(target: InformerTarget): string {
  const base = target.apiVersion.includes('/') ? `/apis/${target.apiVersion}` : `/api/${target.apiVersion}`;
  return target.namespace === undefined ? `${base}/${target.plural}` : `${base}/namespaces/${target.namespace}/${target.plural}`;
}

/**
 * A list response as the watch delivers objects: wire-form JSON (client-node deserializes lists
 * of built-in kinds into model classes with Date fields and renamed attributes such as a
 * NetworkPolicy rule's `_from`, while watch events stay JSON; wire.ts) with `apiVersion` and
 * `kind` on every item (the API server leaves them out of list items).
 */
function plainList<T extends KubernetesObject>(target: InformerTarget, list: KubernetesListObject<T>): KubernetesListObject<T> {
  return { ...list, items: list.items.map((item) => toWire({ ...item, apiVersion: target.apiVersion, kind: target.kind })) };
}

export class SharedInformer<T extends KubernetesObject> {
  private readonly listWatch: ListWatch<T>;
  private readonly handlers: Array<InformerHandler<T>> = [];
  private stopped = false;
  private synced = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private restartDelayMs: number;
  private readonly firstSync: Promise<void>;
  private resolveFirstSync!: () => void;

  constructor(
    kubeConfig: KubeConfig,
    readonly target: InformerTarget,
    private readonly options: InformerOptions<T> = {},
  ) {
    const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    const transform = options.transform;
    const list = async () => {
      const listed = plainList<T>(target, await objects.list<T>(target.apiVersion, target.kind, target.namespace, undefined, undefined, undefined, undefined, target.labelSelector));
      return transform === undefined ? listed : { ...listed, items: listed.items.map(transform) };
    };
    const watch = new InformerWatch<T>(kubeConfig, transform, () => this.stopped);
    this.listWatch = new ListWatch<T>(resourcePath(target), watch, list, false, target.labelSelector);
    this.restartDelayMs = options.restartDelayMs ?? 500;
    this.firstSync = new Promise((resolve) => (this.resolveFirstSync = resolve));
    this.listWatch.on('add', (o) => this.emit('add', o));
    this.listWatch.on('update', (o) => this.emit('update', o));
    this.listWatch.on('delete', (o) => this.emit('delete', o));
    this.listWatch.on('error', (e) => this.restartAfterError(e));
  }

  /** Registers a handler for every later event (and every resync). */
  onEvent(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  async start(): Promise<void> {
    this.stopped = false;
    void this.startListWatch();
    const resyncMs = this.options.resyncMs ?? 600_000;
    if (resyncMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), resyncMs);
      this.resyncTimer.unref();
    }
    await this.firstSync;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.resyncTimer);
    await this.listWatch.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.listWatch.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.listWatch.list(namespace);
  }

  /** Hands every cached object to the handlers again. */
  resync(): void {
    for (const object of this.listWatch.list()) this.emit('resync', object);
  }

  private emit(type: InformerEventType, object: T): void {
    for (const handler of this.handlers) handler(type, object);
  }

  private async startListWatch(): Promise<void> {
    let failed = false;
    const onError = () => (failed = true);
    this.listWatch.on('error', onError);
    try {
      await this.listWatch.start();
    } catch (error) {
      failed = true;
      this.restartAfterError(error);
    } finally {
      this.listWatch.off('error', onError);
    }
    if (!failed && !this.stopped) {
      this.restartDelayMs = this.options.restartDelayMs ?? 500;
      if (!this.synced) {
        this.synced = true;
        this.resolveFirstSync();
      }
    }
  }

  private restartAfterError(error: unknown): void {
    if (this.stopped) return;
    if (this.options.optional === true && !this.synced && notServed(error)) {
      this.synced = true;
      this.resolveFirstSync();
    }
    this.options.onError?.(this.target, error);
    clearTimeout(this.restartTimer);
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, 30_000);
    // Not unref'd: while the API server is unreachable this timer is all that is left of a
    // started informer (no watch connection is open), and it must keep the process alive.
    this.restartTimer = setTimeout(() => {
      if (!this.stopped) void this.startListWatch();
    }, delay);
  }
}

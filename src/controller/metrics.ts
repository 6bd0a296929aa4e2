/**
 * The controller's Prometheus metrics (prom-client, a registry of its own) and the HTTP endpoints
 * `/metrics`, `/healthz` (the process answers) and `/readyz` (caches synced, or standing by for
 * the Lease).
 *
 * Metric names follow controller-runtime's where one exists (reconcile totals and durations,
 * work-queue depth and latency), prefixed `meshfork_`.
 */
import { createServer, type Server } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { listen } from './listen.js';

export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly reconcileSeconds: Histogram<'kind' | 'result'>;
  readonly queueSeconds: Histogram<'kind'>;
  readonly apiErrors: Counter<'code'>;
  readonly admissions: Counter<'path' | 'result'>;
  readonly admissionSeconds: Histogram<'path'>;
  readonly eventsDropped: Counter;

  /** `depth`, `managed`, `events` are read when Prometheus scrapes. */
  constructor(sources: { depth: () => { depth: number; delayed: number; processing: number }; managed: () => Record<string, number>; events?: () => number }) {
    collectDefaultMetrics({ register: this.registry, prefix: 'meshfork_' });
    this.reconciles = new Counter({ name: 'meshfork_reconcile_total', help: 'Reconciles by key kind (Sandbox, Host) and result (success, error).', labelNames: ['kind', 'result'], registers: [this.registry] });
    this.reconcileSeconds = new Histogram({
      name: 'meshfork_reconcile_duration_seconds',
      help: 'Time of one reconcile, by key kind and result.',
      labelNames: ['kind', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    this.queueSeconds = new Histogram({
      name: 'meshfork_workqueue_queue_duration_seconds',
      help: 'How long a key waited in the work queue before a worker took it.',
      labelNames: ['kind'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
      registers: [this.registry],
    });
    this.admissions = new Counter({
      name: 'meshfork_admission_total',
      help: 'Admission reviews answered, by webhook path and result (allowed, patched, warned, denied, error).',
      labelNames: ['path', 'result'],
      registers: [this.registry],
    });
    this.admissionSeconds = new Histogram({
      name: 'meshfork_admission_duration_seconds',
      help: 'Time to decide one admission review, by webhook path.',
      labelNames: ['path'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.apiErrors = new Counter({ name: 'meshfork_api_errors_total', help: 'Failed API requests, by HTTP status (0: no response).', labelNames: ['code'], registers: [this.registry] });
    new Gauge({
      name: 'meshfork_workqueue_depth',
      help: 'Keys in the work queue, by state (waiting, delayed, processing).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const m = sources.depth();
        this.set({ state: 'waiting' }, m.depth);
        this.set({ state: 'delayed' }, m.delayed);
        this.set({ state: 'processing' }, m.processing);
      },
    });
    // prom-client's nodejs_eventloop_lag_* restart their histogram on every scrape; this one
    // covers the whole life of the process, so a scrape after a burst still shows its worst delay.
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    new Gauge({
      name: 'meshfork_event_loop_delay_seconds',
      help: 'Event-loop delay since the process started (perf_hooks monitorEventLoopDelay, 10 ms resolution), by statistic (p50, p99, max).',
      labelNames: ['stat'],
      registers: [this.registry],
      collect() {
        this.set({ stat: 'p50' }, delay.percentile(50) / 1e9);
        this.set({ stat: 'p99' }, delay.percentile(99) / 1e9);
        this.set({ stat: 'max' }, delay.max / 1e9);
      },
    });
    new Gauge({
      name: 'meshfork_events_pending',
      help: 'Kubernetes Events recorded and not yet sent (waiting or in flight; EventRecorder).',
      registers: [this.registry],
      collect() {
        this.set(sources.events?.() ?? 0);
      },
    });
    this.eventsDropped = new Counter({ name: 'meshfork_events_dropped_total', help: 'Kubernetes Events dropped because 1,000 were already waiting to be sent.', registers: [this.registry] });
    new Gauge({
      name: 'meshfork_managed_objects',
      help: 'Objects labelled managed-by=meshfork in the caches, by kind.',
      labelNames: ['kind'],
      registers: [this.registry],
      collect() {
        for (const [kind, n] of Object.entries(sources.managed())) this.set({ kind }, n);
      },
    });
  }
}

export interface HealthServer {
  readonly server: Server;
  /** `host:port` actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

/** Serves /metrics, /healthz and /readyz on `address` (`host:port`; port 0 picks a free one). */
export async function serveHealth(address: string, metrics: ControllerMetrics | undefined, ready: () => boolean): Promise<HealthServer> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'GET') {
        res.writeHead(405).end();
      } else if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (req.url === '/readyz') {
        const ok = ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'caches not synced\n');
      } else if (req.url === '/metrics' && metrics !== undefined) {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(await metrics.registry.metrics());
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => res.writeHead(500).end());
  });
  const bound = await listen(server, address);
  return {
    server,
    address: bound,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * The admission webhooks over HTTPS (node:https): `POST` of an `admission.k8s.io/v1`
 * AdmissionReview to one of WEBHOOK_PATHS, answered with an AdmissionReview holding the
 * response of admission.ts for it (same `uid`). The serving certificate can be switched while
 * serving (setSecureContext), so a re-issued certificate needs no restart.
 *
 * A decision that throws is answered `allowed` (the webhooks are fail-open like their
 * failurePolicy Ignore: the repair loop and the controller's status cover the gap) and logged.
 * https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request
 */
import { createServer, type Server } from 'node:https';
import type { AdmissionRequest, AdmissionResponse } from './admission.js';
import { listen } from './listen.js';
import type { ControllerMetrics } from './metrics.js';
import type { Logger } from './log.js';
import type { ServingCertificate } from './webhook-tls.js';
import { describeError } from './reconciler.js';

/** The webhook paths the chart's configurations call. */
export const WEBHOOK_PATHS = {
  virtualServices: '/mutate/virtualservices',
  sandboxes: '/validate/sandboxes',
  routeGroups: '/validate/routegroups',
} as const;

export type AdmissionHandler = (request: AdmissionRequest) => AdmissionResponse;

/** An AdmissionReview is at most a few objects of up to 1.5 MiB each (etcd's request limit). */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface WebhookServer {
  readonly server: Server;
  /** `host:port` actually bound. */
  readonly address: string;
  setCertificate(certificate: ServingCertificate): void;
  close(): Promise<void>;
}

function outcome(response: AdmissionResponse): string {
  if (!response.allowed) return 'denied';
  if (response.patch !== undefined) return 'patched';
  return response.warnings !== undefined ? 'warned' : 'allowed';
}

/** Serves `handlers` (path -> decision) on `address` (`host:port`; port 0 picks a free one). */
export async function serveWebhooks(
  address: string,
  certificate: ServingCertificate,
  handlers: Readonly<Record<string, AdmissionHandler>>,
  log: Logger,
  metrics?: ControllerMetrics,
): Promise<WebhookServer> {
  const server = createServer({ cert: certificate.cert, key: certificate.key, minVersion: 'TLSv1.2' }, (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const handler = Object.hasOwn(handlers, path) ? handlers[path] : undefined;
    if (handler === undefined) return void res.writeHead(404).end();
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413).end();
        req.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) return;
      let review: { apiVersion?: unknown; kind?: unknown; request?: AdmissionRequest };
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof review;
      } catch {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end('body is not JSON\n');
      }
      const request = review.request;
      if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview' || typeof request?.uid !== 'string') {
        return void res.writeHead(400, { 'content-type': 'text/plain' }).end('expected an admission.k8s.io/v1 AdmissionReview with request.uid\n');
      }
      const started = Date.now();
      let response: AdmissionResponse;
      let failed = false;
      try {
        response = handler(request);
      } catch (error) {
        log.error({ path, object: `${request.kind?.kind} ${request.namespace ?? ''}/${request.name ?? ''}`, error: describeError(error) }, 'admission decision failed; allowed');
        response = { uid: request.uid, allowed: true };
        failed = true;
      }
      const result = failed ? 'error' : outcome(response);
      metrics?.admissions.inc({ path, result });
      metrics?.admissionSeconds.observe({ path }, (Date.now() - started) / 1000);
      if (result !== 'allowed') log.info({ path, object: `${request.kind?.kind} ${request.namespace ?? ''}/${request.name ?? ''}`, operation: request.operation, result, durationMs: Date.now() - started }, 'admission');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  const bound = await listen(server, address);
  return {
    server,
    address: bound,
    setCertificate: (c) => server.setSecureContext({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

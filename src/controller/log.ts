/**
 * The controller's logger: one pino logger writing JSON lines (to stderr unless told otherwise).
 *
 * Record shape: `{"level":"info","time":"<RFC 3339>","msg":"...", ...fields}`; `level` is the
 * label (trace, debug, info, warn, error, fatal), not pino's number, so a log pipeline and a
 * person can filter on it. Fields a line carries where they apply:
 *  - `key`: the work key being reconciled (`Sandbox/<ns>/<name>`, `Host/<ns>/<service>`,
 *    `RouteGroup/<ns>/<name>`, `ConfigMap/<ns>/<name>`);
 *  - `namespace`: the namespace of that key;
 *  - `sandbox`: the Sandbox's name (Sandbox keys);
 *  - `sandboxes`: `<ns>/<name>` of the Sandboxes routed by a host key's writes;
 *  - `object`: `Kind namespace/name` of the object written (write lines);
 *  - `error`: one line (API errors as `HTTP <code>: <the API server's message>`).
 * Every reconcile gets a child logger binding key, namespace (and sandbox), so each line it
 * writes carries them.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Where the JSON lines go. @default stderr, written synchronously */
  readonly destination?: DestinationStream;
  /** Lowest level written. @default 'info' */
  readonly level?: LevelWithSilent;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      // No pid/hostname: a pod's logs are labelled by the pod; replicas log their Lease identity.
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

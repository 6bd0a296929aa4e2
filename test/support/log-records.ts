// The controller's JSON log lines, parsed, for tests that assert what was logged.
import { createLogger, type Logger } from '../../src/controller/log.js';

export type LogRecord = { readonly level: string; readonly msg: string; readonly [field: string]: unknown };

/** A logger (log.ts, the controller's own format) whose every line is parsed into `records`. */
export function recordingLogger(records: LogRecord[], level: 'debug' | 'info' = 'info'): Logger {
  return createLogger({ level, destination: { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) } });
}

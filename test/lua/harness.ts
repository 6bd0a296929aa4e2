/**
 * Runs a meshfork Lua filter under the real `luajit` binary with test/lua/driver.lua, a minimal
 * stub of Envoy's stream handle and header map (repeated header lines supported).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { luaQuote } from '../../src/lua/index.js';

export type HeaderLine = [name: string, value: string];

export interface LuaRun {
  /** Header lines after the filter ran, in order. */
  headers: HeaderLine[];
  /** Number of add/remove/replace calls (0 means Envoy's route cache stays untouched). */
  mutations: number;
  logs: [level: string, message: string][];
  /** Lua error raised by the filter, if any. */
  error?: string;
}

const DRIVER = fileURLToPath(new URL('./driver.lua', import.meta.url));
const LUAJIT = process.env.LUAJIT ?? 'luajit';

/** Whether luajit runs; under CI=true a missing luajit is a failure, elsewhere a loud skip. */
export function luajitAvailable(): boolean {
  const probe = spawnSync(LUAJIT, ['-v'], { encoding: 'utf8' });
  if (probe.status === 0) return true;
  if (process.env.CI === 'true') {
    throw new Error(`luajit (Envoy's Lua runtime) is required under CI=true but '${LUAJIT}' did not run`);
  }
  console.warn(
    `\n*** SKIPPING Lua filter tests: '${LUAJIT}' not found. Install LuaJIT (apt-get install luajit) to run them. ***\n`,
  );
  return false;
}

/** Lua literal of a byte string (one char per byte, as Node presents header values: latin1). */
function quoteBytes(value: string): string {
  let out = '"';
  for (const b of Buffer.from(value, 'latin1')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : '\\' + String(b).padStart(3, '0');
  }
  return out + '"';
}

/**
 * Runs `script` on a request with `headers`. Header values are UTF-8 text, or byte strings (one
 * char per byte, chars < 256) with `latin1: true`; the result is always byte strings.
 */
export function runLua(
  script: string,
  headers: HeaderLine[],
  opts: { legacy?: boolean; fault?: string; latin1?: boolean } = {},
): LuaRun {
  const dir = mkdtempSync(join(tmpdir(), 'meshfork-lua-'));
  try {
    const scriptPath = join(dir, 'filter.lua');
    const requestPath = join(dir, 'request.lua');
    writeFileSync(scriptPath, script);
    const quote = opts.latin1 === true ? quoteBytes : luaQuote;
    const lines = headers.map(([n, v]) => `  { ${quote(n)}, ${quote(v)} },`).join('\n');
    writeFileSync(requestPath, `return {\n legacy = ${opts.legacy === true},\n fault = ${opts.fault === undefined ? 'nil' : luaQuote(opts.fault)},\n headers = {\n${lines}\n }\n}\n`);
    const res = spawnSync(LUAJIT, [DRIVER, scriptPath, requestPath], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (res.status !== 0) throw new Error(`luajit failed (${res.status}): ${res.stderr}`);
    const run: LuaRun = { headers: [], mutations: -1, logs: [] };
    for (const line of res.stdout.split('\n')) {
      if (line === '') continue;
      const obj = JSON.parse(line) as { header?: HeaderLine; mutations?: number; log?: [string, string]; error?: string };
      if (obj.header) run.headers.push(obj.header);
      else if (obj.mutations !== undefined) run.mutations = obj.mutations;
      else if (obj.log) run.logs.push(obj.log);
      else if (obj.error !== undefined) run.error = obj.error;
    }
    return run;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const HEALTH_DRIVER = fileURLToPath(new URL('./argocd-health-driver.lua', import.meta.url));

/**
 * A JSON value as a Lua expression, as Argo CD's decodeValue hands a resource to Lua: objects and
 * arrays as tables (arrays 1-based), `null` members left out (nil).
 */
export function luaValue(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaQuote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{ ${value.map(luaValue).join(', ')} }`;
  const members = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `[${luaQuote(k)}] = ${luaValue(v)}`);
  return `{ ${members.join(', ')} }`;
}

/** What an Argo CD health script returned (`hs`), or the Lua error it raised. */
export type HealthResult = { status: string; message?: string } | { error: string };

/** Runs an Argo CD health script on `object` under luajit (test/lua/argocd-health-driver.lua). */
export function runArgoHealth(script: string, object: unknown): HealthResult {
  const dir = mkdtempSync(join(tmpdir(), 'meshfork-health-'));
  try {
    writeFileSync(join(dir, 'health.lua'), script);
    writeFileSync(join(dir, 'object.lua'), `return ${luaValue(object)}\n`);
    const res = spawnSync(LUAJIT, [HEALTH_DRIVER, join(dir, 'health.lua'), join(dir, 'object.lua')], { encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`luajit failed (${res.status}): ${res.stderr}`);
    return JSON.parse(res.stdout) as HealthResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

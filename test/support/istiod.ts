/**
 * Istio's control plane (`pilot-discovery discovery`, built by `npm run testbin`) on loopback, on
 * top of the control-plane harness (etcd + kube-apiserver with Istio's CRDs): the e2e suite lets
 * real istiod translate meshfork's objects into xDS for proxyless gRPC clients.
 *
 * Flags and environment (pilot/cmd/pilot-discovery/app/cmd.go, pilot/pkg/features):
 *  - `--kubeconfig` of the test API server, `--meshConfig`/`--networksConfig` files written here;
 *  - loopback ports for `--grpcAddr` (plaintext xDS), `--httpAddr` (/ready, /debug/*),
 *    `--monitoringAddr`; empty `--secureGRPCAddr` and `--httpsAddr` (no TLS servers, so no
 *    certificates: istiod's CA is off with ENABLE_CA_SERVER=false), `--ctrlz_port=0`;
 *  - POD_NAMESPACE=istio-system, INJECT_ENABLED=false (no injection webhook),
 *    VALIDATION_WEBHOOK_CONFIG_NAME= (no webhook configuration to patch),
 *    PILOT_DEBOUNCE_AFTER=10ms (pushes follow config changes quickly).
 * Ready = TCP connect to the xDS port and `GET /ready` 200 on the HTTP port.
 *
 * The process leads its own process group and is recorded in the control-plane harness's pid
 * directory, so `reapStrayControlPlanes()` kills it when a killed test run left it behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, testbinPath, type ControlPlane } from './control-plane.js';
import {
  describeSelf,
  killRecorded,
  processStartTime,
  removePidRecord,
  writePidRecord,
  type RecordedProcess,
} from './control-plane-reaper.js';

export const ISTIO_SYSTEM = 'istio-system';
const FIELD_MANAGER = 'meshfork-e2e';

export interface IstiodOptions {
  /** Readiness timeout, ms. @default 120_000 */
  readonly timeoutMs?: number;
  /** Extra environment for pilot-discovery (added after the defaults). */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra pilot-discovery flags. */
  readonly flags?: readonly string[];
}

export interface Istiod {
  /** `127.0.0.1:<port>`: plaintext xDS (ADS) for proxyless gRPC clients. */
  readonly xdsAddress: string;
  /** `http://127.0.0.1:<port>`: /ready and the /debug endpoints. */
  readonly httpUrl: string;
  readonly logFile: string;
  /** Milliseconds from spawn to ready. */
  readonly startupMs: number;
  /** The last `lines` lines of istiod's log. */
  logTail(lines?: number): string;
  /** GET on the HTTP port; the body as text. */
  get(path: string): Promise<{ status: number; body: string }>;
  /** `/debug/config_dump?proxyID=<id>&types=<types>`: the xDS istiod would send that proxy now. */
  configDump(proxyId: string, types: string): Promise<ConfigDump>;
  stop(): Promise<void>;
}

/** Envoy admin ConfigDump as istiod's debug endpoint renders it (JSON of google.protobuf.Any). */
export interface ConfigDump {
  readonly configs?: Array<Record<string, unknown>>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function httpGet(url: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms: GET ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

function tcpReachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(2_000, () => done(false));
  });
}

/** Mesh config: the defaults, with discovery on our loopback xDS port. */
function meshConfig(xdsAddress: string): string {
  return [
    `rootNamespace: ${ISTIO_SYSTEM}`,
    'trustDomain: cluster.local',
    'ingressControllerMode: "OFF"',
    'defaultConfig:',
    `  discoveryAddress: ${xdsAddress}`,
    '',
  ].join('\n');
}

/**
 * Starts istiod against `cp`: creates `istio-system` (Istio's CRDs are already installed by the
 * control-plane harness, from the same Istio module version), then spawns pilot-discovery and
 * waits until it is ready.
 */
export async function startIstiod(cp: ControlPlane, options: IstiodOptions = {}): Promise<Istiod> {
  const t0 = Date.now();
  const timeoutMs = options.timeoutMs ?? 120_000;
  await applyObjects(cp, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ISTIO_SYSTEM } }]);

  const dir = mkdtempSync(join(tmpdir(), 'meshfork-istiod-'));
  const [grpcPort, httpPort, monitoringPort] = (await freePorts(3)) as [number, number, number];
  const xdsAddress = `127.0.0.1:${grpcPort}`;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  writeFileSync(join(dir, 'mesh'), meshConfig(xdsAddress));
  writeFileSync(join(dir, 'meshNetworks'), 'networks: {}\n');
  const logFile = join(dir, 'pilot-discovery.log');
  const fd = openSync(logFile, 'a');
  const args = [
    'discovery',
    `--kubeconfig=${cp.kubeconfigPath}`,
    `--meshConfig=${join(dir, 'mesh')}`,
    `--networksConfig=${join(dir, 'meshNetworks')}`,
    `--grpcAddr=127.0.0.1:${grpcPort}`,
    `--httpAddr=127.0.0.1:${httpPort}`,
    `--monitoringAddr=127.0.0.1:${monitoringPort}`,
    '--secureGRPCAddr=',
    '--httpsAddr=',
    '--ctrlz_port=0',
    `--namespace=${ISTIO_SYSTEM}`,
    '--shutdownDuration=1s',
    ...(options.flags ?? []),
  ];
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    POD_NAMESPACE: ISTIO_SYSTEM,
    POD_NAME: 'istiod-e2e',
    ENABLE_CA_SERVER: 'false',
    INJECT_ENABLED: 'false',
    VALIDATION_WEBHOOK_CONFIG_NAME: '',
    PILOT_DEBOUNCE_AFTER: '10ms',
    ...(options.env ?? {}),
  };
  const child: ChildProcess = spawn(testbinPath('pilot-discovery', cp.testbin), args, {
    cwd: dir,
    env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error('could not start pilot-discovery');
  child.unref();
  const record: RecordedProcess = { name: 'pilot-discovery', pid: child.pid, start: processStartTime(child.pid) };
  const pidFile = writePidRecord(`istiod-${process.pid}-${randomBytes(4).toString('hex')}`, {
    owner: describeSelf('test-worker'),
    tmpDir: dir,
    processes: [record],
  });
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((res) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      res();
    });
    child.once('error', () => {
      exited ??= { code: -1, signal: null };
      res();
    });
  });
  const onExit = () => {
    killRecorded(record, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    removePidRecord(pidFile);
  };
  process.once('exit', onExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      killRecorded(record, 'SIGTERM');
      const done = await Promise.race([exitPromise.then(() => true), sleep(5_000).then(() => false)]);
      if (!done) {
        killRecorded(record, 'SIGKILL');
        await Promise.race([exitPromise, sleep(2_000)]);
      }
    }
    try {
      process.kill(-record.pid, 'SIGKILL');
    } catch {
      /* group gone */
    }
    if (process.env.MESHFORK_CP_KEEP === '1') console.warn(`istiod: MESHFORK_CP_KEEP=1, keeping ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
    removePidRecord(pidFile);
    process.removeListener('exit', onExit);
  };

  try {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const ex = exited as { code: number | null; signal: NodeJS.Signals | null } | null;
      if (ex) throw new Error(`pilot-discovery exited (${ex.code ?? ex.signal}) before ready; log tail:\n${tail(logFile, 60)}`);
      try {
        if (await tcpReachable(grpcPort)) {
          const r = await httpGet(`${httpUrl}/ready`, 2_000);
          if (r.status === 200) break;
          last = `/ready ${r.status} ${r.body.slice(0, 200)}`;
        } else {
          last = 'xDS port closed';
        }
      } catch (e) {
        last = String(e);
      }
      if (Date.now() > deadline) {
        throw new Error(`istiod not ready after ${timeoutMs}ms (${last}); log tail:\n${tail(logFile, 60)}`);
      }
      await sleep(200);
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const get = (path: string) => httpGet(`${httpUrl}${path}`);
  return {
    xdsAddress,
    httpUrl,
    logFile,
    startupMs: Date.now() - t0,
    logTail: (lines = 80) => tail(logFile, lines),
    get,
    async configDump(proxyId, types) {
      const r = await get(`/debug/config_dump?proxyID=${encodeURIComponent(proxyId)}&types=${encodeURIComponent(types)}`);
      if (r.status !== 200) throw new Error(`config_dump for ${proxyId}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
      return JSON.parse(r.body) as ConfigDump;
    },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Writing objects to the API server (server-side apply, one field manager, like a GitOps sync).

/** A Kubernetes object as the e2e suite writes it. */
export interface KubeObj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: unknown;
}

/** REST collection path of the kinds the e2e suite writes. */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const plural: Record<string, string> = {
    Namespace: 'namespaces',
    Service: 'services',
    Deployment: 'deployments',
    VirtualService: 'virtualservices',
    DestinationRule: 'destinationrules',
    EnvoyFilter: 'envoyfilters',
    WorkloadEntry: 'workloadentries',
    ServiceEntry: 'serviceentries',
    Sidecar: 'sidecars',
    HTTPRoute: 'httproutes',
    GRPCRoute: 'grpcroutes',
  };
  const p = plural[kind];
  if (p === undefined) throw new Error(`e2e: no REST path known for kind ${kind}`);
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (kind === 'Namespace') return `${base}/${p}`;
  return `${base}/namespaces/${namespace ?? 'default'}/${p}`;
}

export function objectPath(o: KubeObj): string {
  return `${collectionPath(o.apiVersion, o.kind, o.metadata.namespace)}/${o.metadata.name}`;
}

/** Server-side applies each object in order (force, field manager `meshfork-e2e`). */
export async function applyObjects(cp: ControlPlane, objects: readonly KubeObj[]): Promise<void> {
  for (const o of objects) {
    const r = await cp.request('PATCH', `${objectPath(o)}?fieldManager=${FIELD_MANAGER}&force=true`, o, 'application/apply-patch+yaml');
    if (r.status >= 300) throw new Error(`apply ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}: HTTP ${r.status}: ${r.body.slice(0, 1500)}`);
  }
}

/** Deletes an object; a missing one is fine. */
export async function deleteObject(cp: ControlPlane, o: Pick<KubeObj, 'apiVersion' | 'kind' | 'metadata'>): Promise<void> {
  const r = await cp.request('DELETE', objectPath(o as KubeObj));
  if (r.status >= 300 && r.status !== 404) throw new Error(`delete ${o.kind} ${o.metadata.name}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
}

/** Objects of one kind in `namespace` matching `labelSelector`. */
export async function listObjects(cp: ControlPlane, apiVersion: string, kind: string, namespace: string, labelSelector: string): Promise<KubeObj[]> {
  const r = await cp.request('GET', `${collectionPath(apiVersion, kind, namespace)}?labelSelector=${encodeURIComponent(labelSelector)}`);
  if (r.status !== 200) throw new Error(`list ${kind}: HTTP ${r.status}: ${r.body.slice(0, 500)}`);
  const items = (JSON.parse(r.body) as { items?: KubeObj[] }).items ?? [];
  return items.map((i) => ({ ...i, apiVersion, kind }));
}

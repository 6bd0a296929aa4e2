/**
 * A real Kubernetes control plane on loopback for integration tests (the envtest pattern):
 * etcd + kube-apiserver (+ optionally kube-controller-manager for owner-reference garbage
 * collection and namespace deletion), built by `npm run testbin`, with Istio's CRDs (optionally
 * Gateway API's standard channel) and any further CRDs installed and Established. With `nodes: true` it is a cluster whose Deployments
 * become Available: kube-scheduler, KWOK with one fake Node, and kube-controller-manager with
 * the deployment, replicaset, garbage-collector and node-lifecycle controllers.
 *
 * Flags follow controller-runtime's envtest (pkg/internal/testing/controlplane/apiserver.go and
 * etcd.go): RBAC authorization, the ServiceAccount admission plugin disabled (no controller
 * creates the `default` ServiceAccount), service-cluster-ip-range 10.0.0.0/24,
 * allow-privileged, a service-account issuer on the secure URL, and etcd with
 * --unsafe-no-fsync. Unlike envtest we bind the secure port to 127.0.0.1 with our own CA and an
 * admin client certificate in `system:masters`.
 *
 * Usage in a test file (one control plane per file at most):
 *
 *   const hasBins = requireTestbin();
 *   describe.skipIf(!hasBins)('thing', () => {
 *     const cp = useControlPlane({ crds: ['path/to/meshfork-crds.yaml'] });
 *     it('...', async () => { const kc = cp().kubeConfig; ... });
 *   });
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createPki, type ControlPlanePki } from './control-plane-pki.js';
import {
  describeRunner,
  describeSelf,
  killRecorded,
  reapStrayControlPlanes,
  removePidRecord,
  writePidRecord,
  type RecordedProcess,
  processStartTime,
} from './control-plane-reaper.js';
import {
  GATEWAY_API_CRD_FILE,
  ISTIO_CRD_FILE,
  KWOK_STAGE_FILES,
  missingTestbin,
  pinnedVersions,
  testbinDir,
  testbinPath,
  type PinnedVersions,
  type TestbinBinary,
} from './control-plane-testbin.js';

export {
  defaultTestbinDir,
  missingTestbin,
  pinnedVersions,
  requireTestbin,
  testbinAvailable,
  testbinDir,
  testbinPath,
  GATEWAY_API_CRD_FILE,
  ISTIO_CRD_FILE,
  KWOK_STAGE_FILES,
  TESTBIN_BINARIES,
} from './control-plane-testbin.js';
export { reapStrayControlPlanes } from './control-plane-reaper.js';

/** A CRD to install: a YAML/JSON file path (multi-document files allowed) or an object. */
export type CrdSource = string | KubernetesObject;

export interface ControlPlaneOptions {
  /** Extra CRDs (meshfork's own) to install after Istio's. Non-CRD documents are ignored. */
  readonly crds?: readonly CrdSource[];
  /**
   * Also install Gateway API's standard-channel CRDs ({@link GATEWAY_API_CRD_FILE}: GatewayClass,
   * Gateway, HTTPRoute, GRPCRoute, ReferenceGrant, BackendTLSPolicy, ListenerSet, TCP/TLS/UDPRoute
   * of the version pinned in tools/gateway-api), after Istio's. Their OpenAPI schemas and CEL
   * rules then validate every route written to this API server. An istiod started on the plane
   * afterwards finds them and runs its Gateway API controller (PILOT_ENABLE_GATEWAY_API is on by
   * default), translating HTTPRoutes/GRPCRoutes attached to Services into mesh routes.
   * @default false
   */
  readonly gatewayApi?: boolean;
  /**
   * Start kube-controller-manager too, running only {@link controllers}.
   * @default false
   */
  readonly controllerManager?: boolean;
  /**
   * kube-controller-manager `--controllers` when {@link controllerManager} or {@link nodes} is
   * set; {@link nodes} adds {@link NODE_CONTROLLERS} to it.
   * @default ['garbage-collector-controller', 'namespace-controller']
   */
  readonly controllers?: readonly string[];
  /**
   * A cluster whose Deployments become Available without a container runtime: also starts
   * kube-scheduler, KWOK managing one fake Node ({@link FAKE_NODE}, by annotation), and
   * kube-controller-manager with {@link NODE_CONTROLLERS} added to {@link controllers}. KWOK's
   * stages make the Node Ready and a scheduled pod Running/Ready (and gone once deleted). Ready
   * when the Node is Ready and schedulable. Pod IPs are fake (KWOK allocates them from
   * 127.77.0.0/16, the Node's InternalIP is 127.0.0.1): nothing listens on them, so tests must
   * never send traffic to a pod IP.
   * @default false
   */
  readonly nodes?: boolean;
  /** Extra kube-apiserver flags (`--name=value`), appended after the defaults. */
  readonly apiServerFlags?: readonly string[];
  /** Directory holding the binaries. @default testbinDir() */
  readonly testbin?: string;
  /** Readiness timeout for each server and for CRD establishment, ms. @default 90_000 */
  readonly timeoutMs?: number;
}

/** `GET /version` of kube-apiserver. */
export interface KubeVersionInfo {
  readonly major: string;
  readonly minor: string;
  readonly gitVersion: string;
  readonly goVersion?: string;
  readonly platform?: string;
  readonly [k: string]: unknown;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ControlPlane {
  /** Admin (`system:masters`) client configuration for @kubernetes/client-node. */
  readonly kubeConfig: KubeConfig;
  /** The same credentials as a kubeconfig file, for kubectl/istioctl (`--kubeconfig`/KUBECONFIG). */
  readonly kubeconfigPath: string;
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  /** Temporary directory holding PKI, etcd data, kubeconfig and logs; removed by stop(). */
  readonly dir: string;
  /** Directory holding the binaries. */
  readonly testbin: string;
  /** Versions pinned in tools/ and reported by the running servers. */
  readonly versions: PinnedVersions & { readonly server: KubeVersionInfo; readonly etcdServer: string };
  /** Names of the CRDs installed (Istio's, Gateway API's with `gatewayApi`, and the extra ones). */
  readonly crds: readonly string[];
  /** The fake Nodes KWOK manages (`[FAKE_NODE]` with `nodes: true`, else empty). */
  readonly nodes: readonly string[];
  /** Milliseconds from start to ready (servers up, CRDs Established). */
  readonly startupMs: number;
  /** Server-side applies (force, field manager `meshfork-test`) and waits for Established. */
  installCrds(crds: readonly CrdSource[]): Promise<string[]>;
  /** Runs a test binary (kubectl, istioctl, ...) with KUBECONFIG pointing at this plane. */
  exec(binary: TestbinBinary, args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  /** Raw request to kube-apiserver with the admin credentials. */
  request(method: string, path: string, body?: unknown, contentType?: string): Promise<{ status: number; body: string }>;
  /**
   * Stops kube-apiserver (SIGTERM, SIGKILL after 5 s) and starts it again with the same flags,
   * port and etcd data, then waits for /readyz. Clients, informers and the other components see
   * their connections drop and must reconnect on their own. Resolves with the milliseconds the
   * API server was unreachable (from the stop to ready again).
   */
  restartApiServer(): Promise<number>;
  /** Stops kube-apiserver (SIGTERM, SIGKILL after 5 s) and leaves it stopped: its port refuses connections. */
  stopApiServer(): Promise<void>;
  /** Starts a stopped kube-apiserver again (same flags, port, etcd data) and waits for /readyz. */
  startApiServer(): Promise<void>;
  /**
   * Kills every process group (SIGKILL, all at once; with MESHFORK_CP_KEEP=1 SIGTERM one by one
   * so that the kept logs are complete) and removes {@link dir}. Idempotent.
   */
  stop(): Promise<void>;
}

const FIELD_MANAGER = 'meshfork-test';

/** kube-controller-manager controllers that `nodes: true` adds. */
export const NODE_CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'garbage-collector-controller',
  // The API server's TaintNodesByCondition admission taints every new Node
  // node.kubernetes.io/not-ready:NoSchedule; only this controller lifts it once the Node is Ready.
  'node-lifecycle-controller',
] as const;

/** The fake Node of `nodes: true`, and the annotation KWOK selects the Nodes it manages by. */
export const FAKE_NODE = 'kwok-node-0';
export const FAKE_NODE_ANNOTATION = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;

let active: ControlPlane | undefined;
let printedVersions = false;

/** Free TCP ports on 127.0.0.1, held open together so they are distinct, then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<import('node:net').Server>((res, rej) => {
        const s = createServer();
        s.once('error', rej);
        s.listen(0, '127.0.0.1', () => res(s));
      }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
  return ports;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
  readonly exitPromise: Promise<void>;
  readonly record: RecordedProcess;
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function spawnServer(name: string, bin: string, args: string[], dir: string, env?: NodeJS.ProcessEnv): Proc {
  const logFile = join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  // detached: each server leads its own process group, which stop() and the reaper kill whole.
  const child = spawn(bin, args, { cwd: dir, detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${bin}`);
  const proc: Proc = {
    name,
    child,
    logFile,
    exited: null,
    exitPromise: new Promise<void>((res) => {
      child.once('exit', (code, signal) => {
        proc.exited = { code, signal };
        res();
      });
      child.once('error', () => {
        proc.exited ??= { code: -1, signal: null };
        res();
      });
    }),
    record: { name, pid: child.pid, start: processStartTime(child.pid) },
  };
  child.unref();
  return proc;
}

/** SIGKILLs the process group and waits (at most 2 s) for the exit. */
async function killProc(p: Proc): Promise<void> {
  if (p.exited) return;
  killRecorded(p.record, 'SIGKILL');
  await Promise.race([p.exitPromise, sleep(2_000)]);
}

async function stopProc(p: Proc, graceMs = 5_000): Promise<void> {
  if (p.exited) return;
  killRecorded(p.record, 'SIGTERM');
  const done = await Promise.race([p.exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    killRecorded(p.record, 'SIGKILL');
    await Promise.race([p.exitPromise, sleep(2_000)]);
  }
  // Anything left in the group (none expected) goes too.
  try {
    process.kill(-p.record.pid, 'SIGKILL');
  } catch {
    /* group gone */
  }
}

interface TlsCreds {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

function rawRequest(
  url: string,
  tls: TlsCreds | null,
  method = 'GET',
  body?: string,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const opts = { method, headers: { ...headers }, timeout: timeoutMs };
    if (body !== undefined) opts.headers['content-length'] = String(Buffer.byteLength(body));
    const req =
      u.protocol === 'https:'
        ? httpsRequest(u, { ...opts, ca: tls?.ca, cert: tls?.cert, key: tls?.key })
        : httpRequest(u, opts);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs}ms: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(
  what: string,
  procs: readonly Proc[],
  timeoutMs: number,
  probe: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const p of procs) {
      if (p.exited) {
        throw new Error(
          `${p.name} exited (${p.exited.code ?? p.exited.signal}) while waiting for ${what}; last log lines:\n${tail(p.logFile)}`,
        );
      }
    }
    try {
      if (await probe()) return;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs}ms waiting for ${what} (${last}); last log lines:\n` +
          procs.map((p) => `--- ${p.name}\n${tail(p.logFile)}`).join('\n'),
      );
    }
    await sleep(100);
  }
}

/** Parses CRD sources into CRD objects (documents of other kinds are skipped). */
export async function loadCrds(sources: readonly CrdSource[]): Promise<KubernetesObject[]> {
  const out: KubernetesObject[] = [];
  for (const src of sources) {
    const docs: unknown[] =
      typeof src === 'string'
        ? parseAllDocuments(await readFile(src, 'utf8')).map((d) => {
            if (d.errors.length > 0) throw new Error(`${src}: ${d.errors[0]!.message}`);
            return d.toJS() as unknown;
          })
        : [src];
    for (const doc of docs) {
      const o = doc as KubernetesObject | null;
      if (o && o.kind === 'CustomResourceDefinition' && o.apiVersion === 'apiextensions.k8s.io/v1') out.push(o);
    }
  }
  return out;
}

interface CrdStatus {
  spec?: { group?: string; names?: { plural?: string }; versions?: { name: string; served?: boolean }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/** {@link ControlPlane.request} with a per-request timeout (ms, default 10 s). */
type ApiRequest = (method: string, path: string, body?: unknown, contentType?: string, requestTimeoutMs?: number) => Promise<{ status: number; body: string }>;

/** Requests to kube-apiserver at `server` with the admin client certificate. */
function apiRequester(server: string, tls: TlsCreds): ApiRequest {
  return async (method, path, body, contentType = 'application/json', requestTimeoutMs) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = contentType;
    return rawRequest(`${server}${path}`, tls, method, payload, headers, requestTimeoutMs);
  };
}

/**
 * Server-side applies CRDs (force, field manager `meshfork-test`) and waits until each is
 * Established and its served versions answer a list; a process of `procs` exiting meanwhile
 * fails the wait with its log.
 */
function crdInstaller(request: ApiRequest, procs: readonly Proc[], timeoutMs: number): ControlPlane['installCrds'] {
  return async (sources) => {
    const crds = await loadCrds(sources);
    // Applied concurrently: the API server handles them in parallel (15 Istio CRDs, ~1 MB).
    const names = await Promise.all(
      crds.map(async (crd) => {
        const name = crd.metadata?.name;
        if (!name) throw new Error('CRD without metadata.name');
        const r = await request(
          'PATCH',
          `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}?fieldManager=${FIELD_MANAGER}&force=true`,
          crd,
          'application/apply-patch+yaml',
          // A fresh API server compiling ~1 MB of schemas (and CEL rules) on a loaded machine
          // takes more than the default 10 s; the apply is idempotent, the wait bounded below.
          timeoutMs,
        );
        if (r.status >= 300) throw new Error(`applying CRD ${name}: HTTP ${r.status}: ${r.body.slice(0, 2000)}`);
        return name;
      }),
    );
    // Established, then the served versions answer a list (discovery caught up).
    await Promise.all(
      names.map((name) =>
        waitFor(`CRD ${name} Established`, procs, timeoutMs, async () => {
          const r = await request('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
          if (r.status !== 200) return false;
          const crd = JSON.parse(r.body) as CrdStatus;
          const established = crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
          if (!established) return false;
          for (const v of crd.spec?.versions ?? []) {
            if (v.served === false) continue;
            const l = await request('GET', `/apis/${crd.spec?.group}/${v.name}/${crd.spec?.names?.plural}?limit=1`);
            if (l.status !== 200) return false;
          }
          return true;
        }),
      ),
    );
    return names;
  };
}

/** Runs a test binary with cwd and HOME in the plane's directory and KUBECONFIG at its admin kubeconfig. */
function testbinExec(bin: string, dir: string, kubeconfigPath: string): ControlPlane['exec'] {
  return (binary, args, opts = {}) =>
    new Promise<ExecResult>((resolve) => {
      const child = execFile(
        testbinPath(binary, bin),
        [...args],
        {
          cwd: dir,
          env: { ...process.env, KUBECONFIG: kubeconfigPath, HOME: dir },
          timeout: opts.timeoutMs ?? 60_000,
          maxBuffer: 64 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
          resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        },
      );
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
}

/**
 * Starts etcd + kube-apiserver (+ kube-controller-manager, + kube-scheduler and KWOK with a fake
 * Node), installs Istio's CRDs and `crds`, and waits until every CRD is Established and served
 * (and the fake Node is Ready and schedulable). Reaps strays of killed runs first.
 * Throws if the binaries are missing (gate suites with requireTestbin()).
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (active) throw new Error('a control plane is already running in this test file; use one per file');
  // Free ports are picked, released, then bound by the servers: another process may take one in
  // between. That shows as "address already in use" in a server log; start again on new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test(String(err))) throw err;
      console.warn(`control plane: port taken while starting (attempt ${attempt}), retrying on new ports`);
    }
  }
}

async function startOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
  const t0 = Date.now();
  const bin = options.testbin ?? testbinDir();
  const missing = missingTestbin(bin);
  if (missing.length > 0) {
    throw new Error(`test binaries missing in ${bin} (${missing.join(', ')}): run \`npm run testbin\``);
  }
  const timeoutMs = options.timeoutMs ?? 90_000;

  const reaped = reapStrayControlPlanes();
  if (reaped.length > 0) {
    console.warn(`control plane: reaped ${reaped.length} stray process(es) of a killed run: ${reaped.map((p) => `${p.name}[${p.pid}]`).join(', ')}`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'meshfork-cp-'));
  const id = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const procs: Proc[] = [];
  const owner = describeSelf('test-worker');
  const ownerParent = describeRunner();
  let pidFile = writePidRecord(id, { owner, ownerParent, tmpDir: dir, processes: [] });
  const track = (p: Proc) => {
    procs.push(p);
    pidFile = writePidRecord(id, { owner, ownerParent, tmpDir: dir, processes: procs.map((q) => q.record) });
  };

  // Last-resort cleanup if the worker exits without running afterAll (process.kill is sync).
  const onExit = () => {
    for (const p of procs) killRecorded(p.record, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    removePidRecord(pidFile);
  };
  process.once('exit', onExit);
  // A forked test worker whose runner died loses its IPC channel: clean up right away.
  const onDisconnect = () => onExit();
  if (process.connected) process.once('disconnect', onDisconnect);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (process.env.MESHFORK_CP_KEEP === '1') {
      // Kept for reading: let each server finish its log, in reverse start order (kwok,
      // scheduler, controller-manager, apiserver, etcd).
      for (const p of [...procs].reverse()) await stopProc(p);
    } else {
      // Everything is thrown away: no server needs a graceful shutdown (kube-apiserver's alone
      // takes about a second), so every process group is killed at once.
      await Promise.all(procs.map((p) => killProc(p)));
    }
    if (process.env.MESHFORK_CP_KEEP === '1') {
      console.warn(`control plane: MESHFORK_CP_KEEP=1, keeping ${dir}`);
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    removePidRecord(pidFile);
    process.removeListener('exit', onExit);
    process.removeListener('disconnect', onDisconnect);
    if (active === plane) active = undefined;
  };
  let plane: ControlPlane | undefined;
  const phases: string[] = [];
  let tPhase = Date.now();
  const phase = (name: string) => {
    phases.push(`${name} ${((Date.now() - tPhase) / 1000).toFixed(1)}s`);
    tPhase = Date.now();
  };

  try {
    const [etcdPort, etcdPeerPort, apiPort, kcmPort, schedulerPort] = (await freePorts(5)) as [number, number, number, number, number];
    const pki: ControlPlanePki = await createPki(dir);
    const tls: TlsCreds = { ca: pki.pem.ca, cert: pki.pem.adminCert, key: pki.pem.adminKey };

    // --- etcd (flags as envtest's etcd.go, plus a fixed single-member cluster on loopback).
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = spawnServer('etcd', testbinPath('etcd', bin), [
      '--name=meshfork-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=meshfork-test=${peerUrl}`,
      '--unsafe-no-fsync=true',
      '--log-level=warn',
    ], dir);
    track(etcd);
    let etcdServer = '';
    await waitFor('etcd /health', [etcd], timeoutMs, async () => {
      const r = await rawRequest(`${etcdUrl}/health`, null);
      return r.status === 200 && (JSON.parse(r.body) as { health?: string }).health === 'true';
    });
    {
      const r = await rawRequest(`${etcdUrl}/version`, null);
      etcdServer = (JSON.parse(r.body) as { etcdserver?: string }).etcdserver ?? '';
    }
    phase('etcd');

    // --- kube-apiserver
    const server = `https://127.0.0.1:${apiPort}`;
    const apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--etcd-prefix=/meshfork-${id}`,
      '--bind-address=127.0.0.1',
      // kube-apiserver >= 1.37 refuses a loopback advertise address for the endpoint
      // reconciler of the `kubernetes` Service; no pod here ever dials that Service.
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`,
      `--tls-private-key-file=${pki.servingKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--disable-admission-plugins=ServiceAccount',
      '--authorization-mode=RBAC',
      ...(options.apiServerFlags ?? []),
    ];
    let apiserver = spawnServer('kube-apiserver', testbinPath('kube-apiserver', bin), apiServerArgs, dir);
    track(apiserver);

    const request = apiRequester(server, tls);

    const apiServerReady = () =>
      waitFor('kube-apiserver /readyz', [etcd, apiserver], timeoutMs, async () => {
        const r = await request('GET', '/readyz');
        return r.status === 200;
      });
    await apiServerReady();
    const serverVersion = JSON.parse((await request('GET', '/version')).body) as KubeVersionInfo;
    phase('kube-apiserver');

    // --- kubeconfig (file for kubectl/istioctl; KubeConfig loaded from it for the tests)
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(
      kubeconfigPath,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: meshfork-test',
        '  cluster:',
        `    server: ${server}`,
        `    certificate-authority-data: ${b64(pki.pem.ca)}`,
        'users:',
        '- name: meshfork-test-admin',
        '  user:',
        `    client-certificate-data: ${b64(pki.pem.adminCert)}`,
        `    client-key-data: ${b64(pki.pem.adminKey)}`,
        'contexts:',
        '- name: meshfork-test',
        '  context:',
        '    cluster: meshfork-test',
        '    user: meshfork-test-admin',
        '    namespace: default',
        'current-context: meshfork-test',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);

    // --- kube-controller-manager (owner-reference GC, namespace deletion; with `nodes`, also
    // Deployments, ReplicaSets and the Node's not-ready taint). With `nodes`, kube-scheduler and
    // KWOK start right after it and all three come up together.
    const nodes = options.nodes === true;
    let kcm: Proc | undefined;
    if (options.controllerManager || nodes) {
      const controllers = [
        ...new Set([...(options.controllers ?? ['garbage-collector-controller', 'namespace-controller']), ...(nodes ? NODE_CONTROLLERS : [])]),
      ];
      kcm = spawnServer('kube-controller-manager', testbinPath('kube-controller-manager', bin), [
        ...componentFlags(kubeconfigPath, kcmPort, join(dir, 'kcm-certs')),
        '--use-service-account-credentials=false',
        `--controllers=${controllers.join(',')}`,
        `--service-account-private-key-file=${pki.saKey}`,
        `--root-ca-file=${pki.caCert}`,
        // KWOK's heartbeat stage refreshes the Node's conditions every 20-45 s and it keeps no
        // Lease; the default 50 s grace would let one late heartbeat on a loaded machine mark the
        // Node NotReady (and its pods not Ready) in the middle of a long test.
        ...(nodes ? ['--node-monitor-grace-period=3m'] : []),
      ], dir);
      track(kcm);
    }
    const fakeNodes: string[] = [];
    let scheduler: Proc | undefined;
    let kwok: Proc | undefined;
    if (nodes) {
      scheduler = spawnServer('kube-scheduler', testbinPath('kube-scheduler', bin), [
        ...componentFlags(kubeconfigPath, schedulerPort, join(dir, 'scheduler-certs')),
      ], dir);
      track(scheduler);
      // KWOK plays the kubelet of every Node carrying the annotation: its stages (--config) set
      // the Node's status and heartbeat and take pods bound to it to Running/Ready. It serves
      // nothing itself (no --server-address, no --node-port). HOME is the plane's directory so
      // that no ~/.kwok/kwok.yaml is read.
      kwok = spawnServer('kwok', testbinPath('kwok', bin), [
        `--kubeconfig=${kubeconfigPath}`,
        `--manage-nodes-with-annotation-selector=${FAKE_NODE_ANNOTATION.key}=${FAKE_NODE_ANNOTATION.value}`,
        '--cidr=127.77.0.0/16',
        '--node-ip=127.0.0.1',
        ...KWOK_STAGE_FILES.map((f) => `--config=${join(bin, f)}`),
      ], dir, { ...process.env, HOME: dir });
      track(kwok);
      const node = {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: FAKE_NODE,
          annotations: { [FAKE_NODE_ANNOTATION.key]: FAKE_NODE_ANNOTATION.value },
          labels: { 'kubernetes.io/hostname': FAKE_NODE, 'kubernetes.io/os': 'linux', type: 'kwok' },
        },
      };
      const r = await request('POST', '/api/v1/nodes', node);
      if (r.status !== 201) throw new Error(`creating Node ${FAKE_NODE}: HTTP ${r.status}: ${r.body.slice(0, 2000)}`);
      fakeNodes.push(FAKE_NODE);
    }
    if (kcm) {
      await waitFor('kube-controller-manager /healthz', procs, timeoutMs, async () => {
        // /healthz and /readyz are in --authorization-always-allow-paths by default. The serving
        // certificate is self-signed in --cert-dir: liveness is all we need from it.
        const r = await rawRequestInsecure(`https://127.0.0.1:${kcmPort}/healthz`);
        return r.status === 200;
      });
      phase('kube-controller-manager');
    }
    if (scheduler) {
      await waitFor('kube-scheduler /readyz', procs, timeoutMs, async () => {
        const r = await rawRequestInsecure(`https://127.0.0.1:${schedulerPort}/readyz`);
        return r.status === 200;
      });
      phase('kube-scheduler');
    }
    if (kwok) {
      await waitFor(`Node ${FAKE_NODE} Ready and schedulable`, procs, timeoutMs, async () => {
        const r = await request('GET', `/api/v1/nodes/${FAKE_NODE}`);
        if (r.status !== 200) throw new Error(`GET Node ${FAKE_NODE}: HTTP ${r.status}`);
        const unschedulable = whyUnschedulable(JSON.parse(r.body) as NodeStatusView);
        // Thrown, so that a timeout names what is still missing.
        if (unschedulable) throw new Error(unschedulable);
        return true;
      });
      phase('kwok Node Ready');
    }

    // --- CRDs
    const installCrds = crdInstaller(request, procs, timeoutMs);
    // Gateway API's CRDs (1.1 MB) as a second batch, so that no more than one set of large
    // schemas is compiled at a time.
    const crds = await installCrds([join(bin, ISTIO_CRD_FILE), ...(options.crds ?? [])]);
    if (options.gatewayApi === true) crds.push(...(await installCrds([join(bin, GATEWAY_API_CRD_FILE)])));
    phase('CRDs');

    const exec = testbinExec(bin, dir, kubeconfigPath);

    let apiServerStopped = false;
    const stopApiServer = async (): Promise<void> => {
      await stopProc(apiserver);
      apiServerStopped = true;
    };
    const startApiServer = async (): Promise<void> => {
      if (!apiServerStopped) throw new Error('kube-apiserver is running');
      const index = procs.indexOf(apiserver);
      apiserver = spawnServer('kube-apiserver', testbinPath('kube-apiserver', bin), apiServerArgs, dir);
      procs[index] = apiserver;
      apiServerStopped = false;
      pidFile = writePidRecord(id, { owner, ownerParent, tmpDir: dir, processes: procs.map((q) => q.record) });
      await apiServerReady();
    };
    const restartApiServer = async (): Promise<number> => {
      const stoppedAt = Date.now();
      await stopApiServer();
      await startApiServer();
      return Date.now() - stoppedAt;
    };

    const startupMs = Date.now() - t0;
    const pinned = pinnedVersions();
    plane = {
      kubeConfig,
      kubeconfigPath,
      server,
      dir,
      testbin: bin,
      versions: { ...pinned, server: serverVersion, etcdServer },
      crds,
      nodes: fakeNodes,
      startupMs,
      installCrds,
      exec,
      request,
      restartApiServer,
      stopApiServer,
      startApiServer,
      stop,
    };
    active = plane;
    if (!printedVersions) {
      printedVersions = true;
      console.log(
        `control plane: kube-apiserver ${serverVersion.gitVersion} (${serverVersion.goVersion ?? '?'}), ` +
          `etcd ${etcdServer}, istio ${pinned.istio}${options.gatewayApi === true ? ` and gateway-api ${pinned.gatewayApi}` : ''} CRDs (${crds.length} CRDs)` +
          `${kcm ? ', kube-controller-manager' : ''}${nodes ? `, kube-scheduler, kwok ${pinned.kwok} (Node ${FAKE_NODE})` : ''}; ready in ${(startupMs / 1000).toFixed(1)}s (${phases.join(', ')}) at ${server}`,
      );
    }
    return plane;
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Everything another process needs to use a running control plane (JSON-serializable): where it
 * is, the admin credentials, and what it was started with.
 */
export interface ControlPlaneAddress {
  readonly kubeconfigPath: string;
  readonly server: string;
  readonly dir: string;
  readonly testbin: string;
  readonly versions: ControlPlane['versions'];
  readonly crds: readonly string[];
  readonly nodes: readonly string[];
  readonly startupMs: number;
  /** PEM: the cluster CA, the admin client certificate and its key. */
  readonly tls: TlsCreds;
}

/** The address of a plane this process started, for {@link attachControlPlane} in another process. */
export function controlPlaneAddress(plane: ControlPlane): ControlPlaneAddress {
  const pem = (b64: string | undefined, what: string) => {
    if (!b64) throw new Error(`control plane kubeconfig ${plane.kubeconfigPath} has no ${what}`);
    return Buffer.from(b64, 'base64').toString('utf8');
  };
  const { kubeConfig: kc } = plane;
  return {
    kubeconfigPath: plane.kubeconfigPath,
    server: plane.server,
    dir: plane.dir,
    testbin: plane.testbin,
    versions: plane.versions,
    crds: plane.crds,
    nodes: plane.nodes,
    startupMs: plane.startupMs,
    tls: {
      ca: pem(kc.getCurrentCluster()?.caData, 'certificate-authority-data'),
      cert: pem(kc.getCurrentUser()?.certData, 'client-certificate-data'),
      key: pem(kc.getCurrentUser()?.keyData, 'client-key-data'),
    },
  };
}

/**
 * A control plane started by another process (the shared one of
 * test/support/shared-control-plane.ts): the same clients, requests, exec and CRD installs as
 * the plane it points at. Its lifecycle belongs to that process: restartApiServer, stopApiServer,
 * startApiServer and stop reject, naming `why`.
 */
export function attachControlPlane(address: ControlPlaneAddress, why: string): ControlPlane {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(address.kubeconfigPath);
  const request = apiRequester(address.server, address.tls);
  const refuse = (what: string) => () => Promise.reject(new Error(`${what}: ${why}`));
  return {
    kubeConfig,
    kubeconfigPath: address.kubeconfigPath,
    server: address.server,
    dir: address.dir,
    testbin: address.testbin,
    versions: address.versions,
    crds: address.crds,
    nodes: address.nodes,
    startupMs: address.startupMs,
    installCrds: crdInstaller(request, [], 90_000),
    exec: testbinExec(address.testbin, address.dir, address.kubeconfigPath),
    request,
    restartApiServer: refuse('restartApiServer()'),
    stopApiServer: refuse('stopApiServer()'),
    startApiServer: refuse('startApiServer()'),
    stop: refuse('stop()'),
  };
}

/** Flags kube-controller-manager and kube-scheduler share: admin kubeconfig, loopback serving. */
function componentFlags(kubeconfigPath: string, port: number, certDir: string): string[] {
  return [
    `--kubeconfig=${kubeconfigPath}`,
    `--authentication-kubeconfig=${kubeconfigPath}`,
    `--authorization-kubeconfig=${kubeconfigPath}`,
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${certDir}`,
    '--leader-elect=false',
  ];
}

interface NodeStatusView {
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/**
 * Why the scheduler would not place a pod without tolerations on the Node (its Ready condition
 * is not True, or it carries a NoSchedule/NoExecute taint such as the not-ready taint the API
 * server puts on every new Node), or undefined when it would.
 */
function whyUnschedulable(node: NodeStatusView): string | undefined {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const taints = (node.spec?.taints ?? []).filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute');
  const reasons = [
    ...(ready?.status === 'True' ? [] : [`condition Ready is ${ready?.status ?? 'absent'}`]),
    ...(taints.length > 0 ? [`tainted ${taints.map((t) => `${t.key}:${t.effect}`).join(', ')}`] : []),
  ];
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

function rawRequestInsecure(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: '' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Registers beforeAll/afterAll hooks that start and stop one control plane for the current
 * test file, and returns an accessor for it (valid inside tests and later hooks). The plane is
 * stopped even when tests fail.
 */
export function useControlPlane(options: ControlPlaneOptions = {}): () => ControlPlane {
  let plane: ControlPlane | undefined;
  beforeAll(async () => {
    plane = await startControlPlane(options);
  });
  afterAll(async () => {
    await plane?.stop();
    plane = undefined;
  });
  return () => {
    if (!plane) throw new Error('control plane not started (use it inside tests or hooks)');
    return plane;
  };
}

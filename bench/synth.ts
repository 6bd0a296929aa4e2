/**
 * `synth-1000x500`: `meshfork synth -f <dir>` (the CLI's own runCli: read and check every file,
 * plan, write the YAML stream) on a generated repository of 1000 baseline services and 500
 * Sandboxes, against the plain YAML work on the same bytes in the same run: read and parse every
 * input file (`yaml` parseAllDocuments + toJS) and stringify every output object (`yaml`
 * stringify). Target <= 1.25x: meshfork's own checks and planning may add at most a quarter to
 * what reading the input and writing the output cost anyway.
 *
 * The repository: 100 files of 10 services each; every service is a Deployment (labels, ports,
 * env, resources, probes), a Service, and a DestinationRule (ISTIO_MUTUAL, one subset per
 * version); every fourth service has a user VirtualService (a header route and a default route
 * with retries) that meshfork merges its routes into. 500 Sandboxes in 5 files: Sandbox i forks
 * service 7i mod 1000 with a new image and env, every fourth also the next service, so some
 * services are forked by two Sandboxes. Rounds alternate the two; minimum of each, ratio of the
 * minima of the CPU time (user + system) each took: both are synchronous, and on a shared,
 * overloaded machine CPU time is the steady figure (wall time also counts the time the process
 * waited for a core; `wall_ratio` gives the ratio of the fastest wall times beside it). `ms` is
 * the fastest synth in wall time, `rss_mib` the peak resident memory of one `meshfork synth`
 * process (the built CLI in lib/, run as a child so that nothing else this benchmark holds is
 * counted).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { runCli } from '../src/cli/main.js';
import type { BenchResult, BenchSuite } from './report.js';

const SERVICES = 1000;
const SANDBOXES = 500;
const SERVICES_PER_FILE = 10;
const SANDBOXES_PER_FILE = 100;
const ROUNDS = 5;
const NS = 'shop';
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const svc = (i: number) => `svc-${String(i).padStart(4, '0')}`;

function service(i: number): string {
  const name = svc(i);
  const docs = [
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}-v1
  namespace: ${NS}
  labels: {app: ${name}, version: v1}
spec:
  replicas: 2
  selector:
    matchLabels: {app: ${name}, version: v1}
  template:
    metadata:
      labels: {app: ${name}, version: v1}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      serviceAccountName: ${name}
      containers:
        - name: server
          image: registry.example.com/shop/${name}:1.${i % 17}.0
          imagePullPolicy: IfNotPresent
          ports:
            - {name: http, containerPort: 9080}
            - {name: metrics, containerPort: 9090}
          env:
            - {name: LOG_LEVEL, value: info}
            - {name: UPSTREAM, value: "http://${svc((i + 1) % SERVICES)}:9080"}
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: 500m, memory: 256Mi}
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 5
          securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}
`,
    `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: ${NS}
  labels: {app: ${name}}
spec:
  selector: {app: ${name}}
  ports:
    - {name: http, port: 9080, targetPort: http}
`,
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  host: ${name}
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
    connectionPool: {http: {http2MaxRequests: 1000}}
  subsets:
    - name: v1
      labels: {version: v1}
`,
  ];
  if (i % 4 === 0) {
    docs.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: ${NS}
spec:
  hosts: [${name}]
  http:
    - name: testers
      match:
        - headers: {end-user: {exact: jason}}
      route:
        - destination: {host: ${name}, subset: v1}
      timeout: 3s
    - name: default
      route:
        - destination: {host: ${name}, subset: v1}
      retries: {attempts: 3, perTryTimeout: 1s}
`);
  }
  return docs.join('---\n');
}

function sandbox(i: number): string {
  const forks = [svc((7 * i) % SERVICES), ...(i % 4 === 0 ? [svc((7 * i + 1) % SERVICES)] : [])];
  return `apiVersion: meshfork.dev/v1alpha1
kind: Sandbox
metadata:
  name: pr-${i}
  namespace: ${NS}
  labels: {team: t${i % 20}}
spec:
  description: pull request ${i}
  ttl: {duration: 3d, offsetFrom: updatedAt}
  forks:
${forks
  .map(
    (f) => `    - forkOf: {kind: Deployment, name: ${f}-v1}
      customizations:
        images: [{container: server, image: "registry.example.com/shop/${f}:pr-${i}"}]
        env: [{container: server, name: LOG_LEVEL, value: debug}]
`,
  )
  .join('')}`;
}

/** Writes the repository; returns its input files. */
export function writeRepository(dir: string): string[] {
  const files: string[] = [];
  mkdirSync(join(dir, 'apps'));
  mkdirSync(join(dir, 'sandboxes'));
  for (let f = 0; f < SERVICES / SERVICES_PER_FILE; f++) {
    const file = join(dir, 'apps', `apps-${String(f).padStart(3, '0')}.yaml`);
    writeFileSync(file, Array.from({ length: SERVICES_PER_FILE }, (_, k) => service(f * SERVICES_PER_FILE + k)).join('---\n'));
    files.push(file);
  }
  for (let f = 0; f < SANDBOXES / SANDBOXES_PER_FILE; f++) {
    const file = join(dir, 'sandboxes', `sandboxes-${f}.yaml`);
    writeFileSync(file, Array.from({ length: SANDBOXES_PER_FILE }, (_, k) => sandbox(f * SANDBOXES_PER_FILE + k)).join('---\n'));
    files.push(file);
  }
  return files;
}

interface Timing {
  /** Wall-clock milliseconds. */
  readonly ms: number;
  /** CPU milliseconds (user + system) of this process. */
  readonly cpuMs: number;
}

function timed<T>(work: () => T): Timing & { value: T } {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = work();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, value };
}

/** One in-process `meshfork synth -f <dir>`: its time and what it wrote. */
function timeSynth(dir: string): Timing & { stdout: string } {
  let stdout = '';
  let stderr = '';
  const t = timed(() => runCli(['synth', '-f', dir], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) }));
  const problems = stderr.split('\n').filter((l) => l !== '' && !l.startsWith('note: '));
  if (t.value !== 0 || problems.length > 0) throw new Error(`synth benchmark input has problems (exit ${t.value}):\n${problems.slice(0, 5).join('\n')}`);
  return { ms: t.ms, cpuMs: t.cpuMs, stdout };
}

/** Plain YAML work on the same bytes: parse every input file, stringify every output object. */
function timePlainYaml(files: readonly string[], output: readonly unknown[]): Timing {
  const t = timed(() => {
    let documents = 0;
    for (const file of files) for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) if (doc.toJS() !== null) documents++;
    return { documents, text: output.map((o) => `---\n${stringify(o)}`).join('') };
  });
  if (t.value.documents === 0 || t.value.text.length === 0) throw new Error('plain YAML baseline did no work');
  return t;
}

/** Peak RSS (MiB) of one `meshfork synth -f <dir>` process running the built CLI, output discarded. */
function synthProcessRssMib(dir: string): number | string {
  const script = `import { runCli } from ${JSON.stringify(join(REPO_ROOT, 'lib/cli/main.js'))};
const code = runCli(['synth', '-f', ${JSON.stringify(dir)}], { stdout: () => {}, stderr: () => {} });
process.stdout.write(JSON.stringify({ code, maxRssKiB: process.resourceUsage().maxRSS }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: REPO_ROOT });
  try {
    const { code, maxRssKiB } = JSON.parse(r.stdout) as { code: number; maxRssKiB: number };
    if (code !== 0) return 'n/a(synth failed)';
    return maxRssKiB / 1024;
  } catch {
    return `n/a(lib/ not built: ${(r.stderr || '').split('\n')[0]?.slice(0, 80)})`;
  }
}

export const synthSuite: BenchSuite = {
  name: 'synth',
  async run(log) {
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-bench-synth-'));
    try {
      const files = writeRepository(dir);
      const warm = timeSynth(dir); // warm-up: module initialisation and JIT
      const output = parseAllDocuments(warm.stdout).map((d) => d.toJS() as unknown);
      timePlainYaml(files, output);
      const inputBytes = files.reduce((n, f) => n + readFileSync(f).length, 0);
      log(`input: ${files.length} files, ${(inputBytes / 1024 / 1024).toFixed(1)} MiB; output: ${output.length} objects, ${(warm.stdout.length / 1024 / 1024).toFixed(1)} MiB`);
      const s: Timing[] = [];
      const y: Timing[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        y.push(timePlainYaml(files, output));
        const run = timeSynth(dir);
        if (run.stdout !== warm.stdout) throw new Error('synth output differs between runs of the same input');
        s.push(run);
        log(`round ${round + 1}: plain YAML ${y.at(-1)!.cpuMs.toFixed(0)} ms CPU (${y.at(-1)!.ms.toFixed(0)} ms wall), meshfork synth ${run.cpuMs.toFixed(0)} ms CPU (${run.ms.toFixed(0)} ms wall)`);
      }
      const fastest = (ts: Timing[], k: keyof Timing) => Math.min(...ts.map((t) => t[k]));
      const base = fastest(y, 'cpuMs');
      const cand = fastest(s, 'cpuMs');
      const rss = synthProcessRssMib(dir);
      log(`meshfork synth process peak RSS: ${typeof rss === 'number' ? `${rss.toFixed(0)} MiB` : rss}`);
      const result: BenchResult = {
        id: `synth-${SERVICES}x${SANDBOXES}`,
        title: `synth, ${SERVICES} services x ${SANDBOXES} Sandboxes`,
        baseline: { label: 'YAML parse + stringify', value: base, unit: 'ms CPU' },
        candidate: { label: 'meshfork synth', value: cand, unit: 'ms CPU' },
        ratio: cand / base,
        target: 1.25,
        extra: {
          ms: Math.round(fastest(s, 'ms')),
          rss_mib: typeof rss === 'number' ? Math.round(rss) : rss,
          cpu_ms: Math.round(cand),
          yaml_cpu_ms: Math.round(base),
          wall_ratio: fastest(s, 'ms') / fastest(y, 'ms'),
          objects_out: output.length,
          input_mib: Number((inputBytes / 1024 / 1024).toFixed(2)),
        },
      };
      return [result];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

/**
 * examples/argocd-cmp: the Config Management Plugin's `generate` command, run as Argo CD's
 * argocd-cmp-server runs it (argo-cd docs/operator-manual/config-management-plugins.md): `command`
 * + `args` without a shell of ours, in the Application's source directory (examples/gitops-plus),
 * with the sidecar's environment (the container `env` of argocd-repo-server-patch.yaml) plus the
 * build environment Argo CD sets (docs/user-guide/build-environment.md) and an Application's
 * plugin env, prefixed ARGOCD_ENV_. Its stdout must be only the app's objects, the same on every
 * run (Argo CD diffs the output of every refresh). Offline: no `init` (npm ci) here, the
 * repository's node_modules serve; cdk8s-cli does not check for upgrades.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Testing } from 'cdk8s';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { bookinfo } from '../../examples/gitops-plus/bookinfo.js';
import { sandboxes } from '../../examples/gitops-plus/sandboxes.js';
import { BIN, documents, REPO } from './support.js';

const CMP = join(REPO, 'examples/argocd-cmp');
const APP = join(REPO, 'examples/gitops-plus');
const NAMESPACE = 'bookinfo-staging';

interface Command {
  command: string[];
  args?: string[];
}
const plugin = parse(readFileSync(join(CMP, 'plugin.yaml'), 'utf8')) as {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; discover: { fileName: string }; init: Command; generate: Command };
};
const sidecar = (parse(readFileSync(join(CMP, 'argocd-repo-server-patch.yaml'), 'utf8')) as {
  spec: { template: { spec: { containers: Array<{ command: string[]; env: Array<{ name: string; value: string }>; securityContext: { runAsUser: number }; volumeMounts: Array<{ mountPath: string; subPath?: string }> }> } } };
}).spec.template.spec.containers[0]!;

/** Runs `generate` as argocd-cmp-server would; resolves to its stdout (rejects on a non-zero exit). */
function generate(): Promise<{ stdout: string; stderr: string }> {
  const env: Record<string, string> = {
    // The sidecar image's PATH, with Node 22 and the app's node_modules/.bin standing in for the image's node.
    PATH: [BIN, dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
    ...Object.fromEntries(sidecar.env.map((e) => [e.name, e.value])),
    HOME: mkdtempSync(join(tmpdir(), 'meshfork-cmp-home-')),
    ARGOCD_APP_NAME: 'bookinfo-staging',
    ARGOCD_APP_NAMESPACE: NAMESPACE,
    ARGOCD_APP_PROJECT_NAME: 'default',
    ARGOCD_APP_REVISION: 'f913b6cbf58aa5ae5ca1f8a2b149477aebcbd9d8',
    ARGOCD_APP_REVISION_SHORT: 'f913b6c',
    ARGOCD_APP_SOURCE_PATH: 'examples/gitops-plus',
    ARGOCD_APP_SOURCE_REPO_URL: 'https://git.example.com/platform/bookinfo.git',
    ARGOCD_APP_SOURCE_TARGET_REVISION: 'main',
    KUBE_VERSION: '1.37.2',
    KUBE_API_VERSIONS: 'v1,apps/v1,networking.istio.io/v1',
    ARGOCD_ENV_TEAM: 'reviews',
  };
  const [program, ...rest] = plugin.spec.generate.command;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, [...rest, ...(plugin.spec.generate.args ?? [])], { cwd: APP, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`generate exited ${code}:\n${stderr}`))));
  });
}

describe('examples/argocd-cmp: the cdk8s Config Management Plugin', () => {
  it('is a sidecar ConfigManagementPlugin that Argo CD matches to cdk8s apps', () => {
    expect(plugin).toMatchObject({ apiVersion: 'argoproj.io/v1alpha1', kind: 'ConfigManagementPlugin', metadata: { name: 'cdk8s' }, spec: { version: 'v1', discover: { fileName: './cdk8s.yaml' } } });
    expect(plugin.spec.init.args).toEqual(['npm ci --no-audit --no-fund >&2']);
    expect(sidecar.command).toEqual(['/var/run/argocd/argocd-cmp-server']);
    expect(sidecar.securityContext.runAsUser).toBe(999);
    expect(sidecar.volumeMounts.map((m) => m.mountPath)).toEqual(['/var/run/argocd', '/home/argocd/cmp-server/plugins', '/home/argocd/cmp-server/config/plugin.yaml', '/tmp']);
    // The Application names the plugin <metadata.name>-<spec.version>.
    expect((parse(readFileSync(join(CMP, 'application.yaml'), 'utf8')) as { spec: { source: { plugin: { name: string } } } }).spec.source.plugin.name).toBe('cdk8s-v1');
  });

  it("generate prints exactly the app's manifest (every chart, objects only), byte-identical on every run", { timeout: 180_000 }, async () => {
    const [first, second] = await Promise.all([generate(), generate()]);
    expect(second.stdout).toBe(first.stdout);
    expect(first.stderr).toContain(`sandbox ${NAMESPACE}/pr-42: routing key `);

    // A valid YAML stream of Kubernetes objects and nothing else ...
    const streamed = parseAllDocuments(first.stdout, { version: '1.1' });
    expect(streamed.flatMap((d) => d.errors)).toEqual([]);
    const objects = documents(first.stdout, '1.1') as Array<{ apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } }>;
    expect(objects.length).toBe(streamed.length);
    for (const o of objects) expect([typeof o.apiVersion, typeof o.kind, typeof o.metadata?.name, o.metadata?.namespace]).toEqual(['string', 'string', 'string', NAMESPACE]);
    // ... the app's manifest: both charts, as the app synthesizes them for the Application's namespace.
    const app = Testing.app();
    sandboxes(app, NAMESPACE, bookinfo(app, NAMESPACE));
    expect(objects).toEqual(documents(app.synthYaml(), '1.1'));
    expect(objects.filter((o) => o.kind === 'VirtualService').map((o) => o.metadata?.name)).toEqual(['reviews', 'ratings-meshfork']);
  });
});

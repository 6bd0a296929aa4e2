/**
 * Issue 9 item 9: real repository layouts. Directories with kustomizations are read (the
 * kustomization files and the files they use as patches or generator input skipped, one note per
 * directory with the `kustomize build` hint); `kind: List` and `<Kind>List` are flattened like
 * kubectl does; every file of a Helm chart is one problem with the `helm template` hint. Real
 * layouts nobody here wrote are read in place from the Go module cache (Istio's samples, KWOK's
 * and Kubernetes' kustomize directories); small layouts of our own are in inputs/input-layouts/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import { cli } from '../support/cli.js';
import { istioSamplesDir, moduleDir, requireModules } from '../support/istio-samples.js';

const INPUTS = new URL('inputs/input-layouts/', import.meta.url).pathname;

const KUSTOMIZE_NOT_APPLIED = (kind: string, dir: string) =>
  `kustomize ${kind} not applied: the other files of ${dir} are read as written, without kustomize's namespace, name prefixes and suffixes, labels, patches and generators`;
const KUSTOMIZE_HINT = (dir: string) => `to plan what kustomize renders, run \`kustomize build ${dir} > rendered.yaml\` and pass -f rendered.yaml`;
const kustomizeNote = (kind: string, dir: string, skipped?: string) =>
  [KUSTOMIZE_NOT_APPLIED(kind, dir), ...(skipped !== undefined ? [`not read (patches or generator input): ${skipped}`] : []), KUSTOMIZE_HINT(dir)].join('; ');
const chartProblem = (chart: string, what: string) =>
  `file of the Helm chart ${chart} (${what}); meshfork reads rendered manifests, not charts: run \`helm template <release-name> ${chart} > rendered.yaml\` (with your values) and pass -f rendered.yaml`;

const refs = (input: ReturnType<typeof loadInputs>) => [...input.sources.keys()].sort();

function expectRejected(result: ReturnType<typeof cli>, lines: string[]): void {
  expect(result.stdout).toBe('');
  expect(result.stderr.trimEnd().split('\n')).toEqual([...lines, `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`]);
  expect(result.code).toBe(1);
}

describe('kustomize layouts (our own: base, overlay, component)', () => {
  const dir = `${INPUTS}kustomize`;

  it('reads every resource file, skips kustomizations and the files they patch or generate from, one note per directory', () => {
    const input = loadInputs([dir], 'default');
    expect(input.problems).toEqual([]);
    expect(input.complete).toBe(true);
    expect(input.notes).toEqual([
      { file: `${dir}/base/kustomization.yaml`, path: '', message: kustomizeNote('Kustomization', `${dir}/base`) },
      { file: `${dir}/components/tracing/kustomization.yaml`, path: '', message: kustomizeNote('Component', `${dir}/components/tracing`, 'tracing.yaml') },
      {
        file: `${dir}/overlays/dev/kustomization.yml`,
        path: '',
        message: kustomizeNote('Kustomization', `${dir}/overlays/dev`, 'patch-web.yaml, replicas.json, settings.yaml'),
      },
    ]);
    // Objects as written: kustomize's `namespace: shop` is not applied, -n is.
    expect(refs(input)).toEqual(['Deployment default/web', 'Sandbox default/dev', 'Service default/web']);
    expect(input.sandboxes.map((s) => s.metadata.name)).toEqual(['dev']);
  });

  it('synth plans the overlay and prints the notes on stderr', () => {
    const r = cli('synth', '-f', dir);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('note: ') && l.includes('kustomize'))).toEqual([
      `note: ${dir}/base/kustomization.yaml: -: .: ${kustomizeNote('Kustomization', `${dir}/base`)}`,
      `note: ${dir}/components/tracing/kustomization.yaml: -: .: ${kustomizeNote('Component', `${dir}/components/tracing`, 'tracing.yaml')}`,
      `note: ${dir}/overlays/dev/kustomization.yml: -: .: ${kustomizeNote('Kustomization', `${dir}/overlays/dev`, 'patch-web.yaml, replicas.json, settings.yaml')}`,
    ]);
    expect(r.stdout).toContain('name: web-dev\n');
  });

  it('validate prints the same notes', () => {
    const r = cli('validate', '-f', `${dir}/overlays/dev`, `${dir}/base`);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `note: ${dir}/overlays/dev/kustomization.yml: -: .: ${kustomizeNote('Kustomization', `${dir}/overlays/dev`, 'patch-web.yaml, replicas.json, settings.yaml')}\n` +
        `note: ${dir}/base/kustomization.yaml: -: .: ${kustomizeNote('Kustomization', `${dir}/base`)}\n`,
    );
    expect(r.stdout).toBe('ok: 1 Sandbox, 0 RouteGroups, forks checked against 1 Deployments\n');
  });

  it('a chart kustomize inflates (helmCharts) is its input: skipped in the note, not a chart problem', () => {
    const helm = `${INPUTS}kustomize-helm`;
    const input = loadInputs([helm], 'default');
    expect(input.problems).toEqual([]);
    expect(input.notes).toEqual([
      { file: `${helm}/kustomization.yaml`, path: '', message: kustomizeNote('Kustomization', helm, 'charts/web/Chart.yaml, charts/web/templates/cm.yaml') },
    ]);
    expect(refs(input)).toEqual(['ConfigMap default/extra']);
  });

  it('a Kustomization object in a file of another name is skipped with the note; the rest of the file is read', () => {
    const input = loadInputs([`${INPUTS}kustomize-object.yaml`], 'default');
    expect(input.problems).toEqual([]);
    expect(input.notes).toEqual([{ file: `${INPUTS}kustomize-object.yaml:2`, path: '', message: kustomizeNote('Kustomization', dirname(`${INPUTS}kustomize-object.yaml`)) }]);
    expect(refs(input)).toEqual(['ConfigMap default/kept']);
  });

  it('a kustomization named directly is skipped the same way', () => {
    const file = `${dir}/base/kustomization.yaml`;
    const input = loadInputs([file, `${dir}/base/web.yaml`], 'default');
    expect(input.problems).toEqual([]);
    expect(input.notes).toEqual([{ file, path: '', message: kustomizeNote('Kustomization', `${dir}/base`) }]);
    expect(refs(input)).toEqual(['Deployment default/web', 'Service default/web']);
  });
});

describe('kustomization files are hostile input like any other', () => {
  const dir = `${INPUTS}kustomize-bad`;

  it('a kustomization that does not parse is a problem (its patches would otherwise be read as objects)', () => {
    expectRejected(cli('validate', '-f', `${dir}/broken`), [`${dir}/broken/kustomization.yaml:3:1: -: .: YAML: Map keys must be unique`]);
  });

  it('fields of the wrong shape name no file; a path that leaves and re-enters the directory does', () => {
    const input = loadInputs([`${dir}/shapes`], 'default');
    expect(input.problems).toEqual([]);
    expect(input.notes).toEqual([{ file: `${dir}/shapes/kustomization.yaml`, path: '', message: kustomizeNote('Kustomization', `${dir}/shapes`, 'cm.yaml') }]);
    expect(refs(input)).toEqual(['ConfigMap default/shapes-kept']);
  });

});

describe('Helm chart directories (our own)', () => {
  const chart = `${INPUTS}chart`;

  it('one problem per chart file, with the helm template hint; nothing written', () => {
    expectRejected(cli('synth', '-f', chart), [
      `${chart}/Chart.yaml: -: .: ${chartProblem(chart, "the chart's metadata")}`,
      `${chart}/rendered.yaml: -: .: ${chartProblem(chart, 'part of the chart')}`,
      `${chart}/templates/deployment.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`,
      `${chart}/values.yaml: -: .: ${chartProblem(chart, 'chart values')}`,
    ]);
  });

  it('a directory or template inside the chart names the chart', () => {
    expectRejected(cli('validate', '-f', `${chart}/templates`, `${chart}/values.yaml`), [
      `${chart}/templates/deployment.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`,
      `${chart}/values.yaml: -: .: ${chartProblem(chart, 'chart values')}`,
    ]);
    expectRejected(cli('validate', '-f', `${chart}/templates/deployment.yaml`), [`${chart}/templates/deployment.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`]);
  });

  it('helm template output named directly is a manifest, even inside the chart directory', () => {
    const input = loadInputs([`${chart}/rendered.yaml`], 'default');
    expect(input.problems).toEqual([]);
    expect(refs(input)).toEqual(['ConfigMap default/rendered']);
  });
});

describe('kind: List and <Kind>List, flattened like kubectl', () => {
  it('each item is an object with its own apiVersion and kind, namespaced per item; nested lists too; typed list items default their kind', () => {
    const input = loadInputs([`${INPUTS}list.yaml`], 'team');
    expect(input.problems).toEqual([]);
    expect(input.complete).toBe(true);
    expect(Object.fromEntries(input.sources)).toEqual({
      'Deployment team/web': `${INPUTS}list.yaml:6`,
      'Service team/web': `${INPUTS}list.yaml:14`,
      'ConfigMap other/nested': `${INPUTS}list.yaml:21`,
      'Sandbox team/demo': `${INPUTS}list.yaml:24`,
      'Service team/api': `${INPUTS}list.yaml:33`,
      'ConfigMap team/typed': `${INPUTS}list.yaml:35`,
    });
    expect(input.inventory.services.find((s) => s.metadata.name === 'api')).toEqual({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'api', namespace: 'team' },
      spec: { selector: { app: 'api' }, ports: [{ port: 80 }] },
    });
    expect(input.sandboxes.map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).toEqual(['team/demo']);
  });

  it('synth plans a Sandbox and baseline given as one List', () => {
    const r = cli('synth', '-f', `${INPUTS}list.yaml`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('name: web-demo\n');
  });

  it('problems point at the item: its line and items[i] field path', () => {
    const file = `${INPUTS}list-bad.yaml`;
    expectRejected(cli('validate', '-f', file), [
      `${file}:8: Deployment: items[1].metadata.name: required field is missing`,
      `${file}:11: List: items[2]: must be a Kubernetes object, not the string "just text"`,
      `${file}:12: -: items[3].apiVersion: required field is missing`,
      `${file}:14: -: items[4].apiVersion: required field is missing`,
      `${file}:18: ConfigMap default/fine: metadata.name: defined twice (also in ${file}:5)`,
      `${file}:22: ConfigMapList: items: must be a list of objects, not an object`,
    ]);
  });
});

describe('header names are case-insensitive', () => {
  const base = `${INPUTS}list.yaml`;
  const lower = cli('synth', '--header', 'x-sandbox', '-f', base);

  it('--header X-Sandbox is lower-cased: the same output as x-sandbox', () => {
    expect(lower.code).toBe(0);
    expect(lower.stdout).toContain('x-sandbox');
    const upper = cli('synth', '--header', 'X-Sandbox', 'x-SANDBOX', '-f', base);
    expect(upper.stderr).toBe('');
    expect(upper.stdout).toBe(lower.stdout);
  });

  it('routing.headers in the config file too', () => {
    const r = cli('synth', '--config', `${INPUTS}config-headers.yaml`, '-f', base);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(lower.stdout);
  });

  it('reserved names in any case are refused as reserved; only ASCII letters are lower-cased (the Kelvin sign K is no "k")', () => {
    expectRejected(cli('synth', '--header', 'BAGGAGE', 'X-\u212Aey', '-f', base), [
      '<flags>: -: --header: "baggage" cannot be a plain routing-key header: meshfork reads the routing key from its "<keyName>=<key>" member (routing.keyName), never from the whole header; not allowed: baggage, tracestate, traceparent, host, content-length, te, connection, transfer-encoding, x-meshfork-preview-token',
      '<flags>: -: --header: "X-\u212Aey" must match ^[A-Za-z0-9][A-Za-z0-9-]{0,126}$ (letters are lower-cased)',
    ]);
  });
});

const samples = istioSamplesDir();
const kwok = moduleDir('kwok', 'sigs.k8s.io/kwok');
const kubernetes = moduleDir('kubernetes', 'k8s.io/kubernetes');

describe.skipIf(!requireModules(samples, kwok, kubernetes))('real layouts from the Go module cache', () => {
  it("Istio's samples/ambient-argo/tag-chart (a Helm chart): one problem per file, with the hint", () => {
    const chart = join(samples as string, 'ambient-argo/tag-chart');
    expectRejected(cli('synth', '-f', chart), [
      `${chart}/Chart.yaml: -: .: ${chartProblem(chart, "the chart's metadata")}`,
      `${chart}/templates/mutatingwebhooks.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`,
      `${chart}/templates/shimservice.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`,
      `${chart}/templates/validatingwebhook.yaml: -: .: ${chartProblem(chart, 'a Go template, not YAML')}`,
      `${chart}/values.yaml: -: .: ${chartProblem(chart, 'chart values')}`,
    ]);
  });

  it("KWOK's kustomize/kwok: the configMapGenerator file is not read; the Deployment and Service are", () => {
    const dir = join(kwok as string, 'kustomize/kwok');
    const input = loadInputs([dir], 'default');
    expect(input.problems).toEqual([]);
    expect(input.notes).toEqual([{ file: `${dir}/kustomization.yaml`, path: '', message: kustomizeNote('Kustomization', dir, 'kwok.yaml') }]);
    expect(refs(input)).toEqual(['Deployment default/kwok-controller', 'Service default/kwok-controller']);
  });

  it("Kubernetes' hack/testdata/kustomize (kubectl's own test layout, no apiVersion/kind in the kustomization)", () => {
    const dir = join(kubernetes as string, 'hack/testdata/kustomize');
    const r = cli('validate', '-f', dir);
    expect(r.stderr).toBe(`note: ${dir}/kustomization.yaml: -: .: ${kustomizeNote('Kustomization', dir)}\n`);
    expect(r.stdout).toBe('ok: 0 Sandboxes, 0 RouteGroups, forks checked against 1 Deployments\n');
    expect(refs(loadInputs([dir], 'default'))).toEqual(['ConfigMap default/the-map', 'Deployment default/the-deployment', 'Service default/the-service']);
  });
});

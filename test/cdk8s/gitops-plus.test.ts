/**
 * examples/gitops-plus: Bookinfo written with cdk8s-plus-34 plus one MeshforkChart with two
 * sandboxes, synthesized by the real cdk8s CLI (offline, see support.ts). Two references:
 * - `meshfork synth` on the YAML the Bookinfo chart emits (in an app without meshfork): the
 *   MeshforkChart's file holds exactly its objects except the merged `reviews` VirtualService,
 *   which the Bookinfo chart (it defines it) emits instead; every other object of that chart is
 *   unchanged (docs/adr/0017-cdk8s-baseline-from-the-app.md);
 * - `meshfork synth` on Istio's own Bookinfo YAML (../shared/fixtures/bookinfo): the same
 *   routing objects; fork Deployments differ from it only where cdk8s-plus adds pod defaults.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { Sandbox, type KubeObject } from '../../src/cdk8s/index.js';
import { bookinfo } from '../../examples/gitops-plus/bookinfo.js';
import { sandboxes } from '../../examples/gitops-plus/sandboxes.js';
import { cdk8sSynth, cliSynth, documents, REPO, writeTempYaml } from './support.js';

const FIXTURES = new URL('../../../shared/fixtures/bookinfo/', import.meta.url).pathname;
const ISTIO_BOOKINFO = ['bookinfo.yaml', 'destination-rule-all.yaml', 'virtual-service-reviews-test-v2.yaml'].map((f) => join(FIXTURES, f));
const NAMESPACE = 'bookinfo';

type Obj = KubeObject & { spec?: any };
const id = (o: KubeObject) => `${o.kind} ${o.metadata.name}`;
const byName = <T extends { name: string }>(list: readonly T[] | undefined) => [...(list ?? [])].sort((a, b) => a.name.localeCompare(b.name));

const ADDR_LABEL = 'cdk8s.io/metadata.addr';
/** `value` without the pod label cdk8s-plus adds (wherever pod labels are copied: fork templates, EnvoyFilter selectors). */
function withoutAddrLabel<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (key, v) => (key === ADDR_LABEL ? undefined : v)) as T;
}

/**
 * What Bookinfo's YAML states about an object, in the form cdk8s-plus renders it: cdk8s-plus adds
 * pod and container defaults (dnsPolicy, restartPolicy, securityContext, strategy, ...) and the
 * `cdk8s.io/metadata.addr` pod label (nothing selects it here); those are left out, the rest is kept.
 */
function stated(o: Obj): unknown {
  const { metadata } = o;
  const meta = { name: metadata.name, labels: metadata.labels, annotations: metadata.annotations };
  if (o.kind === 'Service') return { kind: o.kind, meta, ports: o.spec.ports, selector: o.spec.selector };
  if (o.kind === 'ServiceAccount') return { kind: o.kind, meta };
  if (o.kind !== 'Deployment') return { kind: o.kind, meta, spec: o.spec };
  const pod = withoutAddrLabel(o.spec.template);
  return {
    kind: o.kind,
    meta,
    replicas: o.spec.replicas,
    selector: o.spec.selector,
    podMetadata: { labels: pod.metadata.labels, annotations: pod.metadata.annotations },
    serviceAccountName: pod.spec.serviceAccountName,
    containers: pod.spec.containers.map((c: any) => ({
      name: c.name,
      image: c.image,
      imagePullPolicy: c.imagePullPolicy,
      ports: c.ports,
      env: c.env,
      volumeMounts: byName(c.volumeMounts),
    })),
    volumes: byName(pod.spec.volumes),
  };
}

describe('cdk8s synth (cdk8s-cli) on examples/gitops-plus', () => {
  it('emits Bookinfo unchanged but for the merged VirtualService, and exactly the meshfork objects of `meshfork synth` on that YAML and on Istio\'s Bookinfo', { timeout: 90_000 }, async () => {
    const { outdir, stderr } = await cdk8sSynth(join(REPO, 'examples/gitops-plus'));
    expect(readdirSync(outdir)).toEqual(['bookinfo.k8s.yaml', 'sandboxes.k8s.yaml']);
    expect(stderr).toContain('sandbox bookinfo/alice-ratings: routing key alice2024');
    const emitted = (file: string) => documents(readFileSync(join(outdir, file), 'utf8'), '1.1') as Obj[];
    const [baselineOut, sandboxesOut] = [emitted('bookinfo.k8s.yaml'), emitted('sandboxes.k8s.yaml')];

    // Reference 1: the Bookinfo chart alone, and `meshfork synth` on its YAML plus the Sandboxes.
    const alone = Testing.synth(bookinfo(Testing.app(), NAMESPACE).chart) as Obj[];
    const app = Testing.app();
    const specs = sandboxes(app, NAMESPACE, bookinfo(app, NAMESPACE))
      .node.findAll()
      .filter((c): c is Sandbox => c instanceof Sandbox)
      .map((s) => s.toObject());
    expect(specs.map((s) => s.spec.forks[0]!.forkOf)).toEqual([
      { kind: 'Deployment', name: 'reviews-v2' },
      { kind: 'Deployment', name: 'ratings-v1' },
    ]);
    const sandboxYaml = writeTempYaml('sandboxes.yaml', specs);
    const expected = documents(cliSynth([writeTempYaml('bookinfo.yaml', alone), sandboxYaml])) as Obj[];
    const merged = expected.find((o) => id(o) === 'VirtualService reviews')!;
    expect(merged.spec.http.map((r: { name?: string }) => r.name)).toEqual(['meshfork-pr-42-0', undefined, 'meshfork-pr-42-1', undefined]);
    expect(sandboxesOut).toEqual(expected.filter((o) => o !== merged));
    expect(baselineOut).toEqual(alone.map((o) => (id(o) === 'VirtualService reviews' ? merged : o)));

    // Reference 2: Istio's Bookinfo YAML. The app's baseline states the same, ...
    const istio = ISTIO_BOOKINFO.flatMap((f) => documents(readFileSync(f, 'utf8'))) as Obj[];
    expect(alone.map(id).sort()).toEqual(istio.map(id).sort());
    const statedOf = (list: Obj[]) => new Map(list.map((o) => [id(o), stated(o)]));
    expect(statedOf(alone)).toEqual(statedOf(istio.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: NAMESPACE } }))));
    // ... so `meshfork synth` on it gives the same routing objects, and forks that state the same.
    const fromIstio = documents(cliSynth([...ISTIO_BOOKINFO, sandboxYaml], ['-n', NAMESPACE])) as Obj[];
    expect(expected.map(id)).toEqual(fromIstio.map(id));
    expect(withoutAddrLabel(expected.filter((o) => o.kind !== 'Deployment'))).toEqual(fromIstio.filter((o) => o.kind !== 'Deployment'));
    expect(expected.filter((o) => o.kind === 'Deployment').map(stated)).toEqual(fromIstio.filter((o) => o.kind === 'Deployment').map(stated));
  });
});

/**
 * MeshforkChart with its baseline taken from the cdk8s app itself (docs/adr/0017-cdk8s-baseline-from-the-app.md):
 * other charts' ApiObjects (cdk8s-plus resources, `Include`d YAML, ApiObjects of Istio kinds),
 * rendered at synthesis as their charts render them. The reference is always `meshfork synth` on
 * the YAML those charts emit.
 */
import { ApiObject, Chart, Include, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import type { Construct } from 'constructs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectBaseline } from '../../src/cdk8s/baseline.js';
import { MeshforkChart, readManifests, Sandbox, type KubeObject } from '../../src/cdk8s/index.js';
import { BOOKINFO, cliSynth, documents, thrown, writeTempYaml } from './support.js';

const quiet = { onNotes: () => {} };
const BASELINE_YAML = join(BOOKINFO, 'baseline.yaml');
const starRatings = () => readManifests(join(BOOKINFO, 'sandbox.yaml')).sandboxes;

/** A reviews baseline in cdk8s-plus: the Service and two Deployments of examples/bookinfo, the second with a generated name. */
function reviewsChart(scope: Construct, id = 'bookinfo') {
  const chart = new Chart(scope, id);
  const service = new kplus.Service(chart, 'reviews', { metadata: { name: 'reviews', labels: { app: 'reviews' } }, ports: [{ name: 'http', port: 9080 }] });
  service.selectLabel('app', 'reviews');
  const deployment = (cid: string, version: string, name?: string) => {
    const d = new kplus.Deployment(chart, cid, {
      metadata: { ...(name !== undefined ? { name } : {}), labels: { app: 'reviews', version } },
      select: false,
      podMetadata: { labels: { app: 'reviews', version } },
      securityContext: { ensureNonRoot: false },
      containers: [{ name: 'reviews', image: `registry.istio.io/release/examples-bookinfo-reviews-${version}:1.20.3`, ports: [{ number: 9080 }], securityContext: { ensureNonRoot: false } }],
    });
    d.select(kplus.LabelSelector.of({ labels: { app: 'reviews', version } }));
    return d;
  };
  return { chart, v1: deployment('reviews-v1', 'v1', 'reviews-v1'), v2: deployment('reviews-v2', 'v2') };
}

const names = (objects: readonly unknown[]) => (objects as KubeObject[]).map((o) => `${o.kind} ${o.metadata.name}`);

describe('MeshforkChart baseline from the app: cdk8s-plus constructs', () => {
  it('forks kplus Deployments by name and by construct (generated name): exactly `meshfork synth` on the YAML the baseline chart emits, which stays unchanged', () => {
    const app = Testing.app();
    const { chart: base, v2 } = reviewsChart(app);
    const chart = new MeshforkChart(app, 'sandboxes', quiet);
    new Sandbox(chart, 'pr-7', { forks: [{ forkOf: { name: 'reviews-v1' }, customizations: { images: [{ image: 'ghcr.io/example/reviews:pr-7' }] } }] });
    const pr42 = new Sandbox(chart, 'pr-42', { forks: [{ forkOf: v2 }] });
    expect(v2.name).toMatch(/^bookinfo-reviews-v2-c8[0-9a-f]{6}$/);
    expect(pr42.toObject().spec.forks).toEqual([{ forkOf: { kind: 'Deployment', name: v2.name } }]);

    const baseline = Testing.synth(base);
    const control = Testing.synth(reviewsChart(Testing.app()).chart); // the same chart in an app without meshfork
    expect(baseline).toEqual(control);
    const sandboxes = chart.node.findAll().filter((c): c is Sandbox => c instanceof Sandbox).map((s) => s.toObject());
    const expected = documents(cliSynth([writeTempYaml('baseline.yaml', baseline), writeTempYaml('sandboxes.yaml', sandboxes)]));
    const objects = Testing.synth(chart);
    expect(names(objects)).toEqual([
      `Deployment ${v2.name}-pr-42`,
      'Deployment reviews-v1-pr-7',
      'Service reviews-pr-42',
      'Service reviews-pr-7',
      `EnvoyFilter ${v2.name}-pr-42-affinity`,
      'EnvoyFilter reviews-v1-pr-7-affinity',
      'VirtualService reviews-meshfork',
    ]);
    expect(objects).toEqual(expected);
  });

  it('forkOf an apps/v1 Deployment ApiObject (here from Include) in a chart of another namespace: its name and that namespace', () => {
    const app = Testing.app();
    const base = new Chart(app, 'shop', { namespace: 'shop' });
    new Include(base, 'baseline', { url: BASELINE_YAML });
    const chart = new MeshforkChart(app, 'sandboxes', { config: { policy: { forkNamespaces: ['shop'] } }, ...quiet });
    const v3 = base.node.findAll().find((c): c is ApiObject => ApiObject.isApiObject(c) && c.kind === 'Deployment' && c.name === 'reviews-v3')!;
    const sandbox = new Sandbox(chart, 'pr-9', { forks: [{ forkOf: v3 }] });
    expect(sandbox.toObject().spec.forks).toEqual([{ forkOf: { kind: 'Deployment', name: 'reviews-v3', namespace: 'shop' } }]);
    expect(names(Testing.synth(chart))).toContain('Deployment reviews-v3-pr-9');
  });

  it('a forkOf construct that is no Deployment is refused at construction; one outside the baseline at synthesis', () => {
    const app = Testing.app();
    const { chart: base, v1 } = reviewsChart(app);
    const chart = new MeshforkChart(app, 'sandboxes', { baseline: [v1], ...quiet });
    const service = base.node.findChild('reviews');
    expect(() => new Sandbox(chart, 'bad', { forks: [{ forkOf: service }] })).toThrow(
      'sandboxes/bad: Sandbox default/bad: spec.forks[0].forkOf: "bookinfo/reviews" is a v1 Service, not an apps/v1 Deployment',
    );
    expect(chart.node.tryFindChild('bad')).toBeUndefined();
    new Sandbox(chart, 'outside', { forks: [{ forkOf: base.node.findChild('reviews-v2') }] });
    expect(() => Testing.synth(chart)).toThrow(
      'sandboxes/outside: Sandbox default/outside: spec.forks[0].forkOf: "bookinfo/reviews-v2/Resource" is not part of the baseline of MeshforkChart "sandboxes" (its `baseline` prop)',
    );
  });
});

describe('collectBaseline', () => {
  it('gives namespace-less objects the default namespace, but not Namespaces (cluster-scoped)', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'base');
    new ApiObject(chart, 'ns', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } } });
    new ApiObject(chart, 'svc', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'cart' }, spec: { selector: { app: 'cart' } } });
    const { objects, problems } = collectBaseline(new Chart(app, 'other'), [chart], 'shop', new Set());
    expect(problems).toEqual([]);
    expect(objects.map((b) => b.object.metadata)).toEqual([
      { name: 'shop', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      { name: 'cart', namespace: 'shop' },
    ]);
  });
});

describe('MeshforkChart baseline from the app: a user VirtualService is emitted, merged, by the chart that defines it', () => {
  /** The app of examples/bookinfo, its baseline.yaml brought in with cdk8s' Include. */
  function includedApp() {
    const app = Testing.app();
    const base = new Chart(app, 'bookinfo');
    new Include(base, 'baseline', { url: BASELINE_YAML });
    const chart = new MeshforkChart(app, 'sandboxes', { sandboxes: starRatings(), ...quiet });
    return { app, base, chart };
  }

  it('Include: the meshfork chart emits `meshfork synth` minus the VirtualService; the baseline chart emits the rest of its YAML unchanged and the VirtualService merged', () => {
    const expected = documents(cliSynth([BOOKINFO])) as KubeObject[];
    const merged = expected.find((o) => o.kind === 'VirtualService')!;
    expect(merged.metadata.annotations?.['meshfork.dev/merged-routes']).toBe('2');
    const { base, chart } = includedApp();
    // The baseline chart first: synthesizing any chart plans the whole app (cdk8s validates the App first).
    const baseObjects = Testing.synth(base) as KubeObject[];
    const { namespace: _ns, ...mergedMetadata } = merged.metadata;
    expect(baseObjects).toEqual(documents(readFileSync(BASELINE_YAML, 'utf8')).map((o) => ((o as KubeObject).kind === 'VirtualService' ? { ...merged, metadata: mergedMetadata } : o)));
    expect(Testing.synth(chart)).toEqual(expected.filter((o) => o !== merged));
  });

  it('App.synth (one file per chart) writes the same, each object once', () => {
    const { app } = includedApp();
    const yaml = app.synthYaml();
    const all = documents(yaml, '1.1') as KubeObject[];
    expect(all.filter((o) => o.kind === 'VirtualService').map((o) => o.metadata.name)).toEqual(['reviews']);
    expect(all.filter((o) => o.kind === 'VirtualService')[0]!.spec).toEqual((documents(cliSynth([BOOKINFO])) as KubeObject[]).find((o) => o.kind === 'VirtualService')!.spec);
  });

  it('an object defined twice (two charts, or a chart and the inventory prop) is refused, naming both', () => {
    const { app } = includedApp();
    const other = new Chart(app, 'copy');
    new Include(other, 'again', { url: BASELINE_YAML });
    const error = thrown(() => app.synthYaml());
    expect(error.problems.map((p) => `${p.file}: ${p.object}: ${p.path}: ${p.message}`)).toContain(
      'sandboxes: VirtualService default/reviews: metadata.name: defined twice in the baseline, by "bookinfo/baseline/reviews-virtualservice" and by "copy/again/reviews-virtualservice"; keep one, so that one chart emits it',
    );

    const app2 = Testing.app();
    new ApiObject(new Chart(app2, 'routes'), 'reviews', { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } });
    const input = readManifests(BOOKINFO);
    const chart = new MeshforkChart(app2, 'sandboxes', { inventory: input.inventory, baseline: 'app', sandboxes: input.sandboxes, ...quiet });
    expect(() => Testing.synth(chart)).toThrow(
      'sandboxes: VirtualService default/reviews: metadata.name: defined twice, in the chart\'s inventory and by "routes/reviews"; keep one, so that one chart emits it',
    );
  });

  it('two MeshforkCharts may not merge into the same baseline VirtualService', () => {
    const { app } = includedApp();
    new MeshforkChart(app, 'more', { sandboxes: [{ name: 'other', forks: [{ forkOf: { name: 'reviews-v1' } }] }], ...quiet });
    expect(() => app.synthYaml()).toThrow(/MeshforkChart "sandboxes" already merges its sandboxes into "bookinfo\/baseline\/reviews-virtualservice"; plan every sandbox of a host in one MeshforkChart/);
  });
});

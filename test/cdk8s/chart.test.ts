import { App, JsonPatch, Testing, YamlOutputType } from 'cdk8s';
import { Construct } from 'constructs';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeshforkChart, PlannedObject, readManifests, RouteGroup, Sandbox, type KubeObject, type SandboxProps } from '../../src/cdk8s/index.js';
import { BOOKINFO, cliSynth, documents, thrown, writeTempYaml, yamlOf } from './support.js';

const quiet = { onNotes: () => {} };
const bookinfo = () => readManifests(BOOKINFO);

/** The spec of examples/bookinfo/sandbox.yaml, as construct props. */
const starRatings: SandboxProps = {
  labels: { team: 'reviews' },
  description: 'Try the new star rendering of reviews-v3.',
  routingKey: 'k7f3q9',
  ttl: { duration: '8h' },
  forks: [
    {
      forkOf: { kind: 'Deployment', name: 'reviews-v3' },
      customizations: { images: [{ image: 'ghcr.io/example/reviews:star-ratings' }], env: [{ name: 'STAR_COLOR', value: 'gold' }] },
    },
  ],
};

const forkOf = (name: string, image?: string): SandboxProps['forks'][number] => ({
  forkOf: { kind: 'Deployment', name },
  ...(image ? { customizations: { images: [{ image }] } } : {}),
});

describe('MeshforkChart: golden output equals `meshfork synth`', () => {
  const expected = cliSynth([BOOKINFO]);

  it('inventory and Sandbox from examples/bookinfo give byte-identical YAML and equal documents', () => {
    const input = bookinfo();
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: input.inventory, sandboxes: input.sandboxes, ...quiet });
    const synthesized = Testing.synth(chart);
    expect(synthesized.map((o: KubeObject) => `${o.kind} ${o.metadata.name}`)).toEqual([
      'Deployment reviews-v3-star-ratings',
      'Service reviews-star-ratings',
      'DestinationRule reviews-star-ratings',
      'EnvoyFilter reviews-v3-star-ratings-affinity',
      'VirtualService reviews',
    ]);
    expect(synthesized).toEqual(documents(expected));
    expect(yamlOf(synthesized)).toBe(expected);
  });

  it('golden file: the examples/gitops chart (regenerate with `vitest run test/cdk8s -u`)', async () => {
    const { bookinfoChart } = await import('../../examples/gitops/chart.js');
    const chart = bookinfoChart(Testing.app());
    await expect(yamlOf(Testing.synth(chart))).toMatchFileSnapshot('__snapshots__/gitops-bookinfo.k8s.yaml');
  });

  it('the same Sandbox declared with the construct gives the same output', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    const sandbox = new Sandbox(chart, 'star-ratings', starRatings);
    expect(sandbox.routingKey).toBe('k7f3q9');
    expect(sandbox.namespace).toBe('default');
    expect(yamlOf(Testing.synth(chart))).toBe(expected);
  });

  it('App.synth() writes the planner objects, whatever the output layout', () => {
    const outdir = Testing.app().outdir;
    const app = new App({ outdir, yamlOutputType: YamlOutputType.FOLDER_PER_CHART_FILE_PER_RESOURCE });
    new Sandbox(new MeshforkChart(app, 'bookinfo', { inventory: bookinfo().inventory, ...quiet }), 'star-ratings', starRatings);
    app.synth();
    const files = readdirSync(join(outdir, 'bookinfo')).sort();
    expect(files).toEqual([
      'Deployment.reviews-v3-star-ratings.k8s.yaml',
      'DestinationRule.reviews-star-ratings.k8s.yaml',
      'EnvoyFilter.reviews-v3-star-ratings-affinity.k8s.yaml',
      'Service.reviews-star-ratings.k8s.yaml',
      'VirtualService.reviews.k8s.yaml',
    ]);
    const vs = documents(readFileSync(join(outdir, 'bookinfo', 'VirtualService.reviews.k8s.yaml'), 'utf8'), '1.1');
    expect(vs).toEqual(documents(expected).filter((o) => (o as KubeObject).kind === 'VirtualService'));
  });
});

describe('MeshforkChart: Gateway API routing (ADR 0013)', () => {
  it('an inventory with Service-attached HTTPRoutes/GRPCRoutes and an ambient Namespace gives the derived routes `meshfork synth` gives', () => {
    const dir = new URL('../golden/inputs/gateway-api-rules/', import.meta.url).pathname;
    const input = readManifests(dir);
    const chart = new MeshforkChart(Testing.app(), 'shop', { inventory: input.inventory, sandboxes: input.sandboxes, ...quiet });
    const synthesized = Testing.synth(chart);
    expect(synthesized.filter((o: KubeObject) => o.apiVersion === 'gateway.networking.k8s.io/v1').map((o: KubeObject) => `${o.kind} ${o.metadata.name}`)).toEqual([
      'HTTPRoute checkout-pr-77-8080',
      'HTTPRoute checkout-v2-pr-77',
      'HTTPRoute payments-pr-77',
      'GRPCRoute catalog-pr-77-9090',
    ]);
    expect(yamlOf(synthesized)).toBe(cliSynth([dir]));
  });

  it('Gateway API schema errors in the output fail synthesis (a bad user rule is carried into the derived route)', () => {
    const dir = new URL('../golden/inputs/gateway-api-rules/', import.meta.url).pathname;
    const input = readManifests(dir);
    const routes = input.inventory.gatewayRoutes!.map((r) => structuredClone(r) as KubeObject & { spec: { rules: Array<Record<string, unknown>> } });
    const checkout = routes.find((r) => r.kind === 'HTTPRoute' && r.metadata.name === 'checkout')!;
    checkout.spec.rules[0]!.timeouts = { request: 10 }; // Gateway API wants a duration string
    checkout.spec.rules[0]!.filters = [{ type: 'Teleport' }];
    const chart = new MeshforkChart(Testing.app(), 'shop', { inventory: { ...input.inventory, gatewayRoutes: routes }, sandboxes: input.sandboxes, ...quiet });
    const error = thrown(() => Testing.synth(chart));
    expect(error.problems.map((p) => `${p.object}: ${p.path}: ${p.message}`)).toEqual([
      'HTTPRoute shop/checkout-pr-77-8080: spec.rules[0].filters[0].type: Gateway API schema: must be equal to one of the allowed values',
      'HTTPRoute shop/checkout-pr-77-8080: spec.rules[0].timeouts.request: Gateway API schema: must be string',
    ]);
  });
});

describe('MeshforkChart: one plan across all sandboxes', () => {
  it('two Sandbox constructs forking workloads of the same host yield ONE merged VirtualService', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    new Sandbox(chart, 'alice', { forks: [forkOf('reviews-v3', 'ghcr.io/example/reviews:alice')] });
    // Nested in a user construct: still found.
    new Sandbox(new Construct(chart, 'team'), 'bob', { forks: [forkOf('reviews-v1', 'ghcr.io/example/reviews:bob')] });
    const objects = Testing.synth(chart) as KubeObject[];
    const virtualServices = objects.filter((o) => o.kind === 'VirtualService');
    expect(virtualServices).toHaveLength(1);
    const routes = (virtualServices[0]!.spec as { http: Array<{ name: string }> }).http.map((r) => r.name);
    expect(routes).toEqual(['meshfork-alice-0', 'meshfork-bob-0', 'test-user', 'meshfork-alice-1', 'meshfork-bob-1', 'default']);

    // ... and exactly what the CLI gives for the same two Sandboxes.
    const specs = chart.node.findAll().filter((c): c is Sandbox => c instanceof Sandbox).map((s) => s.toObject());
    const expected = cliSynth([join(BOOKINFO, 'baseline.yaml'), writeTempYaml('sandboxes.yaml', specs)]);
    expect(yamlOf(objects)).toBe(expected);
  });

  it('without a user VirtualService, the two sandboxes share one meshfork-owned VirtualService', () => {
    const input = bookinfo().inventory;
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: { ...input, virtualServices: [] }, ...quiet });
    new Sandbox(chart, 'alice', { forks: [forkOf('reviews-v3')] });
    new Sandbox(chart, 'bob', { forks: [forkOf('reviews-v3')] });
    const virtualServices = (Testing.synth(chart) as KubeObject[]).filter((o) => o.kind === 'VirtualService');
    expect(virtualServices.map((v) => v.metadata.name)).toEqual(['reviews-meshfork']);
    const http = (virtualServices[0]!.spec as { http: Array<{ name?: string }> }).http;
    expect(http.filter((r) => r.name?.startsWith('meshfork-alice')).length).toBeGreaterThan(0);
    expect(http.filter((r) => r.name?.startsWith('meshfork-bob')).length).toBeGreaterThan(0);
  });

  it('plans once: synthesizing twice gives the same objects, and specs added afterwards throw', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, sandboxes: bookinfo().sandboxes, ...quiet });
    const first = Testing.synth(chart);
    expect(Testing.synth(chart)).toEqual(first);
    expect(chart.node.children.filter((c) => c instanceof PlannedObject)).toHaveLength(first.length);
    expect(() => new Sandbox(chart, 'late', { forks: [forkOf('reviews-v1')] })).toThrow(/added after MeshforkChart "bookinfo" was synthesized/);
  });

  it('RouteGroups plan with their member sandboxes', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    new Sandbox(chart, 'alice', { labels: { team: 'reviews' }, forks: [forkOf('reviews-v3')] });
    const group = new RouteGroup(chart, 'reviews-team', { routingKey: 'team1234', match: { label: { key: 'team', value: 'reviews' } } });
    expect(group.routingKey).toBe('team1234');
    expect(chart.plan().routeGroupKeys).toEqual([{ namespace: 'default', name: 'reviews-team', routingKey: 'team1234', members: ['alice'] }]);
    expect(JSON.stringify(Testing.synth(chart))).toContain('team1234');
  });

  it('config is the --config document: signadot compatibility equals `meshfork synth --compat signadot`', () => {
    const input = bookinfo();
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: input.inventory, sandboxes: input.sandboxes, config: { routing: { compat: 'signadot' } }, ...quiet });
    expect(yamlOf(Testing.synth(chart))).toBe(cliSynth([BOOKINFO], ['--compat', 'signadot']));
  });

  it('notes go to onNotes once', () => {
    const input = bookinfo().inventory;
    const gatewayOnly = { ...input.virtualServices[0]!, spec: { ...(input.virtualServices[0]!.spec as object), gateways: ['bookinfo-gateway'] } };
    const notes: string[] = [];
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: { ...input, virtualServices: [gatewayOnly] }, onNotes: (n) => notes.push(...n.map((p) => `${p.object}: ${p.path}`)) });
    new Sandbox(chart, 'alice', { forks: [forkOf('reviews-v3')] });
    Testing.synth(chart);
    Testing.synth(chart);
    expect(notes).toEqual(['VirtualService default/reviews: spec.gateways']);
  });

  it("userVirtualServices: 'all' keeps every user VirtualService in the output, merged or as written", () => {
    const input = bookinfo();
    const userVs = input.inventory.virtualServices[0]!;
    // No sandbox: the user's VirtualService alone (a stale meshfork route is stripped).
    const stale = structuredClone(userVs) as KubeObject & { spec: { http: Array<Record<string, unknown>> } };
    stale.spec.http.unshift({ name: 'meshfork-gone-0', route: [{ destination: { host: 'reviews-gone' } }] });
    const empty = new MeshforkChart(Testing.app(), 'empty', { inventory: { ...input.inventory, virtualServices: [stale] }, userVirtualServices: 'all', ...quiet });
    expect(Testing.synth(empty)).toEqual([userVs]);
    // With a sandbox: the merged one, once, exactly as `meshfork synth`.
    const merged = new MeshforkChart(Testing.app(), 'merged', { inventory: input.inventory, sandboxes: input.sandboxes, userVirtualServices: 'all', ...quiet });
    expect(yamlOf(Testing.synth(merged))).toBe(cliSynth([BOOKINFO]));
  });

  it('PlannedObject keeps the cdk8s JSON-patch escape hatch', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, sandboxes: bookinfo().sandboxes, ...quiet });
    chart.plan();
    const deployment = chart.node.children.find((c): c is PlannedObject => c instanceof PlannedObject && c.kind === 'Deployment')!;
    deployment.addJsonPatch(JsonPatch.replace('/spec/replicas', 2));
    expect((Testing.synth(chart)[0] as { spec: { replicas: number } }).spec.replicas).toBe(2);
  });
});

describe('MeshforkChart: bad input throws an InputError naming every field', () => {
  it('an invalid Sandbox spec throws at construction, listing every problem with its field path', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    const error = thrown(
      () =>
        new Sandbox(chart, 'bad', {
          routingKey: 'NOT-A-KEY',
          forks: [{ forkOf: { kind: 'Deployment', name: 'Reviews_V3' } }],
        }),
    );
    const lines = error.message.split('\n');
    expect(lines).toContain('bookinfo/bad: Sandbox default/bad: spec.routingKey: must match ^[a-z0-9]{4,32}$');
    expect(lines.some((l) => l.startsWith('bookinfo/bad: Sandbox default/bad: spec.forks[0].forkOf.name: must match'))).toBe(true);
    expect(lines).toHaveLength(2);
    // The rejected spec leaves nothing behind: the chart still synthesizes.
    expect(chart.node.tryFindChild('bad')).toBeUndefined();
    expect(Testing.synth(chart)).toEqual([]);
  });

  it("rules beyond the JSON Schema (the CRD's CEL rules) are checked too", () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    expect(() => new Sandbox(chart, 'bad', { forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v3' }, customizations: { env: [{ name: 'STAR_COLOR' }] } }] })).toThrow(
      'bookinfo/bad: Sandbox default/bad: spec.forks[0].customizations.env[0]: upsert needs exactly one of value and valueFrom; delete takes neither',
    );
  });

  it('unknown props are reported as unknown spec fields', () => {
    const chart = new MeshforkChart(Testing.app(), 'c', { inventory: [], ...quiet });
    const props = { forks: [forkOf('reviews-v3')], fork: [] } as unknown as SandboxProps;
    expect(() => new Sandbox(chart, 'typo', props)).toThrow('c/typo: Sandbox default/typo: spec.fork: unknown field');
  });

  it('chart props: every bad sandbox, route group and config field in one error', () => {
    const error = thrown(
      () =>
        new MeshforkChart(Testing.app(), 'c', {
          inventory: [],
          config: { routing: { keyName: 'Bad Key' } },
          sandboxes: [{ forks: [forkOf('a')] }, { name: 'x', forks: [] }],
          routeGroups: [{ name: 'g', match: { label: { key: 'team', value: 'a' }, any: [] } }],
          ...quiet,
        } as never),
    );
    expect(error.problems.map((p) => `${p.object}: ${p.path}`)).toEqual([
      'config: routing.keyName',
      'sandboxes[0]: name',
      'Sandbox default/x: spec.forks',
      'RouteGroup default/g: spec.match',
      'RouteGroup default/g: spec.match.any',
    ]);
  });

  it('a fork of a Deployment missing from the inventory throws at synthesis, located at its construct', () => {
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: bookinfo().inventory, ...quiet });
    new Sandbox(chart, 'alice', { forks: [forkOf('ratings-v1')] });
    expect(() => Testing.synth(chart)).toThrow('bookinfo/alice: Sandbox default/alice: spec.forks[0].forkOf.name: Deployment "ratings-v1" not found in namespace "default"');
  });

  it('readManifests reports YAML and spec problems with file and line', () => {
    const file = writeTempYaml('bad.yaml', [{ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'x' }, spec: { forks: [] } }]);
    expect(() => readManifests(file)).toThrow(`${file}:2: Sandbox default/x: spec.forks: must NOT have fewer than 1 items`);
  });

  it('a chart with a malformed inventory or baseline throws, and leaves nothing in the App', () => {
    const app = Testing.app();
    expect(() => new MeshforkChart(app, 'c', { inventory: 'manifests/' } as never)).toThrow('c: inventory: .: must be a list of objects or an Inventory');
    expect(() => new MeshforkChart(app, 'c', { baseline: 'charts' } as never)).toThrow("c: baseline: .: must be 'app' or a list of constructs");
    expect(app.node.children).toEqual([]);
  });

  it('a Sandbox outside a MeshforkChart throws', () => {
    expect(() => new Sandbox(Testing.chart(), 'x', { forks: [forkOf('a')] })).toThrow('Sandbox "test/x" must be defined inside a MeshforkChart');
  });

  it('Istio schema errors in the output fail synthesis (a bad user route is carried into the merged VirtualService)', () => {
    const input = bookinfo().inventory;
    const vs = structuredClone(input.virtualServices[0]!) as KubeObject & { spec: { http: Array<Record<string, unknown>> } };
    vs.spec.http[1]!.timeout = 10; // Istio wants a duration string
    const chart = new MeshforkChart(Testing.app(), 'bookinfo', { inventory: { ...input, virtualServices: [vs] }, sandboxes: bookinfo().sandboxes, ...quiet });
    const error = thrown(() => Testing.synth(chart));
    expect(error.problems.map((p) => `${p.object}: ${p.path}: ${p.message}`)).toEqual([
      'VirtualService default/reviews: spec.http[2].timeout: Istio schema: must be string',
      'VirtualService default/reviews: spec.http[3].timeout: Istio schema: must be string',
    ]);
  });
});

describe('MeshforkChart: label-selected policies follow the fork (docs/adr/0010-policy-copies-follow-forks.md)', () => {
  const inputs = new URL('../security/inputs/policy-copies/', import.meta.url).pathname;
  const names = (objects: KubeObject[]) => objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`);

  it('a namespace-less DENY policy of the inventory takes the chart namespace and is copied ahead of the fork', () => {
    const input = readManifests([`${inputs}baseline.yaml`, `${inputs}sandbox.yaml`]);
    const deny: KubeObject = {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'deny-admin' },
      spec: { action: 'DENY', selector: { matchLabels: { app: 'cart' } }, rules: [{ to: [{ operation: { ports: ['8080'], paths: ['/admin*'] } }] }] },
    };
    for (const inventory of [{ ...input.inventory, policies: [deny] }, [...input.inventory.deployments, ...input.inventory.services, deny]]) {
      const chart = new MeshforkChart(Testing.app(), 'shop', { inventory, sandboxes: input.sandboxes, namespace: 'shop', ...quiet });
      const synthesized = Testing.synth(chart) as KubeObject[];
      expect(names(synthesized)).toEqual([
        'AuthorizationPolicy shop/deny-admin-cart-pr1',
        'Deployment shop/cart-pr1',
        'Service shop/cart-pr1',
        'EnvoyFilter shop/cart-pr1-affinity',
        'VirtualService shop/cart-meshfork',
      ]);
      expect(synthesized[0]!.spec).toEqual({
        action: 'DENY',
        rules: [{ to: [{ operation: { paths: ['/admin*'], ports: ['8080'] } }] }],
        selector: { matchLabels: { app: 'cart-pr1', 'meshfork.dev/sandbox': 'pr1', version: 'v1-pr1' } },
      });
    }
  });
});

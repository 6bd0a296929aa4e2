import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { cli, FIXTURES } from '../support/cli.js';
import { INVALID_SPECS, sandbox } from '../support/invalid-specs.js';

const BOOKINFO = FIXTURES + 'bookinfo/bookinfo.yaml';
const work = mkdtempSync(join(tmpdir(), 'meshfork-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let fileCount = 0;
function writeSpecs(...objects: Array<Record<string, unknown>>): string {
  const file = join(work, `specs-${++fileCount}.yaml`);
  writeFileSync(file, objects.map((o) => `---\n${stringify(o)}`).join(''));
  return file;
}

function expectRejected(result: ReturnType<typeof cli>, lines: string[]): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe('');
  const printed = result.stderr.trimEnd().split('\n');
  expect(printed.slice(0, -1)).toEqual(lines);
  expect(printed.at(-1)).toBe(`meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`);
}

const reviewsFork = { forkOf: { kind: 'Deployment', name: 'reviews-v3' } };

describe('meshfork synth rejects bad specs with the field path', () => {
  for (const c of INVALID_SPECS) {
    it(c.name, () => {
      const file = writeSpecs(c.object);
      const result = cli('synth', '-f', BOOKINFO, file);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      const kind = String(c.object['kind']);
      const name = String((c.object['metadata'] as { name: string }).name);
      expect(result.stderr).toContain(`${file}:2: ${kind} default/${name}: ${c.path}: ${c.message}`);
    });
  }
});

describe('meshfork synth rejects specs that do not fit the inventory', () => {
  it('a fork of a Deployment that does not exist', () => {
    const file = writeSpecs(sandbox('missing', { forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v9' } }] }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [`${file}:2: Sandbox default/missing: spec.forks[0].forkOf.name: Deployment "reviews-v9" not found in namespace "default"`]);
  });

  it('a Deployment in another namespace', () => {
    const file = writeSpecs(sandbox('other-ns', { forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v3', namespace: 'prod' } }] }));
    // Refused by policy before the inventory is consulted (policy.forkNamespaces is empty by default).
    expectRejected(cli('synth', '-f', BOOKINFO, file), [
      `${file}:2: Sandbox default/other-ns: spec.forks[0].forkOf.namespace: is "prod"; a Sandbox forks Deployments of its own namespace "default" and of those in policy.forkNamespaces (none)`,
    ]);
  });

  it('a container that does not exist', () => {
    const file = writeSpecs(sandbox('nocontainer', { forks: [{ ...reviewsFork, customizations: { images: [{ container: 'sidecar', image: 'x:1' }] } }] }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [
      `${file}:2: Sandbox default/nocontainer: spec.forks[0].customizations.images[0].container: container "sidecar" not found in Deployment "reviews-v3" (containers: reviews)`,
    ]);
  });

  it('a default-container annotation that names no container of the pod', () => {
    const file = writeSpecs(sandbox('badanno', { forks: [{ forkOf: { kind: 'Deployment', name: 'two' }, customizations: { images: [{ image: 'x:1' }] } }] }));
    const inventory = writeSpecs(twoContainers({ 'kubectl.kubernetes.io/default-container': 'c' }));
    expectRejected(cli('synth', '-f', inventory, file), [
      `${file}:2: Sandbox default/badanno: spec.forks[0].customizations.images[0].container: not given, and Deployment "two" has no default container: its pod template annotation kubectl.kubernetes.io/default-container names "c", which is not one of its containers (a, b); name the container`,
    ]);
  });

  it('the same workload forked twice in one sandbox', () => {
    const file = writeSpecs(sandbox('twice', { forks: [reviewsFork, reviewsFork] }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [`${file}:2: Sandbox default/twice: spec.forks[1].forkOf: Deployment default/reviews-v3 is already forked by spec.forks[0]`]);
  });

  it('two sandboxes of one RouteGroup forking the same workload', () => {
    const file = writeSpecs(
      sandbox('a', { forks: [reviewsFork] }, { labels: { team: 'x' } }),
      sandbox('b', { forks: [reviewsFork] }, { labels: { team: 'x' } }),
      { apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'team-x' }, spec: { match: { label: { key: 'team', value: 'x' } } } },
    );
    expectRejected(cli('synth', '-f', BOOKINFO, file), [`${file}:26: RouteGroup default/team-x: spec.match: members "a" and "b" both fork Deployment default/reviews-v3`]);
  });

  it('two sandboxes with the same routing key', () => {
    const file = writeSpecs(sandbox('a', { forks: [reviewsFork], routingKey: 'samekey1' }), sandbox('b', { forks: [{ forkOf: { kind: 'Deployment', name: 'ratings-v1' } }], routingKey: 'samekey1' }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [`${file}:13: Sandbox default/b: spec.routingKey: routing key "samekey1" is already used by Sandbox default/a`]);
  });

  it('a sandbox name that would overflow DNS-1123 limits', () => {
    const name = 'a-very-long-sandbox-name-for-testing-limits-0123456789';
    const file = writeSpecs(sandbox(name, { forks: [reviewsFork] }));
    const result = cli('synth', '-f', BOOKINFO, file);
    expectRejected(result, [
      `${file}:2: Sandbox default/${name}: spec.forks[0].forkOf.name: fork name "reviews-v3-${name}" is longer than 63 characters; shorten the sandbox name`,
    ]);
  });

  it('an invalid JSON patch operation', () => {
    const file = writeSpecs(sandbox('badop', { forks: [{ ...reviewsFork, customizations: { patch: { type: 'json', value: [{ op: 'add', path: '/spec/x', value: 1 }, { op: 'frobnicate', path: '/spec' }] } } }] }));
    const result = cli('synth', '-f', BOOKINFO, file);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${file}:2: Sandbox default/badop: spec.forks[0].customizations.patch.value[1]: OPERATION_OP_INVALID: Operation \`op\` property is not one of operations defined in RFC-6902\n`);
  });

  it('a JSON patch removing a path that does not exist', () => {
    const file = writeSpecs(sandbox('badpath', { forks: [{ ...reviewsFork, customizations: { patch: { type: 'json', value: [{ op: 'remove', path: '/spec/template/spec/nope' }] } } }] }));
    const result = cli('synth', '-f', BOOKINFO, file);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:2: Sandbox default/badpath: spec.forks[0].customizations.patch.value[0]: OPERATION_PATH_UNRESOLVABLE`);
  });

  it('a strategic merge patch on an unknown shape', () => {
    const cases: Array<[unknown, string]> = [
      [{ spec: { template: { spec: { containers: { name: 'reviews' } } } } }, 'spec.template.spec.containers: is a list in the Deployment, the patch gives an object'],
      [{ spec: { template: { spec: { containers: [{ image: 'x' }] } } } }, 'spec.template.spec.containers[0]: list element needs its merge key "name"'],
      [{ spec: { template: { spec: { widgets: [{ a: 1 }] } } } }, 'spec.template.spec.widgets: unknown list "widgets" in a Deployment; use a json patch to change it'],
      [{ spec: { replicas: { count: 2 } } }, 'spec.replicas: is a number in the Deployment, the patch gives an object'],
    ];
    for (const [value, expected] of cases) {
      const file = writeSpecs(sandbox('badsmp', { forks: [{ ...reviewsFork, customizations: { patch: { type: 'strategic', value } } }] }));
      expectRejected(cli('synth', '-f', BOOKINFO, file), [`${file}:2: Sandbox default/badsmp: spec.forks[0].customizations.patch.value.${expected}`]);
    }
  });

  it('a patch that makes a baseline Service select the fork', () => {
    const patch = { type: 'merge', value: { spec: { template: { metadata: { labels: { app: 'reviews' } } } } } };
    const file = writeSpecs(sandbox('leaky', { forks: [{ ...reviewsFork, customizations: { patch } }] }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [
      `${file}:2: Sandbox default/leaky: spec.forks[0].customizations.patch: would set spec.template.metadata.labels["app"] to "reviews" (the planned fork has "reviews-leaky"); label-selected policies (NetworkPolicy, AuthorizationPolicy) would not treat the fork as its baseline; allowed only with policy.allow.podMetadata`,
      `${file}:2: Sandbox default/leaky: spec.forks[0].customizations.patch.value: after the patch the fork selector no longer matches its pod labels`,
      `${file}:2: Sandbox default/leaky: spec.forks[0].customizations.patch.value: after the patch baseline Service "reviews" selects the fork pods`,
    ]);
  });

  it('YAML parse errors with line numbers', () => {
    const file = join(work, 'broken.yaml');
    writeFileSync(file, 'apiVersion: meshfork.dev/v1alpha1\nkind: Sandbox\nmetadata:\n  name: x\nspec:\n  forks: [\n');
    const result = cli('synth', '-f', BOOKINFO, file);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^${file}:7:1: -: .: YAML: `, 'm'));
  });

  it('reports every problem at once, schema and planner problems together', () => {
    const file = writeSpecs(sandbox('one', { forks: [{ forkOf: { kind: 'Deployment', name: 'nope' } }] }), sandbox('two', { forks: [reviewsFork], bogus: true }));
    expectRejected(cli('synth', '-f', BOOKINFO, file), [
      `${file}:12: Sandbox default/two: spec.bogus: unknown field`,
      `${file}:2: Sandbox default/one: spec.forks[0].forkOf.name: Deployment "nope" not found in namespace "default"`,
    ]);
  });

  it('a file that does not exist', () => {
    expectRejected(cli('synth', '-f', join(work, 'nope.yaml')), [`${join(work, 'nope.yaml')}: -: .: no such file or directory`]);
  });
});

describe('meshfork synth output', () => {
  const good = writeSpecs(sandbox('demo', { routingKey: 'demokey1', forks: [reviewsFork] }));

  it('writes nothing but YAML to stdout and is byte-identical across runs', () => {
    const a = cli('synth', '-f', BOOKINFO, good);
    const b = cli('synth', '-f', BOOKINFO, good);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    const kinds = parseAllDocuments(a.stdout).map((d) => (d.toJS() as { kind: string; metadata: { name: string } }));
    expect(kinds.map((k) => `${k.kind}/${k.metadata.name}`)).toEqual([
      'Deployment/reviews-v3-demo',
      'Service/reviews-demo',
      'EnvoyFilter/reviews-v3-demo-affinity',
      'VirtualService/reviews-meshfork',
    ]);
  });

  it('-o writes one file per object, as <namespace>/<kind>-<name>.yaml', () => {
    const out = join(work, 'out');
    const result = cli('synth', '-f', BOOKINFO, good, '-o', out);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(out)).toEqual(['default']);
    expect(readdirSync(join(out, 'default')).sort()).toEqual([
      'deployment-reviews-v3-demo.yaml',
      'envoyfilter-reviews-v3-demo-affinity.yaml',
      'service-reviews-demo.yaml',
      'virtualservice-reviews-meshfork.yaml',
    ]);
    expect(readFileSync(join(out, 'default', 'service-reviews-demo.yaml'), 'utf8')).toContain('name: reviews-demo\n');
  });

  it('-n sets the namespace of objects without one', () => {
    const result = cli('synth', '-n', 'shop', '-f', BOOKINFO, good);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('host: reviews-demo.shop.svc.cluster.local');
    expect(result.stdout).not.toContain('namespace: default');
  });

  it('--key-name and --header change the carriers', () => {
    const result = cli('synth', '--key-name', 'team.key', '--header', 'x-routing-key', '-f', BOOKINFO, good);
    expect(result.code).toBe(0);
    // The key name reaches the baggage regex escaped (the regex's shape is tested in test/routing).
    expect(result.stdout).toContain('[ \\t]*team\\.key[ \\t]*=[ \\t]*demokey1[ \\t]*');
    expect(result.stdout).not.toContain('meshfork-routing-key');
    expect(result.stdout).toContain('x-routing-key:\n              exact: demokey1');
  });

  it('reads routing settings from a config file and rejects unknown fields in it', () => {
    const config = join(work, 'meshfork.yaml');
    writeFileSync(config, 'routing:\n  keyName: acme-key\n  tracestate: false\n');
    const result = cli('synth', '--config', config, '-f', BOOKINFO, good);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('acme-key[ \\t]*=');
    expect(result.stdout).not.toContain('tracestate:');
    writeFileSync(config, 'routing:\n  keyNmae: acme-key\n');
    expectRejected(cli('synth', '--config', config, '-f', BOOKINFO, good), [`${config}: -: routing.keyNmae: unknown field`]);
  });

  it('--ingress-guard adds the mesh-wide guard with the configured carriers and tokens', () => {
    const config = join(work, 'guard.yaml');
    writeFileSync(config, `ingressGuard:\n  enabled: false\n  tokenSha256: ['${'ab'.repeat(32)}']\n`);
    const without = cli('synth', '--config', config, '-f', BOOKINFO, good);
    expect(without.stdout).not.toContain('meshfork-ingress-guard');
    const result = cli('synth', '--ingress-guard', '--config', config, '--compat', 'signadot', '-f', BOOKINFO, good);
    expect(result.code).toBe(0);
    const guard = parseAllDocuments(result.stdout).map((d) => d.toJS()).find((o) => o.metadata.name === 'meshfork-ingress-guard');
    expect(guard.metadata.namespace).toBe('istio-system');
    expect(guard.spec.workloadSelector).toEqual({ labels: { istio: 'ingressgateway' } });
    expect(guard.spec.configPatches[0].match.context).toBe('GATEWAY');
    const lua: string = guard.spec.configPatches[0].patch.value.typed_config.default_source_code.inline_string;
    expect(lua).toContain('keyNames = { ["sd-routing-key"] = true }');
    expect(lua).toContain('headers = { "ot-baggage-sd-routing-key", "uberctx-sd-routing-key" }');
    expect(lua).toContain(`tokenSha256 = { ["${'ab'.repeat(32)}"] = true }`);
  });

  it('rejects a bad --key-name', () => {
    expectRejected(cli('synth', '--key-name', 'Bad Key', '-f', BOOKINFO, good), ['<flags>: -: --key-name: must match ^[a-z0-9][a-z0-9._-]{0,41}$']);
  });
});

/** A Deployment `two` with containers a and b, and the given pod-template annotations. */
function twoContainers(annotations?: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'two' },
    spec: {
      selector: { matchLabels: { app: 'two' } },
      template: { metadata: { labels: { app: 'two' }, ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: 'a', image: 'a' }, { name: 'b', image: 'b' }] } },
    },
  };
}

describe('meshfork synth: a customization without container applies to the default container, with a note', () => {
  const images = (stdout: string) =>
    parseAllDocuments(stdout)
      .map((d) => d.toJS() as { kind: string; spec: { template: { spec: { containers: Array<{ name: string; image: string }> } } } })
      .filter((o) => o.kind === 'Deployment')
      .map((o) => o.spec.template.spec.containers.map((c) => `${c.name}=${c.image}`));

  it('the first container when the pod names no default', () => {
    const file = writeSpecs(sandbox('first', { forks: [{ forkOf: { kind: 'Deployment', name: 'two' }, customizations: { images: [{ image: 'x:1' }] } }] }));
    const result = cli('synth', '-f', writeSpecs(twoContainers()), file);
    expect(result.code).toBe(0);
    expect(images(result.stdout)).toEqual([['a=x:1', 'b=b']]);
    expect(result.stderr.split('\n').filter((l) => l.includes('container'))).toEqual([
      `note: ${file}:2: Sandbox default/first: spec.forks[0].customizations.images[0].container: not given: applies to container "a" of Deployment "two" (containers: a, b), its first container, as kubectl picks it without a kubectl.kubernetes.io/default-container annotation; name the container to choose another`,
    ]);
  });

  it('the container the kubectl.kubernetes.io/default-container annotation names', () => {
    const file = writeSpecs(sandbox('annotated', { forks: [{ forkOf: { kind: 'Deployment', name: 'two' }, customizations: { images: [{ image: 'x:1' }] } }] }));
    const result = cli('synth', '-f', writeSpecs(twoContainers({ 'kubectl.kubernetes.io/default-container': 'b' })), file);
    expect(result.code).toBe(0);
    expect(images(result.stdout)).toEqual([['a=a', 'b=x:1']]);
    expect(result.stderr.split('\n').filter((l) => l.includes('container'))).toEqual([
      `note: ${file}:2: Sandbox default/annotated: spec.forks[0].customizations.images[0].container: not given: applies to container "b" of Deployment "two" (containers: a, b), the default container its pod template annotation kubectl.kubernetes.io/default-container names, as kubectl picks it`,
    ]);
  });
});

describe('meshfork synth --compat signadot: a spec written as Signadot documents it', () => {
  it('images and env without container apply to the only container of HotROD route, with no note', () => {
    const spec = {
      apiVersion: 'meshfork.dev/v1alpha1',
      kind: 'Sandbox',
      metadata: { name: 'my-sandbox', namespace: 'hotrod' },
      spec: { forks: [{ forkOf: { kind: 'Deployment', namespace: 'hotrod', name: 'route' }, customizations: { images: [{ image: 'example.com/hotrod:dev-abcdef' }], env: [{ name: 'EXTRA_ENV', value: 'foo' }] } }] },
    };
    const result = cli('synth', '--compat', 'signadot', '-n', 'hotrod', '-f', FIXTURES + 'hotrod/k8s/base/route.yaml', writeSpecs(spec));
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const fork = parseAllDocuments(result.stdout)
      .map((d) => d.toJS() as { kind: string; spec: { template: { spec: { containers: Array<{ name: string; image: string; env: Array<{ name: string; value?: string }> }> } } } })
      .find((o) => o.kind === 'Deployment')!;
    const [container] = fork.spec.template.spec.containers;
    expect([container?.name, container?.image, container?.env.find((e) => e.name === 'EXTRA_ENV')]).toEqual(['hotrod', 'example.com/hotrod:dev-abcdef', { name: 'EXTRA_ENV', value: 'foo' }]);
  });
});

describe('meshfork validate', () => {
  it('prints the same notes as synth (Online Boutique: frontend behind a LoadBalancer, redis-cart TCP only)', () => {
    const boutique = FIXTURES + 'online-boutique/kubernetes-manifests.yaml';
    const file = writeSpecs(sandbox('notes', { forks: [{ forkOf: { kind: 'Deployment', name: 'frontend' } }, { forkOf: { kind: 'Deployment', name: 'redis-cart' } }] }));
    const synth = cli('synth', '-f', boutique, file);
    const validate = cli('validate', '-f', boutique, file);
    expect(synth.code).toBe(0);
    expect(validate).toEqual({ code: 0, stdout: 'ok: 1 Sandbox, 0 RouteGroups, forks checked against 12 Deployments\n', stderr: synth.stderr });
    expect(validate.stderr.trimEnd().split('\n')).toEqual([
      `note: ${boutique}:129: Service default/frontend-external: spec.type: is LoadBalancer: requests from outside the mesh through its load balancer and node ports reach a pod of Deployment default/frontend without a client sidecar to match the routing key, so keyed requests through them reach the baseline, never the fork of Sandbox default/notes; send keyed requests through an Istio ingress gateway or from a meshed client`,
      `note: ${boutique}:426: Service default/redis-cart: spec.ports: every port is TCP, TLS or opaque to Istio ("tcp-redis" 6379: TCP; by appProtocol or the port name prefix, istio.io "Protocol Selection"): sidecars forward its connections without reading HTTP headers, so requests with the routing key of Sandbox default/notes reach the baseline, never the fork Service "redis-cart-notes"; if a port carries HTTP or gRPC, name it http-<suffix> or grpc-<suffix> (or set appProtocol: http, http2 or grpc)`,
    ]);
  });


  it('accepts good specs, with and without inventory', () => {
    const file = writeSpecs(sandbox('ok', { forks: [reviewsFork] }));
    expect(cli('validate', '-f', file)).toEqual({ code: 0, stdout: 'ok: 1 Sandbox, 0 RouteGroups (no Deployments given: forks not checked)\n', stderr: '' });
    expect(cli('validate', '-f', BOOKINFO, file).stdout).toBe('ok: 1 Sandbox, 0 RouteGroups, forks checked against 6 Deployments\n');
  });

  it('checks forks against an inventory of other workload kinds too (HotROD kafka StatefulSet)', () => {
    const kafka = FIXTURES + 'hotrod/k8s/base/kafka/kafka.yaml';
    const file = writeSpecs(sandbox('broker', { forks: [{ forkOf: { kind: 'Deployment', name: 'kafka' } }] }));
    expectRejected(cli('validate', '-f', kafka, file), [
      `${file}:2: Sandbox default/broker: spec.forks[0].forkOf.name: Deployment "kafka" not found in namespace "default"; default/kafka is a StatefulSet (apps/v1): a StatefulSet keeps stable pod names and volumes that a copy would share or contend for; fork the Deployments that use it (an env customization can point a fork at a separate instance)`,
    ]);
  });

  it('rejects bad specs like synth does', () => {
    const c = INVALID_SPECS[0]!;
    const file = writeSpecs(c.object);
    const result = cli('validate', '-f', file);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${c.path}: ${c.message}`);
  });
});

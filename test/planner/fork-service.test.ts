/**
 * Fork Services copied faithfully (issue 9 item 7): what is copied from the baseline Service and
 * what never is, exact objects; and the targetPort check after customizations, exact problems.
 */
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { loadInputs } from '../../src/manifests/load.js';
import { forkService, lostTargetPorts } from '../../src/planner/fork-service.js';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { istioSample, requireIstioSamples } from '../support/istio-samples.js';

const FORK_LABELS = { 'app.kubernetes.io/managed-by': 'meshfork', 'meshfork.dev/sandbox': 'dev' };

function service(spec: Record<string, unknown>, name = 'db'): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop', labels: { app: name } }, spec: { selector: { app: name }, ...spec } };
}

function forkOf(spec: Record<string, unknown>) {
  return forkService(service(spec), 'dev', { app: 'db-dev' });
}

/** The fork Service of `service({...})` with `spec` fields besides the selector. */
function expected(spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'db-dev', namespace: 'shop', labels: { app: 'db', ...FORK_LABELS, 'meshfork.dev/fork-of-service': 'db' } },
    spec,
  };
}

const PORTS = [{ name: 'tcp-postgres', port: 5432, targetPort: 'postgres', protocol: 'TCP', appProtocol: 'postgresql' }];
const SELECTOR = { app: 'db-dev', 'meshfork.dev/sandbox': 'dev' };
const HEADLESS_NOTE =
  'Service "db" is headless: Istio\'s sidecars send its requests to the pod address the client resolved (unless istiod runs with PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES=true), so keyed requests from sidecars keep reaching the baseline pods; gateways route them to the fork Service "db-dev"';

describe('forkService: what is copied', () => {
  it('a headless Service stays headless, ports as written, with a note on how Istio routes headless hosts', () => {
    expect(forkOf({ clusterIP: 'None', ports: PORTS })).toEqual({
      service: expected({ clusterIP: 'None', selector: SELECTOR, ports: PORTS }),
      problems: [],
      notes: [HEADLESS_NOTE],
    });
  });

  it('a headless Service as the API server returns it (clusterIPs: [None]) stays headless', () => {
    const result = forkOf({ clusterIP: 'None', clusterIPs: ['None'], type: 'ClusterIP', ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'], sessionAffinity: 'None', ports: PORTS });
    expect(result.service?.spec).toEqual({ clusterIP: 'None', ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'], selector: SELECTOR, ports: PORTS, sessionAffinity: 'None' });
    expect(result.notes).toEqual([HEADLESS_NOTE]);
    expect(forkOf({ clusterIPs: ['None'], ports: PORTS }).service?.spec).toEqual({ clusterIP: 'None', selector: SELECTOR, ports: PORTS });
  });

  it('a port-less headless Service gives a port-less headless fork (valid in Kubernetes)', () => {
    expect(forkOf({ clusterIP: 'None' })).toEqual({ service: expected({ clusterIP: 'None', selector: SELECTOR }), problems: [], notes: [HEADLESS_NOTE] });
  });

  it('a fixed cluster IP is never copied: the fork gets its own', () => {
    const result = forkOf({ clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12', 'fd00::12'], ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'], ports: PORTS });
    expect(result.service?.spec).toEqual({ ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv4', 'IPv6'], selector: SELECTOR, ports: PORTS });
  });

  it('dual-stack: IP family policy and families, in their order', () => {
    expect(forkOf({ ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'], ports: PORTS }).service?.spec).toEqual({
      ipFamilyPolicy: 'RequireDualStack',
      ipFamilies: ['IPv6', 'IPv4'],
      selector: SELECTOR,
      ports: PORTS,
    });
  });

  it('session affinity ClientIP with its timeout; publishNotReadyAddresses, internalTrafficPolicy, trafficDistribution', () => {
    const spec = {
      ports: PORTS,
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      publishNotReadyAddresses: true,
      internalTrafficPolicy: 'Local',
      trafficDistribution: 'PreferClose',
    };
    const result = forkOf(spec);
    expect(result).toEqual({
      service: expected({ selector: SELECTOR, ...structuredClone(spec) }),
      problems: [],
      notes: [],
    });
    // Copies, not shared values: changing one fork's output never changes the baseline or another fork.
    (result.service?.spec as { sessionAffinityConfig: { clientIP: { timeoutSeconds: number } } }).sessionAffinityConfig.clientIP.timeoutSeconds = 1;
    expect(spec.sessionAffinityConfig.clientIP.timeoutSeconds).toBe(600);
  });

  it('sessionAffinityConfig only with ClientIP (the API server refuses it with None)', () => {
    expect(forkOf({ ports: PORTS, sessionAffinity: 'None', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }).service?.spec).toEqual({
      selector: SELECTOR,
      ports: PORTS,
      sessionAffinity: 'None',
    });
  });

  it("Istio's Service annotations exportTo and traffic-distribution are copied; other annotations are not", () => {
    const baseline = service({ ports: PORTS });
    baseline.metadata.annotations = {
      'networking.istio.io/exportTo': '.,istio-system',
      'networking.istio.io/traffic-distribution': 'PreferClose',
      'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    };
    expect(forkService(baseline, 'dev', { app: 'db-dev' }).service?.metadata).toEqual({
      name: 'db-dev',
      namespace: 'shop',
      labels: { app: 'db', ...FORK_LABELS, 'meshfork.dev/fork-of-service': 'db' },
      annotations: { 'networking.istio.io/exportTo': '.,istio-system', 'networking.istio.io/traffic-distribution': 'PreferClose' },
    });
  });

  it('a LoadBalancer baseline gets a ClusterIP fork without any entry-point field (routing-limits notes the entry point)', () => {
    const result = forkOf({
      type: 'LoadBalancer',
      clusterIP: '10.96.0.40',
      externalIPs: ['203.0.113.9'],
      loadBalancerIP: '198.51.100.7',
      loadBalancerClass: 'example.com/lb',
      loadBalancerSourceRanges: ['0.0.0.0/0'],
      allocateLoadBalancerNodePorts: true,
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 30999,
      ports: [{ name: 'http', port: 80, targetPort: 8080, nodePort: 30080, protocol: 'TCP' }],
      sessionAffinity: 'ClientIP',
    });
    expect(result).toEqual({
      service: expected({ selector: SELECTOR, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }], sessionAffinity: 'ClientIP' }),
      problems: [],
      notes: [],
    });
  });

  it('a NodePort baseline gets a ClusterIP fork', () => {
    const result = forkOf({ type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] });
    expect(result.service?.spec).toEqual({ selector: SELECTOR, ports: [{ port: 80 }] });
    expect(result.notes).toEqual([]);
  });

  it('a port-less Service that is not headless is a problem, never a Service the API server refuses', () => {
    expect(forkOf({})).toEqual({
      problems: [
        'Service "db" selects the baseline pods but has no spec.ports and is not headless; Kubernetes requires ports on such a Service, so its fork "db-dev" cannot be made (add its ports, or clusterIP: None)',
      ],
      notes: [],
    });
  });
});

/** A Deployment `web` (app=web, version=v1; `web-<version>` for other versions) with `containers` and optional `initContainers`. */
function deployment(containers: unknown[], initContainers?: unknown[], version = 'v1'): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: version === 'v1' ? 'web' : `web-${version}`, namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: 'web', version } },
      template: { metadata: { labels: { app: 'web', version } }, spec: { containers, ...(initContainers ? { initContainers } : {}) } },
    },
  };
}

const WEB_CONTAINER = {
  name: 'app',
  image: 'web:1',
  ports: [
    { name: 'http', containerPort: 8080 },
    { name: 'metrics', containerPort: 9090 },
  ],
};

const WEB_SERVICE: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: {
    selector: { app: 'web' },
    ports: [
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'metrics', port: 9090 },
    ],
  },
};

/** Sandbox `dev` in `namespace` forking each named Deployment, with its customizations if any. */
function sandbox(namespace: string, forks: Array<{ name: string; customizations?: Record<string, unknown> }>): SandboxObject {
  return {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 'dev', namespace },
    spec: { forks: forks.map(({ name, customizations }) => ({ forkOf: { kind: 'Deployment', name }, ...(customizations ? { customizations } : {}) })) },
  } as SandboxObject;
}

function planWeb(customizations: Record<string, unknown>, services: KubeObject[] = [WEB_SERVICE], baseline = deployment([WEB_CONTAINER])) {
  return plan({ inventory: inventoryOf([baseline, ...services]), sandboxes: [sandbox('shop', [{ name: 'web', customizations }])] });
}

const PATCH_VALUE = 'spec.forks[0].customizations.patch.value';
/** Problems of Sandbox `<namespace>/dev` at its first fork's patch. */
const patchProblems = (namespace: string, ...messages: string[]) => messages.map((message) => ({ object: `Sandbox ${namespace}/dev`, path: PATCH_VALUE, message }));

describe('targetPort after customizations', () => {
  it('a patch that renames the named container port a Service targets is a problem naming the Service port and the fork', () => {
    const result = planWeb({
      patch: { type: 'strategic', value: { spec: { template: { spec: { containers: [{ name: 'app', ports: [{ containerPort: 8080, name: 'web' }] }] } } } } },
    });
    expect(result.problems).toEqual(
      patchProblems(
        'shop',
        'after the patch no container of the fork Deployment "web-dev" has a port named "http" (TCP), which Service "web" port "http" (80) targets and the baseline\'s containers have; its fork Service "web-dev" would not reach the fork on that port',
      ),
    );
    expect(result.objects).toEqual([]);
  });

  it('a patch that moves a declared numeric target (targetPort omitted: it is the port) is a problem', () => {
    const result = planWeb({ patch: { type: 'json', value: [{ op: 'replace', path: '/spec/template/spec/containers/0/ports/1/containerPort', value: 9191 }] } });
    expect(result.problems).toEqual(
      patchProblems(
        'shop',
        'after the patch no container of the fork Deployment "web-dev" declares containerPort 9090 (TCP), which Service "web" port "metrics" (9090) targets and the baseline\'s containers declare; its fork Service "web-dev" would send that port where the fork no longer listens',
      ),
    );
  });

  it('a patch that changes the protocol of the named port is a problem (named ports resolve by name and protocol)', () => {
    const result = planWeb({ patch: { type: 'json', value: [{ op: 'add', path: '/spec/template/spec/containers/0/ports/0/protocol', value: 'UDP' }] } });
    expect(result.problems.map((p) => p.message)).toEqual([
      'after the patch no container of the fork Deployment "web-dev" has a port named "http" (TCP), which Service "web" port "http" (80) targets and the baseline\'s containers have; its fork Service "web-dev" would not reach the fork on that port',
    ]);
  });

  it('patches that keep the targets, and numeric targets the baseline never declared, are fine', () => {
    const keep = planWeb({ images: [{ image: 'web:2' }], patch: { type: 'strategic', value: { spec: { template: { spec: { containers: [{ name: 'app', ports: [{ containerPort: 8081, name: 'admin' }] }] } } } } } });
    expect(keep.problems).toEqual([]);
    // The baseline declares no ports at all: Kubernetes sends numeric targets as written.
    const undeclared = planWeb({ patch: { type: 'merge', value: { spec: { template: { metadata: { annotations: { a: 'b' } } } } } } }, [WEB_SERVICE], deployment([{ name: 'app', image: 'web:1' }]));
    expect(undeclared.problems).toEqual([]);
    expect(undeclared.objects.find((o) => o.kind === 'Service')?.spec).toEqual({
      selector: { app: 'web-dev', 'meshfork.dev/sandbox': 'dev' },
      ports: [
        { name: 'http', port: 80, targetPort: 'http' },
        { name: 'metrics', port: 9090 },
      ],
    });
  });

  it('a headless Service through plan(): headless fork Service, and the note on the fork', () => {
    const headless: KubeObject = { ...WEB_SERVICE, spec: { ...(WEB_SERVICE.spec as object), clusterIP: 'None' } };
    const result = planWeb({ images: [{ image: 'web:2' }] }, [headless]);
    expect(result.problems).toEqual([]);
    expect(result.objects.find((o) => o.kind === 'Service')?.spec).toEqual({ clusterIP: 'None', ...(WEB_SERVICE.spec as object), selector: { app: 'web-dev', 'meshfork.dev/sandbox': 'dev' } });
    expect(result.notes.filter((n) => n.message.includes('headless'))).toEqual([
      {
        object: 'Sandbox shop/dev',
        path: 'spec.forks[0].forkOf.name',
        message:
          'Service "web" is headless: Istio\'s sidecars send its requests to the pod address the client resolved (unless istiod runs with PILOT_ENABLE_EDS_FOR_HEADLESS_SERVICES=true), so keyed requests from sidecars keep reaching the baseline pods; gateways route them to the fork Service "web-dev"',
      },
    ]);
  });

  it("a target the baseline's pods do not offer either is the baseline's behaviour, copied", () => {
    const metricsOnly: KubeObject = { ...WEB_SERVICE, metadata: { name: 'web-admin', namespace: 'shop' }, spec: { selector: { app: 'web' }, ports: [{ name: 'admin', port: 81, targetPort: 'admin' }] } };
    const result = planWeb({ patch: { type: 'strategic', value: { spec: { template: { spec: { containers: [{ name: 'app', ports: [{ containerPort: 8080, name: 'web' }] }] } } } } } }, [metricsOnly]);
    expect(result.problems).toEqual([]);
  });

  it('sidecar containers (init containers with restartPolicy: Always) offer named ports; plain init containers do not', () => {
    const sidecar = { name: 'proxy', image: 'proxy:1', restartPolicy: 'Always', ports: [{ name: 'http', containerPort: 8080 }] };
    const baseline = deployment([{ name: 'app', image: 'web:1' }], [sidecar]);
    const service: KubeObject = { ...WEB_SERVICE, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } };
    const kept = deployment([{ name: 'app', image: 'web:2' }], [sidecar]);
    expect(lostTargetPorts(service, { baseline, fork: kept, sandbox: 'dev', prefix: '' })).toEqual([]);
    const demoted = deployment([{ name: 'app', image: 'web:2' }], [{ ...sidecar, restartPolicy: undefined }]);
    expect(lostTargetPorts(service, { baseline, fork: { ...demoted, metadata: { name: 'web-dev' } }, sandbox: 'dev', prefix: '' })).toEqual([
      'no container of the fork Deployment "web-dev" has a port named "http" (TCP), which Service "web" port "http" (80) targets and the baseline\'s containers have; its fork Service "web-dev" would not reach the fork on that port',
    ]);
  });

  it('each fork behind one shared fork Service is checked', () => {
    const v2 = deployment([WEB_CONTAINER], undefined, 'v2');
    const rename = { patch: { type: 'strategic', value: { spec: { template: { spec: { containers: [{ name: 'app', ports: [{ containerPort: 8080, name: 'web' }] }] } } } } } };
    const result = plan({
      inventory: inventoryOf([deployment([WEB_CONTAINER]), v2, WEB_SERVICE]),
      sandboxes: [sandbox('shop', [{ name: 'web' }, { name: 'web-v2', customizations: rename }])],
    });
    expect(result.problems.map((p) => [p.path, p.message])).toEqual([
      [
        'spec.forks[1].customizations.patch.value',
        'after the patch no container of the fork Deployment "web-v2-dev" has a port named "http" (TCP), which Service "web" port "http" (80) targets and the baseline\'s containers have; its fork Service "web-dev" would not reach the fork on that port',
      ],
    ]);
  });
});

describe.skipIf(!requireIstioSamples())("Istio's samples through plan()", () => {
  const load = (file: string) => {
    const input = loadInputs([istioSample(file)], 'default');
    expect(input.problems).toEqual([]);
    return input.inventory;
  };
  const sandboxFor = (name: string, customizations?: Record<string, unknown>) => sandbox('default', [{ name, ...(customizations ? { customizations } : {}) }]);
  const forkLabels = (service: string) => ({ app: service, service, ...FORK_LABELS, 'meshfork.dev/fork-of-service': service });

  it('helloworld/helloworld-dual-stack.yaml: the fork Service keeps RequireDualStack and [IPv6, IPv4]', () => {
    const result = plan({ inventory: load('helloworld/helloworld-dual-stack.yaml'), sandboxes: [sandboxFor('helloworld-v2', { images: [{ image: 'example.com/helloworld:dev' }] })] });
    expect(result.problems).toEqual([]);
    expect(result.objects.filter((o) => o.kind === 'Service')).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'helloworld-dev', namespace: 'default', labels: forkLabels('helloworld') },
        spec: {
          ipFamilyPolicy: 'RequireDualStack',
          ipFamilies: ['IPv6', 'IPv4'],
          selector: { app: 'helloworld-dev', 'meshfork.dev/sandbox': 'dev' },
          ports: [{ port: 5000, name: 'http' }],
        },
      },
    ]);
  });

  it('httpbin/httpbin-nodeport.yaml: a ClusterIP fork Service, and a note on the NodePort entry point', () => {
    const result = plan({ inventory: load('httpbin/httpbin-nodeport.yaml'), sandboxes: [sandboxFor('httpbin')] });
    expect(result.problems).toEqual([]);
    expect(result.objects.filter((o) => o.kind === 'Service')).toEqual([
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'httpbin-dev', namespace: 'default', labels: forkLabels('httpbin') },
        spec: { selector: { app: 'httpbin-dev', 'meshfork.dev/sandbox': 'dev' }, ports: [{ name: 'http', port: 8000, targetPort: 8080 }] },
      },
    ]);
    expect(result.notes).toEqual([
      {
        object: 'Service default/httpbin',
        path: 'spec.type',
        message:
          "is NodePort: requests from outside the mesh through its node ports reach a pod of Deployment default/httpbin without a client sidecar to match the routing key, so keyed requests through them reach the baseline, never the fork of Sandbox default/dev; send keyed requests through an Istio ingress gateway or from a meshed client",
      },
    ]);
  });

  it('httpbin/httpbin.yaml: a patch that moves the container off targetPort 8080 is a problem, and nothing is planned', () => {
    const result = plan({
      inventory: load('httpbin/httpbin.yaml'),
      sandboxes: [sandboxFor('httpbin', { patch: { type: 'json', value: [{ op: 'replace', path: '/spec/template/spec/containers/0/ports/0/containerPort', value: 9090 }] } })],
    });
    expect(result.problems).toEqual(
      patchProblems(
        'default',
        'after the patch no container of the fork Deployment "httpbin-dev" declares containerPort 8080 (TCP), which Service "httpbin" port "http" (8000) targets and the baseline\'s containers declare; its fork Service "httpbin-dev" would send that port where the fork no longer listens',
      ),
    );
    expect(result.objects).toEqual([]);
  });
});

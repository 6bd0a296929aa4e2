/**
 * Say what cannot work (issue 9 item 8): exact notes for TCP-only Services, forks without an
 * Envoy sidecar, NodePort/LoadBalancer/externalIPs entry points and queue consumers; exact
 * problems for a `forkOf` that names another kind or a Deployment of another namespace; an
 * ExternalName Service selects no pods. On Istio's samples (module cache) and the fixtures in
 * ../shared/fixtures where they have the construct, on small objects where none does.
 */
import { describe, expect, it } from 'vitest';
import type { SandboxObject } from '../../src/api/schema.js';
import { loadInputs } from '../../src/manifests/load.js';
import { inventoryOf, type Inventory } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { istioPortProtocol, serviceProtocolNote } from '../../src/planner/routing-limits.js';
import { FIXTURES } from '../support/cli.js';
import { istioSample, requireIstioSamples } from '../support/istio-samples.js';

function load(namespace: string, ...files: string[]): Inventory {
  const input = loadInputs(files, namespace);
  expect(input.problems).toEqual([]);
  return input.inventory;
}

function sandbox(namespace: string, forks: string[], name = 'dev'): SandboxObject {
  return { apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name, namespace }, spec: { forks: forks.map((n) => ({ forkOf: { kind: 'Deployment' as const, name: n } })) } };
}

const fork = (namespace: string, index = 0, name = 'dev') => ({ object: `Sandbox ${namespace}/${name}`, path: `spec.forks[${index}].forkOf.name` });

function deployment(name: string, template: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}, env: Array<{ name: string; value: string }> = []): KubeObject {
  const labels = { app: name, ...template.labels };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'shop' },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels, ...(template.annotations ? { annotations: template.annotations } : {}) }, spec: { containers: [{ name: 'app', image: `${name}:1`, env }] } },
    },
  };
}

function service(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'shop' }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }], ...spec } };
}

const TCP_NOTE_TAIL =
  'by appProtocol or the port name prefix, istio.io "Protocol Selection"): sidecars forward its connections without reading HTTP headers, so requests with the routing key of Sandbox';
const NO_SIDECAR = (fork: string, where: string) =>
  `the fork Deployment "${fork}" runs without an Envoy sidecar (pod template ${where} sidecar.istio.io/inject: "false"): keyed requests from meshed clients reach it, but its own outbound calls pass no sidecar, so none is routed to another fork of the sandbox and the affinity EnvoyFilter never adds the routing key to them`;

describe('istioPortProtocol: the protocol Istio gives a Service port (pkg/config/kube ConvertProtocol)', () => {
  it.each([
    [{ name: 'http', port: 80 }, 'HTTP'],
    [{ name: 'http2-api', port: 80 }, 'HTTP2'],
    [{ name: 'grpc', port: 7070 }, 'GRPC'],
    [{ name: 'grpc-web', port: 7070 }, 'GRPC-Web'],
    [{ name: 'GRPC-Web-ui', port: 7070 }, 'GRPC-Web'],
    [{ name: 'grpc-web2', port: 7070 }, 'GRPC-Web'],
    [{ name: 'tcp', port: 9000 }, 'TCP'],
    [{ name: 'TCP-other', port: 9001 }, 'TCP'],
    [{ name: 'tls-passthrough', port: 443 }, 'TLS'],
    [{ name: 'https', port: 443 }, 'HTTPS'],
    [{ name: 'mongo', port: 27018 }, 'Mongo'],
    [{ name: 'redis-main', port: 6379 }, 'Redis'],
    [{ name: 'mysql', port: 3307 }, 'MySQL'],
    [{ name: 'web', port: 8080 }, undefined],
    [{ port: 8080 }, undefined],
    [{ port: 3306 }, 'TCP'],
    [{ name: 'db', port: 27017 }, 'TCP'],
    [{ port: 53, protocol: 'UDP' }, 'UDP'],
    [{ name: 'http', port: 53, protocol: 'UDP' }, 'UDP'],
    [{ name: 'tcp', port: 80, appProtocol: 'http' }, 'HTTP'],
    [{ name: 'http', port: 80, appProtocol: 'tcp' }, 'TCP'],
    [{ port: 80, appProtocol: 'kubernetes.io/h2c' }, 'HTTP2'],
    [{ port: 80, appProtocol: 'kubernetes.io/ws' }, 'HTTP'],
    [{ port: 443, appProtocol: 'kubernetes.io/wss' }, 'HTTPS'],
    [{ port: 5432, appProtocol: 'postgresql' }, undefined],
  ])('%j -> %s', (port, protocol) => {
    expect(istioPortProtocol(port)).toBe(protocol);
  });

  it('a Service is "only TCP" only when no port is HTTP-like or left to detection', () => {
    const note = (ports: unknown[]) => serviceProtocolNote(service('db', { ports }), 'Sandbox shop/dev', 'db-dev');
    expect(note([{ name: 'tcp', port: 5432 }, { port: 8080 }])).toBeUndefined();
    expect(note([{ name: 'tcp', port: 5432 }, { name: 'grpc', port: 7070 }])).toBeUndefined();
    expect(note([])).toBeUndefined();
    expect(note([{ name: 'tls', port: 443 }, { name: 'https-admin', port: 8443 }, { port: 53, protocol: 'UDP' }])).toEqual({
      object: 'Service shop/db',
      path: 'spec.ports',
      message: `every port is TCP, TLS or opaque to Istio ("tls" 443: TLS, "https-admin" 8443: HTTPS, unnamed 53: UDP; ${TCP_NOTE_TAIL} shop/dev reach the baseline, never the fork Service "db-dev"; if a port carries HTTP or gRPC, name it http-<suffix> or grpc-<suffix> (or set appProtocol: http, http2 or grpc)`,
    });
  });
});

describe.skipIf(!requireIstioSamples())("what cannot work, on Istio's samples", () => {
  it('tcp-echo/tcp-echo.yaml: a Service with only TCP ports (tcp, tcp-other) cannot be routed by the key', () => {
    const result = plan({ inventory: load('default', istioSample('tcp-echo/tcp-echo.yaml')), sandboxes: [sandbox('default', ['tcp-echo'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([
      {
        object: 'Service default/tcp-echo',
        path: 'spec.ports',
        message: `every port is TCP, TLS or opaque to Istio ("tcp" 9000: TCP, "tcp-other" 9001: TCP; ${TCP_NOTE_TAIL} default/dev reach the baseline, never the fork Service "tcp-echo-dev"; if a port carries HTTP or gRPC, name it http-<suffix> or grpc-<suffix> (or set appProtocol: http, http2 or grpc)`,
      },
    ]);
  });

  it('helloworld/helloworld.yaml (an http port): no note', () => {
    const result = plan({ inventory: load('default', istioSample('helloworld/helloworld.yaml')), sandboxes: [sandbox('default', ['helloworld-v1'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([]);
  });

  it('extauthz/ext-authz.yaml: a fork without a sidecar (pod label sidecar.istio.io/inject: "false")', () => {
    const result = plan({ inventory: load('default', istioSample('extauthz/ext-authz.yaml')), sandboxes: [sandbox('default', ['ext-authz'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([{ ...fork('default'), message: NO_SIDECAR('ext-authz-dev', 'label') }]);
  });

  it('addons/grafana.yaml: no sidecar either; one container, so a customization without container needs no note', () => {
    const result = plan({
      inventory: load('istio-system', istioSample('addons/grafana.yaml')),
      sandboxes: [{ ...sandbox('istio-system', []), spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'grafana' }, customizations: { images: [{ image: 'grafana:dev' }] } }] } }],
    });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([{ ...fork('istio-system'), message: NO_SIDECAR('grafana-dev', 'label') }]);
  });

  it('grpc-echo/grpc-echo.yaml: a proxyless gRPC fork (inject.istio.io/templates: grpc-agent); its Service has http and grpc ports besides tcp', () => {
    const result = plan({ inventory: load('echo-grpc', istioSample('grpc-echo/grpc-echo.yaml')), sandboxes: [sandbox('echo-grpc', ['echo-v1'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([
      {
        ...fork('echo-grpc'),
        message:
          'the fork Deployment "echo-v1-dev" is a proxyless gRPC workload (pod template annotation inject.istio.io/templates: grpc-agent): its gRPC client applies the sandbox routes, but EnvoyFilters do not apply to it, so its calls stay in the sandbox only if the app propagates the routing key (baggage) from each request to the calls it causes',
      },
    ]);
  });
});

describe('what cannot work, on small objects', () => {
  it('ambient mode on the pod template, and the older inject annotation', () => {
    const inventory = inventoryOf([
      deployment('ambient', { labels: { 'istio.io/dataplane-mode': 'ambient' } }),
      service('ambient', {}),
      deployment('legacy', { annotations: { 'sidecar.istio.io/inject': 'false' } }),
      service('legacy', {}),
      deployment('injected', { labels: { 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'false' } }),
      service('injected', {}),
    ]);
    const result = plan({ inventory, sandboxes: [sandbox('shop', ['ambient', 'legacy', 'injected'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([
      {
        ...fork('shop', 0),
        message:
          'the fork Deployment "ambient-dev" runs in ambient mode (pod template label istio.io/dataplane-mode: ambient), without an Envoy sidecar: EnvoyFilters are ignored and routes apply only at waypoints, so its calls stay in the sandbox only if the app propagates the routing key (baggage) and the Services it calls have a waypoint',
      },
      { ...fork('shop', 1), message: NO_SIDECAR('legacy-dev', 'annotation') },
    ]);
  });

  it('externalIPs and NodePort on Services in front of a fork', () => {
    const inventory = inventoryOf([deployment('web'), service('web', { externalIPs: ['203.0.113.9'] }), service('web-np', { type: 'NodePort', selector: { app: 'web' } })]);
    const result = plan({ inventory, sandboxes: [sandbox('shop', ['web'])] });
    expect(result.problems).toEqual([]);
    const tail = 'reach a pod of Deployment shop/web without a client sidecar to match the routing key, so keyed requests through them reach the baseline, never the fork of Sandbox shop/dev; send keyed requests through an Istio ingress gateway or from a meshed client';
    expect(result.notes).toEqual([
      { object: 'Service shop/web', path: 'spec.externalIPs', message: `requests from outside the mesh to 203.0.113.9 ${tail}` },
      { object: 'Service shop/web-np', path: 'spec.type', message: `is NodePort: requests from outside the mesh through its node ports ${tail}` },
    ]);
  });

  it('an ExternalName Service selects no pods, whatever its spec.selector says: no fork Service, no isolation rewrite', () => {
    const alias = service('web-alias', { type: 'ExternalName', externalName: 'web.example.com', selector: { app: 'web', tier: 'front' } });
    const web = deployment('web', { labels: { tier: 'front' } });
    const result = plan({ inventory: inventoryOf([web, service('web', {}), alias]), sandboxes: [sandbox('shop', ['web'])] });
    expect(result.problems).toEqual([]);
    expect(result.objects.filter((o) => o.kind === 'Service').map((o) => o.metadata.name)).toEqual(['web-dev']);
    // tier is rewritten only when a selector holds it: the ExternalName one does not count.
    expect((result.objects.find((o) => o.kind === 'Deployment')!.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels['tier']).toBe('front');
  });

  it('a queue consumer is recognised by a broker in its env (names or values) only when no Service selects it', () => {
    const inventory = inventoryOf([
      deployment('amqp-url', {}, [{ name: 'AMQP_URL', value: 'amqps://mq.internal:5671' }]),
      deployment('worker', {}, [{ name: 'QUEUE', value: 'nats://nats.messaging:4222' }]),
      deployment('sqs', {}, [{ name: 'QUEUE_URL', value: 'https://sqs.eu-west-1.amazonaws.com/123/orders' }]),
      deployment('plain', {}, [{ name: 'DATABASE_URL', value: 'postgres://db:5432/app' }, { name: 'BROKERAGE_FEE', value: '3' }]),
      deployment('served', {}, [{ name: 'KAFKA_BROKERS', value: 'kafka:9092' }]),
      service('served', {}),
    ]);
    const result = plan({ inventory, sandboxes: [sandbox('shop', ['amqp-url', 'worker', 'sqs', 'plain', 'served'])] });
    expect(result.problems).toEqual([]);
    const consumer = (name: string, envName: string) =>
      `Deployment shop/${name} looks like a queue consumer (no Service selects its pods, and env ${envName} of container "app" names a message broker): its fork reads the baseline's topics and queues, taking messages from the baseline (same consumer group) or processing each one again (its own group), whatever their routing key; give the fork its own topic, queue or subscription with an env customization, or have the app skip messages whose baggage carries another sandbox's key`;
    const unrouted = (name: string) => `no Service selects the pods of Deployment shop/${name}; the fork runs but no request is routed to it`;
    expect(result.notes).toEqual([
      { ...fork('shop', 0), message: unrouted('amqp-url') },
      { ...fork('shop', 0), message: consumer('amqp-url', 'AMQP_URL') },
      { ...fork('shop', 1), message: unrouted('worker') },
      { ...fork('shop', 1), message: consumer('worker', 'QUEUE') },
      { ...fork('shop', 2), message: unrouted('sqs') },
      { ...fork('shop', 2), message: consumer('sqs', 'QUEUE_URL') },
      { ...fork('shop', 3), message: unrouted('plain') },
    ]);
  });

  it('a forkOf naming a DaemonSet, Job, CronJob, Argo Rollout or a Deployment of another API group', () => {
    const named = (apiVersion: string, kind: string, name: string): KubeObject => ({ apiVersion, kind, metadata: { name, namespace: 'shop' }, spec: {} });
    const inventory = inventoryOf([
      named('apps/v1', 'DaemonSet', 'agent'),
      named('batch/v1', 'Job', 'migrate'),
      named('batch/v1', 'CronJob', 'report'),
      named('argoproj.io/v1alpha1', 'Rollout', 'checkout'),
      named('extensions/v1beta1', 'Deployment', 'legacy'),
      named('v1', 'ConfigMap', 'agent'),
    ]);
    expect(inventory.workloads).toEqual([
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', namespace: 'shop' } },
      { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'migrate', namespace: 'shop' } },
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'report', namespace: 'shop' } },
      { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'checkout', namespace: 'shop' } },
      { apiVersion: 'extensions/v1beta1', kind: 'Deployment', metadata: { name: 'legacy', namespace: 'shop' } },
    ]);
    const result = plan({ inventory, sandboxes: [sandbox('shop', ['agent', 'migrate', 'report', 'checkout', 'legacy'])] });
    const problem = (index: number, name: string, is: string) => ({ ...fork('shop', index), message: `Deployment "${name}" not found in namespace "shop"; shop/${name} is ${is}`, code: 'BaselineNotFound' });
    expect(result.problems).toEqual([
      problem(0, 'agent', 'a DaemonSet (apps/v1): a DaemonSet runs one pod per node, not a service behind a Service; fork the Deployments that call it'),
      problem(1, 'migrate', 'a Job (batch/v1): a Job runs to completion and serves no requests, so there is nothing to route to a fork; run a Job of your own'),
      problem(2, 'report', 'a CronJob (batch/v1): a CronJob runs Jobs that serve no requests, so there is nothing to route to a fork; run a Job of your own'),
      problem(3, 'checkout', "a Rollout (argoproj.io/v1alpha1): an Argo Rollout manages its own pods and traffic; if it runs a Deployment's template (spec.workloadRef), fork that Deployment"),
      problem(4, 'legacy', 'a Deployment (extensions/v1beta1): meshfork forks apps/v1 Deployments only; convert it to apps/v1'),
    ]);
    expect(result.objects).toEqual([]);
  });
});

describe('what cannot work, on the shared fixtures', () => {
  const boutique = FIXTURES + 'online-boutique/kubernetes-manifests.yaml';
  const hotrod = (file: string) => `${FIXTURES}hotrod/k8s/base/${file}`;

  it("Online Boutique: frontend's LoadBalancer entry point and redis-cart's TCP-only port; cartservice (grpc) has neither", () => {
    const result = plan({ inventory: load('default', boutique), sandboxes: [sandbox('default', ['frontend', 'cartservice', 'redis-cart'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([
      {
        object: 'Service default/frontend-external',
        path: 'spec.type',
        message:
          'is LoadBalancer: requests from outside the mesh through its load balancer and node ports reach a pod of Deployment default/frontend without a client sidecar to match the routing key, so keyed requests through them reach the baseline, never the fork of Sandbox default/dev; send keyed requests through an Istio ingress gateway or from a meshed client',
      },
      {
        object: 'Service default/redis-cart',
        path: 'spec.ports',
        message: `every port is TCP, TLS or opaque to Istio ("tcp-redis" 6379: TCP; ${TCP_NOTE_TAIL} default/dev reach the baseline, never the fork Service "redis-cart-dev"; if a port carries HTTP or gRPC, name it http-<suffix> or grpc-<suffix> (or set appProtocol: http, http2 or grpc)`,
      },
    ]);
  });

  it('HotROD: driver (no Service, KAFKA_BROKER_ADDR) competes for Kafka messages; frontend (same env, behind a Service) is not called a consumer', () => {
    const result = plan({ inventory: load('hotrod', hotrod('driver.yaml'), hotrod('frontend.yaml')), sandboxes: [sandbox('hotrod', ['driver', 'frontend'])] });
    expect(result.problems).toEqual([]);
    expect(result.notes).toEqual([
      { ...fork('hotrod'), message: 'no Service selects the pods of Deployment hotrod/driver; the fork runs but no request is routed to it' },
      {
        ...fork('hotrod'),
        message:
          'Deployment hotrod/driver looks like a queue consumer (no Service selects its pods, and env KAFKA_BROKER_ADDR of container "hotrod" names a message broker): its fork reads the baseline\'s topics and queues, taking messages from the baseline (same consumer group) or processing each one again (its own group), whatever their routing key; give the fork its own topic, queue or subscription with an env customization, or have the app skip messages whose baggage carries another sandbox\'s key',
      },
    ]);
  });

  it('HotROD: a forkOf naming the kafka and mysql StatefulSets says so, with the hint, and nothing is planned', () => {
    const inventory = load('hotrod', hotrod('kafka/kafka.yaml'), hotrod('mysql/mysql.yaml'), hotrod('route.yaml'));
    const result = plan({ inventory, sandboxes: [sandbox('hotrod', ['kafka', 'mysql', 'route'])] });
    const statefulSet = (index: number, name: string) => ({
      ...fork('hotrod', index),
      message: `Deployment "${name}" not found in namespace "hotrod"; hotrod/${name} is a StatefulSet (apps/v1): a StatefulSet keeps stable pod names and volumes that a copy would share or contend for; fork the Deployments that use it (an env customization can point a fork at a separate instance)`,
      code: 'BaselineNotFound',
    });
    expect(result.problems).toEqual([statefulSet(0, 'kafka'), statefulSet(1, 'mysql')]);
    expect(result.objects).toEqual([]);
  });

  it('Bookinfo in namespace bookinfo, forked from a Sandbox in dev without forkOf.namespace: the hint names the namespace and the policy', () => {
    const result = plan({ inventory: load('bookinfo', FIXTURES + 'bookinfo/bookinfo.yaml'), sandboxes: [sandbox('dev', ['reviews-v3'])] });
    expect(result.problems).toEqual([
      {
        ...fork('dev'),
        message:
          'Deployment "reviews-v3" not found in namespace "dev"; a Deployment "reviews-v3" exists in namespace "bookinfo": to fork it, set spec.forks[0].forkOf.namespace: bookinfo (forking from another namespace also needs it in policy.forkNamespaces, which an administrator sets)',
        code: 'BaselineNotFound',
      },
    ]);
    const allowed = plan({ inventory: load('bookinfo', FIXTURES + 'bookinfo/bookinfo.yaml'), sandboxes: [sandbox('dev', ['reviews-v3'])], config: { policy: { forkNamespaces: ['bookinfo'] } } });
    expect(allowed.problems.map((p) => p.message)).toEqual([
      'Deployment "reviews-v3" not found in namespace "dev"; a Deployment "reviews-v3" exists in namespace "bookinfo": to fork it, set spec.forks[0].forkOf.namespace: bookinfo',
    ]);
  });
});

/**
 * Istio's Bookinfo (samples/bookinfo/platform/kube/bookinfo.yaml, with the DestinationRules of
 * networking/destination-rule-all.yaml and the VirtualService of
 * networking/virtual-service-reviews-test-v2.yaml) written with cdk8s-plus-34: no YAML.
 * Services, ServiceAccounts and Deployments are cdk8s-plus constructs; the Istio objects are
 * ApiObjects, because cdk8s-plus has no Istio kinds (README.md says what else differs).
 */
import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-34';
import type { Construct } from 'constructs';

const IMAGE = (name: string) => `registry.istio.io/release/examples-bookinfo-${name}:1.20.3`;
const PORT = 9080;

/** The Bookinfo workloads by name, for Sandboxes to fork (`forkOf: bookinfo.deployments['reviews-v2']`). */
export interface Bookinfo {
  readonly chart: Chart;
  readonly deployments: Readonly<Record<string, kplus.Deployment>>;
}

interface Workload {
  readonly app: string;
  readonly version: string;
  readonly env?: Record<string, string>;
  /** emptyDir volumes by mount path. */
  readonly scratch?: Record<string, string>;
  readonly podAnnotations?: Record<string, string>;
}

const SERVICES = ['details', 'ratings', 'reviews', 'productpage'] as const;
const WORKLOADS: readonly Workload[] = [
  { app: 'details', version: 'v1' },
  { app: 'ratings', version: 'v1' },
  ...['v1', 'v2', 'v3'].map((version) => ({
    app: 'reviews',
    version,
    env: { LOG_DIR: '/tmp/logs' },
    scratch: { '/tmp': 'tmp', '/opt/ibm/wlp/output': 'wlp-output' },
  })),
  {
    app: 'productpage',
    version: 'v1',
    scratch: { '/tmp': 'tmp' },
    podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080', 'prometheus.io/path': '/metrics' },
  },
];

/** subsets of destination-rule-all.yaml, per host. */
const SUBSETS: Readonly<Record<string, readonly string[]>> = {
  productpage: ['v1'],
  reviews: ['v1', 'v2', 'v3'],
  ratings: ['v1', 'v2', 'v2-mysql', 'v2-mysql-vm'],
  details: ['v1', 'v2'],
};

export function bookinfo(scope: Construct, namespace: string, id = 'bookinfo'): Bookinfo {
  const chart = new Chart(scope, id, { namespace });
  const accounts = new Map<string, kplus.ServiceAccount>();
  for (const app of SERVICES) {
    const service = new kplus.Service(chart, app, { metadata: { name: app, labels: { app, service: app } }, ports: [{ port: PORT, name: 'http' }] });
    service.selectLabel('app', app);
    // automountToken: true is Kubernetes' default, which bookinfo.yaml relies on (cdk8s-plus defaults to false).
    accounts.set(app, new kplus.ServiceAccount(chart, `${app}-account`, { metadata: { name: `bookinfo-${app}`, labels: { account: app } }, automountToken: true }));
  }

  const deployments: Record<string, kplus.Deployment> = {};
  for (const w of WORKLOADS) {
    const name = `${w.app}-${w.version}`;
    const labels = { app: w.app, version: w.version };
    const deployment = new kplus.Deployment(chart, name, {
      metadata: { name, labels },
      replicas: 1,
      // Bookinfo's Services select `app`, and its Deployments `app` + `version`: no cdk8s-plus selector label.
      select: false,
      podMetadata: { labels, ...(w.podAnnotations !== undefined ? { annotations: w.podAnnotations } : {}) },
      serviceAccount: accounts.get(w.app)!,
      automountServiceAccountToken: true,
      // The Bookinfo images do not all run as a non-root user; bookinfo.yaml sets no securityContext.
      securityContext: { ensureNonRoot: false },
      containers: [
        {
          name: w.app,
          image: IMAGE(name),
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          ports: [{ number: PORT }],
          securityContext: { ensureNonRoot: false, readOnlyRootFilesystem: false },
          // bookinfo.yaml sets no resources; cdk8s-plus would add requests and limits.
          resources: {},
          envVariables: Object.fromEntries(Object.entries(w.env ?? {}).map(([k, v]) => [k, kplus.EnvValue.fromValue(v)])),
        },
      ],
    });
    deployment.select(kplus.LabelSelector.of({ labels }));
    for (const [path, volume] of Object.entries(w.scratch ?? {})) {
      deployment.containers[0]!.mount(path, kplus.Volume.fromEmptyDir(chart, `${name}-${volume}`, volume));
    }
    deployments[name] = deployment;
  }

  for (const [host, subsets] of Object.entries(SUBSETS)) {
    new ApiObject(chart, `${host}-destination-rule`, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: host },
      spec: { host, subsets: subsets.map((version) => ({ name: version, labels: { version } })) },
    });
  }
  // The team's routing: user jason sees reviews v2, everyone else v1. Sandboxes that fork a
  // reviews workload get their routes merged into it, and this chart emits it merged (ADR 0017).
  new ApiObject(chart, 'reviews-virtual-service', {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews' },
    spec: {
      hosts: ['reviews'],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
      ],
    },
  });
  return { chart, deployments };
}

/**
 * Issue 8 item 5: every malformed inventory shape the planner reads is a problem with its field
 * path, never a stack trace or a silent misreading. Each case is a file in
 * inputs/input-shapes/ planned next to a well-formed baseline and Sandbox (base.yaml); '@' in an
 * expected line stands for the case's file.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { inventoryOf } from '../../src/planner/inventory.js';
import type { KubeObject } from '../../src/planner/kube.js';
import { plan } from '../../src/planner/plan.js';
import { cli } from '../support/cli.js';

const DIR = new URL('inputs/input-shapes/', import.meta.url).pathname;
const BASE = `${DIR}base.yaml`;

const CASES: Array<[string, string[]]> = [
  ['deployment-container-fields.yaml', [
    '@:1: Deployment default/worker: spec.selector.matchExpressions[0].values: must be a list of label values, not the string "backend"',
    '@:1: Deployment default/worker: spec.selector.matchExpressions[1].operator: must be one of In, NotIn, Exists, DoesNotExist, not the string "in"',
    '@:1: Deployment default/worker: spec.template.metadata.annotations["sidecar.istio.io/inject"]: must be a string (label maps and selectors map strings to strings), not the boolean true',
    '@:1: Deployment default/worker: spec.template.spec.containers[0].name: required field is missing (a non-empty string)',
    '@:1: Deployment default/worker: spec.template.spec.containers[0].command: must be a list of strings, not the string "/bin/worker"',
    '@:1: Deployment default/worker: spec.template.spec.containers[0].env[0].name: required field is missing (a non-empty string)',
    '@:1: Deployment default/worker: spec.template.spec.initContainers[0]: must be an object, not the string "init"',
  ]],
  ['deployment-containers-object.yaml', [
    '@:1: Deployment default/worker: spec.template.spec.containers: must be a list of containers, not an object',
  ]],
  ['deployment-name-traversal.yaml', [
    '@:1: Deployment default/../../../tmp/evil: metadata.name: must be an RFC 1123 subdomain (a-z, 0-9, - and ., at most 253 characters)',
  ]],
  ['deployment-no-spec.yaml', [
    '@:1: Deployment default/worker: metadata.labels["tier"]: must be a string (label maps and selectors map strings to strings), not the number 3',
    '@:1: Deployment default/worker: spec: required field is missing (an object)',
  ]],
  ['deployment-template-string.yaml', [
    '@:1: Deployment default/worker: spec.template: must be an object, not the string "worker"',
  ]],
  ['destinationrule-host-number.yaml', [
    '@:1: DestinationRule default/web: spec.host: must be a non-empty string, not the number 80',
    '@:1: DestinationRule default/web: spec.trafficPolicy: must be an object, not a list',
    '@:1: DestinationRule default/web: spec.exportTo: must be a list of namespaces, not the string "."',
  ]],
  ['destinationrule-subsets.yaml', [
    '@:1: DestinationRule default/web: spec.subsets[0].labels["__proto__"]: is not a valid label or annotation key',
    '@:1: DestinationRule default/web: spec.subsets[1].name: required field is missing (a non-empty string)',
    '@:1: DestinationRule default/web: spec.subsets[1].labels["version"]: must be a string (label maps and selectors map strings to strings), not the number 2',
    '@:1: DestinationRule default/web: spec.subsets[1].trafficPolicy: must be an object, not the string "ROUND_ROBIN"',
    '@:1: DestinationRule default/web: spec.subsets[2]: must be an object, not the string "v3"',
  ]],
  ['grpcroute-no-spec.yaml', [
    '@:5: Namespace default/default: metadata.labels["istio.io/dataplane-mode"]: must be a string (label maps and selectors map strings to strings), not the boolean true',
    '@:1: GRPCRoute default/web: spec: required field is missing (an object)',
  ]],
  ['httproute-fields.yaml', [
    '@:1: HTTPRoute default/web: metadata.creationTimestamp: must be a non-empty string, not the number 1700000000',
    '@:1: HTTPRoute default/web: spec.parentRefs[0].port: must be an integer from 1 to 65535, not the string "80"',
    '@:1: HTTPRoute default/web: spec.parentRefs[1].name: required field is missing (a non-empty string)',
    '@:1: HTTPRoute default/web: spec.hostnames: must be a list of host names, not the string "web"',
    '@:1: HTTPRoute default/web: spec.rules[0].name: must be a non-empty string, not the number 7',
    '@:1: HTTPRoute default/web: spec.rules[0].matches[0].headers[0].type: must be one of Exact, RegularExpression, not the string "Prefix"',
    '@:1: HTTPRoute default/web: spec.rules[0].matches[0].headers[1].name: required field is missing (a non-empty string)',
    '@:1: HTTPRoute default/web: spec.rules[0].matches[1].headers: must be a list of header matches, not an object',
    '@:1: HTTPRoute default/web: spec.rules[0].filters[0].requestMirror.backendRef: must be an object, not null',
    '@:1: HTTPRoute default/web: spec.rules[0].filters[1].type: required field is missing (a non-empty string)',
    '@:1: HTTPRoute default/web: spec.rules[0].backendRefs[0].weight: must be an integer from 0 to 1000000, not the number -1',
    '@:1: HTTPRoute default/web: spec.rules[0].backendRefs[1].group: must be a string, not the number 0',
    '@:1: HTTPRoute default/web: spec.rules[0].backendRefs[1].filters: must be a list of route filters, not an object',
  ]],
  ['httproute-version.yaml', [
    '@:1: HTTPRoute default/web: apiVersion: must be one of gateway.networking.k8s.io/v1, gateway.networking.k8s.io/v1beta1 (the versions meshfork reads HTTPRoutes in), not the string "gateway.networking.k8s.io/v1alpha1"',
    '@:1: HTTPRoute default/web: spec.rules: must be a list of route rules, not an object',
  ]],
  ['name-empty.yaml', [
    '@:1: Service: metadata.name: must be a non-empty string, not the string ""',
  ]],
  ['name-number.yaml', [
    '@:1: Deployment: metadata.name: must be a non-empty string, not the number 123',
  ]],
  ['name-too-long.yaml', [
    '@:1: ConfigMap: metadata.name: is 254 characters long; Kubernetes names have at most 253',
  ]],
  ['namespace-traversal.yaml', [
    '@:1: Service: metadata.namespace: must be an RFC 1123 label (a-z, 0-9 and -, at most 63 characters), not the string "../../etc"',
  ]],
  ['service-name-dots.yaml', [
    '@:2: Service default/9web.admin: metadata.name: must be an RFC 1035 label (a-z, 0-9 and -, a letter first, at most 63 characters), as Service names are',
  ]],
  ['service-port-fields.yaml', [
    '@:1: Service default/web-admin: spec.ports[0].port: must be an integer from 1 to 65535, not the string "8080"',
    '@:1: Service default/web-admin: spec.ports[0].name: must be a non-empty string, not the number 7',
    '@:1: Service default/web-admin: spec.ports[0].targetPort: must be an integer from 1 to 65535, not the number 70000',
    '@:1: Service default/web-admin: spec.ports[1]: must be an object, not null',
  ]],
  ['service-ports-string.yaml', [
    '@:1: Service default/web-admin: spec.ports: must be a list of ports, not the string "8080"',
  ]],
  ['service-selector-list.yaml', [
    '@:1: Service default/web-admin: spec.selector["app"]: must be a string (label maps and selectors map strings to strings), not a list',
  ]],
  ['vs-destination-null.yaml', [
    '@:1: VirtualService default/web: spec.http[0].route[0].destination: must be an object, not null',
  ]],
  ['vs-gateways-string.yaml', [
    '@:3: VirtualService default/web: spec.gateways: must be a list of gateway names (e.g. [mesh]), not the string "istio-system/mesh-gateway"',
  ]],
  ['vs-hosts-string.yaml', [
    '@:1: VirtualService default/web: spec.hosts: must be a list of host names, not the string "web"',
  ]],
  ['vs-http-null.yaml', [
    '@:1: VirtualService default/web: spec.http: must be a list of HTTP routes, not null',
  ]],
  ['vs-match-headers.yaml', [
    '@:1: VirtualService default/web: spec.http[0].match[0].headers["x-user"]: must be an object, not the string "admin"',
    '@:1: VirtualService default/web: spec.http[0].match[0].withoutHeaders: must be an object, not a list',
    '@:1: VirtualService default/web: spec.http[0].route[0].destination.port.number: must be an integer from 1 to 65535, not the string "80"',
    '@:1: VirtualService default/web: spec.http[0].route[0].weight: must be an integer from 0 to 100, not the number 100.5',
  ]],
  ['vs-route-not-list.yaml', [
    '@:1: VirtualService default/web: spec.http[0].route: must be a list of destinations, not an object',
  ]],
];

describe('malformed inventory shapes are problems with field paths', () => {
  for (const [file, lines] of CASES) {
    it(file, () => {
      const result = cli('synth', '-f', BASE, DIR + file);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toEqual([
        ...lines.map((l) => l.replace('@', DIR + file)),
        `meshfork: ${lines.length} problem${lines.length === 1 ? '' : 's'}; nothing written`,
      ]);
      expect(result.code).toBe(1);
    });
  }

  it('the base alone plans', () => {
    const result = cli('synth', '-f', BASE);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });
});

describe('plan() itself checks the inventory (the controller does not go through the loader)', () => {
  const read = (file: string) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as KubeObject);
  const objects = (...files: string[]) => files.flatMap(read).map((o) => ({ ...o, metadata: { namespace: 'default', ...o.metadata } }));

  it('refuses a VirtualService whose gateways is a string instead of reading it as mesh', () => {
    const all = objects(BASE, `${DIR}vs-gateways-string.yaml`);
    const sandbox = all.find((o) => o.kind === 'Sandbox')!;
    const result = plan({ inventory: inventoryOf(all.filter((o) => o.kind !== 'Sandbox')), sandboxes: [sandbox as never] });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'VirtualService default/web', path: 'spec.gateways', message: 'must be a list of gateway names (e.g. [mesh]), not the string "istio-system/mesh-gateway"' },
    ]);
  });

  it('refuses null metadata and a null spec without throwing', () => {
    const inventory = inventoryOf([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: null as never },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: null },
    ]);
    expect(plan({ inventory, sandboxes: [] }).problems).toEqual([
      { object: 'Deployment default/undefined', path: 'metadata', message: 'must be an object, not null' },
      { object: 'Deployment default/undefined', path: 'spec', message: 'required field is missing (an object)' },
      { object: 'Service default/web', path: 'spec', message: 'must be an object, not null' },
    ]);
  });
});

// `meshfork routes <host> -f <files>` offline, on Istio's Bookinfo (reviews routed to v2 for
// jason, v1 otherwise) with a Sandbox forking reviews-v2 synthesized by `meshfork synth`: the route
// table with its owners, the route a request takes and where it lands, and bad input refused with
// the flag named. Exact output.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClusterCli } from '../../src/cli/cluster/command.js';
import { baggageMemberRegex } from '../../src/planner/routing-key.js';
import { cli, FIXTURES } from '../support/cli.js';

const BOOKINFO = FIXTURES + 'bookinfo/';
const work = mkdtempSync(join(tmpdir(), 'meshfork-routes-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SANDBOX = `apiVersion: meshfork.dev/v1alpha1
kind: Sandbox
metadata: {name: jason-v2}
spec:
  routingKey: k7f3q9
  forks:
    - forkOf: {kind: Deployment, name: reviews-v2}
`;

async function routes(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runClusterCli(['routes', ...args], { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

const REVIEWS = 'reviews.default.svc.cluster.local';
const FORK = 'reviews-jason-v2.default.svc.cluster.local';
const KEYED = 'baggage has meshfork-routing-key=k7f3q9 or tracestate has meshfork-routing-key=k7f3q9 and not baggage present or baggage lacks meshfork-routing-key and tracestate has meshfork-routing-key=k7f3q9';
// Each block of the sandbox's copy of the user's jason route: the user's condition AND the key's.
const JASON_KEYED = [
  'baggage has meshfork-routing-key=k7f3q9 and end-user exact "jason"',
  'end-user exact "jason" and tracestate has meshfork-routing-key=k7f3q9 and not baggage present',
  'baggage lacks meshfork-routing-key and end-user exact "jason" and tracestate has meshfork-routing-key=k7f3q9',
].join(' or ');
const HEADING = `Host ${REVIEWS}: VirtualService default/reviews, as sidecars of namespace default use it`;

describe('meshfork routes -f (offline)', () => {
  let files: string[];
  beforeAll(() => {
    writeFileSync(join(work, 'sandbox.yaml'), SANDBOX);
    const synth = cli('synth', '-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, `${BOOKINFO}virtual-service-reviews-test-v2.yaml`, join(work, 'sandbox.yaml'), '-o', join(work, 'out'));
    expect([synth.code, synth.stderr]).toEqual([0, '']);
    // The inventory and what synth writes (the merged VirtualService replaces the user's file).
    files = ['-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, join(work, 'out')];
  });

  it('prints the route table of a host in order, sandbox routes marked', async () => {
    const r = await routes('reviews', ...files);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe(
      [
        HEADING,
        '#   ROUTE                 OWNER              DESTINATIONS                                                MATCH',
        `0   meshfork-jason-v2-0   sandbox jason-v2   ${FORK} subset v2 100%   ${JASON_KEYED}`,
        `1   -                     user               ${REVIEWS} subset v2 100%            end-user exact "jason"`,
        `2   meshfork-jason-v2-1   sandbox jason-v2   ${REVIEWS} subset v1 100%            ${KEYED}`,
        `3   -                     user               ${REVIEWS} subset v1 100%            *`,
        '',
      ].join('\n'),
    );
  });

  it('with --header, the route a request takes and where it lands (subset labels from the fork DestinationRule)', async () => {
    const jason = await routes('reviews.default', ...files, '--header', 'baggage: meshfork-routing-key=k7f3q9', '--header', 'end-user=jason');
    expect([jason.code, jason.stderr]).toEqual([0, '']);
    expect(jason.stdout).toBe(
      [
        HEADING,
        'Request: any method /, baggage: meshfork-routing-key=k7f3q9, end-user: jason',
        'Takes route 0 meshfork-jason-v2-0 (sandbox jason-v2), match[0]: baggage has meshfork-routing-key=k7f3q9 and end-user exact "jason"',
        `  -> ${FORK} subset v2 100% (DestinationRule default/reviews-jason-v2: version=v2-jason-v2)`,
        '',
      ].join('\n'),
    );
    // The key among other members, in a second baggage header: Envoy joins them with ','.
    const other = await routes(REVIEWS, ...files, '--header', 'baggage=a=1', '--header', 'baggage: meshfork-routing-key = k7f3q9;p=1', '-o', 'json');
    expect(other.code).toBe(0);
    const trace = JSON.parse(other.stdout) as { taken: { name: string; destinations: unknown[] }; matchIndex: number };
    expect([trace.taken.name, trace.matchIndex, trace.taken.destinations]).toEqual([
      'meshfork-jason-v2-1',
      0,
      [{ host: REVIEWS, subset: 'v1', share: 100, destinationRule: 'default/reviews', subsetLabels: { version: 'v1' } }],
    ]);
    // Another sandbox's key (a prefix of this one) is not this sandbox's: the user's routes.
    const unkeyed = await routes('reviews', ...files, '--header', 'baggage: meshfork-routing-key=k7f3q');
    expect(unkeyed.stdout.split('\n')[2]).toBe('Takes route 3 (unnamed) (user), matches every request');
  });

  it('refuses bad input naming the flag, and an unknown host', async () => {
    const header = await routes('reviews', ...files, '--header', 'end-user');
    expect([header.code, header.stdout]).toEqual([2, '']);
    expect(header.stderr).toBe("error: option '--header <name=value>' argument 'end-user' is invalid. give a header as name=value or 'name: value' (a header name is letters, digits and !#$%&'*+.^_`|~-)\n");
    const labels = await routes('reviews', ...files, '--source-labels', 'app');
    expect([labels.code, labels.stderr]).toEqual([2, "error: option '--source-labels <k=v,...>' argument 'app' is invalid. give the client's pod labels as key=value pairs separated by commas (e.g. app=web,version=v1)\n"]);
    const port = await routes('reviews', ...files, '--port', '0');
    expect([port.code, port.stderr]).toEqual([2, "error: option '--port <port>' argument '0' is invalid. give a port number from 1 to 65535\n"]);
    const gateway = await routes('reviews', ...files, '--gateway', 'ingress');
    expect([gateway.code, gateway.stderr]).toEqual([2, "error: option '--gateway <namespace/name>' argument 'ingress' is invalid. give mesh (sidecars) or <namespace>/<name> of a Gateway\n"]);
    const unknown = await routes('reviewz', ...files);
    expect([unknown.code, unknown.stdout, unknown.stderr]).toEqual([
      1,
      '',
      'meshfork: unknown host "reviewz": no VirtualService for reviewz.default.svc.cluster.local applies to sidecars of namespace default and no Service has that host; check the host, --namespace (the client\'s namespace) and --gateway\n',
    ]);
  });

  it('asks for the client labels when a route matches on sourceLabels; uses them when given', async () => {
    const file = join(work, 'by-source.yaml');
    writeFileSync(
      file,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - name: from-reviews-v2
    match: [{sourceLabels: {app: reviews, version: v2}}]
    route: [{destination: {host: ratings, subset: v2}}]
  - name: keyed
    match: [{headers: {baggage: {regex: '${baggageMemberRegex('meshfork-routing-key', 'abcd')}'}}}]
    route: [{destination: {host: ratings, subset: v9}}]
  - route: [{destination: {host: ratings, subset: v1}}]
`,
    );
    const inputs = ['-f', `${BOOKINFO}bookinfo.yaml`, `${BOOKINFO}destination-rule-all.yaml`, file];
    const asked = await routes('ratings', ...inputs, '--header', 'x: y');
    expect([asked.code, asked.stdout, asked.stderr]).toEqual([
      1,
      '',
      "meshfork: VirtualService default/ratings: spec.http[0].match[0].sourceLabels is set: the request must give sourceLabels: give --source-labels (the client pod's labels)\n",
    ]);
    const fromV2 = await routes('ratings', ...inputs, '--header', 'x: y', '--source-labels', 'app=reviews,version=v2');
    expect(fromV2.stdout.split('\n').slice(2)).toEqual(['Takes route 0 from-reviews-v2 (user), match[0]: sourceLabels app=reviews,version=v2', '  -> ratings.default.svc.cluster.local subset v2 100% (DestinationRule default/ratings: version=v2)', '']);
    // A subset no DestinationRule defines: said on stdout for the route taken and warned on stderr.
    const keyed = await routes('ratings', ...inputs, '--header', 'baggage: meshfork-routing-key=abcd', '--source-labels', 'app=productpage');
    expect(keyed.stdout.split('\n').slice(2)).toEqual([
      'Takes route 1 keyed (user), match[0]: baggage has meshfork-routing-key=abcd',
      '  -> ratings.default.svc.cluster.local subset v9 100%: DestinationRule default/ratings has no subset "v9": requests fail with 503 (NC)',
      '',
    ]);
    expect(keyed.stderr).toBe('warning: route 1 keyed: DestinationRule default/ratings has no subset "v9": requests fail with 503 (NC)\n');
  });

  it('without a VirtualService: the default route to the Service', async () => {
    const r = await routes('details', '-f', `${BOOKINFO}bookinfo.yaml`, '--header', 'a=b');
    expect([r.code, r.stderr, r.stdout]).toEqual([
      0,
      '',
      [
        "Host details.default.svc.cluster.local: no VirtualService applies to sidecars of namespace default; Istio's default route sends every request to the Service",
        'Request: any method /, a: b',
        'Takes route 0 (unnamed) (user), matches every request',
        '  -> details.default.svc.cluster.local 100%',
        '',
      ].join('\n'),
    ]);
  });
});

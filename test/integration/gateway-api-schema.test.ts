/**
 * meshfork's Gateway API routes (issue 11) against the real API server with Gateway API's
 * standard-channel CRDs (sigs.k8s.io/gateway-api, tools/gateway-api): for every Gateway API golden
 * case (test/support/golden-cases.ts), Istio's other Bookinfo gateway-api samples
 * (route-reviews-v1, -v3, route-all-v1), fixtures/gateway-api-rules.yaml (several rules and
 * matches, method/query/header matches, header modifiers, URLRewrite, a mirror, weights, timeouts,
 * a GRPCRoute) and the e2e inventory, every user route and every route `meshfork synth` writes
 * passes the CRDs' OpenAPI schema and CEL rules (server-side dry-run create), and
 * `istioctl analyze` finds nothing in the inventory plus the output that the inventory alone does
 * not have. Routes a careless derivation would write are refused, each with the field named. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { toYamlDocuments } from '../../src/cli/yaml.js';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { cli, GOLDEN_INPUTS } from '../support/cli.js';
import { istioSample, requireIstioSamples } from '../support/istio-samples.js';
import { formatAnalyzeMessage, istioctlAnalyze } from '../support/istioctl.js';
import type { KubeObj } from '../support/istiod.js';
import { GATEWAY_API_V1, keyHeaderMatch, type RouteSpec } from '../support/gateway-api-routes.js';
import { GATEWAY_GOLDEN_CASES, goldenArgs, type GoldenCase } from '../support/golden-cases.js';
import { errors, expectedWarning, newFindings } from './analyze.js';

const FIXTURE = new URL('./fixtures/gateway-api-rules.yaml', import.meta.url).pathname;
const E2E_GW = new URL('../e2e/fixtures/gateway-api/', import.meta.url).pathname;

const readText = (file: string) => readFileSync(file, 'utf8');

const work = mkdtempSync(join(tmpdir(), 'meshfork-gateway-api-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function parse(text: string, what: string): KubeObj[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${what}: ${d.errors[0]!.message}`);
      return d.toJS() as KubeObj | null;
    })
    .filter((o): o is KubeObj => o !== null && typeof o === 'object');
}

interface Case {
  readonly name: string;
  /** Namespace of the objects that name none (`synth -n`). */
  readonly namespace: string;
  /** Inventory and Sandbox files or directories given to `meshfork synth -f`. */
  readonly files: () => string[];
  readonly flags?: readonly string[];
}

/** The files a synth argument names (a directory: its .yaml files). */
const filesOf = (paths: readonly string[]) => paths.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.yaml')).map((f) => join(p, f)) : [p]));

const golden = (c: GoldenCase): Case => ({
  name: `golden ${c.name}`,
  namespace: 'default',
  files: () => goldenArgs(c).slice(goldenArgs(c).indexOf('-f') + 1),
  flags: c.flags ?? [],
});

const bookinfo = (route: string): Case => ({
  name: `Istio sample bookinfo/gateway-api/${route}`,
  namespace: 'default',
  files: () => [
    istioSample('bookinfo/platform/kube/bookinfo.yaml'),
    istioSample('bookinfo/platform/kube/bookinfo-versions.yaml'),
    istioSample(`bookinfo/gateway-api/${route}`),
    `${GOLDEN_INPUTS}bookinfo-reviews/sandbox.yaml`,
  ],
});

/** Every Gateway API golden case, Istio's other Bookinfo gateway-api samples, and two inventories of ours. */
const CASES: readonly Case[] = [
  ...GATEWAY_GOLDEN_CASES.map(golden),
  bookinfo('route-reviews-v1.yaml'),
  bookinfo('route-reviews-v3.yaml'),
  bookinfo('route-all-v1.yaml'),
  { name: 'fixtures/gateway-api-rules.yaml', namespace: 'store', files: () => [FIXTURE] },
  { name: 'e2e fixtures/gateway-api (sandboxes alpha, beta)', namespace: 'e2e', files: () => [`${E2E_GW}inventory.yaml`, `${E2E_GW}sandboxes/alpha.yaml`, `${E2E_GW}sandboxes/beta.yaml`], flags: ['--routing-mode', 'gatewayAPI'] },
];

const isRoute = (o: KubeObj) => o.apiVersion === GATEWAY_API_V1 && (o.kind === 'HTTPRoute' || o.kind === 'GRPCRoute');

/** The inventory of a case (no Sandboxes), objects without a namespace put in the case's. */
function inventoryOf(c: Case): KubeObj[] {
  return filesOf(c.files())
    .flatMap((f) => parse(readText(f), f))
    .filter((o) => o.kind !== 'Sandbox' && o.kind !== 'RouteGroup')
    .map((o) => (o.kind === 'Namespace' || o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: c.namespace } }));
}

/** `meshfork synth` of a case: what meshfork writes (notes allowed, no problems). */
function outputOf(c: Case): KubeObj[] {
  const r = cli('synth', ...(c.flags ?? []), '-n', c.namespace, '-f', ...c.files());
  const problems = r.stderr.split('\n').filter((l) => l && !l.startsWith('note: '));
  if (r.code !== 0 || problems.length > 0) throw new Error(`meshfork synth (${c.name}) failed (${r.code}):\n${r.stderr}`);
  return parse(r.stdout, `synth ${c.name}`);
}

const plural = (kind: string) => `${kind.toLowerCase()}s`;

describe.skipIf(!requireTestbin() || !requireIstioSamples())('derived Gateway API routes against the Gateway API CRDs and istioctl', () => {
  const cp = useControlPlane({ gatewayApi: true });

  /** Server-side dry-run create of a route: the API server's verdict (schema defaults, OpenAPI, CEL). */
  async function dryRun(route: KubeObj): Promise<{ status: number; message: string }> {
    const ns = route.metadata.namespace ?? 'default';
    const r = await cp().request('POST', `/apis/${GATEWAY_API_V1}/namespaces/${ns}/${plural(route.kind)}?dryRun=All&fieldValidation=Strict`, route);
    const body = JSON.parse(r.body) as { message?: string };
    return { status: r.status, message: body.message ?? '' };
  }

  async function ensureNamespace(name: string): Promise<void> {
    const r = await cp().request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    if (r.status !== 201 && r.status !== 409) throw new Error(`namespace ${name}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  }

  it('the control plane serves HTTPRoute and GRPCRoute (gateway.networking.k8s.io/v1) from the pinned CRDs', () => {
    expect(cp().crds).toEqual(expect.arrayContaining(['httproutes.gateway.networking.k8s.io', 'grpcroutes.gateway.networking.k8s.io']));
    expect(cp().versions.gatewayApi).toBe('v1.6.0');
  });

  for (const c of CASES) {
    it(`${c.name}: every user and derived route is accepted by the CRDs' schema and CEL rules (dry-run create)`, async () => {
      const user = inventoryOf(c).filter(isRoute);
      const derived = outputOf(c).filter(isRoute);
      expect(user.length, 'user routes').toBeGreaterThan(0);
      expect(derived.length, 'derived routes').toBeGreaterThan(0);
      for (const ns of new Set([...user, ...derived].map((o) => o.metadata.namespace ?? c.namespace))) await ensureNamespace(ns);
      const verdicts = await Promise.all([...user, ...derived].map(async (o) => `${o.kind} ${o.metadata.name}: ${JSON.stringify(await dryRun(o))}`));
      expect(verdicts.filter((v) => !v.includes('"status":201'))).toEqual([]);
    });
  }

  for (const c of CASES) {
    it(`${c.name}: istioctl analyze finds nothing new in the inventory plus the output`, async () => {
      const file = (n: string, objects: readonly KubeObj[]) => {
        const path = join(work, `${c.namespace}-${c.name.replace(/[^a-z0-9]+/gi, '_')}.${n}.yaml`);
        // As the CLI prints YAML: istioctl reads YAML 1.1, where a plain `on` is a boolean.
        writeFileSync(path, toYamlDocuments(objects));
        return path;
      };
      const inventory = inventoryOf(c);
      const before = await istioctlAnalyze([file('before', inventory)]);
      const after = await istioctlAnalyze([file('after', [...inventory, ...outputOf(c)])]);
      const added = newFindings(before.messages, after.messages);
      expect(errors(added).map(formatAnalyzeMessage), 'new errors').toEqual([]);
      expect(added.filter((m) => m.level !== 'Error' && !expectedWarning(c.name, m)).map(formatAnalyzeMessage), 'new findings').toEqual([]);
    });
  }

  // Routes a derivation that ignored the CRDs' rules would write. Each starts from a derived
  // route that the API server accepts, and each refusal names the field.
  describe('refused: what a careless derivation would write', () => {
    const base = (): KubeObj => outputOf(CASES.find((c) => c.namespace === 'store')!).find((o) => o.kind === 'HTTPRoute' && o.metadata.name === 'web-sb-8080')!;
    const rules = (o: KubeObj) => (o['spec'] as RouteSpec).rules!;
    const key = keyHeaderMatch('storekey01');
    beforeAll(() => ensureNamespace('store'));

    it('the base route is accepted', async () => {
      expect(await dryRun(base())).toEqual({ status: 201, message: '' });
    });

    const CEL_SKIPPED = ', <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation';
    const refusals: Array<[string, (o: KubeObj) => void, string]> = [
      [
        'the key header added twice to one match (header names are unique in a match)',
        (o) => rules(o)[1]!.matches![0]!.headers!.push({ ...key }),
        'spec.rules[1].matches[0].headers[1]: Duplicate value: {"name":"baggage"}',
      ],
      [
        'a match with 17 header matches (16 at most)',
        (o) => rules(o)[1]!.matches![0]!.headers!.push(...Array.from({ length: 16 }, (_, i) => ({ name: `x-h${i}`, value: 'v' }))),
        // A schema error: the API server then skips the CEL rules and says so.
        `[spec.rules[1].matches[0].headers: Too many: 17: must have at most 16 items${CEL_SKIPPED}]`,
      ],
      [
        'a backendRef retargeted to a Service without its port',
        (o) => delete rules(o)[3]!.backendRefs![0]!.port,
        'spec.rules[3].backendRefs[0]: Invalid value: Must have port for Service reference',
      ],
      [
        'the key as a second match of a rule rewriting with ReplacePrefixMatch (exactly one match allowed)',
        (o) => rules(o)[1]!.matches!.push({ headers: [{ ...key }] }),
        'spec.rules[1]: Invalid value: When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified',
      ],
      [
        "Istio's regex type name instead of Gateway API's",
        (o) => ((rules(o)[0]!.matches![1]!.headers!.find((h) => h.name === 'baggage') as { type: string }).type = 'Regex'),
        `[spec.rules[0].matches[1].headers[1].type: Unsupported value: "Regex": supported values: "Exact", "RegularExpression"${CEL_SKIPPED}]`,
      ],
    ];
    for (const [what, mutate, message] of refusals) {
      it(what, async () => {
        const route = base();
        mutate(route);
        expect(await dryRun(route)).toEqual({ status: 422, message: `HTTPRoute.gateway.networking.k8s.io "web-sb-8080" is invalid: ${message}` });
      });
    }
  });
});

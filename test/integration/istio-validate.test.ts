/**
 * Istio's own validators on everything `meshfork synth` produces (DESIGN.md, "Verification",
 * step 2), for every golden case and the repository example:
 *
 *  (a) `istioctl validate -f <synth output>`: the per-kind validation istiod's admission webhook
 *      runs, on every object (Istio kinds; Services for port naming; Deployments for the
 *      canonical-service labels).
 *  (b) `istioctl analyze --use-kube=false` on the cluster state after applying the output onto
 *      the inventory: no Error-level message, except the findings that cannot be decided offline
 *      (OFFLINE_ONLY below).
 *
 * And both validators are shown to fail on bad input, so a passing run means something.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { requireTestbin } from '../support/control-plane-testbin.js';
import { GOLDEN_INPUTS } from '../support/cli.js';
import {
  formatAnalyzeMessage,
  istioctlAnalyze,
  istioctlValidate,
  istioctlVersion,
  type AnalyzeMessage,
} from '../support/istioctl.js';
import { afterApply, goldenCaseNames, SYNTH_CASES, synth, type Obj } from './synth-cases.js';

const hasBins = requireTestbin();

/**
 * Analyzer findings that are impossible to decide from files alone, and why. Each entry is as
 * narrow as the reason: a code plus the resource kind / message it applies to.
 *
 * Offline input has Deployments but no Pods (a Deployment's pods exist only once a
 * ReplicaSet controller created them), and both analyzers below look at gvk.Pod and nothing
 * else (istio.io/istio at the pinned version):
 *  - IST0173 DestinationRuleSubsetNotSelectPods (Error), analyzers/destinationrule/subset.go
 *    (PodNotSelectedAnalyzer): "The Subset %s defined in the DestinationRule does not select any
 *    pods" for every subset of every DestinationRule, since no Pod exists to match.
 *  - IST0101 ReferencedResourceNotFound "selector" on a Gateway (Error),
 *    analyzers/gateway/gateway.go (IngressGatewayPortAnalyzer): no Pod matches the Gateway's
 *    workload selector (the ingress gateway pods, e.g. istio=ingressgateway). IST0101 for any
 *    other reference (a VirtualService host, a DestinationRule subset, a gateway name) stays an
 *    error: those are decided from the files.
 */
const OFFLINE_ONLY: ReadonlyArray<{ code: string; origin: RegExp; message: RegExp; why: string }> = [
  { code: 'IST0173', origin: /^DestinationRule /, message: /does not select any pods/, why: 'no Pods offline' },
  { code: 'IST0101', origin: /^Gateway /, message: /^Referenced selector not found/, why: 'no gateway Pods offline' },
];

function offlineOnly(m: AnalyzeMessage): boolean {
  return OFFLINE_ONLY.some((a) => a.code === m.code && a.origin.test(m.origin ?? '') && a.message.test(m.message));
}

/**
 * The one validate warning every EnvoyFilter gets, whatever it holds: ValidateEnvoyFilter
 * (istio.io/istio pkg/config/validation/envoyfilter/envoyfilter.go) starts with
 * `AppendWarningf("EnvoyFilter exposes internal implementation details that may change at any
 * time. ...")` before looking at the object. Any other warning fails the test.
 */
const ALWAYS_WARNED = /^EnvoyFilter\/[^/]+\/[^:]+: EnvoyFilter exposes internal implementation details that may change at any time\./;

const errors = (ms: readonly AnalyzeMessage[]) => ms.filter((m) => m.level === 'Error' && !offlineOnly(m));

const work = mkdtempSync(join(tmpdir(), 'meshfork-istio-validate-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function writeObjects(file: string, objects: readonly Obj[]): string {
  const path = join(work, file);
  writeFileSync(path, objects.map((o) => `---\n${stringify(o)}`).join(''));
  return path;
}

describe.skipIf(!hasBins)('istioctl validate and analyze on meshfork synth output', () => {
  beforeAll(async () => {
    console.log(`istioctl version --remote=false: ${await istioctlVersion()}`);
  });

  it('covers every golden case', () => {
    const dirs = readdirSync(GOLDEN_INPUTS).sort();
    expect(goldenCaseNames().sort()).toEqual(dirs);
  });

  for (const c of SYNTH_CASES) {
    describe(c.name, () => {
      let output: Obj[] = [];
      let outFile = '';
      beforeAll(() => {
        const r = synth(c);
        output = r.objects;
        outFile = join(work, `${c.name}.synth.yaml`);
        writeFileSync(outFile, r.yaml);
      });

      it('istioctl validate -f accepts every object', async () => {
        const kinds = [...new Set(output.map((o) => o.kind))].sort();
        const r = await istioctlValidate([outFile]);
        console.log(`${c.name}: istioctl validate on ${output.length} objects (${kinds.join(', ')}): exit ${r.code}: ${r.output.trim()}`);
        expect(r.code).toBe(0);
        expect(r.output).not.toMatch(/error|may not provide Istio metrics/i);
        expect(r.warnings.filter((w) => !ALWAYS_WARNED.test(w))).toEqual([]);
        if (r.warnings.length === 0) expect(r.output).toContain(`"${outFile}" is valid`);
        else expect(r.output).toContain(`"${outFile}" has warnings`);
      });

      it('istioctl analyze --use-kube=false reports no error on inventory + output', async () => {
        const { objects, replaced } = afterApply(c, output);
        const file = writeObjects(`${c.name}.after.yaml`, objects);
        const r = await istioctlAnalyze([file]);
        const suppressed = r.messages.filter((m) => m.level === 'Error' && offlineOnly(m));
        const others = r.messages.filter((m) => m.level !== 'Error');
        console.log(
          `${c.name}: istioctl analyze on ${objects.length} objects (${output.length} from synth, replacing ${replaced.length}: ${replaced.join(', ') || 'none'}): ` +
            `${r.messages.length} messages; ${suppressed.length} offline-only errors suppressed` +
            [...suppressed, ...others].map((m) => `\n  ${formatAnalyzeMessage(m)}`).join(''),
        );
        expect(errors(r.messages).map(formatAnalyzeMessage)).toEqual([]);
        // No message at all (even Info/Warning) may be about an object meshfork created.
        const created = new Set(output.map((o) => `${o.kind} ${o.metadata.namespace ?? c.namespace}/${o.metadata.name}`));
        const replacedOrigins = new Set(replaced.map((k) => k.replace(/^[^/]*\//, '')));
        expect(r.messages.filter((m) => created.has(m.origin ?? '') && !replacedOrigins.has(m.origin ?? '')).map(formatAnalyzeMessage)).toEqual([]);
      });
    });
  }

  describe('the validators can fail', () => {
    const bookinfo = SYNTH_CASES.find((c) => c.name === 'bookinfo-reviews')!;

    it('analyze reports IST0109 for a second mesh VirtualService on a host meshfork routes', async () => {
      const { objects } = afterApply(bookinfo, synth(bookinfo).objects);
      const conflicting: Obj = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'reviews-duplicate', namespace: 'default' },
        spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] },
      };
      const file = writeObjects('conflict.yaml', [...objects, conflicting]);
      const r = await istioctlAnalyze([file]);
      const found = errors(r.messages).filter((m) => m.code === 'IST0109');
      console.log(`conflicting VirtualService: ${found.map(formatAnalyzeMessage).join('; ')}`);
      expect(found.length).toBeGreaterThan(0);
      expect(found.map((m) => m.origin)).toEqual(expect.arrayContaining(['VirtualService default/reviews-duplicate']));
    });

    it('analyze reports IST0101 when the fork Service is missing (the VirtualService routes to an unknown host)', async () => {
      const output = synth(bookinfo).objects.filter((o) => o.kind !== 'Service');
      const { objects } = afterApply(bookinfo, output);
      const r = await istioctlAnalyze([writeObjects('no-fork-service.yaml', objects)]);
      const found = errors(r.messages).filter((m) => m.code === 'IST0101');
      console.log(`missing fork Service: ${found.map(formatAnalyzeMessage).join('; ')}`);
      expect(found.map((m) => m.origin)).toContain('VirtualService default/reviews');
      expect(found.map((m) => m.message).join('\n')).toMatch(/reviews-pr-481\.default\.svc\.cluster\.local/);
    });

    it('validate rejects a VirtualService http route with both route and redirect', async () => {
      const bad: Obj = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'bad', namespace: 'default' },
        spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], redirect: { uri: '/x' } }] },
      };
      const r = await istioctlValidate([writeObjects('bad-vs.yaml', [bad])]);
      console.log(`istioctl validate on a route+redirect VirtualService: exit ${r.code}: ${r.output.trim()}`);
      expect(r.code).not.toBe(0);
      // istio.io/istio pilot validation, pkg/config/validation/virtualservice.go.
      expect(r.output).toMatch(/VirtualService\/default\/bad:.*HTTP route cannot contain both route and redirect/);
    });

    it('validate rejects an unnamed Service port (istioctl checks Services, not only Istio kinds)', async () => {
      const svc = synth(bookinfo).objects.find((o) => o.kind === 'Service')!;
      const unnamed = structuredClone(svc) as Obj & { spec: { ports: Array<Record<string, unknown>> } };
      for (const p of unnamed.spec.ports) delete p['name'];
      const r = await istioctlValidate([writeObjects('unnamed-port.yaml', [unnamed])]);
      console.log(`istioctl validate on an unnamed Service port: exit ${r.code}: ${r.output.trim()}`);
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/unnamed port/);
    });
  });
});

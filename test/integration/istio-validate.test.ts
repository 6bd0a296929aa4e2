/**
 * Istio's own validators on everything `meshfork synth` produces (DESIGN.md, "Verification",
 * step 2), for every golden case and the repository example:
 *
 *  (a) `istioctl validate -f <synth output>`: the per-kind validation istiod's admission webhook
 *      runs, on every object (Istio kinds; Services for port naming; Deployments for the
 *      canonical-service labels).
 *  (b) `istioctl analyze --use-kube=false` on the cluster state after applying the output onto
 *      the inventory: no Error-level message that the inventory alone does not already have,
 *      except findings only running Pods could decide (NEEDS_PODS in analyze.ts); no new
 *      warning beyond the documented ones (analyze.ts); and every VirtualService destination
 *      host resolves to a Service, which file-mode analyze does not check (it skips every
 *      analyzer needing core kinds; the list is printed). apiserver-roundtrip.test.ts runs
 *      analyze against the API server, where those analyzers run too.
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
import { ENVOYFILTER_NOTICE, errors, expectedWarning, needsPods, newFindings } from './analyze.js';
import { GATEWAY_GOLDEN_CASES } from '../support/golden-cases.js';
import { afterApply, goldenCaseNames, readObjects, SYNTH_CASES, synth, type Obj, type SynthCase } from './synth-cases.js';

const hasBins = requireTestbin();

const work = mkdtempSync(join(tmpdir(), 'meshfork-istio-validate-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function writeObjects(file: string, objects: readonly Obj[]): string {
  const path = join(work, file);
  writeFileSync(path, objects.map((o) => `---\n${stringify(o)}`).join(''));
  return path;
}

/** Canonical-revision labels, in istio.io/istio pkg/kube/labels/labels.go `revisionLabels`. */
const REVISION_LABELS = ['service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version'];
const templateLabels = (d: Obj | undefined) =>
  ((d?.spec as { template?: { metadata?: { labels?: Record<string, string> } } } | undefined)?.template?.metadata?.labels ?? {}) as Record<string, string>;

/**
 * `istioctl validate` prints `deployment "<name>/<ns>:" may not provide Istio metrics and telemetry
 * labels` (advisory, exit 0) when a pod template lacks a canonical-service name or revision label
 * (validateDeploymentLabel). For a fork that is acceptable only when its baseline lacks the same
 * labels: the fork inherits the gap, meshfork did not open it. Returns the advisories that are not
 * inherited.
 */
function uninheritedTelemetryAdvisories(c: SynthCase, output: readonly Obj[], validateOutput: string): string[] {
  const inventory = readObjects(c.inventory, c.namespace);
  const bad: string[] = [];
  for (const [, name, ns] of validateOutput.matchAll(/deployment "([^/]+)\/([^:]*):" may not provide Istio metrics/g)) {
    const fork = output.find((o) => o.kind === 'Deployment' && o.metadata.name === name && (o.metadata.namespace ?? c.namespace) === ns);
    const baselineName = (fork?.metadata['labels'] as Record<string, string> | undefined)?.['meshfork.dev/fork-of'];
    const baseline = inventory.find((o) => o.kind === 'Deployment' && o.metadata.name === baselineName && o.metadata.namespace === ns);
    const forkHas = REVISION_LABELS.some((l) => l in templateLabels(fork));
    const baselineHas = REVISION_LABELS.some((l) => l in templateLabels(baseline));
    if (!baseline || forkHas || baselineHas) bad.push(`${ns}/${name} (baseline ${baselineName ?? '?'}: revision label ${baselineHas ? 'present' : 'absent'})`);
  }
  return bad;
}

/** VirtualService destination hosts in `objects` with no Service or ServiceEntry in `objects`. */
function unresolvedHosts(objects: readonly Obj[]): string[] {
  const known = new Set<string>();
  for (const o of objects) {
    const ns = o.metadata.namespace ?? 'default';
    if (o.kind === 'Service') for (const h of [o.metadata.name, `${o.metadata.name}.${ns}`, `${o.metadata.name}.${ns}.svc`, `${o.metadata.name}.${ns}.svc.cluster.local`]) known.add(`${ns}|${h}`);
    if (o.kind === 'ServiceEntry') for (const h of (o.spec as { hosts?: string[] }).hosts ?? []) known.add(`*|${h}`);
  }
  const missing: string[] = [];
  for (const vs of objects.filter((o) => o.kind === 'VirtualService')) {
    const ns = vs.metadata.namespace ?? 'default';
    const spec = vs.spec as Record<string, Array<{ route?: Array<{ destination?: { host?: string } }> }> | undefined>;
    for (const proto of ['http', 'tcp', 'tls']) {
      for (const rule of spec[proto] ?? []) {
        for (const r of rule.route ?? []) {
          const h = r.destination?.host ?? '';
          const fqdnNs = /^[^.]+\.([^.]+)\.svc(\.cluster\.local)?$/.exec(h)?.[1];
          if (!known.has(`${fqdnNs ?? ns}|${h}`) && !known.has(`*|${h}`)) missing.push(`VirtualService ${ns}/${vs.metadata.name}: ${h}`);
        }
      }
    }
  }
  return [...new Set(missing)];
}

describe.skipIf(!hasBins)('istioctl validate and analyze on meshfork synth output', () => {
  beforeAll(async () => {
    console.log(`istioctl version --remote=false: ${await istioctlVersion()}`);
  });

  it('covers every golden case (the Gateway API ones in gateway-api-schema.test.ts)', () => {
    const dirs = readdirSync(GOLDEN_INPUTS).sort();
    expect([...goldenCaseNames(), ...GATEWAY_GOLDEN_CASES.map((c) => c.name)].sort()).toEqual(dirs);
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
        expect(r.output).not.toMatch(/error/i);
        expect(uninheritedTelemetryAdvisories(c, output, r.output)).toEqual([]);
        const known = (w: string) => w.endsWith(`: ${ENVOYFILTER_NOTICE} Prefer other APIs if possible, and exercise extreme caution, especially around upgrades.`);
        expect(r.warnings.filter((w) => !known(w))).toEqual([]);
        expect(r.output).toContain(r.warnings.length === 0 ? `"${outFile}" is valid` : `"${outFile}" has warnings`);
      });

      it('istioctl analyze --use-kube=false finds no new error in inventory + output', async () => {
        const { objects, replaced } = afterApply(c, output);
        const before = await istioctlAnalyze([writeObjects(`${c.name}.before.yaml`, afterApply(c, []).objects)]);
        const after = await istioctlAnalyze([writeObjects(`${c.name}.after.yaml`, objects)]);
        const added = newFindings(before.messages, after.messages);
        const suppressed = after.messages.filter((m) => m.level === 'Error' && needsPods(m));
        const preexisting = errors(after.messages).filter((m) => !added.includes(m));
        if (c === SYNTH_CASES[0]) {
          console.log(`istioctl analyze --use-kube=false: ${after.executed.length} analyzers executed; ${after.skipped.length} skipped for want of input kinds: ${after.skipped.join(', ')}`);
        }
        console.log(
          `${c.name}: istioctl analyze on ${objects.length} objects (${output.length} from synth, replacing ${replaced.length}: ${replaced.join(', ') || 'none'}): ` +
            `${after.messages.length} messages (inventory alone: ${before.messages.length}); ${suppressed.length} errors needing Pods suppressed; ` +
            `${preexisting.length} errors already in the inventory; ${added.length} new findings` +
            [...suppressed.map((m) => `suppressed: ${formatAnalyzeMessage(m)}`), ...preexisting.map((m) => `inventory: ${formatAnalyzeMessage(m)}`), ...added.map((m) => `new: ${formatAnalyzeMessage(m)}`)]
              .map((l) => `\n  ${l}`)
              .join(''),
        );
        // meshfork adds no error (findings the inventory already has are the inventory's).
        expect(errors(added).map(formatAnalyzeMessage)).toEqual([]);
        // Nor any warning or info, except the notice every EnvoyFilter gets and the known issue.
        expect(added.filter((m) => m.level !== 'Error' && !expectedWarning(c.name, m)).map(formatAnalyzeMessage)).toEqual([]);
      });

      it('every VirtualService destination host has a Service (file-mode analyze skips this check)', () => {
        // In file mode analyze skips virtualservice.DestinationHostAnalyzer (it needs Services,
        // which the file source does not provide), so a route to a Service meshfork forgot to
        // create would pass it. apiserver-roundtrip.test.ts runs analyze against the API server,
        // where it does run; check it offline too. Routes the inventory already had unresolved
        // (the signadot case's VirtualService for `location`, whose Service is not in its files)
        // are the inventory's.
        const before = new Set(unresolvedHosts(afterApply(c, []).objects));
        expect(unresolvedHosts(afterApply(c, output).objects).filter((h) => !before.has(h))).toEqual([]);
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

    it('analyze reports IST0101 when a meshfork rule names a subset no DestinationRule defines', async () => {
      const output = synth(bookinfo).objects.map((o) => {
        if (o.kind !== 'VirtualService') return o;
        const vs = structuredClone(o) as Obj & { spec: { http: Array<{ name?: string; route: Array<{ destination: Record<string, string> }> }> } };
        for (const rule of vs.spec.http) if (rule.name?.startsWith('meshfork-')) rule.route = [{ destination: { host: 'reviews', subset: 'pr-481' } }];
        return vs;
      });
      const r = await istioctlAnalyze([writeObjects('bad-subset.yaml', afterApply(bookinfo, output).objects)]);
      const found = errors(r.messages).filter((m) => m.code === 'IST0101');
      console.log(`subset without DestinationRule: ${found.map(formatAnalyzeMessage).join('; ')}`);
      expect(found.map((m) => m.origin)).toContain('VirtualService default/reviews');
      expect(found.map((m) => m.message)).toContain('Referenced host+subset in destinationrule not found: "reviews+pr-481"');
    });

    it('the host check finds a route to a Service that does not exist', () => {
      const output = synth(bookinfo).objects.filter((o) => o.kind !== 'Service');
      expect(unresolvedHosts(afterApply(bookinfo, output).objects)).toEqual(['VirtualService default/reviews: reviews-pr-481.default.svc.cluster.local']);
    });

    it('split: no rule is unreachable (a split copy takes only untagged requests, so the user route still gets the others)', async () => {
      const split = SYNTH_CASES.find((c) => c.name === 'split')!;
      const r = await istioctlAnalyze([writeObjects('split-unreachable.yaml', afterApply(split, synth(split).objects).objects)]);
      const unreachable = r.messages.filter((m) => m.code === 'IST0130');
      console.log(`split: ${unreachable.map(formatAnalyzeMessage).join('; ') || 'no IST0130'}`);
      expect(unreachable).toEqual([]);
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

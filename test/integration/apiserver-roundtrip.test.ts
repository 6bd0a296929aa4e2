/**
 * Everything `meshfork synth` produces, through a real kube-apiserver with Istio's CRDs
 * (DESIGN.md, "Verification", step 3): server-side applied as meshfork would (field manager
 * `meshfork`, fieldValidation=Strict, force) and read back unchanged:
 *  - Istio objects: spec, labels and annotations exactly as sent, so no field was pruned or
 *    rewritten by the CRD's structural schema;
 *  - Deployments and Services: every field sent is present with the same value (the API server
 *    adds defaults to core kinds: clusterIP, protocol, terminationMessagePath, ...).
 * Re-applying the same object is a no-op (resourceVersion unchanged). `istioctl analyze` run
 * against this API server (where every analyzer runs, unlike file mode) finds nothing new in
 * inventory + output. And the Istio CRDs really reject bad objects (OpenAPI schema and CEL
 * rules), with HTTP 422 and the field path, while a route+redirect VirtualService passes them
 * (only istiod's webhook / `istioctl validate` catch that).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';
import { isStatus, Kube, notContained, withoutServerFields, type KObj, type KStatus } from './kube.js';
import { formatAnalyzeMessage, parseAnalyze } from '../support/istioctl.js';
import { errors, expectedWarning, needsPods, newFindings } from './analyze.js';
import { readObjects, SYNTH_CASES, synth } from './synth-cases.js';

const hasBins = requireTestbin();

const CORE_GROUPS = new Set(['v1', 'apps/v1']);

function label(o: KObj): string {
  return `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

describe.skipIf(!hasBins)('meshfork synth output through kube-apiserver with Istio CRDs', () => {
  const cp = useControlPlane();
  const kube = new Kube(cp);

  beforeAll(async () => {
    const namespaces = new Set(SYNTH_CASES.map((c) => c.namespace));
    for (const ns of namespaces) {
      const r = await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      expect([200, 201], r.raw).toContain(r.status);
    }
  });

  for (const c of SYNTH_CASES) {
    it(`${c.name}: every object is applied and read back as sent`, async () => {
      const objects = synth(c).objects as KObj[];
      const counts = new Map<string, number>();
      for (const sent of objects) {
        const what = label(sent);
        counts.set(sent.kind, (counts.get(sent.kind) ?? 0) + 1);
        const applied = await kube.apply(sent);
        expect([200, 201], `${what}: ${applied.raw}`).toContain(applied.status);

        const got = await kube.get(sent);
        expect(got.status, `${what}: ${got.raw}`).toBe(200);
        const read = withoutServerFields(got.body as KObj);

        if (CORE_GROUPS.has(sent.apiVersion)) {
          expect(notContained(sent, read), what).toEqual([]);
        } else {
          expect(read.apiVersion, what).toBe(sent.apiVersion);
          expect(read['spec'], `${what}: spec read back differs (pruned or rewritten by the CRD schema?)`).toStrictEqual(sent['spec']);
          expect(read.metadata, what).toStrictEqual({ ...sent.metadata, namespace: sent.metadata.namespace ?? c.namespace });
          expect(Object.keys(read).sort(), what).toEqual(Object.keys(sent).sort());
        }

        // Idempotent: the same apply again changes nothing.
        const rv = (got.body as KObj).metadata['resourceVersion'];
        const again = await kube.apply(sent);
        expect(again.status, `${what}: ${again.raw}`).toBe(200);
        expect((again.body as KObj).metadata['resourceVersion'], `${what}: re-apply changed the object`).toBe(rv);
      }
      console.log(`${c.name}: applied and read back ${objects.length} objects (${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')})`);
      // Cases share names (VirtualService default/reviews): leave the cluster clean.
      for (const o of objects) {
        const d = await kube.delete(o);
        expect([200, 202], `${label(o)}: ${d.raw}`).toContain(d.status);
      }
    });
  }

  describe('istioctl analyze against the API server', () => {
    // In file mode (istio-validate.test.ts) analyze skips every analyzer that needs core kinds
    // (Services, Deployments, Pods, Namespaces). Here they run: the inventory is applied, analyzed,
    // then meshfork's output on top and analyzed again; meshfork may add no error and no warning
    // beyond the expected ones (analyze.ts). No Pods exist in this cluster (no kubelet, no
    // controllers), so the findings that need Pods are set aside (NEEDS_PODS).
    const analyze = async () => parseAnalyze(await cp().exec('istioctl', ['analyze', '--all-namespaces', '-v', '-o', 'json'], { timeoutMs: 120_000 }));

    for (const c of SYNTH_CASES) {
      it(`${c.name}: no new finding on inventory + output`, async () => {
        const output = synth(c).objects as KObj[];
        const inventory: KObj[] = [];
        const skipped: string[] = [];
        for (const o of readObjects(c.inventory, c.namespace) as KObj[]) {
          if (await kube.served(o)) inventory.push(o);
          else skipped.push(label(o));
        }
        for (const o of inventory) {
          const r = await kube.apply(o, 'inventory');
          expect([200, 201], `${label(o)}: ${r.raw}`).toContain(r.status);
        }
        const before = await analyze();
        for (const o of output) {
          const r = await kube.apply(o);
          expect([200, 201], `${label(o)}: ${r.raw}`).toContain(r.status);
        }
        const after = await analyze();
        for (const o of [...output, ...inventory]) await kube.delete(o);

        const added = newFindings(before.messages, after.messages);
        const set = after.messages.filter((m) => m.level === 'Error' && needsPods(m));
        if (c === SYNTH_CASES[0]) console.log(`istioctl analyze (cluster): ${after.skipped.length} analyzers skipped: ${after.skipped.join(', ') || 'none'}`);
        console.log(
          `${c.name}: cluster analyze with ${inventory.length} inventory objects (${skipped.length} kinds not served: ${skipped.join(', ') || 'none'}) + ${output.length} from synth: ` +
            `${after.messages.length} messages (inventory alone: ${before.messages.length}); ${set.length} errors needing Pods set aside; ${added.length} new` +
            [...before.messages.map((m) => `inventory: ${formatAnalyzeMessage(m)}`), ...added.map((m) => `new: ${formatAnalyzeMessage(m)}`)].map((l) => `\n  ${l}`).join(''),
        );
        expect(errors(added).map(formatAnalyzeMessage)).toEqual([]);
        expect(added.filter((m) => m.level !== 'Error' && !expectedWarning(c.name, m)).map(formatAnalyzeMessage)).toEqual([]);
      });
    }

    it('reports IST0101 for a meshfork route whose fork Service is missing (so the check can fail)', async () => {
      const c = SYNTH_CASES.find((x) => x.name === 'bookinfo-reviews')!;
      const objects = [...(readObjects(c.inventory, c.namespace) as KObj[]), ...(synth(c).objects as KObj[]).filter((o) => o.kind !== 'Service')];
      for (const o of objects) {
        const r = await kube.apply(o);
        expect([200, 201], `${label(o)}: ${r.raw}`).toContain(r.status);
      }
      const r = await analyze();
      for (const o of objects) await kube.delete(o);
      const found = errors(r.messages).filter((m) => m.code === 'IST0101').map(formatAnalyzeMessage);
      console.log(`missing fork Service: ${found.join('; ')}`);
      expect(found).toContain('Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviews-pr-481.default.svc.cluster.local"');
    });
  });

  describe('the Istio CRDs reject bad objects (OpenAPI schema and CEL rules)', () => {
    const meta = (name: string) => ({ name, namespace: 'default' });
    const CASES: ReadonlyArray<{ name: string; object: KObj; field: string; message: RegExp }> = [
      {
        name: 'DestinationRule without host (required)',
        object: { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: meta('no-host'), spec: { subsets: [{ name: 'v1', labels: { version: 'v1' } }] } },
        field: 'spec.host',
        message: /Required value/,
      },
      {
        name: 'EnvoyFilter with an unknown patch operation (enum)',
        object: {
          apiVersion: 'networking.istio.io/v1alpha3',
          kind: 'EnvoyFilter',
          metadata: meta('bad-op'),
          spec: { configPatches: [{ applyTo: 'HTTP_FILTER', patch: { operation: 'PREPEND', value: {} } }] },
        },
        field: 'spec.configPatches[0].patch.operation',
        message: /Unsupported value: "PREPEND"/,
      },
      {
        name: 'EnvoyFilter with both workloadSelector and targetRefs (CEL)',
        object: {
          apiVersion: 'networking.istio.io/v1alpha3',
          kind: 'EnvoyFilter',
          metadata: meta('both-selectors'),
          spec: {
            workloadSelector: { labels: { app: 'reviews' } },
            targetRefs: [{ kind: 'Service', group: '', name: 'reviews' }],
            configPatches: [{ applyTo: 'HTTP_FILTER', patch: { operation: 'INSERT_BEFORE', value: {} } }],
          },
        },
        field: 'spec',
        message: /only one of targetRefs or workloadSelector can be set/,
      },
      {
        name: 'VirtualService with a timeout under 1ms (CEL)',
        object: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: meta('short-timeout'),
          spec: { hosts: ['reviews'], http: [{ timeout: '500us', route: [{ destination: { host: 'reviews' } }] }] },
        },
        field: 'spec.http[0].timeout',
        message: /must be a valid duration greater than 1ms/,
      },
      {
        name: 'VirtualService header match with both exact and regex (oneOf)',
        object: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: meta('two-matchers'),
          spec: {
            hosts: ['reviews'],
            http: [{ match: [{ headers: { baggage: { exact: 'a', regex: '.*' } } }], route: [{ destination: { host: 'reviews' } }] }],
          },
        },
        field: 'spec.http[0].match[0].headers.baggage',
        message: /must validate one and only one schema \(oneOf\)/,
      },
      {
        name: 'VirtualService with a field the schema does not have (fieldValidation=Strict)',
        object: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: meta('unknown-field'),
          spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], retry: { attempts: 3 } }] },
        },
        field: 'spec.http[0].retry',
        message: /unknown field/,
      },
    ];

    for (const t of CASES) {
      it(t.name, async () => {
        const r = await kube.create(t.object);
        const status = r.body as KStatus;
        console.log(`${t.name}: HTTP ${r.status}: ${isStatus(status) ? status.message : r.raw}`);
        expect(isStatus(status), r.raw).toBe(true);
        // Schema and CEL violations are 422 Invalid; a strict-decoding error (unknown field) is 400.
        expect(r.status).toBe(/unknown field/.test(t.message.source) ? 400 : 422);
        expect(status.message).toContain(t.field);
        expect(status.message).toMatch(t.message);
      });
    }

    it('a VirtualService http route with both route and redirect passes the CRD (only istiod/istioctl validation rejects it)', async () => {
      const object: KObj = {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: meta('route-and-redirect'),
        spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], redirect: { uri: '/x' } }] },
      };
      const r = await kube.create(object);
      expect(r.status, r.raw).toBe(201);
      await kube.delete(object);
    });
  });
});

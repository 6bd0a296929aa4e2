/**
 * meshfork's CRDs (customResourceDefinitions(), the same objects as
 * charts/meshfork/crds/meshfork.dev_crds.yaml) installed in a real kube-apiserver:
 *  - every Sandbox/RouteGroup of the golden inputs and the example, and one using every field,
 *    is accepted with fieldValidation=Strict and read back with only the schema's defaults added;
 *  - every INVALID_SPECS case marked `crd: true` (the table the CLI tests use) is rejected by the
 *    API server (OpenAPI schema or CEL), naming the same field path the CLI prints;
 *  - printer columns, short names and the category work with the real kubectl.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { customResourceDefinitions } from '../../src/api/crd.js';
import { cli } from '../support/cli.js';
import { requireTestbin, type CrdSource } from '../support/control-plane.js';
import { useSharedControlPlane } from '../support/shared-control-plane.js';
import { INVALID_SPECS, sandbox } from '../support/invalid-specs.js';
import { isStatus, Kube, notContained, withoutServerFields, type KObj, type KStatus } from './kube.js';
import { readObjects, SYNTH_CASES } from './synth-cases.js';

const hasBins = requireTestbin();
const CHART_CRDS = new URL('../../charts/meshfork/crds/meshfork.dev_crds.yaml', import.meta.url).pathname;

/**
 * The API server's field path for a CLI problem path. Both use the same form
 * (`spec.forks[0].customizations.env[0]`): field.Path in k8s.io/apimachinery prints
 * `.child` and `[index]` exactly like the CLI, so the mapping is the identity; it is spelled
 * out so that a divergence has one place to go.
 */
export function apiServerPath(cliPath: string): string {
  return cliPath;
}

/** A Sandbox that sets every field of the spec. */
const EVERY_FIELD = sandbox(
  'every-field',
  {
    description: 'Uses every field.',
    routingKey: 'everyfield1',
    ttl: { duration: '2d', offsetFrom: 'updatedAt' },
    split: { weight: 10 },
    endpoints: [{ name: 'web', target: 'http://productpage.default.svc:9080/productpage' }],
    forks: [
      {
        forkOf: { kind: 'Deployment', name: 'reviews-v3', namespace: 'default' },
        customizations: {
          images: [{ container: 'reviews', image: 'registry.example.com/reviews:pr-1' }],
          env: [
            { name: 'A', value: 'x' },
            { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'LOG_DIR', operation: 'delete' },
          ],
          command: [{ container: 'reviews', value: ['/opt/start'] }],
          args: [{ value: ['--verbose'] }],
          patch: { type: 'json', value: [{ op: 'add', path: '/metadata/annotations/x', value: 'y' }] },
          replicas: 2,
        },
      },
    ],
  },
  { namespace: 'default', labels: { team: 'reviews' } },
);

/** Defaults the schema sets on an object that omits them. */
function expectedDefaults(o: KObj): string[] {
  const spec = o['spec'] as { ttl?: { offsetFrom?: string }; forks?: Array<{ customizations?: { replicas?: number; env?: Array<{ operation?: string }> } }> } | undefined;
  const out: string[] = [];
  if (spec?.ttl && spec.ttl.offsetFrom === undefined) out.push('spec.ttl.offsetFrom=createdAt');
  spec?.forks?.forEach((f, i) => {
    if (f.customizations && f.customizations.replicas === undefined) out.push(`spec.forks[${i}].customizations.replicas=1`);
    f.customizations?.env?.forEach((e, j) => {
      if (e.operation === undefined) out.push(`spec.forks[${i}].customizations.env[${j}].operation=upsert`);
    });
  });
  return out.sort();
}

/** Fields present in `read` but not in `sent`, as `path=value` (scalars only). */
function added(sent: unknown, read: unknown, path = ''): string[] {
  if (Array.isArray(sent) && Array.isArray(read)) return read.flatMap((r, i) => added(sent[i], r, `${path}[${i}]`));
  if (read !== null && typeof read === 'object' && !Array.isArray(read)) {
    const s = (sent ?? {}) as Record<string, unknown>;
    return Object.entries(read).flatMap(([k, v]) => {
      const p = path ? `${path}.${k}` : k;
      if (!(k in s)) return v !== null && typeof v === 'object' ? [`${p}=${JSON.stringify(v)}`] : [`${p}=${String(v)}`];
      return added(s[k], v, p);
    });
  }
  return [];
}

describe.skipIf(!hasBins)("meshfork's CRDs in kube-apiserver", () => {
  const cp = useSharedControlPlane();
  // The shared plane installed the chart's file; applying the generated objects over it (a no-op
  // while the two agree) makes this suite test customResourceDefinitions() itself.
  beforeAll(async () => {
    await cp().installCrds(customResourceDefinitions() as unknown as CrdSource[]);
  });
  const kube = new Kube(cp);

  it('installs the CRDs generated into the chart', () => {
    // Same objects as the committed chart file (test/api/crds-file.test.ts keeps it current).
    expect(readFileSync(CHART_CRDS, 'utf8')).toContain('name: sandboxes.meshfork.dev');
    expect(cp().crds).toEqual(expect.arrayContaining(['sandboxes.meshfork.dev', 'routegroups.meshfork.dev']));
  });

  describe('valid objects are accepted', () => {
    const valid: KObj[] = [
      ...SYNTH_CASES.flatMap((c) => readObjects(c.specs, c.namespace)).filter((o) => o.apiVersion.startsWith('meshfork.dev/')),
      EVERY_FIELD as unknown as KObj,
    ];

    beforeAll(async () => {
      for (const ns of new Set(valid.map((o) => o.metadata.namespace ?? 'default'))) {
        const r = await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        expect([200, 201], r.raw).toContain(r.status);
      }
    });

    it('the CLI accepts the object that uses every field', () => {
      // Written into the plane's temporary directory, removed with it.
      const file = join(cp().dir, 'every-field.yaml');
      writeFileSync(file, JSON.stringify(EVERY_FIELD));
      const r = cli('validate', '-f', file);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

    for (const o of valid) {
      it(`${o.kind} ${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, async () => {
        const r = await kube.create(o);
        expect(r.status, r.raw).toBe(201);
        const got = await kube.get(o);
        const read = withoutServerFields(got.body as KObj);
        expect(notContained(o, read)).toEqual([]);
        expect(added(o['spec'], read['spec'], 'spec').sort()).toEqual(expectedDefaults(o));
      });
    }
  });

  describe('every INVALID_SPECS case marked crd: true is rejected', () => {
    const cases = INVALID_SPECS.filter((c) => c.crd);

    it('covers the table', () => {
      expect(cases.length).toBeGreaterThanOrEqual(15);
      console.log(`INVALID_SPECS: ${INVALID_SPECS.length} cases, ${cases.length} with crd: true`);
    });

    for (const c of cases) {
      it(`${c.name} (${c.path})`, async () => {
        const object = { ...c.object, metadata: { ...(c.object['metadata'] as object), namespace: 'default' } } as KObj;
        const r = await kube.create(object);
        const status = r.body as KStatus;
        console.log(`${c.name}: HTTP ${r.status}: ${isStatus(status) ? status.message : r.raw}`);
        if (r.status === 201) await kube.delete(object);
        expect(isStatus(status), `accepted by the API server: ${r.raw}`).toBe(true);
        // Schema/CEL violations are 422 Invalid; an unknown field under fieldValidation=Strict is
        // a strict-decoding error, 400 BadRequest.
        expect(r.status).toBe(/unknown field/.test(c.message) ? 400 : 422);
        expect(status.message).toContain(apiServerPath(c.path));
      });
    }
  });

  describe('INVALID_SPECS cases marked crd: false pass the CRD (only the CLI/controller rejects them)', () => {
    for (const c of INVALID_SPECS.filter((x) => !x.crd)) {
      it(`${c.name} (${c.path})`, async () => {
        const object = { ...c.object, metadata: { ...(c.object['metadata'] as object), namespace: 'default' } } as KObj;
        const r = await kube.create(object);
        // If this fails, the CRD learned the rule: mark the case `crd: true`.
        expect(r.status, r.raw).toBe(201);
        await kube.delete(object);
      });
    }
  });

  describe('kubectl', () => {
    const sbx = sandbox('columns', { routingKey: 'colkey1', forks: [{ forkOf: { kind: 'Deployment', name: 'reviews-v3' } }, { forkOf: { kind: 'Deployment', name: 'ratings-v1' } }] }, { namespace: 'default' }) as unknown as KObj;
    const rg = { apiVersion: 'meshfork.dev/v1alpha1', kind: 'RouteGroup', metadata: { name: 'columns-group', namespace: 'default' }, spec: { match: { label: { key: 'team', value: 'a*' } } } } as KObj;

    beforeAll(async () => {
      for (const o of [sbx, rg]) {
        const r = await kube.create(o);
        expect(r.status, r.raw).toBe(201);
      }
      // The status subresource, as the controller would write it.
      const status = { status: { routingKey: 'colkey1', forkNames: 'reviews-v3,ratings-v1', conditions: [{ type: 'Ready', status: 'True', reason: 'Routed', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
      const r = await cp().request('PATCH', `${await kube.objectPath(sbx)}/status`, status, 'application/merge-patch+json');
      expect(r.status, r.body).toBe(200);
    });

    const kubectl = async (...args: string[]) => {
      const r = await cp().exec('kubectl', args);
      expect(r.code, r.stderr).toBe(0);
      console.log(`$ kubectl ${args.join(' ')}\n${r.stdout.trimEnd()}`);
      return r.stdout.trimEnd().split('\n').map((l) => l.trim().split(/\s{2,}/));
    };

    it('kubectl get sbx prints the printer columns', async () => {
      const rows = await kubectl('get', 'sbx', 'columns', '-n', 'default');
      expect(rows[0]).toEqual(['NAME', 'ROUTING-KEY', 'READY', 'AGE']);
      expect(rows[1]!.slice(0, 3)).toEqual(['columns', 'colkey1', 'True']);
    });

    it('kubectl get sbx -o wide adds the Forks column (priority 1)', async () => {
      const rows = await kubectl('get', 'sbx', 'columns', '-n', 'default', '-o', 'wide');
      expect(rows[0]).toEqual(['NAME', 'FORKS', 'ROUTING-KEY', 'READY', 'AGE']);
      expect(rows[1]![0]).toBe('columns');
      expect(rows[1]![1]).toBe('reviews-v3,ratings-v1');
    });

    // A CRD printer column prints only the first JSONPath result (k8s.io/apiextensions-apiserver
    // pkg/registry/customresource/tableconvertor: `results[0][0]`), so the Forks column reads
    // `status.forkNames`, the joined list the controller writes, not `.spec.forks[*]`.
    it('kubectl get sbx -o wide lists every fork', async () => {
      const rows = await kubectl('get', 'sbx', 'columns', '-n', 'default', '-o', 'wide');
      expect(rows[1]![1]).toBe('reviews-v3,ratings-v1');
    });

    it('kubectl get rg and the meshfork category', async () => {
      const rows = await kubectl('get', 'rg', 'columns-group', '-n', 'default');
      expect(rows[0]).toEqual(['NAME', 'ROUTING-KEY', 'READY', 'AGE']);
      expect(rows[1]![0]).toBe('columns-group');
      const all = await kubectl('get', 'meshfork', '-n', 'default', '-o', 'name');
      expect(all.flat()).toEqual(expect.arrayContaining(['sandbox.meshfork.dev/columns', 'routegroup.meshfork.dev/columns-group']));
    });

    it('kubectl explain shows the schema descriptions', async () => {
      const r = await cp().exec('kubectl', ['explain', 'sandbox.spec.routingKey']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('Routing key ([a-z0-9], 4 to 32 characters)');
    });
  });
});


// Smoke test of the control-plane harness itself: real etcd + kube-apiserver with Istio's CRDs,
// server-side apply, and server-side (OpenAPI schema + CEL) validation of Istio objects.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubernetesObjectApi, PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { requireTestbin, useControlPlane } from '../support/control-plane.js';

const hasBins = requireTestbin();

const NS = 'default';

function vs(name: string, spec: Record<string, unknown>): KubernetesObject & { spec: Record<string, unknown> } {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: NS }, spec };
}

function dr(name: string, spec: Record<string, unknown>): KubernetesObject & { spec: Record<string, unknown> } {
  return { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name, namespace: NS }, spec };
}

/** The error of a rejected create as `{ code, message }` (client-node ApiException). */
async function createError(api: KubernetesObjectApi, obj: KubernetesObject): Promise<{ code: number; message: string }> {
  try {
    await api.create(obj);
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body = typeof e.body === 'string' ? e.body : JSON.stringify(e.body);
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      /* not JSON */
    }
    return { code: e.code ?? 0, message };
  }
  throw new Error(`${obj.kind} ${obj.metadata?.name} was accepted, expected a rejection`);
}

describe.skipIf(!hasBins)('control plane harness (etcd + kube-apiserver + Istio CRDs)', () => {
  const cp = useControlPlane();

  it('reports the pinned versions from every binary', async () => {
    const plane = cp();
    const v = plane.versions;
    expect(v.server.gitVersion).toBe(v.kubernetes);
    expect(`v${v.etcdServer}`).toBe(v.etcd);

    const [apiserver, kcm, kubectl, etcd, istioctl, pilot] = await Promise.all([
      plane.exec('kube-apiserver', ['--version']),
      plane.exec('kube-controller-manager', ['--version']),
      plane.exec('kubectl', ['version', '--client', '-o', 'json']),
      plane.exec('etcd', ['--version']),
      plane.exec('istioctl', ['version', '--remote=false']),
      plane.exec('pilot-discovery', ['version', '-s']),
    ]);
    console.log(
      [
        `kube-apiserver --version: ${apiserver.stdout.trim()}`,
        `kube-controller-manager --version: ${kcm.stdout.trim()}`,
        `kubectl version --client: ${(JSON.parse(kubectl.stdout) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion}`,
        `etcd --version: ${etcd.stdout.trim().split('\n').join('; ')}`,
        `istioctl version --remote=false: ${istioctl.stdout.trim()}`,
        `pilot-discovery version -s: ${pilot.stdout.trim()}`,
        `/version: ${JSON.stringify(v.server)}`,
        `CRDs installed: ${plane.crds.length}; startup ${(plane.startupMs / 1000).toFixed(1)}s`,
      ].join('\n'),
    );
    expect(apiserver.stdout).toContain(`Kubernetes ${v.kubernetes}`);
    expect(kcm.stdout).toContain(`Kubernetes ${v.kubernetes}`);
    expect(kubectl.stdout).toContain(`"gitVersion": "${v.kubernetes}"`);
    expect(etcd.stdout).toContain(`etcd Version: ${v.etcd.replace(/^v/, '')}`);
    expect(istioctl.stdout).toContain(v.istio);
    expect(pilot.stdout).toContain(v.istio);
    expect(plane.crds).toContain('virtualservices.networking.istio.io');
  });

  it('server-side applies a VirtualService with field manager meshfork and reads it back equal', async () => {
    const api = KubernetesObjectApi.makeApiClient(cp().kubeConfig);
    const desired = vs('reviews', {
      hosts: ['reviews'],
      http: [
        {
          name: 'meshfork-sbx1',
          match: [{ headers: { baggage: { regex: '^(.*,)?[ \\t]*sbx[ \\t]*=[ \\t]*k1[ \\t]*(;[^,]*)?(,.*)?$' } } }],
          route: [{ destination: { host: 'reviews-sbx1' } }],
          timeout: '2s',
        },
        { name: 'default', route: [{ destination: { host: 'reviews' } }] },
      ],
    });
    await api.patch(desired, undefined, undefined, 'meshfork', true, PatchStrategy.ServerSideApply);

    const got = await api.read<typeof desired>({
      apiVersion: desired.apiVersion!,
      kind: desired.kind!,
      metadata: { name: 'reviews', namespace: NS },
    });
    expect(got.spec).toEqual(desired.spec);
    const managers = (got.metadata?.managedFields ?? []).map((m) => `${m.manager}/${m.operation}`);
    expect(managers).toEqual(['meshfork/Apply']);

    // Re-applying the same intent is a no-op: resourceVersion unchanged.
    const again = await api.patch(desired, undefined, undefined, 'meshfork', true, PatchStrategy.ServerSideApply);
    expect(again.metadata?.resourceVersion).toBe(got.metadata?.resourceVersion);
  });

  // What Istio's CRDs (OpenAPI schema + CEL x-kubernetes-validations in crd-all.gen.yaml) reject
  // on the API server itself, without istiod's validating webhook.
  it.each([
    {
      what: 'DestinationRule without host (required)',
      obj: dr('no-host', { trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }),
      expect: /spec\.host: Required value/,
    },
    {
      what: 'VirtualService with an http timeout below 1ms (CEL: duration >= 1ms)',
      obj: vs('tiny-timeout', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], timeout: '500us' }] }),
      expect: /must be a valid duration greater than 1ms/,
    },
    {
      what: 'VirtualService uri match with both exact and prefix (oneOf)',
      obj: vs('two-uri-kinds', {
        hosts: ['reviews'],
        http: [{ match: [{ uri: { exact: '/a', prefix: '/b' } }], route: [{ destination: { host: 'reviews' } }] }],
      }),
      expect: /oneOf/,
    },
    {
      what: 'ServiceEntry with port number 70000 (CEL: 0 < number <= 65535)',
      obj: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name: 'bad-port', namespace: NS },
        spec: { hosts: ['api.example.com'], resolution: 'DNS', ports: [{ number: 70000, name: 'https', protocol: 'TLS' }] },
      },
      expect: /65535/,
    },
  ])('rejects $what', async ({ obj, expect: message }) => {
    const api = KubernetesObjectApi.makeApiClient(cp().kubeConfig);
    const err = await createError(api, obj);
    expect(err.code).toBe(422);
    expect(err.message).toMatch(message);
  });

  it('accepts an http route with both route and redirect, which only istioctl validate rejects', async () => {
    // The CRD schema has no rule for it; istiod's webhook and `istioctl validate` do.
    const plane = cp();
    const both = vs('route-and-redirect', {
      hosts: ['reviews'],
      http: [{ route: [{ destination: { host: 'reviews' } }], redirect: { uri: '/elsewhere' } }],
    });
    const api = KubernetesObjectApi.makeApiClient(plane.kubeConfig);
    await api.create(both, undefined, 'All'); // dry-run: the API server accepts it
    const file = join(plane.dir, 'route-and-redirect.yaml');
    await writeFile(file, stringify(both));
    const r = await plane.exec('istioctl', ['validate', '-f', file]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/redirect/i);
  });
});

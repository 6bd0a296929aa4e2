// The ignoreDifferences of examples/argocd/argocd-cm.yaml, evaluated the way Argo CD's diff
// normalizer evaluates jqPathExpressions (util/argo/normalizers/diff_normalizer.go): with gojq,
// each expression run as `del(<expression>)` on the resource's JSON, which must give exactly one
// value (an error or no value and Argo CD silently skips the expression, so the diff shows).
// gojq is the CLI of the module Argo CD links (tools/gojq).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { requireTestbin, testbinPath } from '../support/control-plane.js';
import { cli } from '../support/cli.js';

const hasBins = requireTestbin();
const REPO = new URL('../../', import.meta.url).pathname;

type Vs = { metadata: { name: string; annotations?: Record<string, string> }; spec?: { http?: Array<{ name?: unknown }> } | null };

const cm = parse(readFileSync(`${REPO}examples/argocd/argocd-cm.yaml`, 'utf8')) as { data: Record<string, string> };
const ignore = parse(cm.data['resource.customizations.ignoreDifferences.networking.istio.io_VirtualService']!) as { jqPathExpressions: string[] };

/** One expression as Argo CD applies it: `del(<expression>)`, exactly one result required. */
function del(expression: string, input: unknown): unknown {
  const run = spawnSync(testbinPath('gojq'), ['-c', `del(${expression})`], { input: JSON.stringify(input), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`gojq del(${expression}) failed: ${run.stderr}`);
  const results = run.stdout.split('\n').filter((l) => l !== '');
  if (results.length !== 1) throw new Error(`gojq del(${expression}) gave ${results.length} results`);
  return JSON.parse(results[0]!);
}

/** Argo CD's removeEmptyObjects after the normalizers: empty maps and lists (and list members that are empty maps) go. */
function removeEmpty(value: Record<string, unknown>): Record<string, unknown> {
  for (const [key, v] of Object.entries(value)) {
    if (Array.isArray(v)) {
      const kept = v.filter((item) => !(item !== null && typeof item === 'object' && !Array.isArray(item) && Object.keys(removeEmpty(item as Record<string, unknown>)).length === 0));
      if (kept.length === 0) delete value[key];
      else value[key] = kept;
    } else if (v !== null && typeof v === 'object') {
      if (Object.keys(removeEmpty(v as Record<string, unknown>)).length === 0) delete value[key];
    }
  }
  return value;
}

/** The VirtualService as Argo CD diffs it: every ignore expression applied, empty members removed. */
function normalized(vs: unknown): Vs {
  let out = vs;
  for (const e of ignore.jqPathExpressions) out = del(e, out);
  return removeEmpty(out as Record<string, unknown>) as unknown as Vs;
}

const names = (vs: Vs) => (vs.spec?.http ?? []).map((r) => r.name);

describe.skipIf(!hasBins)('Argo CD ignoreDifferences for VirtualServices (gojq)', () => {
  const baseline = parseAllDocuments(readFileSync(`${REPO}examples/bookinfo/baseline.yaml`, 'utf8')).map((d) => d.toJS() as Vs & { kind: string });
  const reviews = baseline.find((o) => o.kind === 'VirtualService' && o.metadata.name === 'reviews')!;
  // As the cluster holds it once synced into `default` (synth names the namespace too).
  const inGit = { ...reviews, metadata: { ...reviews.metadata, namespace: 'default' } };

  it('are the two expressions of the recipe', () => {
    expect(ignore.jqPathExpressions).toEqual(['.spec.http[]? | select(.name | strings | startswith("meshfork-"))', '.metadata.annotations["meshfork.dev/merged-routes"]?']);
  });

  it('a VirtualService the controller merged two sandboxes into diffs equal to the one in Git: only meshfork routes and their count are ignored', () => {
    // Bookinfo's star-ratings Sandbox and the recipe's pr-42, both forking the reviews host.
    const out = cli('synth', '-f', `${REPO}examples/bookinfo`, '-f', `${REPO}examples/argocd/sandboxes`);
    expect(out.stderr).toBe('');
    const live = parseAllDocuments(out.stdout).map((d) => d.toJS() as Vs & { kind: string }).find((o) => o.kind === 'VirtualService' && o.metadata.name === 'reviews')!;
    expect(names(live)).toEqual(['meshfork-pr-42-0', 'meshfork-star-ratings-0', 'test-user', 'meshfork-pr-42-1', 'meshfork-star-ratings-1', 'default']);
    expect(live.metadata.annotations).toEqual({ 'meshfork.dev/merged-routes': '4' });
    expect(normalized(live)).toEqual(normalized(inGit));
    expect(normalized(live)).toEqual(inGit);
    expect(names(normalized(live))).toEqual(['test-user', 'default']);
  });

  it('keeps every route not named meshfork-*, in order, and a user route edited in Git still diffs', () => {
    const vs = {
      metadata: { name: 'x', annotations: { keep: 'me' } },
      spec: {
        hosts: ['x'],
        http: [{ name: 'meshfork' }, { name: 'my-meshfork-1' }, { name: 'meshfork-a-0', route: [] }, { route: [{ destination: { host: 'x' } }] }, { name: 42 }, { name: 'MESHFORK-b-0' }],
      },
    };
    expect(normalized(vs).spec?.http).toEqual([{ name: 'meshfork' }, { name: 'my-meshfork-1' }, { route: [{ destination: { host: 'x' } }] }, { name: 42 }, { name: 'MESHFORK-b-0' }]);
    const edited = structuredClone(inGit) as Vs & { spec: { http: Array<{ name?: unknown; timeout?: string }> } };
    edited.spec.http[1]!.timeout = '9s';
    expect(normalized(edited)).not.toEqual(normalized(inGit));
  });

  it('is null-safe: no http, null spec, no annotations, no metadata give the input back (one result, no error)', () => {
    const tcpOnly = { metadata: { name: 'tcp' }, spec: { hosts: ['db'], tcp: [{ route: [{ destination: { host: 'db' } }] }] } };
    expect(normalized(tcpOnly)).toEqual(tcpOnly);
    expect(normalized({ metadata: { name: 'n' }, spec: null })).toEqual({ metadata: { name: 'n' }, spec: null });
    expect(normalized({ metadata: { name: 'e' }, spec: { http: [] } })).toEqual({ metadata: { name: 'e' } });
    expect(normalized({ kind: 'VirtualService' })).toEqual({ kind: 'VirtualService' });
    expect(normalized({ metadata: { name: 'h', annotations: null }, spec: { http: null } })).toEqual({ metadata: { name: 'h', annotations: null }, spec: { http: null } });
  });
});

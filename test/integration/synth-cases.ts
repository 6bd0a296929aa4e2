/**
 * The inputs the integration suites run `meshfork synth` on: every golden case of
 * test/planner/golden.test.ts plus the repository example (examples/bookinfo), and helpers to
 * turn a case's inventory + synth output into the objects a cluster would hold after applying.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { expandPaths } from '../../src/manifests/load.js';
import { cli, FIXTURES, GOLDEN_INPUTS } from '../support/cli.js';
import { GOLDEN_CASES } from '../support/golden-cases.js';

export interface SynthCase {
  readonly name: string;
  /** Inventory: the baseline manifests (Deployments, Services, Istio objects). */
  readonly inventory: readonly string[];
  /** Sandbox/RouteGroup manifests (files or directories). */
  readonly specs: readonly string[];
  readonly flags: readonly string[];
  /** Namespace of objects that name none (`-n`). */
  readonly namespace: string;
  /** The committed golden output this case must reproduce, if any. */
  readonly golden?: string;
}

const REPO = new URL('../../', import.meta.url).pathname;

function namespaceFlag(flags: readonly string[]): string {
  const i = flags.findIndex((f) => f === '-n' || f === '--namespace');
  return i >= 0 ? flags[i + 1]! : 'default';
}

export const SYNTH_CASES: readonly SynthCase[] = [
  ...GOLDEN_CASES.map((c) => ({
    name: c.name,
    inventory: c.files.map((f) => FIXTURES + f),
    specs: [GOLDEN_INPUTS + c.name],
    flags: c.flags ?? [],
    namespace: namespaceFlag(c.flags ?? []),
    golden: `${REPO}test/golden/${c.name}.golden.yaml`,
  })),
  {
    // Copies of label-selected policies (a DENY AuthorizationPolicy, NetworkPolicies with pod
    // peers): docs/adr/0010-policy-copies-follow-forks.md.
    name: 'policy-copies',
    inventory: ['baseline.yaml', 'deny.yaml', 'peers.yaml'].map((f) => `${REPO}test/security/inputs/policy-copies/${f}`),
    specs: [`${REPO}test/security/inputs/policy-copies/sandbox.yaml`],
    flags: ['-n', 'shop'],
    namespace: 'shop',
  },
  {
    // Fork Services of every Service shape (headless with and without ports, session affinity,
    // traffic distribution, IP families, a NodePort baseline): the API server accepts each.
    name: 'fork-services',
    inventory: [`${REPO}test/integration/fixtures/fork-services/inventory.yaml`],
    specs: [`${REPO}test/integration/fixtures/fork-services/sandbox.yaml`],
    flags: [],
    namespace: 'forks',
  },
  {
    name: 'example-bookinfo',
    inventory: [`${REPO}examples/bookinfo/baseline.yaml`],
    specs: [`${REPO}examples/bookinfo/sandbox.yaml`],
    flags: [],
    namespace: 'default',
  },
];

/** Names of the golden cases listed here (compare with the test/golden/inputs/ directories). */
export function goldenCaseNames(): string[] {
  return GOLDEN_CASES.map((c) => c.name);
}

/** A Kubernetes object as parsed from YAML. */
export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  spec?: unknown;
  [k: string]: unknown;
}

export interface SynthResult {
  /** `meshfork synth` stdout. */
  readonly yaml: string;
  readonly objects: Obj[];
  /** `note:` lines on stderr. */
  readonly notes: string[];
}

/** Runs `meshfork synth` in-process on a case; throws unless it succeeds. */
export function synth(c: SynthCase): SynthResult {
  const r = cli('synth', ...c.flags, '-f', ...c.inventory, ...c.specs);
  const lines = r.stderr.split('\n').filter((l) => l);
  const unexpected = lines.filter((l) => !l.startsWith('note: '));
  if (r.code !== 0 || unexpected.length > 0) {
    throw new Error(`meshfork synth ${c.name}: exit ${r.code}\n${r.stderr}`);
  }
  const objects = parseObjects(r.stdout, c.name);
  if (c.golden !== undefined) {
    // The same objects as the committed golden file (identities only: the golden test owns the
    // exact bytes, and a stale golden file is its failure, not these suites').
    const want = parseObjects(readFileSync(c.golden, 'utf8'), c.golden).map(objectKey);
    const got = objects.map(objectKey);
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(
        `meshfork synth ${c.name}: objects differ from ${c.golden} (the case list in synth-cases.ts drifted from GOLDEN_CASES?)\n` +
          `got:  ${got.join(', ')}\nwant: ${want.join(', ')}`,
      );
    }
  }
  return { yaml: r.stdout, objects, notes: lines.filter((l) => l.startsWith('note: ')) };
}

export function parseObjects(text: string, where: string): Obj[] {
  return parseAllDocuments(text).flatMap((d) => {
    if (d.errors.length > 0) throw new Error(`${where}: ${d.errors[0]!.message}`);
    const v = d.toJS() as Obj | null;
    return v ? [v] : [];
  });
}

const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding']);

/** Objects of the files (directories walked like the CLI does), namespaces defaulted. */
export function readObjects(paths: readonly string[], namespace: string): Obj[] {
  const { files, problems } = expandPaths(paths);
  if (problems.length > 0) throw new Error(problems.map((p) => `${p.file}: ${p.message}`).join('\n'));
  return files.flatMap((f) => parseObjects(readFileSync(f, 'utf8'), f)).map((o) => withNamespace(o, namespace));
}

function withNamespace(o: Obj, namespace: string): Obj {
  if (CLUSTER_SCOPED.has(o.kind) || o.metadata.namespace) return o;
  return { ...o, metadata: { ...o.metadata, namespace } };
}

/** `group/Kind namespace/name`: identity of an object across API versions. */
export function objectKey(o: Obj): string {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${group}/${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

/**
 * What the cluster holds after `kubectl apply` of the synth output onto the inventory: inventory
 * objects, each replaced by the output object with the same identity, plus the new objects.
 * meshfork's own kinds (Sandbox, RouteGroup) are left out: they are not Istio configuration.
 */
export function afterApply(c: SynthCase, output: readonly Obj[]): { objects: Obj[]; replaced: string[] } {
  const byKey = new Map<string, Obj>();
  for (const o of readObjects(c.inventory, c.namespace)) byKey.set(objectKey(o), o);
  const replaced: string[] = [];
  for (const o of output.map((x) => withNamespace(x, c.namespace))) {
    const key = objectKey(o);
    if (byKey.has(key)) replaced.push(key);
    byKey.set(key, o);
  }
  const objects = [...byKey.values()].filter((o) => !o.apiVersion.startsWith('meshfork.dev/'));
  return { objects, replaced };
}

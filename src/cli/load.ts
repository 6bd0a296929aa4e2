/**
 * Reads manifests for the CLI: every YAML document of every file (directories are walked for
 * *.yaml / *.yml / *.json in name order), namespaces defaulted like kubectl does, and Sandbox /
 * RouteGroup objects validated. Every problem carries the file it came from.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';
import type { Problem } from '../api/problem.js';
import { GROUP_VERSION, type RouteGroupObject, type SandboxObject } from '../api/schema.js';
import { validateRouteGroup, validateSandbox } from '../api/validate.js';
import { inventoryOf, type Inventory } from '../planner/inventory.js';
import type { KubeObject } from '../planner/kube.js';
import { objectRef } from '../planner/plan.js';

export interface LoadedInput {
  readonly inventory: Inventory;
  readonly sandboxes: SandboxObject[];
  readonly routeGroups: RouteGroupObject[];
  /** `Kind namespace/name` -> file it was read from. */
  readonly sources: Map<string, string>;
  readonly problems: Problem[];
}

/** Cluster-scoped kinds keep no namespace. */
const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);

export function expandPaths(paths: readonly string[]): { files: string[]; problems: Problem[] } {
  const files: string[] = [];
  const problems: Problem[] = [];
  const walk = (path: string, known?: Stats) => {
    let stat = known;
    try {
      stat ??= statSync(path);
    } catch {
      problems.push({ file: path, path: '', message: 'no such file or directory' });
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        const child = join(path, entry);
        const childStat = statSync(child);
        if (childStat.isDirectory() || /\.(ya?ml|json)$/.test(entry)) walk(child, childStat);
      }
    } else {
      files.push(path);
    }
  };
  for (const path of paths) walk(path);
  return { files, problems };
}

export function loadInputs(paths: readonly string[], defaultNamespace: string): LoadedInput {
  const { files, problems } = expandPaths(paths);
  const objects: KubeObject[] = [];
  const sandboxes: SandboxObject[] = [];
  const routeGroups: RouteGroupObject[] = [];
  const sources = new Map<string, string>();

  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const lineCounter = new LineCounter();
    const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false });
    const list = Array.isArray(documents) ? documents : [documents];
    list.forEach((doc, index) => {
      if (doc.errors.length > 0) {
        for (const error of doc.errors) {
          const pos = lineCounter.linePos(error.pos[0]);
          problems.push({ file: `${file}:${pos.line}:${pos.col}`, path: '', message: `YAML: ${error.message.split('\n')[0]}` });
        }
        return;
      }
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      if (value === null || value === undefined) return; // empty document
      const docLine = lineCounter.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
      const where = `${file}:${docLine}`;
      if (typeof value !== 'object' || Array.isArray(value)) {
        problems.push({ file: where, path: '', message: `document ${index + 1} is not a Kubernetes object` });
        return;
      }
      const object = value as Partial<KubeObject>;
      if (typeof object.apiVersion !== 'string' || typeof object.kind !== 'string') {
        problems.push({ file: where, path: typeof object.apiVersion !== 'string' ? 'apiVersion' : 'kind', message: 'required field is missing' });
        return;
      }
      if (object.kind === 'List' && Array.isArray((object as { items?: unknown }).items)) {
        problems.push({ file: where, path: 'items', message: 'List objects are not supported; write one document per object' });
        return;
      }
      const metadata = object.metadata as KubeObject['metadata'] | undefined;
      if (metadata === undefined || typeof metadata !== 'object' || typeof metadata.name !== 'string') {
        problems.push({ file: where, object: object.kind, path: 'metadata.name', message: 'required field is missing' });
        return;
      }
      if (metadata.namespace === undefined && !CLUSTER_SCOPED.has(object.kind)) metadata.namespace = defaultNamespace;
      const kubeObject = object as KubeObject;
      const ref = objectRef(kubeObject);
      const apiGroup = object.apiVersion.split('/')[0];
      const isMeshfork = apiGroup === 'meshfork.dev';
      if (isMeshfork && object.apiVersion !== GROUP_VERSION) {
        problems.push({ file: where, object: ref, path: 'apiVersion', message: `unsupported version; use ${GROUP_VERSION}` });
        return;
      }
      const previous = sources.get(ref);
      if (previous !== undefined) {
        problems.push({ file: where, object: ref, path: 'metadata.name', message: `defined twice (also in ${previous})` });
        return;
      }
      sources.set(ref, where);
      if (isMeshfork && object.kind === 'Sandbox') {
        const found = validateSandbox(object);
        problems.push(...found.map((p) => ({ ...p, file: where, object: ref })));
        if (found.length === 0) sandboxes.push(object as SandboxObject);
      } else if (isMeshfork && object.kind === 'RouteGroup') {
        const found = validateRouteGroup(object);
        problems.push(...found.map((p) => ({ ...p, file: where, object: ref })));
        if (found.length === 0) routeGroups.push(object as RouteGroupObject);
      } else if (isMeshfork) {
        problems.push({ file: where, object: ref, path: 'kind', message: 'unknown kind; meshfork.dev/v1alpha1 has Sandbox and RouteGroup' });
      } else {
        objects.push(kubeObject);
      }
    });
  }
  return { inventory: inventoryOf(objects), sandboxes, routeGroups, sources, problems };
}

/** Attaches the source file to problems the planner reported by object. */
export function withSources(problems: readonly Problem[], sources: ReadonlyMap<string, string>): Problem[] {
  return problems.map((p) => (p.file === undefined && p.object !== undefined && sources.has(p.object) ? { ...p, file: sources.get(p.object)! } : p));
}

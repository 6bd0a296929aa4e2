/**
 * Reads manifests for the CLI and for cdk8s apps: every YAML document of every file (directories
 * are walked for *.yaml / *.yml / *.json in name order, see files.ts for what is read and what is
 * refused), namespaces defaulted like kubectl does, and Sandbox / RouteGroup objects validated.
 * Every problem carries the file (and line) it came from; nothing in the input makes this throw.
 */
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { isCollection, isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import { describeValue, type Problem } from '../api/problem.js';
import { DNS_LABEL_PATTERN, GROUP_VERSION, type RouteGroupObject, type SandboxObject } from '../api/schema.js';
import { routeGroupValidParts, sandboxValidParts, validateRouteGroup, validateSandbox } from '../api/validate.js';
import { inventoryOf, NAMESPACE_RULE, type Inventory } from '../planner/inventory.js';
import type { KubeObject } from '../planner/kube.js';
import { objectRef } from '../planner/plan.js';
import { decodeUtf8, DEFAULT_INPUT_LIMITS, expandPaths, FILE_LIMIT, INPUT_LIMIT, notUtf8, readLimited, type InputLimits } from './files.js';

export { DEFAULT_INPUT_LIMITS, expandPaths, type InputLimits } from './files.js';

export interface LoadedInput {
  readonly inventory: Inventory;
  /** Valid Sandboxes. */
  readonly sandboxes: SandboxObject[];
  /** Valid RouteGroups. */
  readonly routeGroups: RouteGroupObject[];
  /**
   * Sandboxes and RouteGroups that failed validation, cut down to their valid parts (see
   * sandboxValidParts). They may be planned only to report the planner's rule problems next to
   * the schema problems in one pass; their output must never be used.
   */
  readonly partial: {
    readonly sandboxes: SandboxObject[];
    readonly routeGroups: RouteGroupObject[];
    /** `Sandbox namespace/name` -> index in the user's `spec.forks` of each fork kept. */
    readonly forkIndex: Map<string, readonly number[]>;
  };
  /**
   * Whether every file and document was read and parsed and every object had a usable identity,
   * i.e. the only problems (if any) are with Sandbox/RouteGroup specs. Planning input that is not
   * complete would report objects missing that are merely unreadable.
   */
  readonly complete: boolean;
  /** `Kind namespace/name` -> file it was read from. */
  readonly sources: Map<string, string>;
  readonly problems: Problem[];
  /** What was read differently from how the user may expect (kustomizations not applied), with the hint. */
  readonly notes: Problem[];
}

/** Cluster-scoped kinds keep no namespace. */
const CLUSTER_SCOPED = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass']);
/** Longest object name Kubernetes accepts (RFC 1123 subdomain). */
const MAX_NAME = 253;
const NAMESPACE = new RegExp(DNS_LABEL_PATTERN);
/** Deepest nesting of maps and lists in a document (Kubernetes objects, patches included, stay far below). */
const MAX_DEPTH = 100;
/** Aliases a document may resolve; with the byte bound below this stops "billion laughs" input. */
const MAX_ALIAS_COUNT = 100;

export function loadInputs(paths: readonly string[], defaultNamespace: string, limits: InputLimits = DEFAULT_INPUT_LIMITS): LoadedInput {
  const { files, realPaths, charts, problems } = expandPaths(paths);
  let complete = problems.length === 0;
  const notes: Problem[] = [];
  const objects: KubeObject[] = [];
  const sandboxes: SandboxObject[] = [];
  const routeGroups: RouteGroupObject[] = [];
  const partial = { sandboxes: [] as SandboxObject[], routeGroups: [] as RouteGroupObject[], forkIndex: new Map<string, readonly number[]>() };
  const sources = new Map<string, string>();
  let totalRead = 0;
  let totalExpanded = 0;
  /** Set once the total input limit is reached: no further file is read. */
  let stopped = false;

  /**
   * The non-empty documents of one file, parsed with every check (size caps, UTF-8, YAML errors,
   * duplicate keys, alias expansion, nesting); undefined when the file cannot be used.
   */
  const readDocuments = (file: string): ParsedDocument[] | undefined => {
    const remaining = limits.maxInputSize - totalRead;
    const read = readLimited(file, realPaths.get(file) ?? file, Math.min(limits.maxFileSize, remaining), FILE_LIMIT);
    if ('problem' in read) {
      complete = false;
      if (read.overLimit && remaining < limits.maxFileSize) {
        problems.push({ file, path: '', message: `the files given add up to more than the ${INPUT_LIMIT} of ${limits.maxInputSize} bytes; this file and the ones after it are not read` });
        stopped = true;
        return undefined;
      }
      problems.push(read.problem);
      return undefined;
    }
    const bytes = read.bytes;
    totalRead += bytes.length;
    const decoded = decodeUtf8(bytes);
    if ('invalidAt' in decoded) {
      complete = false;
      problems.push({ file, path: '', message: notUtf8(decoded.invalidAt) });
      return undefined;
    }
    const lineCounter = new LineCounter();
    const lineOf = (node: unknown, fallback: number) => `${file}:${lineCounter.linePos((isNode(node) ? node.range?.[0] : undefined) ?? fallback).line}`;
    // The parser's own duplicate-key check compares each key with every earlier key of its map
    // (quadratic: 40k keys in one map take half a minute); duplicateKeyOffsets does it in one pass.
    const documents = parseAllDocuments(decoded.text, { lineCounter, prettyErrors: false, uniqueKeys: false });
    const list = Array.isArray(documents) ? documents : [documents];
    const parsed: ParsedDocument[] = [];
    let fileExpanded = 0;
    for (const [index, doc] of list.entries()) {
      const errors = [
        ...doc.errors.map((error) => ({ offset: error.pos[0], message: error.message })),
        ...duplicateKeyOffsets(doc.contents).map((offset) => ({ offset, message: DUPLICATE_KEY })),
      ].sort((a, b) => a.offset - b.offset);
      if (errors.length > 0) {
        complete = false;
        for (const error of errors) {
          const pos = lineCounter.linePos(error.offset);
          const message = error.message.includes('Maximum call stack size exceeded') ? `nested too deeply to parse (at most ${MAX_DEPTH} levels are read)` : error.message.split('\n')[0];
          problems.push({ file: `${file}:${pos.line}:${pos.col}`, path: '', message: `YAML: ${message}` });
        }
        continue;
      }
      const where = lineOf(doc.contents, doc.range[0]);
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      } catch (e) {
        complete = false;
        problems.push({ file: where, path: '', message: `YAML: ${String((e as Error).message).split('\n')[0]}` });
        continue;
      }
      if (value === null || value === undefined) continue; // empty document
      // Aliases repeat a node without repeating its bytes: bound what the document expands to.
      // Nesting is bounded too, so no later step that walks the object recursively runs out of stack.
      const fileBudget = limits.maxFileSize - fileExpanded;
      const inputBudget = limits.maxInputSize - totalExpanded;
      const { size, depth } = measure(value, Math.min(fileBudget, inputBudget), MAX_DEPTH);
      if (depth > MAX_DEPTH) {
        complete = false;
        problems.push({ file: where, path: '', message: `document ${index + 1} nests more than ${MAX_DEPTH} levels deep` });
        continue;
      }
      if (size > Math.min(fileBudget, inputBudget)) {
        complete = false;
        const [limitName, limit] = fileBudget <= inputBudget ? [FILE_LIMIT, limits.maxFileSize] : [INPUT_LIMIT, limits.maxInputSize];
        problems.push({ file: where, path: '', message: `document ${index + 1} expands (YAML aliases resolved) to more than the ${limitName} of ${limit} bytes` });
        continue;
      }
      fileExpanded += size;
      totalExpanded += size;
      parsed.push({ value, index, where, node: doc.contents, locate: (node) => lineOf(node, doc.range[0]) });
    }
    return parsed;
  };

  // Kustomizations first: they name the files of their directory that are patches or generator
  // input, which are not objects and are not read.
  const kustomize = new Map<string, Kustomization>();
  for (const file of files) {
    if (stopped) break;
    if (!KUSTOMIZATION_FILE.has(basename(file)) || charts.has(file)) continue;
    const before = problems.length;
    const documents = readDocuments(file);
    // One that cannot be read is a problem, and no note: the run stops there.
    if (documents !== undefined && problems.length === before) kustomize.set(file, kustomizationOf(file, documents[0]?.value));
  }
  // Each file is looked up by itself and its directories (a plugin configuration may be a
  // directory): linear in the files and the entries, however many a kustomization lists.
  const inputOf = new Map<string, string>();
  for (const [file, k] of kustomize) for (const ref of k.inputs) if (!inputOf.has(ref)) inputOf.set(ref, file);
  const notInput = new Map<string, string>();
  for (const f of files) {
    if (kustomize.has(f)) continue;
    for (let p = resolve(f); ; p = dirname(p)) {
      const by = inputOf.get(p);
      if (by !== undefined) {
        notInput.set(f, by);
        break;
      }
      if (dirname(p) === p) break;
    }
  }
  for (const [file, k] of kustomize) {
    const skipped = files.filter((f) => notInput.get(f) === file).map((f) => relative(dirname(file), f));
    notes.push({ file, path: '', message: kustomizationNote(k.kind, dirname(file), skipped) });
  }

  for (const file of files) {
    if (stopped) break;
    // Charts a kustomization inflates are its input (skipped, in its note), not charts given to meshfork.
    if (kustomize.has(file) || notInput.has(file)) continue;
    const chart = charts.get(file);
    if (chart !== undefined) {
      complete = false;
      problems.push({ file, path: '', message: helmChartMessage(chart, file) });
      continue;
    }
    if (KUSTOMIZATION_FILE.has(basename(file))) continue;
    for (const document of readDocuments(file) ?? []) {
      const { value, index, where } = document;
      if (isKustomizeObject(value)) {
        notes.push({ file: where, path: '', message: kustomizationNote(value.kind, dirname(file), []) });
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        complete = false;
        problems.push({ file: where, path: '', message: `document ${index + 1} is not a Kubernetes object` });
        continue;
      }
      if (!readObject(value as Record<string, unknown>, '', where, document.node, document.locate)) complete = false;
    }
  }

  /**
   * Files one object, or each item of a list (`kind: List` or `<Kind>List` with `items`, flattened
   * like kubectl does, nested lists included); false when an object has no usable identity.
   * `prefix` is the field path of a list item (`items[2].`), `where` its file and line.
   */
  function readObject(object: Record<string, unknown>, prefix: string, where: string, node: unknown, locate: (node: unknown) => string): boolean {
    for (const field of ['apiVersion', 'kind'] as const) {
      if (typeof object[field] !== 'string' || object[field] === '') {
        problems.push({ file: where, path: `${prefix}${field}`, message: object[field] === undefined ? 'required field is missing' : 'must be a non-empty string' });
        return false;
      }
    }
    const kind = object['kind'] as string;
    if (kind.endsWith('List') && object['items'] !== undefined) return readList(object, kind, prefix, where, node, locate);
    const metadata = object['metadata'] as Record<string, unknown> | undefined;
    const identity = identityProblem(metadata);
    if (identity !== undefined) {
      problems.push({ file: where, object: kind, ...identity, path: `${prefix}${identity.path}` });
      return false;
    }
    if (metadata!['namespace'] === undefined && !CLUSTER_SCOPED.has(kind)) metadata!['namespace'] = defaultNamespace;
    const kubeObject = object as unknown as KubeObject;
    const ref = objectRef(kubeObject);
    const apiGroup = kubeObject.apiVersion.split('/')[0];
    const isMeshfork = apiGroup === 'meshfork.dev';
    if (isMeshfork && kubeObject.apiVersion !== GROUP_VERSION) {
      problems.push({ file: where, object: ref, path: 'apiVersion', message: `unsupported version; use ${GROUP_VERSION}` });
      return true;
    }
    const previous = sources.get(ref);
    if (previous !== undefined) {
      problems.push({ file: where, object: ref, path: 'metadata.name', message: `defined twice (also in ${previous})` });
      return false;
    }
    sources.set(ref, where);
    if (isMeshfork && kind === 'Sandbox') {
      const found = validateSandbox(object);
      problems.push(...found.map((p) => ({ ...p, file: where, object: ref })));
      if (found.length === 0) sandboxes.push(object as unknown as SandboxObject);
      else {
        const parts = sandboxValidParts(object);
        if (parts !== undefined) {
          partial.sandboxes.push(parts.sandbox);
          partial.forkIndex.set(ref, parts.forkIndex);
        }
      }
    } else if (isMeshfork && kind === 'RouteGroup') {
      const found = validateRouteGroup(object);
      problems.push(...found.map((p) => ({ ...p, file: where, object: ref })));
      if (found.length === 0) routeGroups.push(object as unknown as RouteGroupObject);
      else {
        const parts = routeGroupValidParts(object);
        if (parts !== undefined) partial.routeGroups.push(parts);
      }
    } else if (isMeshfork) {
      problems.push({ file: where, object: ref, path: 'kind', message: 'unknown kind; meshfork.dev/v1alpha1 has Sandbox and RouteGroup' });
    } else {
      objects.push(kubeObject);
    }
    return true;
  }

  /**
   * The items of a list, each an object of its own. As kubectl decodes lists
   * (k8s.io/apimachinery unstructured.UnstructuredJSONScheme decodeToList): an item that names
   * neither apiVersion nor kind takes the list's apiVersion and its kind without the "List"
   * suffix (a DeploymentList's items are Deployments); an item that names one keeps it. Nested
   * lists are flattened too (k8s.io/cli-runtime resource.FlattenListVisitor). The list's own
   * metadata is not an object's and is not checked.
   */
  function readList(list: Record<string, unknown>, kind: string, prefix: string, where: string, node: unknown, locate: (node: unknown) => string): boolean {
    const items = list['items'];
    if (!Array.isArray(items)) {
      problems.push({ file: where, object: kind, path: `${prefix}items`, message: `must be a list of objects, not ${describeValue(items)}` });
      return false;
    }
    const itemsNode = isMap(node) ? node.get('items', true) : undefined;
    let usable = true;
    for (const [i, item] of items.entries()) {
      const itemNode = isSeq(itemsNode) ? itemsNode.items[i] : undefined;
      const itemWhere = itemNode === undefined ? where : locate(itemNode);
      const itemPrefix = `${prefix}items[${i}].`;
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        problems.push({ file: itemWhere, object: kind, path: `${prefix}items[${i}]`, message: `must be a Kubernetes object, not ${describeValue(item)}` });
        usable = false;
        continue;
      }
      const object = item as Record<string, unknown>;
      const itemKind = kind.slice(0, -'List'.length);
      if (object['apiVersion'] === undefined && object['kind'] === undefined && itemKind !== '') {
        object['apiVersion'] = list['apiVersion'];
        object['kind'] = itemKind;
      }
      if (!readObject(object, itemPrefix, itemWhere, itemNode, locate)) usable = false;
    }
    return usable;
  }

  return { inventory: inventoryOf(objects), sandboxes, routeGroups, partial, complete, sources, problems, notes };
}

/** File names kustomize reads as a directory's kustomization (https://kubectl.docs.kubernetes.io/references/kustomize/glossary/#kustomization). */
const KUSTOMIZATION_FILE = new Set(['kustomization.yaml', 'kustomization.yml', 'Kustomization']);
const KUSTOMIZE_GROUP = 'kustomize.config.k8s.io/';

interface Kustomization {
  readonly kind: string;
  /** Absolute paths of the files and directories it uses as patches or generator input (never its resources). */
  readonly inputs: string[];
}

/** A kustomize Kustomization or Component object (found in a file not named like a kustomization). */
function isKustomizeObject(value: unknown): value is { kind: string } {
  if (typeof value !== 'object' || value === null) return false;
  const { apiVersion, kind } = value as Record<string, unknown>;
  return typeof apiVersion === 'string' && apiVersion.startsWith(KUSTOMIZE_GROUP) && (kind === 'Kustomization' || kind === 'Component');
}

/**
 * What a kustomization file uses besides its resources: the fields of kustomize's Kustomization
 * type that name patch files (patches[].path, patchesStrategicMerge, patchesJson6902[].path),
 * generator input (configMapGenerator / secretGenerator files, envs, env), replacement sources
 * (replacements[].path), plugin configuration (transformers, generators, validators), transformer
 * configurations, CRD schemas (crds), the OpenAPI schema (openapi.path) and the Helm charts it
 * inflates (helmGlobals.chartHome, default `charts`, when it lists helmCharts). See
 * https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/. Entries that are inline
 * YAML (they hold a newline) or URLs name no file.
 */
function kustomizationOf(file: string, value: unknown): Kustomization {
  const k = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  const refs: unknown[] = [];
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const field = (v: unknown, name: string): unknown => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>)[name] : undefined);
  for (const p of list(k['patches'])) refs.push(field(p, 'path'));
  for (const p of list(k['patchesJson6902'])) refs.push(field(p, 'path'));
  for (const r of list(k['replacements'])) refs.push(field(r, 'path'));
  refs.push(...list(k['patchesStrategicMerge']), ...list(k['transformers']), ...list(k['generators']), ...list(k['validators']));
  refs.push(...list(k['configurations']), ...list(k['crds']), field(k['openapi'], 'path'));
  // helmCharts are inflated from the chart home (helmGlobals.chartHome, default "charts").
  if (list(k['helmCharts']).length > 0) refs.push(field(k['helmGlobals'], 'chartHome') ?? 'charts');
  for (const g of [...list(k['configMapGenerator']), ...list(k['secretGenerator'])]) {
    // `files` entries are `path` or `key=path`.
    for (const f of list(field(g, 'files'))) refs.push(typeof f === 'string' ? f.slice(f.indexOf('=') + 1) : f);
    refs.push(...list(field(g, 'envs')), field(g, 'env'));
  }
  const inputs = refs
    .filter((r): r is string => typeof r === 'string' && r !== '' && !r.includes('\n') && !/^[a-z][a-z0-9+.-]*:\/\//i.test(r))
    .map((r) => resolve(dirname(file), r));
  return { kind: k['kind'] === 'Component' ? 'Component' : 'Kustomization', inputs };
}

/** The note for a kustomization that is not applied: how its directory is read, what was skipped, and the hint. */
function kustomizationNote(kind: string, dir: string, skipped: readonly string[]): string {
  return (
    `kustomize ${kind} not applied: the other files of ${dir} are read as written, without kustomize's namespace, name prefixes and suffixes, labels, patches and generators` +
    (skipped.length > 0 ? `; not read (patches or generator input): ${skipped.join(', ')}` : '') +
    `; to plan what kustomize renders, run \`kustomize build ${dir} > rendered.yaml\` and pass -f rendered.yaml`
  );
}

/** The problem for a file of a Helm chart: what it is, and the hint to render the chart. */
function helmChartMessage(chart: string, file: string): string {
  const own = relative(chart, file);
  const what = own === 'Chart.yaml' ? "the chart's metadata" : /^values[^/]*$/.test(own) ? 'chart values' : own.split(sep)[0] === 'templates' ? 'a Go template, not YAML' : 'part of the chart';
  return (
    `file of the Helm chart ${chart} (${what}); meshfork reads rendered manifests, not charts: ` +
    `run \`helm template <release-name> ${chart} > rendered.yaml\` (with your values) and pass -f rendered.yaml`
  );
}

/** One parsed, non-empty YAML document of a file. */
interface ParsedDocument {
  readonly value: unknown;
  /** Index of the document in its file. */
  readonly index: number;
  /** `<file>:<line>` of the document. */
  readonly where: string;
  /** The document's YAML node, to locate the items of a list. */
  readonly node: unknown;
  /** `<file>:<line>` of a node of this document. */
  readonly locate: (node: unknown) => string;
}

const DUPLICATE_KEY = 'Map keys must be unique';

/**
 * Source offsets, ascending, of the keys that repeat an earlier key of the same map, anywhere in
 * a composed YAML node tree, in one pass (a Set per map). Keys are equal as the yaml library defines it for
 * its own check: scalars with strictly equal values (`k`, `"k"` and `!!str k` are one key, so are
 * `1` and `1.0`, `null` and `~`; `.nan` never repeats); collection and alias keys never repeat.
 * Walks with an explicit stack, so nesting depth costs no call stack.
 */
export function duplicateKeyOffsets(root: unknown): number[] {
  const offsets: number[] = [];
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (!isCollection(node)) continue;
    const seen = isMap(node) ? new Set<unknown>() : undefined;
    for (const item of node.items) {
      if (!isPair(item)) {
        if (isCollection(item)) stack.push(item);
        continue;
      }
      const key = item.key;
      if (seen !== undefined && isScalar(key) && !Number.isNaN(key.value)) {
        if (seen.has(key.value)) offsets.push(key.range?.[0] ?? 0);
        else seen.add(key.value);
      }
      // Only collections hold further keys (a scalar is a leaf).
      if (isCollection(key)) stack.push(key);
      if (isCollection(item.value)) stack.push(item.value);
    }
  }
  return offsets.sort((a, b) => a - b);
}

/** What is wrong with an object's name and namespace, if anything. */
function identityProblem(metadata: Record<string, unknown> | undefined): Omit<Problem, 'file' | 'object'> | undefined {
  if (metadata === undefined || metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    return { path: 'metadata', message: metadata === undefined ? 'required field is missing' : 'must be an object' };
  }
  const name = metadata['name'];
  if (name === undefined) return { path: 'metadata.name', message: 'required field is missing' };
  if (typeof name !== 'string' || name === '') return { path: 'metadata.name', message: `must be a non-empty string, not ${describeValue(name)}` };
  if (name.length > MAX_NAME) return { path: 'metadata.name', message: `is ${name.length} characters long; Kubernetes names have at most ${MAX_NAME}` };
  const namespace = metadata['namespace'];
  if (namespace !== undefined && (typeof namespace !== 'string' || !NAMESPACE.test(namespace) || namespace.length > 63)) {
    return { path: 'metadata.namespace', message: `${NAMESPACE_RULE}, not ${describeValue(namespace)}` };
  }
  return undefined;
}

/**
 * Size of a value written out as JSON (strings counted by UTF-16 length plus quotes) and its
 * nesting depth. Counting stops once the size passes `budget` or the depth passes `maxDepth`.
 * Shared subtrees (YAML aliases) are counted at every use.
 */
export function measure(value: unknown, budget: number, maxDepth: number): { size: number; depth: number } {
  let size = 0;
  let depth = 0;
  // Values and their levels on two parallel stacks (no pair allocated per value).
  const values: unknown[] = [value];
  const levels: number[] = [0];
  while (values.length > 0 && size <= budget && depth <= maxDepth) {
    const v = values.pop();
    const level = levels.pop()!;
    depth = Math.max(depth, level);
    if (typeof v === 'string') size += v.length + 2;
    else if (Array.isArray(v)) {
      size += 2 + v.length;
      for (const item of v) {
        values.push(item);
        levels.push(level + 1);
      }
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      size += 2 + keys.length;
      for (const k of keys) {
        size += k.length + 3;
        values.push((v as Record<string, unknown>)[k]);
        levels.push(level + 1);
      }
    } else size += String(v).length;
  }
  return { size, depth };
}

/** Attaches the source file to problems the planner reported by object. */
export function withSources(problems: readonly Problem[], sources: ReadonlyMap<string, string>): Problem[] {
  return problems.map((p) => (p.file === undefined && p.object !== undefined && sources.has(p.object) ? { ...p, file: sources.get(p.object)! } : p));
}

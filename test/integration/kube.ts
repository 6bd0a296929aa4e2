/**
 * Small REST helpers over the control-plane harness (`ControlPlane.request`) for the integration
 * suites: resource paths from discovery, server-side apply, create, get, and the read-back
 * comparison rules.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ControlPlane } from '../support/control-plane.js';

export interface KObj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** A `Status` the API server answers errors with. */
export interface KStatus {
  kind: 'Status';
  code: number;
  reason?: string;
  message: string;
  details?: { causes?: Array<{ reason?: string; message?: string; field?: string }> };
}

export interface KResponse<T = KObj> {
  status: number;
  body: T | KStatus;
  raw: string;
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
}

/** The field manager meshfork applies with. */
export const FIELD_MANAGER = 'meshfork';

export class Kube {
  private readonly discovery = new Map<string, ApiResource[]>();

  constructor(private readonly cp: () => ControlPlane) {}

  private async resources(apiVersion: string): Promise<ApiResource[]> {
    let list = this.discovery.get(apiVersion);
    if (!list) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const r = await this.cp().request('GET', path);
      if (r.status !== 200) throw new Error(`discovery ${path}: HTTP ${r.status}: ${r.body}`);
      list = (JSON.parse(r.body) as { resources: ApiResource[] }).resources.filter((x) => !x.name.includes('/'));
      this.discovery.set(apiVersion, list);
    }
    return list;
  }

  /** Whether the API server serves the object's apiVersion and kind. */
  async served(o: Pick<KObj, 'apiVersion' | 'kind'>): Promise<boolean> {
    try {
      return (await this.resources(o.apiVersion)).some((x) => x.kind === o.kind);
    } catch {
      return false;
    }
  }

  /** Collection path of the object's kind in its namespace. */
  async collectionPath(o: Pick<KObj, 'apiVersion' | 'kind' | 'metadata'>): Promise<string> {
    const res = (await this.resources(o.apiVersion)).find((x) => x.kind === o.kind);
    if (!res) throw new Error(`${o.apiVersion} ${o.kind} is not served`);
    const prefix = o.apiVersion.includes('/') ? `/apis/${o.apiVersion}` : `/api/${o.apiVersion}`;
    if (!res.namespaced) return `${prefix}/${res.name}`;
    return `${prefix}/namespaces/${o.metadata.namespace ?? 'default'}/${res.name}`;
  }

  async objectPath(o: Pick<KObj, 'apiVersion' | 'kind' | 'metadata'>): Promise<string> {
    return `${await this.collectionPath(o)}/${o.metadata.name}`;
  }

  private async send<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<KResponse<T>> {
    const r = await this.cp().request(method, path, body, contentType);
    let parsed: T | KStatus;
    try {
      parsed = JSON.parse(r.body) as T | KStatus;
    } catch {
      throw new Error(`${method} ${path}: HTTP ${r.status}, not JSON: ${r.body.slice(0, 500)}`);
    }
    return { status: r.status, body: parsed, raw: r.body };
  }

  /** Server-side apply: field manager `meshfork`, `fieldValidation=Strict`, `force=true`. */
  async apply(o: KObj, fieldManager = FIELD_MANAGER): Promise<KResponse> {
    const q = `fieldManager=${encodeURIComponent(fieldManager)}&fieldValidation=Strict&force=true`;
    return this.send('PATCH', `${await this.objectPath(o)}?${q}`, o, 'application/apply-patch+yaml');
  }

  /** POST with `fieldValidation=Strict`. */
  async create(o: KObj): Promise<KResponse> {
    return this.send('POST', `${await this.collectionPath(o)}?fieldValidation=Strict`, o);
  }

  async get(o: Pick<KObj, 'apiVersion' | 'kind' | 'metadata'>): Promise<KResponse> {
    return this.send('GET', await this.objectPath(o));
  }

  async delete(o: Pick<KObj, 'apiVersion' | 'kind' | 'metadata'>): Promise<KResponse> {
    return this.send('DELETE', await this.objectPath(o));
  }
}

export function isStatus(b: unknown): b is KStatus {
  return typeof b === 'object' && b !== null && (b as { kind?: unknown }).kind === 'Status';
}

/** Fields the API server fills in on every object. */
const SERVER_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields'];

/** The read-back object without server-populated metadata and without status. */
export function withoutServerFields(o: KObj): KObj {
  const copy = structuredClone(o);
  delete copy['status'];
  for (const k of SERVER_METADATA) delete copy.metadata[k];
  return copy;
}

/**
 * Where `sent` is not contained in `read`: every field sent must be present with the same value
 * (objects: key by key; arrays: same length, element by element; scalars: equal). Fields only in
 * `read` are defaults the server added and are allowed. Returns the paths that differ.
 */
export function notContained(sent: unknown, read: unknown, path = ''): string[] {
  if (Array.isArray(sent)) {
    if (!Array.isArray(read)) return [`${path}: sent an array, read ${JSON.stringify(read)}`];
    if (read.length !== sent.length) return [`${path}: sent ${sent.length} items, read ${read.length}`];
    return sent.flatMap((s, i) => notContained(s, read[i], `${path}[${i}]`));
  }
  if (sent !== null && typeof sent === 'object') {
    if (read === null || typeof read !== 'object' || Array.isArray(read)) return [`${path}: sent an object, read ${JSON.stringify(read)}`];
    return Object.entries(sent).flatMap(([k, v]) =>
      k in read ? notContained(v, (read as Record<string, unknown>)[k], path ? `${path}.${k}` : k) : [`${path ? `${path}.` : ''}${k}: missing in read-back`],
    );
  }
  return isDeepStrictEqual(sent, read) ? [] : [`${path}: sent ${JSON.stringify(sent)}, read ${JSON.stringify(read)}`];
}

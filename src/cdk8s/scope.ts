/**
 * How Sandbox and RouteGroup constructs find the MeshforkChart that plans them, without importing
 * the chart module (the chart imports theirs). The chart publishes this record under a symbol.
 */
import type { IConstruct } from 'constructs';

/** @internal */
export const MESHFORK_SCOPE = Symbol.for('meshfork.dev/cdk8s.MeshforkChart');

/** @internal What a spec construct needs from its chart. */
export interface MeshforkScope {
  /** Namespace of specs and inventory objects that name none. */
  readonly defaultNamespace: string;
  /** True once the chart has planned; specs added later would be silently ignored, so they throw. */
  readonly planned: boolean;
  readonly path: string;
}

/** @internal The nearest enclosing MeshforkChart's record, or undefined. */
export function findMeshforkScope(construct: IConstruct): MeshforkScope | undefined {
  return nearestRecord(construct.node.scopes.slice(0, -1)); // root first, the construct itself last
}

/** @internal The record of `scope` itself when it is a MeshforkChart, else of the nearest one enclosing it. */
export function meshforkScopeAt(scope: IConstruct): MeshforkScope | undefined {
  return nearestRecord(scope.node.scopes);
}

function nearestRecord(scopes: readonly IConstruct[]): MeshforkScope | undefined {
  for (let i = scopes.length - 1; i >= 0; i--) {
    const record = (scopes[i] as unknown as { [MESHFORK_SCOPE]?: MeshforkScope })[MESHFORK_SCOPE];
    if (record !== undefined) return record;
  }
  return undefined;
}

/** @internal Like findMeshforkScope, but a spec outside a MeshforkChart, or added after planning, throws. */
export function requireMeshforkScope(construct: IConstruct, kind: string): MeshforkScope {
  const scope = findMeshforkScope(construct);
  if (scope === undefined) throw new Error(`${kind} "${construct.node.path}" must be defined inside a MeshforkChart`);
  if (scope.planned) {
    throw new Error(`${kind} "${construct.node.path}" was added after MeshforkChart "${scope.path}" was synthesized; define every spec before synthesis`);
  }
  return scope;
}

/** JSON-only deep copy that drops `undefined` members (props written as `x: maybeUndefined`). */
export function plainCopy<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

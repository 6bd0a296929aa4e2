/**
 * `PlannedObject`: one object of the planner's output as a cdk8s ApiObject.
 *
 * cdk8s' ApiObject.toJson() rebuilds an object from its props: it sorts every key and drops null
 * members (sanitizeValue in cdk8s 2.70 lib/_util.js and lib/api-object.js; sorting can only be turned
 * off process-wide with CDK8S_DISABLE_SORT). meshfork promises that every front end emits the
 * planner's objects exactly, so this subclass renders the planner's object verbatim (key order and
 * nulls included), then applies any JSON patches added with addJsonPatch() — the cdk8s escape
 * hatch keeps working.
 * ApiObject.toJson() is public and documented as "renders the object to Kubernetes JSON", the
 * per-object hook Chart.toJson() calls (https://github.com/awslabs/cdk8s/commit/80e8402790c4112e64bda2dd9a42fa897ee4ab8b).
 */
import { ApiObject, JsonPatch } from 'cdk8s';
import type { Construct } from 'constructs';
import type { KubeObject } from '../planner/kube.js';

export class PlannedObject extends ApiObject {
  readonly #object: KubeObject;
  readonly #patches: JsonPatch[] = [];

  public constructor(scope: Construct, id: string, object: KubeObject) {
    const copy = structuredClone(object);
    super(scope, id, structuredClone(copy));
    this.#object = copy;
  }

  /** Applies RFC 6902 JSON patches to the rendered object (after the planner's content). */
  public override addJsonPatch(...ops: JsonPatch[]): void {
    this.#patches.push(...ops);
  }

  /** The planner's object, exactly, with the JSON patches applied. */
  public override toJson(): KubeObject {
    const json = structuredClone(this.#object);
    return this.#patches.length === 0 ? json : (JsonPatch.apply(json, ...this.#patches) as KubeObject);
  }
}

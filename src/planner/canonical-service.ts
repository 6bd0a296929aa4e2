/**
 * Istio's canonical service of a workload: the name and revision its telemetry (metrics labels
 * `destination_canonical_service` / `destination_canonical_revision`, Kiali's graph) groups pods
 * by. Istio derives them from pod labels (istio.io/istio pkg/kube/labels/labels.go
 * `CanonicalService`; istio.io "Canonical service" in the Labels reference):
 *
 *  - name: `service.istio.io/canonical-name`, else `app.kubernetes.io/name`, else `app`, else the
 *    workload name (for a Deployment's pods, the Deployment name);
 *  - revision: `service.istio.io/canonical-revision`, else `app.kubernetes.io/version`, else
 *    `version`, else the literal `latest`.
 *
 * The first label present wins, even when its value is empty.
 */
import { ownValue } from './kube.js';

export const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
export const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';

const NAME_LABELS = [CANONICAL_NAME_LABEL, 'app.kubernetes.io/name', 'app'] as const;
const REVISION_LABELS = [CANONICAL_REVISION_LABEL, 'app.kubernetes.io/version', 'version'] as const;

function firstLabel(labels: Readonly<Record<string, string>>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = ownValue(labels, key);
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/** The canonical service name of pods with `podLabels` run by the workload `workloadName`. */
export function canonicalName(podLabels: Readonly<Record<string, string>>, workloadName: string): string {
  return firstLabel(podLabels, NAME_LABELS) ?? workloadName;
}

/** The canonical revision of pods with `podLabels`. */
export function canonicalRevision(podLabels: Readonly<Record<string, string>>): string {
  return firstLabel(podLabels, REVISION_LABELS) ?? 'latest';
}

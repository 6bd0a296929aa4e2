/**
 * Validates the Istio and Gateway API objects meshfork emits against their own schemas, through
 * the typed models of @kubernetes-models/istio (generated from Istio's crd-all.gen.yaml) and
 * @kubernetes-models/gateway-api (generated from sigs.k8s.io/gateway-api's API types). A merged
 * VirtualService carries the user's routes, so a bad user VirtualService fails here too; so does
 * a bad user policy, through its fork copy, and a bad user HTTPRoute/GRPCRoute rule, through the
 * derived route that copies it. CEL rules of the Gateway API CRDs are not in the models (the API
 * server checks those; test/integration/gateway-api-schema.test.ts).
 */
import { GRPCRoute as GRPCRouteV1 } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/GRPCRoute';
import { HTTPRoute as HTTPRouteV1 } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { DestinationRule as DestinationRuleV1 } from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule';
import { VirtualService as VirtualServiceV1 } from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService';
import { DestinationRule as DestinationRuleV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule';
import { VirtualService as VirtualServiceV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService';
import { DestinationRule as DestinationRuleV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/DestinationRule';
import { EnvoyFilter as EnvoyFilterV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter';
import { VirtualService as VirtualServiceV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/VirtualService';
import { AuthorizationPolicy as AuthorizationPolicyV1 } from '@kubernetes-models/istio/security.istio.io/v1/AuthorizationPolicy';
import { PeerAuthentication as PeerAuthenticationV1 } from '@kubernetes-models/istio/security.istio.io/v1/PeerAuthentication';
import { RequestAuthentication as RequestAuthenticationV1 } from '@kubernetes-models/istio/security.istio.io/v1/RequestAuthentication';
import { AuthorizationPolicy as AuthorizationPolicyV1beta1 } from '@kubernetes-models/istio/security.istio.io/v1beta1/AuthorizationPolicy';
import { PeerAuthentication as PeerAuthenticationV1beta1 } from '@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication';
import { RequestAuthentication as RequestAuthenticationV1beta1 } from '@kubernetes-models/istio/security.istio.io/v1beta1/RequestAuthentication';
import { Sidecar as SidecarV1 } from '@kubernetes-models/istio/networking.istio.io/v1/Sidecar';
import { Sidecar as SidecarV1beta1 } from '@kubernetes-models/istio/networking.istio.io/v1beta1/Sidecar';
import { Sidecar as SidecarV1alpha3 } from '@kubernetes-models/istio/networking.istio.io/v1alpha3/Sidecar';
import { Telemetry as TelemetryV1 } from '@kubernetes-models/istio/telemetry.istio.io/v1/Telemetry';
import { Telemetry as TelemetryV1alpha1 } from '@kubernetes-models/istio/telemetry.istio.io/v1alpha1/Telemetry';
import { WasmPlugin as WasmPluginV1alpha1 } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { fieldPath, type Problem } from '../api/problem.js';
import type { KubeObject } from '../planner/kube.js';
import { objectRef } from '../planner/plan.js';

type IstioModel = new (data: never) => { validate(): void };

/** Model class per `apiVersion/kind`. User VirtualServices keep their own version when merged. */
const MODELS: Readonly<Record<string, IstioModel>> = {
  'networking.istio.io/v1/VirtualService': VirtualServiceV1,
  'networking.istio.io/v1beta1/VirtualService': VirtualServiceV1beta1,
  'networking.istio.io/v1alpha3/VirtualService': VirtualServiceV1alpha3,
  'networking.istio.io/v1/DestinationRule': DestinationRuleV1,
  'networking.istio.io/v1beta1/DestinationRule': DestinationRuleV1beta1,
  'networking.istio.io/v1alpha3/DestinationRule': DestinationRuleV1alpha3,
  'networking.istio.io/v1alpha3/EnvoyFilter': EnvoyFilterV1alpha3,
  // Copies of label-selected policies keep the version of the policy they copy (policy-copy.ts).
  'security.istio.io/v1/AuthorizationPolicy': AuthorizationPolicyV1,
  'security.istio.io/v1/PeerAuthentication': PeerAuthenticationV1,
  'security.istio.io/v1/RequestAuthentication': RequestAuthenticationV1,
  'security.istio.io/v1beta1/AuthorizationPolicy': AuthorizationPolicyV1beta1,
  'security.istio.io/v1beta1/PeerAuthentication': PeerAuthenticationV1beta1,
  'security.istio.io/v1beta1/RequestAuthentication': RequestAuthenticationV1beta1,
  'networking.istio.io/v1/Sidecar': SidecarV1,
  'networking.istio.io/v1beta1/Sidecar': SidecarV1beta1,
  'networking.istio.io/v1alpha3/Sidecar': SidecarV1alpha3,
  'telemetry.istio.io/v1/Telemetry': TelemetryV1,
  'telemetry.istio.io/v1alpha1/Telemetry': TelemetryV1alpha1,
  'extensions.istio.io/v1alpha1/WasmPlugin': WasmPluginV1alpha1,
  // Derived routes of Gateway API hosts (http-route.ts).
  'gateway.networking.k8s.io/v1/HTTPRoute': HTTPRouteV1,
  'gateway.networking.k8s.io/v1/GRPCRoute': GRPCRouteV1,
};

const SCHEMA_OWNER: ReadonlyArray<readonly [group: string, name: string]> = [
  ['.istio.io', 'Istio'],
  ['gateway.networking.k8s.io', 'Gateway API'],
];

interface SchemaError {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/**
 * Problems of one object against its Istio or Gateway API schema; [] for valid objects and for
 * kinds of other API groups.
 */
export function istioProblems(object: KubeObject): Problem[] {
  const group = object.apiVersion.split('/')[0] ?? '';
  const owner = SCHEMA_OWNER.find(([suffix]) => group.endsWith(suffix))?.[1];
  if (owner === undefined) return [];
  const ref = objectRef(object);
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (Model === undefined) return [{ object: ref, path: 'apiVersion', message: `no ${owner} schema known for ${object.apiVersion} ${object.kind}` }];
  try {
    new Model(structuredClone(object) as never).validate();
    return [];
  } catch (e) {
    const errors = (e as { errors?: SchemaError[] }).errors;
    if (!Array.isArray(errors) || errors.length === 0) return [{ object: ref, path: '', message: `${owner} schema: ${(e as Error).message}` }];
    const seen = new Set<string>();
    const problems: Problem[] = [];
    for (const error of errors) {
      const segments = (error.instancePath ?? '').split('/').filter(Boolean).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
      let message = error.message ?? error.keyword ?? 'invalid';
      if (error.keyword === 'additionalProperties' && typeof error.params?.additionalProperty === 'string') {
        segments.push(error.params.additionalProperty);
        message = 'unknown field';
      }
      const problem = { object: ref, path: fieldPath(segments), message: `${owner} schema: ${message}` };
      const key = `${problem.path}\u0000${problem.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        problems.push(problem);
      }
    }
    return problems;
  }
}

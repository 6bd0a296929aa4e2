/**
 * The controller's writes, routed by real istiod to proxyless gRPC clients: `kubectl apply` of a
 * Sandbox with `meshfork controller` running -> RPCs carrying its key reach the forks;
 * `kubectl delete` -> they reach the baselines again; and RPCs sent without pause the whole time,
 * with and without the key, on both hosts (greeter: meshfork's own VirtualService; catalog: the
 * user's), never fail (make before break, ADR 0005).
 *
 * istiod reads its configuration from the test kube-apiserver (`--kubeconfig`, Istio's CRDs are
 * installed by the control-plane harness), the same objects the controller writes. No kubelet
 * runs: the test plays it for the forks the controller creates — a stand-in WorkloadEntry with
 * the fork's pod labels, served by an echo backend named after the fork (mesh.ts), and the
 * Deployment status the deployment controller would write once the pod is Ready; when the
 * controller deletes a fork Deployment, its stand-in goes too.
 */
import { controllerRoutingScenario } from './controller-routing-scenario.js';

controllerRoutingScenario({
  title: 'meshfork controller routed by real istiod (proxyless gRPC)',
  expectedRoutes: ['VirtualService greeter-meshfork'],
});

export * from './kube.js';
export * from './inventory.js';
export * from './routing-key.js';
export * from './plan.js';
export { mergeVirtualService, ownedVirtualService, isMeshforkRoute, type HostRouting, type SandboxRoute } from './virtual-service.js';
export { forkAffinityEnvoyFilter, ingressGuardEnvoyFilter } from './envoy-filter.js';

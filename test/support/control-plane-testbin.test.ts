/**
 * The pins of tools/ that must agree with each other (no binaries needed).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pinnedVersions, REPO_ROOT } from './control-plane-testbin.js';

describe('tools/ pins', () => {
  it("tools/gateway-api pins the sigs.k8s.io/gateway-api version that istio.io/istio at our pin requires (one release for the API server's schema and istiod's controller)", () => {
    const istioGoMod = readFileSync(join(REPO_ROOT, 'tools', 'istio', 'go.mod'), 'utf8');
    const required = /^\s*sigs\.k8s\.io\/gateway-api\s+(v\S+)/m.exec(istioGoMod)?.[1];
    expect(required, 'tools/istio/go.mod lists sigs.k8s.io/gateway-api').toBeDefined();
    expect(pinnedVersions().gatewayApi).toBe(required);
  });
});

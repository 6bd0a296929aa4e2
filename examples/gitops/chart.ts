/**
 * The Bookinfo sandboxes as a cdk8s chart. The baseline (and the star-ratings Sandbox) are the
 * repository's own example manifests in ../bookinfo, read exactly as `meshfork synth -f ../bookinfo`
 * reads them; one more Sandbox is declared in code. Both fork workloads behind the `reviews`
 * Service, so the chart emits ONE merged `reviews` VirtualService with routes for both sandboxes.
 */
import { fileURLToPath } from 'node:url';
import type { Construct } from 'constructs';
import { MeshforkChart, readManifests, Sandbox } from '../../src/cdk8s/index.js';

/** Absolute, so the app works from any working directory (cdk8s synth here or at the repo root). */
export const BOOKINFO_DIR = fileURLToPath(new URL('../bookinfo/', import.meta.url));

export function bookinfoChart(scope: Construct, id = 'bookinfo'): MeshforkChart {
  const bookinfo = readManifests(BOOKINFO_DIR);
  const chart = new MeshforkChart(scope, id, {
    inventory: bookinfo.inventory,
    sandboxes: bookinfo.sandboxes,
    // This app owns the user VirtualServices of the baseline for good (no other Argo CD
    // Application syncs them): keep them in dist/ even when no sandbox routes through them.
    userVirtualServices: 'all',
  });

  // A pull-request sandbox: CI would generate one of these per open PR.
  new Sandbox(chart, 'pr-42', {
    description: 'Preview of pull request 42: reviews-v2 with the new ratings client.',
    labels: { team: 'reviews', 'meshfork.dev/pull-request': '42' },
    forks: [
      {
        forkOf: { kind: 'Deployment', name: 'reviews-v2' },
        customizations: {
          images: [{ image: 'ghcr.io/example/reviews:pr-42' }],
          env: [{ name: 'LOG_LEVEL', value: 'debug' }],
        },
      },
    ],
  });
  return chart;
}

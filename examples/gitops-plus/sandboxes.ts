/**
 * The sandboxes of the Bookinfo app: one MeshforkChart whose baseline is the app's other charts
 * (the default when it is given no `inventory`), with two Sandboxes.
 */
import type { Construct } from 'constructs';
import { MeshforkChart, Sandbox } from '../../src/cdk8s/index.js';
import type { Bookinfo } from './bookinfo.js';

export function sandboxes(scope: Construct, namespace: string, app: Bookinfo, id = 'sandboxes'): MeshforkChart {
  const chart = new MeshforkChart(scope, id, { namespace });
  // A pull-request preview of reviews-v2, forked by construct.
  new Sandbox(chart, 'pr-42', {
    description: 'Preview of pull request 42: reviews-v2 with the new ratings client.',
    labels: { team: 'reviews', 'meshfork.dev/pull-request': '42' },
    forks: [
      {
        forkOf: app.deployments['reviews-v2']!,
        customizations: { images: [{ image: 'ghcr.io/example/reviews:pr-42' }], env: [{ name: 'LOG_LEVEL', value: 'debug' }] },
      },
    ],
  });
  // A developer's sandbox of ratings, forked by name.
  new Sandbox(chart, 'alice-ratings', {
    routingKey: 'alice2024',
    forks: [{ forkOf: { name: 'ratings-v1' }, customizations: { images: [{ image: 'ghcr.io/example/ratings:alice' }] } }],
  });
  return chart;
}

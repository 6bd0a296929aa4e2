/**
 * cdk8s app entry point (cdk8s.yaml: `app: npx tsx main.ts`): Bookinfo in cdk8s-plus and its
 * sandboxes. The namespace is the Argo CD Application's destination namespace when Argo CD runs
 * the app (ARGOCD_APP_NAMESPACE, set for config management plugins:
 * https://argo-cd.readthedocs.io/en/stable/user-guide/build-environment/), `bookinfo` otherwise.
 * Routing keys go to stderr, which Argo CD shows but never reads as manifests.
 */
import { App } from 'cdk8s';
import { bookinfo } from './bookinfo.js';
import { sandboxes } from './sandboxes.js';

const namespace = process.env.ARGOCD_APP_NAMESPACE || 'bookinfo';
const app = new App();
const chart = sandboxes(app, namespace, bookinfo(app, namespace));
app.synth();
for (const sandbox of chart.plan().sandboxes) {
  process.stderr.write(`sandbox ${sandbox.namespace}/${sandbox.name}: routing key ${sandbox.routingKey}\n`);
}

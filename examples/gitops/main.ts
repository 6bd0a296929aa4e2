/**
 * cdk8s app entry point (cdk8s.yaml: `app: npx tsx main.ts`). `cdk8s synth` runs it with
 * CDK8S_OUTDIR set to the `output` directory; App.synth() writes one `<chart>.k8s.yaml` per chart
 * (AppProps.outdir: "@default - CDK8S_OUTDIR if defined, otherwise dist",
 * https://app.unpkg.com/cdk8s@2.70.4/files/lib/app.d.ts).
 */
import { App } from 'cdk8s';
import { bookinfoChart } from './chart.js';

const app = new App();
const chart = bookinfoChart(app);
app.synth();
for (const sandbox of chart.plan().sandboxes) {
  process.stderr.write(`sandbox ${sandbox.namespace}/${sandbox.name}: routing key ${sandbox.routingKey}\n`);
}

/**
 * Issue 8 item 7: YAML output safe for YAML 1.1 readers. kubectl, Argo CD and Flux decode with
 * sigs.k8s.io/yaml (go-yaml v2): a plain `on`, `y`, `~`, `010`, `1_000`, `1:20` or `0o7` there is
 * a boolean, null or number, not the string meshfork meant. Golden: the fork Deployment `meshfork
 * synth` prints for a baseline whose labels and env values are such strings
 * (inputs/cli-yaml11/). Regenerate with `vitest run test/security/cli-yaml11.test.ts -u`.
 */
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ambiguousInYaml11 } from '../../src/cli/yaml.js';
import { cli } from '../support/cli.js';

const DIR = new URL('inputs/cli-yaml11/', import.meta.url).pathname;

type Deployment = { kind: string; spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } } };

function deployment(docs: unknown[]): Deployment {
  return docs.find((d) => (d as Deployment).kind === 'Deployment') as Deployment;
}

describe('meshfork synth quotes strings YAML 1.1 readers would misread', () => {
  const result = cli('synth', '-f', `${DIR}inventory.yaml`, `${DIR}sandbox.yaml`);

  it('golden: the fork Deployment', async () => {
    expect(result.code).toBe(0);
    const text = result.stdout.split(/^---\n/m).find((d) => d.startsWith('apiVersion: apps/v1\nkind: Deployment\n'));
    await expect(text).toMatchFileSnapshot('inputs/cli-yaml11/fork-deployment.golden.yaml');
  });

  it('read as YAML 1.1, every label and env value is still the string it was', () => {
    const input = deployment(parseAllDocuments(readFileSync(`${DIR}inventory.yaml`, 'utf8')).map((d) => d.toJS()));
    const output = deployment(parseAllDocuments(result.stdout, { version: '1.1' }).map((d) => d.toJS()));
    const labels = output.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(input.spec.template.metadata.labels)) {
      if (key !== 'app') expect([key, labels[key]]).toEqual([key, value]);
    }
    const env = new Map(output.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
    for (const e of input.spec.template.spec.containers[0]!.env) expect([e.name, env.get(e.name)]).toEqual([e.name, e.value]);
    expect([env.get('FROM_SANDBOX_ON'), env.get('FROM_SANDBOX_OCTAL'), env.get('FROM_SANDBOX_TIME')]).toEqual(['on', '0o17', '12:30']);
  });
});

describe('ambiguousInYaml11', () => {
  // go-yaml v2 resolve(): YAML 1.1 bool/null/float words, strconv.ParseInt/ParseFloat in base 0
  // after removing '_' (so 0o, 0x, 0b prefixes), base 60 and timestamps.
  const ambiguous = ['on', 'OFF', 'Yes', 'n', 'Y', 'TRUE', 'False', '~', 'null', 'NULL', '<<', '=', '.inf', '-.Inf', '+.INF', '.NaN',
    '0', '010', '08', '+1', '-1', '1_000', '0o7', '0O7', '0x1F', '0b101', '-0b1', '1e3', '1E-3', '1.5', '.5', '1.', '1:20', '190:20:30.15', '1.20.3',
    '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5'];
  const plain = ['', 'web', 'v1', '200m', '64Mi', '1Gi', '0.5Gi', 'nan', 'inf', 'yes-please', 'onion', 'x1', '1.20.3-alpine', 'a:1', 'docker.io/x:1.2'];
  it.each(ambiguous)('%s is quoted', (s) => expect(ambiguousInYaml11(s)).toBe(true));
  it.each(plain)('%s may stay plain', (s) => expect(ambiguousInYaml11(s)).toBe(false));
});

/**
 * `cdk8s import` of meshfork's CRDs (`meshfork crds`) gives typed classes that work: the real
 * cdk8s-cli imports the CRDs from a local file (offline), the generated TypeScript compiles with
 * the tsconfig of cdk8s' own TypeScript app template (and rejects misuses: the props are typed),
 * and a Sandbox and a RouteGroup written with the generated classes synthesize to the expected objects, which meshfork's own validation
 * (`meshfork validate`, the CRD's JSON Schema and CEL rules) accepts.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, cli, documents, REPO, run } from './support.js';

/** A cdk8s app written against the imported classes: one Sandbox using every kind of field, one RouteGroup. */
const APP = `
import { App, Chart } from 'cdk8s';
import {
  RouteGroup,
  Sandbox,
  SandboxSpecForksCustomizationsEnvOperation,
  SandboxSpecForksCustomizationsPatchType,
  SandboxSpecForksForkOfKind,
  SandboxSpecTtlOffsetFrom,
} from './imports/meshfork.dev';

const app = new App();
const chart = new Chart(app, 'raw', { namespace: 'bookinfo' });
new Sandbox(chart, 'pr-42', {
  metadata: { name: 'pr-42', labels: { team: 'reviews' } },
  spec: {
    routingKey: 'pr42key',
    ttl: { duration: '8h', offsetFrom: SandboxSpecTtlOffsetFrom.UPDATED_AT },
    forks: [
      {
        forkOf: { kind: SandboxSpecForksForkOfKind.DEPLOYMENT, name: 'reviews-v2' },
        customizations: {
          images: [{ image: 'ghcr.io/example/reviews:pr-42' }],
          env: [
            { name: 'LOG_LEVEL', value: 'debug' },
            { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'reviews', key: 'token' } } },
            { name: 'LEGACY', operation: SandboxSpecForksCustomizationsEnvOperation.DELETE },
          ],
          patch: { type: SandboxSpecForksCustomizationsPatchType.MERGE, value: { spec: { template: { metadata: { annotations: { preview: 'true' } } } } } },
          replicas: 2,
        },
      },
    ],
  },
});
new RouteGroup(chart, 'reviews-team', {
  metadata: { name: 'reviews-team' },
  spec: { match: { any: [{ label: { key: 'team', value: 'reviews' } }, { label: { key: 'team', value: 'ratings*' } }] } },
});
process.stdout.write(app.synthYaml());
`;

/**
 * Compiled with the app: each line must be a type error, or tsc reports the unused directive, so
 * this fails if the generated props were untyped (\`any\`) where the CRD has a schema.
 */
const TYPED = `
import { Chart } from 'cdk8s';
import { RouteGroup, Sandbox, SandboxSpecForksForkOfKind } from './imports/meshfork.dev';

export function misuses(chart: Chart): void {
  const forkOf = { kind: SandboxSpecForksForkOfKind.DEPLOYMENT, name: 'reviews-v2' };
  // @ts-expect-error replicas is a number
  new Sandbox(chart, 'a', { spec: { forks: [{ forkOf, customizations: { replicas: '2' } }] } });
  // @ts-expect-error forks is required
  new Sandbox(chart, 'b', { spec: {} });
  // @ts-expect-error forkOf.kind is the enum, not any string
  new Sandbox(chart, 'c', { spec: { forks: [{ forkOf: { kind: 'StatefulSet', name: 'x' } }] } });
  // @ts-expect-error a label condition needs key and value
  new RouteGroup(chart, 'd', { spec: { match: { label: { key: 'team' } } } });
}
`;

const EXPECTED = [
  {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'Sandbox',
    metadata: { name: 'pr-42', namespace: 'bookinfo', labels: { team: 'reviews' } },
    spec: {
      routingKey: 'pr42key',
      ttl: { duration: '8h', offsetFrom: 'updatedAt' },
      forks: [
        {
          forkOf: { kind: 'Deployment', name: 'reviews-v2' },
          customizations: {
            images: [{ image: 'ghcr.io/example/reviews:pr-42' }],
            env: [
              { name: 'LOG_LEVEL', value: 'debug' },
              { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'reviews', key: 'token' } } },
              { name: 'LEGACY', operation: 'delete' },
            ],
            patch: { type: 'merge', value: { spec: { template: { metadata: { annotations: { preview: 'true' } } } } } },
            replicas: 2,
          },
        },
      ],
    },
  },
  {
    apiVersion: 'meshfork.dev/v1alpha1',
    kind: 'RouteGroup',
    metadata: { name: 'reviews-team', namespace: 'bookinfo' },
    spec: { match: { any: [{ label: { key: 'team', value: 'reviews' } }, { label: { key: 'team', value: 'ratings*' } }] } },
  },
];

describe('cdk8s import of `meshfork crds`', () => {
  it('generates classes that compile under the cdk8s app template and synthesize valid Sandbox and RouteGroup objects', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshfork-cdk8s-import-'));
    symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
    const crds = cli(['crds']);
    expect(crds.code).toBe(0);
    writeFileSync(join(dir, 'meshfork-crds.yaml'), crds.stdout);
    const env = { ...process.env, PATH: `${BIN}:${process.env.PATH ?? ''}`, CDK8S_CHECK_UPGRADE: 'false', NO_COLOR: '1' };

    const imported = await run(join(BIN, 'cdk8s'), ['--no-check-upgrade', 'import', 'meshfork-crds.yaml', '--language', 'typescript', '--output', 'imports'], { cwd: dir, env, timeout: 60_000 });
    expect(imported.stdout).toContain('meshfork.dev/sandbox');
    expect(imported.stdout).toContain('meshfork.dev/routegroup');

    writeFileSync(join(dir, 'main.ts'), APP);
    writeFileSync(join(dir, 'typed.ts'), TYPED);
    // cdk8s' TypeScript app template (\`cdk8s init typescript-app\`), strict with noUnusedLocals/Parameters and
    // noImplicitReturns; its lib es2016 lacks Object.entries, which every class cdk8s import generates uses.
    const template = JSON.parse(readFileSync(join(REPO, 'node_modules/cdk8s-cli/templates/typescript-app/tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    const tsconfig = { ...template, compilerOptions: { ...template.compilerOptions, lib: ['es2020'], types: ['node'] } };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    await run(join(BIN, 'tsc'), ['-p', '.'], { cwd: dir, env, timeout: 120_000 }).catch((e: { stdout?: string }) => {
      throw new Error(`tsc failed on the imported classes:\n${e.stdout ?? String(e)}`);
    });
    const { stdout } = await run(join(BIN, 'node'), ['main.js'], { cwd: dir, env, timeout: 60_000 });
    const objects = documents(stdout, '1.1');
    expect(objects).toEqual(EXPECTED);

    writeFileSync(join(dir, 'raw.yaml'), stdout);
    expect(cli(['validate', '-f', join(dir, 'raw.yaml')])).toMatchObject({ code: 0 });
  });
});

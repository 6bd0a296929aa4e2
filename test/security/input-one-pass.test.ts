/**
 * Issue 8 item 5: every problem of a Sandbox in one pass. A Sandbox or RouteGroup with schema
 * problems is planned in its valid parts (src/api/validate.ts sandboxValidParts), so the
 * planner's rule problems come with the schema problems instead of after they are fixed.
 */
import { describe, expect, it } from 'vitest';
import { sandboxValidParts } from '../../src/api/validate.js';
import { cli, FIXTURES } from '../support/cli.js';

const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const FILE = new URL('inputs/input-one-pass/sandboxes.yaml', import.meta.url).pathname;

const SCHEMA = [
  `${FILE}:12: Sandbox default/b: spec.forks[0].colour: unknown field`,
  `${FILE}:12: Sandbox default/b: spec.ttl.duration: must match ^[1-9][0-9]{0,5}(m|h|d|w)$`,
  `${FILE}:30: RouteGroup default/g: spec.routingKey: must match ^[a-z0-9]{4,32}$`,
];
const RULES = [
  `${FILE}:12: Sandbox default/b: spec.routingKey: routing key "samekey1" is already used by Sandbox default/a`,
  `${FILE}:30: RouteGroup default/g: spec.match: members "a" and "c" both fork Deployment default/reviews-v3`,
  `${FILE}:12: Sandbox default/b: spec.forks[2].forkOf: Deployment default/ratings-v1 is already forked by spec.forks[1]`,
];
const MISSING = `${FILE}:12: Sandbox default/b: spec.forks[3].forkOf.name: Deployment "nope" not found in namespace "default"`;

describe('schema and rule problems together', () => {
  for (const command of ['synth', 'validate']) {
    it(`${command}, with the inventory`, () => {
      const result = cli(command, '-f', BOOKINFO, FILE);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toEqual([...SCHEMA, ...RULES, MISSING, 'meshfork: 7 problems; nothing written']);
      expect(result.code).toBe(1);
    });
  }

  it('validate without Deployments leaves out only the missing-baseline problems', () => {
    expect(cli('validate', '-f', FILE).stderr.trimEnd().split('\n')).toEqual([...SCHEMA, ...RULES, 'meshfork: 6 problems; nothing written']);
  });

  it('a file that cannot be read stops before planning (objects in it would look missing)', () => {
    const result = cli('validate', '-f', BOOKINFO, FILE, `${FILE}.nope`);
    expect(result.stderr.trimEnd().split('\n')).toEqual([`${FILE}.nope: -: .: no such file or directory`, ...SCHEMA, 'meshfork: 4 problems; nothing written']);
  });
});

describe('sandboxValidParts', () => {
  it('keeps the valid forks and spec fields as written and maps fork indices back', () => {
    const sandbox = {
      apiVersion: 'meshfork.dev/v1alpha1',
      kind: 'Sandbox',
      metadata: { name: 'b', namespace: 'default', labels: { team: 7 } },
      spec: {
        routingKey: 'samekey1',
        ttl: { duration: 'forever' },
        split: { weight: 10 },
        forks: [{ forkOf: { kind: 'Deployment', name: 'x' }, colour: 'red' }, { forkOf: { kind: 'Deployment', name: 'y' } }],
      },
    };
    expect(sandboxValidParts(sandbox)).toEqual({
      sandbox: {
        apiVersion: 'meshfork.dev/v1alpha1',
        kind: 'Sandbox',
        metadata: { name: 'b', namespace: 'default' },
        spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'y' } }], routingKey: 'samekey1', split: { weight: 10 } },
      },
      forkIndex: [1],
    });
  });

  it('gives nothing when no fork or no name is valid', () => {
    expect(sandboxValidParts({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'b' }, spec: { forks: [{}] } })).toBeUndefined();
    expect(sandboxValidParts({ apiVersion: 'meshfork.dev/v1alpha1', kind: 'Sandbox', metadata: { name: 'B!' }, spec: { forks: [{ forkOf: { kind: 'Deployment', name: 'y' } }] } })).toBeUndefined();
    expect(sandboxValidParts('x')).toBeUndefined();
  });
});

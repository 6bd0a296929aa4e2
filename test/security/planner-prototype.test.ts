/**
 * Prototype pollution through patches: yaml's toJS (like JSON.parse) turns a `__proto__` key into
 * an ordinary own key, and `object[key] = value` with it would set the object's prototype, or,
 * merged into `Object.prototype` itself, hand every later Sandbox in the process a split,
 * customizations and host privileges. Patches naming `__proto__`, `constructor` or `prototype`
 * anywhere are refused with the field path, and one Sandbox never changes another's output.
 * Inputs: test/security/inputs/planner-prototype/, read with the real loader; baseline: Bookinfo.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadInputs } from '../../src/manifests/load.js';
import { plan, type PlanResult } from '../../src/planner/plan.js';
import { applyCustomPatch } from '../../src/planner/patch.js';
import { FIXTURES } from '../support/cli.js';

const INPUTS = new URL('./inputs/planner-prototype/', import.meta.url).pathname;
const BOOKINFO = `${FIXTURES}bookinfo/bookinfo.yaml`;
const POLLUTED = ['split', 'customizations', 'hostNetwork', 'privileged', 'weight'] as const;

function load(file: string) {
  const input = loadInputs([BOOKINFO, INPUTS + file], 'default');
  expect(input.problems).toEqual([]);
  return input;
}

const protoMessage = (key: string) => `key "${key}" is refused: it names JavaScript object machinery (the prototype), not a Kubernetes field`;
const segmentMessage = (key: string, pointer: string) =>
  `segment "${key}" of pointer "${pointer}" is refused: it names JavaScript object machinery (the prototype), not a Kubernetes field`;

describe('patches cannot reach the object prototype', () => {
  let victimAlone: PlanResult;
  beforeAll(() => {
    // Planned before any hostile input has been read or planned in this process.
    const victim = load('victim.yaml');
    victimAlone = plan({ inventory: victim.inventory, sandboxes: victim.sandboxes });
    expect(victimAlone.problems).toEqual([]);
    expect(victimAlone.objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'Deployment default/reviews-v2-b-victim',
      'Service default/reviews-b-victim',
      'EnvoyFilter default/reviews-v2-b-victim-affinity',
      'VirtualService default/reviews-meshfork',
    ]);
  });

  afterEach(() => {
    // If a fix regresses, keep the pollution from leaking into the next test.
    const prototype = Object.prototype as Record<string, unknown>;
    for (const key of POLLUTED) delete prototype[key];
  });

  const expectUnpolluted = () => {
    for (const key of POLLUTED) expect(({} as Record<string, unknown>)[key], key).toBeUndefined();
  };

  it('refuses a merge patch with __proto__, naming the field path', () => {
    const evil = load('merge-proto.yaml');
    const result = plan({ inventory: evil.inventory, sandboxes: evil.sandboxes });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a-evil', path: 'spec.forks[0].customizations.patch.value.spec.template.__proto__', message: protoMessage('__proto__') },
    ]);
    expectUnpolluted();
  });

  it('refuses a strategic patch with __proto__ / constructor / prototype anywhere, each with its path', () => {
    const evil = load('strategic-proto.yaml');
    const result = plan({ inventory: evil.inventory, sandboxes: evil.sandboxes });
    expect(result.objects).toEqual([]);
    const base = 'spec.forks[0].customizations.patch.value';
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a-evil-smp', path: `${base}.spec.template.spec.__proto__`, message: protoMessage('__proto__') },
      { object: 'Sandbox default/a-evil-smp', path: `${base}.spec.template.spec.containers[0].securityContext.__proto__`, message: protoMessage('__proto__') },
      { object: 'Sandbox default/a-evil-smp', path: `${base}.spec.constructor`, message: protoMessage('constructor') },
    ]);
    expectUnpolluted();
  });

  it('refuses json patch operations whose pointers or values name the prototype', () => {
    const evil = load('json-proto.yaml');
    const result = plan({ inventory: evil.inventory, sandboxes: evil.sandboxes });
    const base = 'spec.forks[0].customizations.patch.value';
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a-evil-json', path: `${base}[0].path`, message: segmentMessage('__proto__', '/spec/template/__proto__/split') },
      { object: 'Sandbox default/a-evil-json', path: `${base}[1].path`, message: segmentMessage('constructor', '/spec/constructor/prototype/hostNetwork') },
      { object: 'Sandbox default/a-evil-json', path: `${base}[2].from`, message: segmentMessage('__proto__', '/spec/__proto__') },
      { object: 'Sandbox default/a-evil-json', path: `${base}[3].value.__proto__`, message: protoMessage('__proto__') },
    ]);
    expectUnpolluted();
  });

  it('refuses __proto__ in an env valueFrom, the other free-form value of a Sandbox', () => {
    const evil = load('env-valuefrom-proto.yaml');
    const result = plan({ inventory: evil.inventory, sandboxes: evil.sandboxes });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Sandbox default/a-evil-env', path: 'spec.forks[0].customizations.env[0].valueFrom.__proto__', message: protoMessage('__proto__') },
    ]);
    expectUnpolluted();
  });

  it('two Sandboxes in one process: the second plans exactly as it does alone', () => {
    for (const file of ['merge-proto.yaml', 'strategic-proto.yaml', 'json-proto.yaml', 'env-valuefrom-proto.yaml']) {
      const evil = load(file);
      const victim = load('victim.yaml');
      const evilResult = plan({ inventory: evil.inventory, sandboxes: evil.sandboxes });
      expect(plan({ inventory: victim.inventory, sandboxes: victim.sandboxes }), file).toEqual(victimAlone);
      expectUnpolluted();
      expect(evilResult.objects, file).toEqual([]);
    }
  });

  it('two Sandboxes in one plan() call: only the hostile one has problems, the other plans as alone', () => {
    const evil = load('merge-proto.yaml');
    const victim = load('victim.yaml');
    // a-evil sorts (and is planned) before b-victim.
    const result = plan({ inventory: victim.inventory, sandboxes: [victim.sandboxes[0]!, evil.sandboxes[0]!] });
    expect(result.objects).toEqual([]);
    expect(result.problems.map((p) => p.object)).toEqual(['Sandbox default/a-evil']);
    expect(result.sandboxes.find((s) => s.name === 'b-victim')).toEqual(victimAlone.sandboxes[0]);
    expect(result.notes).toEqual(victimAlone.notes);
    expectUnpolluted();
  });

  it('merges write own keys only, even when called directly with a __proto__ key', () => {
    const target = { spec: { template: {} as Record<string, unknown> } };
    const patch = JSON.parse('{"spec":{"template":{"__proto__":{"split":{"weight":100}}}}}') as unknown;
    for (const type of ['merge', 'strategic'] as const) {
      expect(() => applyCustomPatch(target, type, patch)).toThrow(protoMessage('__proto__'));
    }
    expect(Object.getPrototypeOf(target.spec.template)).toBe(Object.prototype);
    expectUnpolluted();
  });

  it('a __proto__ or prototype pod label in the inventory is refused (not a label key), and nothing is polluted', () => {
    const input = loadInputs([INPUTS + 'proto-pod-label.yaml'], 'default');
    expect(input.problems).toEqual([]);
    const result = plan({ inventory: input.inventory, sandboxes: input.sandboxes });
    expect(result.objects).toEqual([]);
    expect(result.problems).toEqual([
      { object: 'Deployment default/web', path: 'spec.template.metadata.labels["__proto__"]', message: 'is not a valid label or annotation key' },
      { object: 'Deployment default/web', path: 'spec.template.metadata.labels["prototype"]', message: 'is not a valid label or annotation key' },
    ]);
    expectUnpolluted();
  });
});

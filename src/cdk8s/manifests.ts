/**
 * Reads inventory and Sandbox/RouteGroup manifests from YAML files for a cdk8s app, with the CLI's
 * loader (src/manifests/load.ts): every document of every file, directories walked in name order,
 * namespaces defaulted like kubectl, Sandbox/RouteGroup objects validated, problems located by
 * file and line. (cdk8s' own Yaml.load reads one file or URL, runs a child process per call and
 * defaults nothing, so it is not used here.)
 */
import { InputError } from '../api/problem.js';
import type { RouteGroupObject, SandboxObject } from '../api/schema.js';
import type { Inventory } from '../planner/inventory.js';
import { loadInputs } from '../manifests/load.js';

export interface ReadManifestsOptions {
  /**
   * Namespace of objects that name none (like `meshfork synth -n`).
   * @default 'default'
   */
  readonly namespace?: string;
}

export interface Manifests {
  /** Baseline Deployments, Services, VirtualServices and DestinationRules; other kinds are dropped. */
  readonly inventory: Inventory;
  /** Valid Sandbox objects found in the files. */
  readonly sandboxes: SandboxObject[];
  /** Valid RouteGroup objects found in the files. */
  readonly routeGroups: RouteGroupObject[];
}

/**
 * Reads manifests the way `meshfork synth -f <paths...>` does. Relative paths resolve against the
 * working directory; apps that may run from elsewhere should pass absolute paths (e.g. from
 * `import.meta.url`). Throws an InputError listing every problem (`<file>:<line>: <object>: <field.path>: <message>`).
 */
export function readManifests(paths: string | readonly string[], options: ReadManifestsOptions = {}): Manifests {
  const loaded = loadInputs(typeof paths === 'string' ? [paths] : paths, options.namespace ?? 'default');
  if (loaded.problems.length > 0) throw new InputError(loaded.problems);
  return { inventory: loaded.inventory, sandboxes: loaded.sandboxes, routeGroups: loaded.routeGroups };
}

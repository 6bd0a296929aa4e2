/**
 * The controller's configuration from a ConfigMap (key `config.yaml`), validated with the same
 * schema as `meshfork synth --config`. A valid edit takes effect at once (every key is reconciled
 * again); an invalid one is reported and ignored: the last good configuration stays.
 */
import { parse as parseYaml } from 'yaml';
import { escapeText, type Problem } from '../api/problem.js';
import { resolveConfig } from '../api/config.js';
import type { PlanConfig } from '../planner/plan.js';

/** The ConfigMap data key holding the configuration. */
export const CONFIG_MAP_KEY = 'config.yaml';

/** Largest configuration text read (the same order as a --config file). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The configuration a ConfigMap's data holds, or the problems with it (pure). */
export function configFromData(data: Readonly<Record<string, string>> | undefined): { config: Partial<PlanConfig> } | { problems: Problem[] } {
  const text = data?.[CONFIG_MAP_KEY];
  if (text === undefined) return { problems: [{ path: `data["${CONFIG_MAP_KEY}"]`, message: 'is missing; put the configuration (as for meshfork synth --config) under this key' }] };
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) return { problems: [{ path: `data["${CONFIG_MAP_KEY}"]`, message: `is larger than ${MAX_CONFIG_BYTES} bytes` }] };
  let parsed: unknown;
  try {
    parsed = parseYaml(text, { maxAliasCount: 100 });
  } catch (error) {
    return { problems: [{ path: `data["${CONFIG_MAP_KEY}"]`, message: `is not valid YAML: ${escapeText(error instanceof Error ? error.message.split('\n')[0] ?? '' : String(error))}` }] };
  }
  const { config, problems } = resolveConfig(parsed ?? {}, {});
  if (config === undefined || problems.length > 0) return { problems: problems.map((p) => ({ ...p, path: p.path ? `data["${CONFIG_MAP_KEY}"].${p.path}` : `data["${CONFIG_MAP_KEY}"]` })) };
  return { config };
}

/**
 * Rule learned from proxyless gRPC: gRPC's xDS clients compile a header `safe_regex` as
 * `^` + regex + `$` without a group (grpc-js-xds build/src/matcher.js SafeRegexValueMatcher:
 * `new RE2(\`^${targetRegex}$\`, 'u')`), where Envoy full-matches the regex itself. With a
 * top-level alternation the two differ: `zzz|.*k=v` becomes `^zzz|.*k=v$`, which matches any
 * value ENDING in `k=v` under gRPC. So meshfork must never emit a header regex with a `|` at
 * group depth 0.
 *
 * Checked here over every regex meshfork emits: all golden outputs, the e2e fixtures' synth
 * output, and generated routing-key configurations; plus the semantic property the rule
 * protects (wrapping never changes what the regex full-matches). Needs no test binaries.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { RE2 } from 're2-wasm';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ROUTING_KEY_CONFIG,
  KEY_NAME_PATTERN,
  routingKeyMatchBlocks,
  type RoutingKeyConfig,
} from '../../src/planner/routing-key.js';
import { parseYamlDocs, synth } from './mesh.js';

/**
 * Whether an RE2 pattern has an alternation `|` outside every group and character class.
 * Handles escapes (`\|`), classes (`[|]`, `[]|]`, `[^]|]`, escapes inside classes) and groups of
 * any kind (`(?:`, `(?P<n>`). A pattern that does not parse (unbalanced) counts as unsafe.
 */
export function hasTopLevelAlternation(re: string): boolean {
  let depth = 0;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') {
      i++; // the escaped character is literal
    } else if (c === '[') {
      i++;
      if (re[i] === '^') i++;
      if (re[i] === ']') i++; // a leading ']' is literal
      while (i < re.length && re[i] !== ']') {
        if (re[i] === '\\') i++;
        else if (re[i] === '[' && re[i + 1] === ':') {
          const end = re.indexOf(':]', i + 2);
          if (end >= 0) i = end + 1;
        }
        i++;
      }
      if (i >= re.length) return true; // unterminated class
    } else if (c === '(') {
      depth++;
    } else if (c === ')') {
      depth--;
      if (depth < 0) return true;
    } else if (c === '|' && depth === 0) {
      return true;
    }
  }
  return depth !== 0;
}

type HeaderMaps = { headers?: Record<string, object>; withoutHeaders?: Record<string, object> };

/** Every `regex` string in one match block's `headers` and `withoutHeaders`. */
function blockRegexes(block: HeaderMaps): string[] {
  return [...Object.values(block.headers ?? {}), ...Object.values(block.withoutHeaders ?? {})].flatMap((m) =>
    'regex' in m && typeof m.regex === 'string' ? [m.regex] : [],
  );
}

/** Every `regex` string under VirtualService header matches in the given objects. */
function headerRegexes(objects: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const o of objects) {
    const obj = o as { kind?: string; spec?: { http?: Array<{ match?: HeaderMaps[] }> } };
    if (obj?.kind !== 'VirtualService') continue;
    for (const route of obj.spec?.http ?? []) {
      for (const block of route.match ?? []) out.push(...blockRegexes(block));
    }
  }
  return out;
}

const GOLDEN_DIR = fileURLToPath(new URL('../golden/', import.meta.url));

describe('header regexes: no top-level alternation (gRPC wraps them as ^re$)', () => {
  it('the depth-0 alternation detector', () => {
    for (const unsafe of ['a|b', '^(.*,)?a$|b', 'zzz|.*k=v', '(a)|(b)', '[a]|b', '\\(|b', 'a)|(b', '(a', '[a']) {
      expect(hasTopLevelAlternation(unsafe), unsafe).toBe(true);
    }
    for (const safe of ['(a|b)', '^(?:a|b)$', '[|]', '[]|]', '[^]|]', '\\|', 'a\\|b', '[[:alpha:]|]x', '^(.*,)?[ \\t]*k[ \\t]*=[ \\t]*v[ \\t]*(;[^,]*)?(,.*)?$']) {
      expect(hasTopLevelAlternation(safe), safe).toBe(false);
    }
  });

  it('every regex in every golden output', () => {
    const files = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith('.golden.yaml')).sort();
    expect(files.length).toBeGreaterThanOrEqual(5);
    let count = 0;
    for (const f of files) {
      const regexes = headerRegexes(parseYamlDocs(readFileSync(GOLDEN_DIR + f, 'utf8'), f));
      for (const re of regexes) expect(hasTopLevelAlternation(re), `${f}: ${re}`).toBe(false);
      count += regexes.length;
    }
    expect(count).toBeGreaterThan(20);
  });

  it('every regex in the e2e fixtures\' synth output', () => {
    for (const sandboxes of [['alpha', 'beta', 'gamma'], ['split']]) {
      const regexes = headerRegexes(synth(sandboxes));
      expect(regexes.length).toBeGreaterThan(0);
      for (const re of regexes) expect(hasTopLevelAlternation(re), re).toBe(false);
    }
  });

  it('every regex for generated routing-key configurations, and ^re$ full-matches exactly what re does', () => {
    const keyName = fc.stringMatching(new RegExp(KEY_NAME_PATTERN));
    const routingKey = fc.stringMatching(/^[a-z0-9]{4,32}$/);
    const config: fc.Arbitrary<RoutingKeyConfig> = fc.record({
      keyName,
      tracestate: fc.boolean(),
      headers: fc.constant([]),
      legacyHeaders: fc.boolean(),
    });
    // Header values built from the pieces the regexes care about.
    const piece = fc.constantFrom(',', ';', '=', ' ', '\t', 'x', 'p=v', 'foo=1');
    fc.assert(
      fc.property(config, fc.array(routingKey, { minLength: 1, maxLength: 2 }), fc.array(piece, { maxLength: 8 }), (cfg, keys, pieces) => {
        const { keyed, untagged } = routingKeyMatchBlocks(cfg, keys);
        for (const regex of [...keyed, ...untagged].flatMap(blockRegexes)) {
          expect(hasTopLevelAlternation(regex), regex).toBe(false);
          // Envoy: RE2 FullMatch(re). gRPC: RE2 search of ^re$. Same answer on values that
          // contain the member, the member with junk around it, and junk alone.
          const envoy = new RE2(`^(?:${regex})$`, 'u');
          const grpc = new RE2(`^${regex}$`, 'u');
          try {
            const member = `${cfg.keyName}=${keys[0]}`;
            for (const value of [member, pieces.join('') + member, member + pieces.join(''), pieces.join(''), `${pieces.join('')},${member}`, `${member},${pieces.join('')}`]) {
              expect(grpc.test(value), `${regex} on ${JSON.stringify(value)}`).toBe(envoy.test(value));
            }
          } finally {
            for (const re of [envoy, grpc]) (re as unknown as { wrapper?: { delete?: () => void } }).wrapper?.delete?.();
          }
        }
      }),
      { numRuns: 60 },
    );
    expect(routingKeyMatchBlocks(DEFAULT_ROUTING_KEY_CONFIG, ['abcd']).keyed.length).toBeGreaterThan(0);
  });
});

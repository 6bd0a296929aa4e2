/**
 * YAML output that every reader decodes to the same data. kubectl, Argo CD and Flux decode YAML
 * with sigs.k8s.io/yaml, which runs go-yaml v2: YAML 1.1 plain scalars, so an unquoted `on`, `y`
 * or `no` is a boolean, `~` a null, `010` octal, `1_000` and `1:20` (base 60) numbers, and
 * numbers are read with Go's strconv.ParseInt/ParseFloat in base 0 (so `0o7`, `0x1F`, `0b101`
 * too). The `yaml` library quotes by YAML 1.2's core schema, and with `version: '1.1'` still
 * writes `0o7` plain; so every string that any of these readers could take for something else is
 * written double-quoted:
 *  - the YAML 1.1 bool, null, float-special and merge/value forms
 *    (https://yaml.org/type/bool.html, null.html, float.html, merge.html, value.html), any case;
 *  - anything that starts like a number (an optional sign, then a digit, or a `.` and a digit)
 *    and holds only characters of numbers in some base or notation (digits, a-f, x, o, `_`,
 *    `.`, `:`, `+`, `-`): ints in every base, floats, base 60 (quoting more is harmless);
 *  - anything that starts like a YAML 1.1 timestamp (`2001-12-14`, https://yaml.org/type/timestamp.html).
 * Kubernetes quantities such as `200m` or `64Mi` stay plain: no reader takes them for numbers.
 * Map keys are quoted by the same rule (sigs.k8s.io/yaml turns a boolean key into "true").
 */
import { Document, isMap, isPair, isScalar, isSeq } from 'yaml';

const YAML11_WORDS = /^(y|yes|n|no|true|false|on|off|null|~|<<|=|[-+]?\.inf|\.nan)$/i;
const NUMBER_LIKE = /^[-+]?\.?[0-9][0-9a-fA-FxXoO_.:+-]*$/;
const TIMESTAMP_LIKE = /^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt \t]|$)/;

/** The first characters of every string the three patterns above match. */
const AMBIGUOUS_START = /^[yntfo~<=+.0-9-]/i;

/** Whether a plain (unquoted) `value` could be read as something other than this string. */
export function ambiguousInYaml11(value: string): boolean {
  return AMBIGUOUS_START.test(value) && (YAML11_WORDS.test(value) || NUMBER_LIKE.test(value) || TIMESTAMP_LIKE.test(value));
}

/** One object as YAML: no line folding, no anchors, so equal objects give equal bytes. */
export function toYaml(object: unknown): string {
  const doc = new Document(object, { aliasDuplicateObjects: false });
  // Every scalar, map keys included: a walk over the collections the document was built from
  // (maps of pairs, sequences; no aliases), cheaper than yaml's general visit().
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isScalar(node)) {
      if (typeof node.value === 'string' && ambiguousInYaml11(node.value)) node.type = 'QUOTE_DOUBLE';
    } else if (isMap(node) || isSeq(node)) {
      for (const item of node.items) {
        if (isPair(item)) stack.push(item.key, item.value);
        else stack.push(item);
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/** A multi-document YAML stream. */
export function toYamlDocuments(objects: readonly unknown[]): string {
  return objects.map((o) => `---\n${toYaml(o)}`).join('');
}

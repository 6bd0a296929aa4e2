import { stringify } from 'yaml';

/** One object as YAML: no line folding, no anchors, so equal objects give equal bytes. */
export function toYaml(object: unknown): string {
  return stringify(object, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** A multi-document YAML stream. */
export function toYamlDocuments(objects: readonly unknown[]): string {
  return objects.map((o) => `---\n${toYaml(o)}`).join('');
}

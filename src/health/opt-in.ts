import type YAML from 'yaml';
import { updateConfigFile } from '../root/config.js';

const listAt = (doc: YAML.Document, at: string[]): string[] => ((doc.getIn(at) as { toJSON(): unknown } | undefined)?.toJSON() as string[] | undefined) ?? [];

/**
 * Turn opt-in component `id` on in a config document: into health.opt_in, out of health.disabled.
 * For fixers that write other settings in the same edit (one validated write).
 */
export function markEnabled(doc: YAML.Document, id: string): void {
  doc.setIn(['health', 'opt_in'], [...new Set([...listAt(doc, ['health', 'opt_in']), id])]);
  const disabled = listAt(doc, ['health', 'disabled']).filter((d) => d !== id);
  if (disabled.length) doc.setIn(['health', 'disabled'], disabled);
  else if (doc.hasIn(['health', 'disabled'])) doc.deleteIn(['health', 'disabled']);
}

/** Turn opt-in component `id` off in a config document: out of health.opt_in, into health.disabled. */
export function markDisabled(doc: YAML.Document, id: string): void {
  if (doc.hasIn(['health', 'opt_in'])) doc.setIn(['health', 'opt_in'], listAt(doc, ['health', 'opt_in']).filter((o) => o !== id));
  doc.setIn(['health', 'disabled'], [...new Set([...listAt(doc, ['health', 'disabled']), id])]);
}

/** Turn opt-in component `id` on in wb-backup.yaml (comments and order kept). */
export function enableInConfig(root: string, id: string): void {
  updateConfigFile(root, (doc) => markEnabled(doc, id));
}

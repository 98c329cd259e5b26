/**
 * A mirror path back to the table it belongs to: the one parser push, pull and status use. Paths
 * hold segments (names.ts), never names: a segment is mapped back to a name by encoding the names
 * the caller knows (nameOfSegment), never by decoding the path.
 */
import { encodeSegment, isSafeSegment, parseMirrorPath } from '../root/names.js';

/** The table a mirror file belongs to, as segments; `kind` says which file of it. */
export interface MirrorTablePath {
  db: string;
  table: string;
  /** jsonl: `<db>/<table>.jsonl`; document: `<db>/<table>/<key>.md`; folder: another file of a document folder (`.gitattributes`) */
  kind: 'jsonl' | 'document' | 'folder';
  /** the file name inside a document folder */
  file?: string;
}

/**
 * The table of a mirror path (see names.ts parseMirrorPath), or null for the files that belong to
 * no table (`<db>/schema.sql`, manifest.json, README.md) and for paths not made of safe segments.
 */
export function tableOfMirrorPath(p: string): MirrorTablePath | null {
  const parsed = parseMirrorPath(p);
  if (parsed) return parsed;
  const parts = p.split('/');
  if (parts.length === 3 && parts[2] !== '' && isSafeSegment(parts[0]!) && isSafeSegment(parts[1]!)) return { db: parts[0]!, table: parts[1]!, kind: 'folder', file: parts[2]! };
  return null;
}

/** `<db>/<table>`: a table's label in push results (the segments, no extension). */
export function tableLabel(t: Pick<MirrorTablePath, 'db' | 'table'>): string {
  return `${t.db}/${t.table}`;
}

/** Both places a table can have in the mirror, from its segments: its JSONL file and its document folder (no trailing slash). */
export function tablePathsOf(t: Pick<MirrorTablePath, 'db' | 'table'>): { jsonl: string; folder: string } {
  return { jsonl: `${t.db}/${t.table}.jsonl`, folder: `${t.db}/${t.table}` };
}

/** The name among `names` whose segment is `segment`, or undefined. */
export function nameOfSegment(segment: string, names: Iterable<string>): string | undefined {
  for (const name of names) if (encodeSegment(name) === segment) return name;
  return undefined;
}

/**
 * Names taken from data -> path segments and ids. Pure: no file system access.
 *
 * Every name wb-backup did not choose itself (a database file under db/, a logical database name,
 * a table name, a document key) goes through this module before it becomes part of a path, and
 * every reader of a stored path checks it against the function here instead of joining it.
 *
 * ## Path segments (`encodeSegment`)
 * One escape, the "reversible case-safe" scheme the document file names have used since they
 * exist (docs/github-sync.md), now used for every segment:
 * - the UTF-8 bytes of the text are kept when they are `a-z 0-9 _ -`; every other byte is written
 *   `%XX` with uppercase hex. So `A-Z` (case-insensitive file systems would merge `A` and `a`),
 *   `.` (a suffix such as `.jsonl` can then never make two names one path, and `.`, `..`, trailing
 *   dots and hidden files cannot occur), `/`, `\`, spaces, control characters and all non-ASCII
 *   are escaped. Lone UTF-16 surrogates are written as their 3-byte (WTF-8) form, which no valid
 *   text produces, so every JavaScript string has its own segment.
 * - the empty text is `%` (never produced otherwise: `%` itself is `%25`);
 * - text whose result reads as an integer (`-?[0-9]+`) or as a Windows device name (CON, PRN,
 *   AUX, NUL, COM0-9, LPT0-9: reserved with any extension) gets its first character escaped.
 * - a result longer than MAX_SEGMENT characters is cut (never inside a `%XX`) to leave room for
 *   `~` and the first 16 hex digits of the SHA-256 of the text's bytes. `~` is never produced by
 *   the escape (it is `%7E`), so a cut segment can never equal an uncut one. A cut segment cannot be
 *   decoded: the original is kept where it is recorded (a manifest), and readers compare.
 * Segments are therefore ASCII (NFC/NFD normalization cannot change them), every letter in them is
 * lowercase except the hex digits after `%`, which are always uppercase: two different texts never
 * give segments that are equal, or equal once case-folded, on any file system.
 *
 * ## Logical names (`logicalNameForPath`, `isSafeLogicalName`)
 * A logical name is the id of a database (in manifests, tool arguments, the configuration). It is
 * printable ASCII and case-sensitive: `[A-Za-z0-9]`, then `[A-Za-z0-9_.-]`, where `%XX`
 * (uppercase hex) escapes a byte and a final `~` plus 16 lowercase hex digits marks a name cut to
 * MAX_LOGICAL_NAME. A discovered database's name is its path under db/ without `.db`, each folder
 * and the file name escaped as above but keeping `A-Z` and a non-leading `_`/`-`, joined by `.`
 * (a literal `.` in a file name is `%2E`): `Zeta.db` -> `Zeta`, `sub/beta.db` -> `sub.beta`,
 * `émile.db` -> `%C3%A9mile`. A logical name becomes a path only through `encodeSegment`.
 */
import { createHash } from 'node:crypto';

/** Longest segment encodeSegment returns (ASCII, so also bytes); leaves room for `.jsonl` and the like in a 255-byte file name. */
export const MAX_SEGMENT = 120;
/** Longest logical name (ASCII characters). */
export const MAX_LOGICAL_NAME = 120;
const HASH_CHARS = 16;

const SEGMENT_SAFE = /^[a-z0-9_-]$/;
const ID_SAFE = /^[A-Za-z0-9_-]$/;
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;
const INTEGER_TEXT = /^-?[0-9]+$/;
const CUT_SUFFIX = /~[0-9a-f]{16}$/;

const pct = (byte: number) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;

/** UTF-8 bytes of `text`, lone surrogates as their 3-byte form (WTF-8) instead of U+FFFD, so no two strings share bytes. */
export function textBytes(text: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    let cp = text.charCodeAt(i);
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < text.length) {
      const lo = text.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        i++;
      }
    }
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return Buffer.from(out);
}

/** Inverse of textBytes; null when the bytes are not a shortest-form encoding it would write. */
function bytesText(bytes: Uint8Array): string | null {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > bytes.length) return null;
    let cp = n === 1 ? b : b & (0xff >> (n + 1));
    for (let k = 1; k < n; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 63);
    }
    out += String.fromCodePoint(cp);
    i += n;
  }
  // Overlong forms, values past U+10FFFF and a surrogate pair written as two 3-byte halves are
  // all refused here: they are not what textBytes writes for the text they decode to.
  return textBytes(out).equals(Buffer.from(bytes)) ? out : null;
}

function escapeWith(text: string, safe: RegExp): string {
  let out = '';
  for (const byte of textBytes(text)) {
    const ch = String.fromCharCode(byte);
    out += safe.test(ch) ? ch : pct(byte);
  }
  return out;
}

/** `%XX` and safe characters back to text; null when malformed (lowercase hex, a stray `%`, an unsafe character). */
function unescapeWith(escaped: string, safe: RegExp): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; ) {
    if (escaped[i] === '%') {
      const hex = escaped.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      if (!safe.test(escaped[i]!)) return null;
      bytes.push(escaped.charCodeAt(i++));
    }
  }
  return bytesText(Buffer.from(bytes));
}

function hashSuffix(text: string): string {
  return `~${createHash('sha256').update(textBytes(text)).digest('hex').slice(0, HASH_CHARS)}`;
}

/** `escaped` cut to `max` characters with the hash of `text`, never inside a `%XX`. */
function cut(escaped: string, text: string, max: number): string {
  let end = max - 1 - HASH_CHARS;
  const pctAt = escaped.lastIndexOf('%', end - 1);
  if (pctAt >= 0 && pctAt + 3 > end) end = pctAt;
  return escaped.slice(0, end) + hashSuffix(text);
}

/**
 * The reversible escape of `text` as a path segment, without the length bound (document keys use
 * it with their own limit, because a key lives only in its file name). See the module comment.
 */
export function escapeName(text: string): string {
  if (text === '') return '%';
  let out = escapeWith(text, SEGMENT_SAFE);
  if (INTEGER_TEXT.test(out) || WINDOWS_DEVICE.test(out)) out = pct(out.charCodeAt(0)) + out.slice(1);
  return out;
}

/** The text escapeName wrote `escaped` for; null when escapeName would not write exactly `escaped` (so one text, one name). */
export function unescapeName(escaped: string): string | null {
  if (escaped === '%') return '';
  if (escaped === '') return null;
  const text = unescapeWith(escaped, SEGMENT_SAFE);
  return text !== null && escapeName(text) === escaped ? text : null;
}

/**
 * `text` (any string: a table name, a logical name, a file name) as one path segment: safe on
 * Linux, macOS and Windows, at most MAX_SEGMENT ASCII characters, distinct from every other
 * text's segment even case-folded. Ordinary lowercase names (`notes`, `task_metadata`) are kept.
 */
export function encodeSegment(text: string): string {
  const escaped = escapeName(text);
  return escaped.length > MAX_SEGMENT ? cut(escaped, text, MAX_SEGMENT) : escaped;
}

/**
 * The text a segment stands for: `{ text }`; `{ cut: true }` for a segment shortened with a hash
 * (compare `encodeSegment(candidate) === segment` against the recorded name instead); null for a
 * name encodeSegment never writes.
 */
export function decodeSegment(segment: string): { text: string } | { cut: true } | null {
  if (segment.length > MAX_SEGMENT) return null;
  // A cut ends 0-2 characters short of MAX_SEGMENT (it never splits a %XX).
  if (segment.length >= MAX_SEGMENT - 2 && CUT_SUFFIX.test(segment) && /^(?:[a-z0-9_-]|%[0-9A-F]{2})*$/.test(segment.slice(0, -1 - HASH_CHARS))) return { cut: true };
  const text = unescapeName(segment);
  return text === null || encodeSegment(text) !== segment ? null : { text };
}

/**
 * Whether `segment` obeys the safety rules on its own: non-empty, at most MAX_SEGMENT characters of
 * `a-z 0-9 _ - % ~`, no `.`/`..`, no separator, control character, trailing dot or space, not a
 * Windows device name. (Every encodeSegment result passes; tests check that.)
 */
export function isSafeSegment(segment: string): boolean {
  return segment.length <= MAX_SEGMENT && /^(?:%|(?:[a-z0-9_-]|%[0-9A-F]{2})+(?:~[0-9a-f]{16})?)$/.test(segment) && !WINDOWS_DEVICE.test(segment);
}

// ---------------------------------------------------------------------------------------------
// Logical names (database ids)

/**
 * The logical name of a database found at `components` under db/ (folders, then the file name
 * without `.db`), or `{ reason }` when it has none (an empty component, e.g. a file named `.db`).
 * Deterministic and injective: two different paths never get one name.
 */
export function logicalNameForPath(components: readonly string[]): { name: string } | { reason: string } {
  if (components.length === 0 || components.some((c) => c === '')) return { reason: 'the file is named just ".db", so it has no name' };
  const escaped = components
    .map((c) => {
      const e = escapeWith(c, ID_SAFE);
      // A leading "_" or "-" is escaped: a name must start with a letter, a digit or "%" (never read as an option).
      return /^[_-]/.test(e) ? pct(e.charCodeAt(0)) + e.slice(1) : e;
    })
    .join('.');
  return { name: escaped.length > MAX_LOGICAL_NAME ? cut(escaped, components.join('/'), MAX_LOGICAL_NAME) : escaped };
}

/** The path components a discovered logical name stands for (the inverse of logicalNameForPath); null for a cut or foreign name. */
export function pathForLogicalName(name: string): string[] | null {
  if (!isSafeLogicalName(name) || CUT_SUFFIX.test(name)) return null;
  const parts = name.split('.').map((p) => (p === '' ? null : unescapeWith(p, ID_SAFE)));
  if (parts.some((p) => p === null)) return null;
  const components = parts as string[];
  // Never a component a path could climb with, whatever the escapes spell.
  if (components.some((c) => c === '.' || c === '..' || /[/\\\0]/.test(c))) return null;
  const back = logicalNameForPath(components);
  return 'name' in back && back.name === name ? components : null;
}

/**
 * Whether `name` is a well-formed logical name: 1..MAX_LOGICAL_NAME characters, starting with a
 * letter, a digit or `%XX`, then letters, digits, `_ . -` and `%XX` escapes (uppercase hex), with an
 * optional final `~` + 16 hex digits. So it is never `.`/`..`, holds no separator, space or control
 * character, and cannot be read as an option. Restore and import check manifest names with it.
 */
export function isSafeLogicalName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_LOGICAL_NAME) return false;
  return /^(?:[A-Za-z0-9]|%[0-9A-F]{2})(?:[A-Za-z0-9_.-]|%[0-9A-F]{2})*(?:~[0-9a-f]{16})?$/.test(name);
}

/** Why `name` is not a safe logical name, for error messages; null when it is. */
export function logicalNameProblem(name: unknown): string | null {
  if (isSafeLogicalName(name)) return null;
  if (typeof name !== 'string') return 'a database name must be text';
  if (name.length === 0) return 'a database name cannot be empty';
  if (name.length > MAX_LOGICAL_NAME) return `a database name is at most ${MAX_LOGICAL_NAME} characters`;
  return `${JSON.stringify(name.length > 60 ? `${name.slice(0, 57)}…` : name)} is not a database name: names use letters, digits, "_", "." and "-" (other bytes as %XX) and start with a letter or a digit`;
}

// ---------------------------------------------------------------------------------------------
// Where each name goes: every writer uses these, every reader compares with them.

/** `databases/<segment of the name>/<file>` inside a snapshot archive; the file keeps a short alphanumeric extension of the live file (`.db`, `.sqlite`). */
export function archiveEntry(name: string, liveBaseName: string): string {
  const dot = liveBaseName.lastIndexOf('.');
  const ext = dot > 0 ? liveBaseName.slice(dot) : '';
  const keepExt = /^\.[A-Za-z0-9]{1,16}$/.test(ext);
  // One file per folder, so the extension's case cannot merge two files.
  return `databases/${encodeSegment(name)}/${encodeSegment(keepExt ? liveBaseName.slice(0, dot) : liveBaseName)}${keepExt ? ext : ''}`;
}

/** The mirror folder of a database: `<segment>`. */
export function mirrorDbDir(db: string): string {
  return encodeSegment(db);
}

/** `<db segment>/schema.sql` */
export function mirrorSchemaFile(db: string): string {
  return `${mirrorDbDir(db)}/schema.sql`;
}

/** `<db segment>/<table segment>.jsonl` */
export function mirrorTableFile(db: string, table: string): string {
  return `${mirrorDbDir(db)}/${encodeSegment(table)}.jsonl`;
}

/** `<db segment>/<table segment>/`: where a table's documents live. */
export function mirrorDocumentDir(db: string, table: string): string {
  return `${mirrorDbDir(db)}/${encodeSegment(table)}/`;
}

/**
 * A mirror path back to its database and table segments: `<db>/<t>.jsonl` -> jsonl,
 * `<db>/<t>/<file>.md` -> document; null for anything else (schema.sql, manifest.json, a path
 * that is not made of safe segments). The caller maps segments to names through the manifest.
 */
export function parseMirrorPath(p: string): { db: string; table: string; kind: 'jsonl' } | { db: string; table: string; kind: 'document'; file: string } | null {
  const parts = p.split('/');
  if (parts.length === 2 && parts[1]!.endsWith('.jsonl')) {
    const table = parts[1]!.slice(0, -'.jsonl'.length);
    return isSafeSegment(parts[0]!) && isSafeSegment(table) ? { db: parts[0]!, table, kind: 'jsonl' } : null;
  }
  if (parts.length === 3 && parts[2]!.endsWith('.md')) {
    return isSafeSegment(parts[0]!) && isSafeSegment(parts[1]!) ? { db: parts[0]!, table: parts[1]!, kind: 'document', file: parts[2]! } : null;
  }
  return null;
}

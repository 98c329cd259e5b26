/**
 * A table mirrored as one Markdown file per row (`<db>/<table>/<key>.md`), pure:
 *
 *   ---
 *   title: "Hello"        <- every other column, in table order, as YAML (strings always quoted)
 *   score: 1.0
 *   ---
 *   the body column, byte for byte
 *
 * The key lives in the file name only (one source of truth, so a file cannot contradict itself).
 * The body column is the file body when it is text; otherwise (NULL, a number, a blob) it is written
 * in the front matter in its table position and the file body is empty: `content: null` is a NULL
 * body, an empty file body is ''. Values use the JSONL conventions of rows.ts ({$base64}, {$int}).
 * gray-matter is not used: its YAML engine types dates and its cache keys on the text.
 */
import { Document, LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type Scalar, type ScalarTag, type YAMLMap } from 'yaml';
import { escapeName, mirrorDocumentDir, unescapeName } from '../root/names.js';
import { ROWID_FIELD, TextBytes, toJson, type SqlValue } from './rows.js';

export interface DocumentShape {
  columns: readonly string[];
  /** the single primary-key column: the file name */
  key: string;
  /** the column that is the Markdown body */
  body: string;
}

/** A document that cannot be read; `line` is 1-based in the file, null when the file name is the problem. */
export class DocumentError extends Error {
  constructor(
    readonly path: string,
    readonly line: number | null,
    reason: string,
  ) {
    super(line === null ? `${path}: ${reason}` : `${path} line ${line}: ${reason}`);
    this.name = 'DocumentError';
  }
}

/** The shape of a table as documents, or why it cannot be one (then it stays JSONL). */
export function documentShape(table: { name: string; columns: readonly string[]; pk: readonly string[] }, body: string): DocumentShape | { reason: string } {
  if (!table.columns.includes(body)) return { reason: `the table ${table.name} has no column ${body}` };
  if (table.pk.length !== 1) {
    return { reason: table.pk.length ? `documents need a single-column primary key; ${table.name} has (${table.pk.join(', ')})` : `documents need a primary key (the file name); ${table.name} has none` };
  }
  if (table.pk[0] === body) return { reason: `the body column ${body} is the primary key` };
  return { columns: table.columns, key: table.pk[0]!, body };
}

/**
 * Where a table's documents live (`<db segment>/<table segment>/`, see names.ts). Readers check the
 * manifest against it: a hand-edited manifest must not point outside the mirror.
 */
export function documentDir(db: string, table: string): string {
  return mirrorDocumentDir(db, table);
}

// ---------------------------------------------------------------------------------------------
// File names

/** Longer encoded keys are refused: file names are limited to 255 bytes and paths add to that. */
export const MAX_KEY_NAME = 200;
// Key names are the path-segment escape of names.ts (escapeName), without its cut: a key lives
// only in its file name, so a key too long for one is refused rather than shortened.
const INTEGER_NAME = /^-?[0-9]+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const encodeText = escapeName;

/** `<key>.md` for a key value; integers are their decimal text, text is percent-encoded. */
export function fileNameForKey(key: SqlValue): { name: string } | { reason: string } {
  let stem: string;
  if (typeof key === 'bigint') stem = key.toString();
  else if (typeof key === 'number' && Number.isSafeInteger(key)) stem = String(key);
  else if (typeof key === 'string') stem = encodeText(key);
  else if (key instanceof TextBytes) return { reason: 'a text key that is not valid UTF-8 cannot be a file name (only integers and UTF-8 text)' };
  else return { reason: `a ${key === null ? 'NULL' : Buffer.isBuffer(key) ? 'blob' : 'real'} key cannot be a file name (only integers and text)` };
  if (stem.length > MAX_KEY_NAME) return { reason: `the key is ${stem.length} characters once encoded, over the limit of ${MAX_KEY_NAME} for a file name` };
  return { name: `${stem}.md` };
}

/** The key a file name stands for; only names this format writes are accepted (so one key, one file). */
export function keyFromFileName(name: string): SqlValue {
  if (!name.endsWith('.md')) throw new Error(`${name} is not a .md file`);
  const stem = name.slice(0, -3);
  if (INTEGER_NAME.test(stem)) {
    const n = BigInt(stem);
    if (n.toString() !== stem || n < INT64_MIN || n > INT64_MAX) throw new Error(`the file name ${name} is not an integer key as this format writes it (expected ${n.toString()}.md within SQLite's integer range)`);
    return n;
  }
  const text = unescapeName(stem);
  if (text === null) {
    const meant = lenientDecode(stem);
    throw new Error(`the file name ${name} is not one this format writes: characters other than a-z 0-9 _ - are written as %XX with uppercase hex` + (meant === null ? '' : ` (for the key ${JSON.stringify(meant)}: ${encodeText(meant)}.md)`));
  }
  return text;
}

/** What a hand-made name probably meant, for the error message only. */
function lenientDecode(stem: string): string | null {
  try {
    return decodeURIComponent(stem);
  } catch {
    return null;
  }
}

/** UTF-8 text, or null when the bytes are not valid UTF-8 (a silent U+FFFD would change the data). */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A REAL, so YAML writes 1.0 (an integer is a bigint and writes 1). */
class Real {
  constructor(readonly value: number) {}
}

function realText(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? '.nan' : n < 0 ? '-.inf' : '.inf';
  const s = Object.is(n, -0) ? '-0' : String(n); // shortest text that reads back as the same double
  return /[.e]/.test(s) ? s : `${s}.0`;
}

const REAL_TAG: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true, // no explicit !!float in the output
  identify: (v) => v instanceof Real,
  resolve: (s) => Number(s),
  stringify: (node) => realText((node as Scalar<Real>).value.value),
};

/** Every option spelled out: the same row must give the same bytes whatever the library's defaults become. */
const YAML_OUT = {
  version: '1.2',
  defaultStringType: 'QUOTE_DOUBLE', // "007", "true", "2026-01-01", "null" stay text for any YAML reader
  defaultKeyType: 'PLAIN', // column names unquoted unless they need it
  doubleQuotedAsJSON: true, // \n, \t, \uXXXX escapes only
  doubleQuotedMinMultiLineLength: Number.MAX_SAFE_INTEGER, // one line per column
  lineWidth: 0,
  minContentWidth: 0,
  indent: 2,
  flowCollectionPadding: true,
  nullStr: 'null',
} as const;

function yamlValue(value: SqlValue): unknown {
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number') return new Real(value);
  const json = toJson(value); // bigint -> number | {$int}; Buffer -> {$base64}; TextBytes -> {$text_base64}
  if (typeof json === 'number') return BigInt(json);
  return new Map(Object.entries(json as Record<string, string>));
}

function frontMatter(entries: Array<[string, SqlValue]>): string {
  if (!entries.length) return '';
  // A Map keeps column order (object keys like "1" would be moved first).
  const doc = new Document(new Map(entries.map(([c, v]) => [c, yamlValue(v)])), { customTags: [REAL_TAG], version: '1.2' });
  for (const pair of (doc.contents as YAMLMap).items) if (isMap(pair.value)) pair.value.flow = true; // {$base64: "..."} on its column's line
  return doc.toString(YAML_OUT);
}

/**
 * One row as its file: name and text. Values are as better-sqlite3 returns them with safe integers
 * (bigint = INTEGER, number = REAL). `rowid`: a rowid that is not a column (a table keyed by text),
 * written first in the front matter under its field (ROWID_FIELD).
 */
export function renderDocument(shape: DocumentShape, row: readonly SqlValue[], rowid?: { field: string; value: SqlValue }): { name: string; text: string } | { reason: string } {
  const value = (c: string) => row[shape.columns.indexOf(c)] ?? null;
  const file = fileNameForKey(value(shape.key));
  if ('reason' in file) return file;
  const body = value(shape.body);
  const bodyIsText = typeof body === 'string';
  const entries = shape.columns.filter((c) => c !== shape.key && !(c === shape.body && bodyIsText)).map((c): [string, SqlValue] => [c, value(c)]);
  if (rowid) entries.unshift([rowid.field, rowid.value]);
  return { name: file.name, text: `---\n${frontMatter(entries)}---\n${bodyIsText ? body : ''}` };
}

// ---------------------------------------------------------------------------------------------
// Reading

interface Split {
  yaml: string;
  /** the file line of the front matter's first line */
  firstLine: number;
  body: string;
}

/** Front matter between the first two `---` lines; the body is everything after, untouched. */
function splitFrontMatter(text: string, file: string): Split {
  const open = /^---\r?\n/.exec(text);
  if (!open) throw new DocumentError(file, 1, 'a document starts with a `---` line, then the front matter');
  let pos = open[0].length;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    const lineText = text.slice(pos, nl < 0 ? text.length : nl);
    if (lineText === '---' || lineText === '---\r') return { yaml: text.slice(open[0].length, pos), firstLine: 2, body: nl < 0 ? '' : text.slice(nl + 1) };
    if (nl < 0) break;
    pos = nl + 1;
  }
  throw new DocumentError(file, 1, 'the front matter opened here is never closed by a `---` line');
}

function checkInt(n: bigint, where: () => DocumentError): bigint {
  if (n < INT64_MIN || n > INT64_MAX) throw where();
  return n;
}

function scalarToSql(node: Scalar, err: (reason: string) => DocumentError): SqlValue {
  const v = node.value;
  if (v === null || typeof v === 'string') return v;
  if (typeof v === 'bigint') return checkInt(v, () => err(`${v} is outside SQLite's integer range`));
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw err('NaN cannot be stored in SQLite');
    return v;
  }
  if (v instanceof Uint8Array) return Buffer.from(v); // YAML's own !!binary, written by hand
  if (typeof v === 'boolean') throw err(`${v} is a YAML boolean, which SQLite does not have: write 1 or 0, or "${v}" (quoted) for text`);
  throw err(`${String(v)} is not a value this format writes`);
}

function mapToSql(node: YAMLMap, err: (reason: string) => DocumentError): SqlValue {
  const only = node.items.length === 1 ? node.items[0]! : null;
  const key = only && isScalar(only.key) ? only.key.value : null;
  const val = only && isScalar(only.value) ? only.value.value : null;
  if (key === '$base64' && typeof val === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(val)) {
    const bytes = Buffer.from(val, 'base64');
    if (bytes.toString('base64') === val) return bytes;
  }
  if (key === '$int' && typeof val === 'string' && /^-?[0-9]+$/.test(val)) return checkInt(BigInt(val), () => err(`${val} is outside SQLite's integer range`));
  if (key === '$text_base64' && typeof val === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(val)) {
    // As for $base64: Buffer.from skips what it cannot use ("A" would be no bytes at all).
    const bytes = Buffer.from(val, 'base64');
    if (bytes.toString('base64') === val) return new TextBytes(bytes);
  }
  throw err('a mapping must be { $base64: "..." } (a blob), { $int: "..." } (a big integer) or { $text_base64: "..." } (text that is not valid UTF-8)');
}

function nodeToSql(node: unknown, err: (reason: string) => DocumentError): SqlValue {
  if (node === null || node === undefined) return null; // "column:" with nothing after it
  if (isAlias(node)) throw err('aliases (*name) are not used by this format');
  if (isScalar(node)) return scalarToSql(node, err);
  if (isMap(node)) return mapToSql(node, err);
  if (isSeq(node)) throw err('a list is not a SQLite value');
  throw err('not a value this format writes');
}

function keyName(pair: Pair): string | null {
  if (!isScalar(pair.key)) return null;
  const k = pair.key;
  if (typeof k.value === 'string') return k.value;
  return typeof k.source === 'string' ? k.source : null; // a plain `1:` names the column "1"
}

/** column -> { value, line } from the front matter's YAML, every problem with its file line. */
function parseFrontMatter(split: Split, file: string): Map<string, { value: SqlValue; line: number }> {
  const lines = new LineCounter();
  const doc = parseDocument(split.yaml, { version: '1.2', schema: 'core', intAsBigInt: true, uniqueKeys: true, strict: true, prettyErrors: false, lineCounter: lines });
  const lineOf = (offset: number) => split.firstLine + lines.linePos(offset).line - 1;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new DocumentError(file, lineOf(problem.pos[0]), `the front matter is not valid YAML: ${problem.message.split('\n')[0]}`);
  const out = new Map<string, { value: SqlValue; line: number }>();
  const contents: unknown = doc.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) return out; // empty front matter
  if (!isMap(contents)) throw new DocumentError(file, lineOf((contents as Node).range?.[0] ?? 0), 'the front matter must be `column: value` lines');
  for (const pair of contents.items) {
    const line = lineOf((pair.key as Node | null)?.range?.[0] ?? 0);
    const name = keyName(pair);
    if (name === null) throw new DocumentError(file, line, 'a front matter key must be a column name');
    out.set(name, { value: nodeToSql(pair.value, (reason) => new DocumentError(file, line, `column ${name}: ${reason}`)), line });
  }
  return out;
}

/**
 * One file back to a row (columns in table order). `file` is the path used in errors; its last
 * segment is the file name, which gives the key. A malformed document throws a DocumentError.
 */
export function parseDocumentText(shape: DocumentShape, file: string, text: string): SqlValue[] {
  return parseDocumentWithRowid(shape, file, text).row;
}

/**
 * parseDocumentText, with the rowid the front matter carries in `rowidField` (null when it has
 * none: older mirrors, tables whose rowid is the key). A field named like a column is that column.
 */
export function parseDocumentWithRowid(shape: DocumentShape, file: string, text: string, rowidField = ROWID_FIELD): { row: SqlValue[]; rowid: bigint | null } {
  let key: SqlValue;
  try {
    key = keyFromFileName(file.slice(file.lastIndexOf('/') + 1));
  } catch (err) {
    throw new DocumentError(file, null, (err as Error).message);
  }
  const split = splitFrontMatter(text, file);
  const fields = parseFrontMatter(split, file);
  let rowid: bigint | null = null;
  const rowidField_ = fields.get(rowidField);
  if (rowidField_ && !shape.columns.includes(rowidField)) {
    if (typeof rowidField_.value !== 'bigint') throw new DocumentError(file, rowidField_.line, `${rowidField} must be an integer (the row's rowid)`);
    rowid = rowidField_.value;
    fields.delete(rowidField);
  }
  for (const [name, { line }] of fields) {
    if (name === shape.key) throw new DocumentError(file, line, `${name} is the key, which is the file name; remove it from the front matter`);
    if (!shape.columns.includes(name)) throw new DocumentError(file, line, `unknown column ${name} (the table has ${shape.columns.join(', ')})`);
  }
  const bodyField = fields.get(shape.body);
  if (bodyField && split.body !== '') {
    throw new DocumentError(file, bodyField.line, `${shape.body} is set in the front matter (only a non-text body goes there, e.g. ${shape.body}: null), yet the document has a body`);
  }
  const row = shape.columns.map((c) => {
    if (c === shape.key) return key;
    if (c === shape.body) return bodyField ? bodyField.value : split.body;
    return fields.get(c)?.value ?? null; // a column left out is NULL, as in JSONL
  });
  return { row, rowid };
}

/**
 * One SQLite value <-> one JSON value, losslessly: blobs become {"$base64": "..."}, integers
 * outside JavaScript's safe range {"$int": "..."}, TEXT whose bytes are not valid UTF-8
 * {"$text_base64": "..."}, and (in columns whose affinity would not turn it back into a REAL) a
 * whole-number REAL {"$real": "1.0"}. Pure, so the format is unit-tested.
 */

/**
 * TEXT whose bytes are not valid UTF-8 (SQLite stores whatever it was given). A JS string cannot
 * hold such bytes (they would become U+FFFD), so the bytes are kept and written back with
 * CAST(? AS TEXT), which keeps them as they are.
 */
export class TextBytes {
  constructor(readonly bytes: Buffer) {}
}

export type SqlValue = null | number | bigint | string | Buffer | TextBytes;
export type JsonValue = null | number | string | { $base64: string } | { $int: string } | { $real: string } | { $text_base64: string };

/** The field of a JSONL line (or a document's front matter) that holds the row's rowid, for tables whose rowid is not a column. */
export const ROWID_FIELD = '$rowid';

export function toJson(value: SqlValue): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  if (value instanceof TextBytes) return { $text_base64: value.bytes.toString('base64') };
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : { $int: value.toString() };
  }
  return { $base64: value.toString('base64') };
}

export function fromJson(value: unknown, where: string): SqlValue {
  // A JSON integer is bound as an INTEGER: as a JS number it would be bound as a REAL, and a column
  // without a declared type would then hold 5.0 where the database had 5.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    // Buffer.from(_, 'base64') skips what is not base64: a mistyped value would become other bytes.
    const bytes = (b64: unknown) => (typeof b64 === 'string' ? strictBase64(b64) : null);
    const blob = bytes(o.$base64);
    if (blob) return blob;
    if (typeof o.$int === 'string' && /^-?\d+$/.test(o.$int)) return BigInt(o.$int);
    if (typeof o.$real === 'string' && REAL_TEXT.test(o.$real)) return Number(o.$real);
    const text = bytes(o.$text_base64);
    if (text) return new TextBytes(text);
  }
  throw new Error(`${where}: ${JSON.stringify(value)} is not a value this format writes`);
}

/** The bytes of standard base64 (padding optional); null when `b64` holds anything else. */
function strictBase64(b64: string): Buffer | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/.test(b64)) return null;
  const out = Buffer.from(b64, 'base64');
  // Non-zero bits after the last byte are not something a writer produces.
  return out.toString('base64').replace(/=+$/, '') === b64.replace(/=+$/, '') ? out : null;
}

/**
 * A REAL as JSON text. SQLite stores infinities (1e999 in SQL, or an overflow), which JSON.stringify
 * would write as null: they are written as 1e999 / -1e999, which JSON.parse reads back as Infinity.
 */
function realText(value: number): string {
  if (value === Infinity) return '1e999';
  if (value === -Infinity) return '-1e999';
  return JSON.stringify(value);
}

/** What `$real` holds: a finite decimal number as JavaScript writes it, always with a point or an exponent. */
const REAL_TEXT = /^-?(?:\d+\.\d+|\d+(?:\.\d+)?e[+-]?\d+)$/;

/** A whole-number REAL as `$real` text: `1.0`, `-0.0`, `1e+21` (shortest text that reads back as the same double). */
function wholeRealText(value: number): string {
  const s = Object.is(value, -0) ? '-0' : String(value);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * toJson + JSON.stringify in one step, without the intermediate object: this runs once per value of
 * every row. `tagReal`: the column would read a whole number back as an INTEGER (no declared type,
 * BLOB, STRICT ANY, a virtual table's column), so a whole-number REAL is written as {"$real": "…"}.
 */
function valueText(value: SqlValue, tagReal: boolean): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return tagReal && Number.isInteger(value) ? `{"$real":"${wholeRealText(value)}"}` : realText(value);
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? value.toString() : `{"$int":"${value.toString()}"}`;
    default:
      if (value instanceof TextBytes) return `{"$text_base64":"${value.bytes.toString('base64')}"}`;
      return `{"$base64":"${value.toString('base64')}"}`;
  }
}

export interface RowLineOptions {
  /** per column: true where a whole-number REAL must be written as {"$real": "…"} (see valueText) */
  tagReal?: readonly boolean[];
  /** the row starts with its rowid (then the columns), written first as this field, e.g. ROWID_FIELD */
  rowidField?: string;
}

/**
 * The line writer for one table's columns: columns in table order, so the same row always gives the
 * same bytes. Built by hand rather than through an object: same bytes as JSON.stringify({...}), and
 * it keeps a numeric-looking column name in its place (object keys like "1" would be reordered).
 * With opts.rowidField, row[0] is the rowid and row[1..] the columns.
 */
export function rowLineWriter(columns: readonly string[], opts: RowLineOptions = {}): (row: readonly SqlValue[]) => string {
  const names = opts.rowidField === undefined ? columns : [opts.rowidField, ...columns];
  const tag = opts.rowidField === undefined ? (opts.tagReal ?? []) : [false, ...(opts.tagReal ?? [])];
  const prefixes = names.map((c, i) => `${i ? ',' : '{'}${JSON.stringify(c)}:`);
  const tags = names.map((_, i) => tag[i] === true);
  const empty = names.length ? '' : '{';
  return (row) => {
    let line = empty;
    for (let i = 0; i < prefixes.length; i++) line += prefixes[i]! + valueText(row[i] ?? null, tags[i]!);
    return `${line}}`;
  };
}

/** One line of a table file (see rowLineWriter). */
export function rowLine(columns: readonly string[], row: readonly SqlValue[]): string {
  return rowLineWriter(columns)(row);
}

/** Parse a JSONL table file; a bad line is reported with its file and line number. A rowid field (ROWID_FIELD) is accepted and left out. */
export function parseRows(text: string, file: string, columns: readonly string[]): SqlValue[][] {
  return parseRowsWithRowids(text, file, columns).rows;
}

/**
 * Parse a JSONL table file with the rowid each line carries in `rowidField` (null where a line has
 * none: mirrors written before rowids were carried, and tables whose rowid is a column). A field
 * named like a column is always that column.
 */
export function parseRowsWithRowids(text: string, file: string, columns: readonly string[], rowidField = ROWID_FIELD): { rows: SqlValue[][]; rowids: Array<bigint | null> } {
  const rows: SqlValue[][] = [];
  const rowids: Array<bigint | null> = [];
  const rowidIsColumn = columns.includes(rowidField);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line === '' && i === lines.length - 1) return;
    const where = `${file} line ${i + 1}`;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new Error(`${where} is not valid JSON (${(err as Error).message})`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error(`${where} is not a JSON object`);
    const record = obj as Record<string, unknown>;
    const unknown = Object.keys(record).filter((k) => !columns.includes(k) && (rowidIsColumn || k !== rowidField));
    if (unknown.length) throw new Error(`${where} has columns the schema does not: ${unknown.join(', ')}`);
    rows.push(columns.map((c) => fromJson(record[c] ?? null, `${where}, column ${c}`)));
    rowids.push(rowidIsColumn || record[rowidField] === undefined ? null : rowidOf(record[rowidField], `${where}, ${rowidField}`));
  });
  return { rows, rowids };
}

/** A rowid field's value: an integer (SQLite's rowids are 64-bit integers). */
export function rowidOf(value: unknown, where: string): bigint {
  const v = fromJson(value ?? null, where);
  if (typeof v !== 'bigint') throw new Error(`${where}: ${JSON.stringify(value)} is not a rowid (an integer)`);
  return v;
}

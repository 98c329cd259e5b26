/**
 * One SQLite value <-> one JSON value, losslessly: blobs become {"$base64": "..."} and integers
 * outside JavaScript's safe range {"$int": "..."}. Pure, so the format is unit-tested.
 */
export type SqlValue = null | number | bigint | string | Buffer;
export type JsonValue = null | number | string | { $base64: string } | { $int: string };

export function toJson(value: SqlValue): JsonValue {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
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
    if (typeof o.$base64 === 'string') return Buffer.from(o.$base64, 'base64');
    if (typeof o.$int === 'string' && /^-?\d+$/.test(o.$int)) return BigInt(o.$int);
  }
  throw new Error(`${where}: ${JSON.stringify(value)} is not a value this format writes`);
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

/** toJson + JSON.stringify in one step, without the intermediate object: this runs once per value of every row. */
function valueText(value: SqlValue): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return realText(value);
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? value.toString() : `{"$int":"${value.toString()}"}`;
    default:
      return `{"$base64":"${value.toString('base64')}"}`;
  }
}

/**
 * The line writer for one table's columns: columns in table order, so the same row always gives the
 * same bytes. Built by hand rather than through an object: same bytes as JSON.stringify({...}), and
 * it keeps a numeric-looking column name in its place (object keys like "1" would be reordered).
 */
export function rowLineWriter(columns: readonly string[]): (row: readonly SqlValue[]) => string {
  const prefixes = columns.map((c, i) => `${i ? ',' : '{'}${JSON.stringify(c)}:`);
  const empty = columns.length ? '' : '{';
  return (row) => {
    let line = empty;
    for (let i = 0; i < prefixes.length; i++) line += prefixes[i]! + valueText(row[i] ?? null);
    return `${line}}`;
  };
}

/** One line of a table file (see rowLineWriter). */
export function rowLine(columns: readonly string[], row: readonly SqlValue[]): string {
  return rowLineWriter(columns)(row);
}

/** Parse a JSONL table file; a bad line is reported with its file and line number. */
export function parseRows(text: string, file: string, columns: readonly string[]): SqlValue[][] {
  const rows: SqlValue[][] = [];
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
    const unknown = Object.keys(obj).filter((k) => !columns.includes(k));
    if (unknown.length) throw new Error(`${where} has columns the schema does not: ${unknown.join(', ')}`);
    rows.push(columns.map((c) => fromJson((obj as Record<string, unknown>)[c] ?? null, `${where}, column ${c}`)));
  });
  return rows;
}

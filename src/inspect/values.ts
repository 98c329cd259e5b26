/**
 * SQLite values as an agent reads them: small and unambiguous. Integers beyond 2^53 keep every
 * digit (as `{ integer: "..." }`), long text and blobs are cut with their full length said, so a
 * sample never floods a context and never silently looks like the whole value.
 */

/** Characters of a text value shown before it is cut. */
export const TEXT_SHOWN = 200;
/** Bytes of a blob shown (as hex). */
export const BLOB_SHOWN = 32;

export type ShownValue =
  | null
  | number
  | string
  | { integer: string }
  | { text_prefix: string; length: number }
  | { blob_hex: string; bytes: number; cut: boolean };

/** One value read with safeIntegers(true) (bigint for INTEGER), as shown in a result. */
export function showValue(v: unknown, textShown = TEXT_SHOWN): ShownValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : { integer: v.toString() };
  }
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string') return v.length <= textShown ? v : { text_prefix: v.slice(0, textShown), length: v.length };
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { blob_hex: b.subarray(0, BLOB_SHOWN).toString('hex'), bytes: b.length, cut: b.length > BLOB_SHOWN };
  }
  return String(v);
}

/** A row (column -> value) as shown. */
export function showRow(columns: readonly string[], values: readonly unknown[]): Record<string, ShownValue> {
  const out: Record<string, ShownValue> = {};
  columns.forEach((c, i) => Object.defineProperty(out, c, { value: showValue(values[i]), enumerable: true, writable: true, configurable: true }));
  return out;
}

/** SQLite's storage-class rank in ORDER BY: NULL < numbers < text < blob. */
function rank(v: unknown): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number' || typeof v === 'bigint') return 1;
  if (typeof v === 'string') return 2;
  return 3;
}

/**
 * Compares two values the way SQLite's ORDER BY ... COLLATE BINARY does (numbers by value, text by
 * its UTF-8 bytes, blobs by bytes), so two key-ordered streams merge without loading either.
 */
export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 0) return 0;
  if (ra === 1) {
    const x = a as number | bigint;
    const y = b as number | bigint;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ra === 2) {
    const x = a as string;
    const y = b as string;
    if (x === y) return 0;
    // UTF-16 order equals UTF-8 byte order unless a surrogate pair (a character beyond U+FFFF) is involved.
    if (!/[\uD800-\uDFFF]/.test(x) && !/[\uD800-\uDFFF]/.test(y)) return x < y ? -1 : 1;
    return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  }
  return Buffer.compare(a as Uint8Array, b as Uint8Array);
}

export function compareKeys(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

/** Same stored value (an integer 1 and a real 1.0 differ: their storage classes do). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Number.isNaN(a) && Number.isNaN(b as number);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return false;
}

/** A key as JSON that survives a round trip (bigint and blob tagged), for cursors. */
export type KeyJson = Array<null | number | string | { i: string } | { b: string }>;

export function keyToJson(key: readonly unknown[]): KeyJson {
  return key.map((v) => {
    if (v === null || v === undefined) return null;
    if (typeof v === 'bigint') return { i: v.toString() };
    if (typeof v === 'number' || typeof v === 'string') return v;
    if (v instanceof Uint8Array) return { b: Buffer.from(v).toString('hex') };
    return String(v);
  });
}

export function keyFromJson(json: KeyJson): unknown[] {
  return json.map((v) => {
    if (v === null || typeof v === 'number' || typeof v === 'string') return v;
    if ('i' in v) return BigInt(v.i);
    return Buffer.from(v.b, 'hex');
  });
}

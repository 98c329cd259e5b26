/**
 * A small seeded generator of SQLite databases (schemas and values) for round-trip property tests,
 * and a comparison of two databases value by value and type by type. No dependency: a fixed seed
 * always builds the same database, so a failure names the seed that reproduces it.
 */
import Database from 'better-sqlite3';

/** mulberry32: tiny, fast, good enough to pick test inputs. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

/** A value to bind: `{ invalidText }` is TEXT whose bytes are not UTF-8 (inserted with CAST(? AS TEXT)). */
export type GenValue = null | bigint | number | string | Buffer | { invalidText: Buffer };

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
export const FTS_WORDS = WORDS;

const INVALID_UTF8 = [Buffer.from([0xff]), Buffer.from([0x41, 0xc3, 0x28]), Buffer.from([0x80, 0x41]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xef, 0xbf, 0xbd, 0xff])];

/** UTF-16LE with a lone surrogate (high then 'A', a lone low one, a high one at the end). */
const INVALID_UTF16LE = [Buffer.from([0x00, 0xd8, 0x41, 0x00]), Buffer.from([0x41, 0x00, 0x00, 0xdc]), Buffer.from([0x3d, 0xd8])];

function text(r: Rng): string {
  return r.pick([
    '',
    ' ',
    'plain',
    'naïve ünïcode',
    '😀 emoji',
    'line\nbreak\r\n',
    '"quoted" \\ back',
    '\uFFFD a real replacement character',
    '007',
    '1.0',
    'null',
    `${r.pick(WORDS)} ${r.pick(WORDS)}`,
  ]);
}

function integer(r: Rng): bigint {
  return r.pick([0n, 1n, -1n, 42n, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n, BigInt(r.int(-1e6, 1e6))]);
}

function real(r: Rng): number {
  return r.pick([1.0, -0.0, 0.0, 2.5, 1e300, -1e-300, Infinity, -Infinity, 0.1 + 0.2, 2 ** 53, 1e20, 42.0, r.int(-1000, 1000)]);
}

function blob(r: Rng): Buffer {
  return r.pick([Buffer.alloc(0), Buffer.from([0]), Buffer.from([0xde, 0xad, 0xbe, 0xef]), Buffer.from('text as blob')]);
}

/** A value for a column: `kind` is the STRICT type, or null for a column that takes anything. */
function valueFor(r: Rng, kind: string | null, utf8: boolean): GenValue {
  if (r.chance(0.12)) return null;
  const k = kind ?? r.pick(['INT', 'REAL', 'TEXT', 'BLOB', 'TEXT', 'INT', 'REAL']);
  switch (k) {
    case 'INT':
    case 'INTEGER':
      return integer(r);
    case 'REAL':
      return real(r);
    case 'TEXT':
      return r.chance(0.15) ? { invalidText: r.pick(utf8 ? INVALID_UTF8 : INVALID_UTF16LE) } : text(r);
    case 'BLOB':
      return blob(r);
    default:
      return valueFor(r, null, utf8);
  }
}

const LOOSE_TYPES = ['', '', 'INTEGER', 'REAL', 'TEXT', 'BLOB', 'NUMERIC', 'VARCHAR(20)', 'DOUBLE', 'BOOLEAN', 'ANY', 'DATETIME'];
const STRICT_TYPES = ['INT', 'INTEGER', 'REAL', 'TEXT', 'BLOB', 'ANY', 'ANY'];

type TableKind = 'ipk' | 'autoinc' | 'nokey' | 'textpk' | 'composite' | 'without_rowid' | 'ipk_desc';

export interface GeneratedDb {
  /** tables whose rows must come back equal (ordinary tables and carried virtual tables) */
  tables: string[];
  /** FTS tables to compare MATCH results on */
  fts: string[];
  /** tables the mirror must refuse (contentless FTS5): they come back empty */
  refused: string[];
  /** tables with an integer key that can be mirrored as documents: table -> body column */
  documentable: Record<string, string>;
}

function bind(v: GenValue): { mark: string; value: unknown } {
  if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) return { mark: 'CAST(? AS TEXT)', value: v.invalidText };
  return { mark: '?', value: v };
}

function insertRow(db: Database.Database, table: string, columns: string[], values: GenValue[]): void {
  const bound = values.map(bind);
  db.prepare(`INSERT INTO "${table}" (${columns.map((c) => `"${c.replace(/"/g, '""')}"`).join(', ')}) VALUES (${bound.map((b) => b.mark).join(', ')})`).run(...bound.map((b) => b.value));
}

/**
 * Build a random database in `file` from `seed`: ordinary tables of every kind (INTEGER PRIMARY KEY,
 * AUTOINCREMENT, no key, text key, composite key, WITHOUT ROWID, INTEGER PRIMARY KEY DESC), STRICT or
 * not, columns of every affinity, generated columns, indexes, views, triggers, FTS5 (stored and
 * external content, with a rank setting), a contentless FTS5 table, an R*Tree, rows with gaps in
 * their rowids, and database settings.
 */
export function generateDatabase(file: string, seed: number): GeneratedDb {
  const r = new Rng(seed);
  const db = new Database(file);
  db.pragma('synchronous = OFF'); // a test input: no flush per statement
  const utf8 = !r.chance(0.15);
  if (!utf8) db.pragma("encoding = 'UTF-16le'");
  if (r.chance(0.3)) db.pragma('journal_mode = WAL');
  db.pragma(`user_version = ${r.int(0, 5)}`);
  if (r.chance(0.3)) db.pragma(`application_id = ${r.int(1, 2 ** 30)}`);
  const out: GeneratedDb = { tables: [], fts: [], refused: [], documentable: {} };
  db.exec('CREATE TABLE log (msg TEXT)');
  out.tables.push('log');
  const kinds: TableKind[] = ['ipk', 'autoinc', 'nokey', 'textpk', 'composite', 'without_rowid', 'ipk_desc'];
  const count = r.int(2, 5);
  for (let t = 0; t < count; t++) {
    const name = `t${t}`;
    const kind = r.pick(kinds);
    const strict = r.chance(0.35);
    const ncols = r.int(1, 4);
    const names: string[] = [];
    for (let i = 0; i < ncols; i++) names.push(r.chance(0.08) ? r.pick(['rowid', '$rowid', 'oid', 'Odd "name"']) : `c${i}`);
    const cols = [...new Set(names)];
    const types = cols.map(() => (strict ? r.pick(STRICT_TYPES) : r.pick(LOOSE_TYPES)));
    const defs = cols.map((c, i) => `"${c.replace(/"/g, '""')}" ${types[i]}`);
    let keyCols: string[] = [];
    let keyDefs: string[] = [];
    let suffix = '';
    switch (kind) {
      case 'ipk':
        keyDefs = ['id INTEGER PRIMARY KEY'];
        keyCols = ['id'];
        break;
      case 'autoinc':
        keyDefs = ['id INTEGER PRIMARY KEY AUTOINCREMENT'];
        keyCols = ['id'];
        break;
      case 'ipk_desc':
        keyDefs = ['id INTEGER PRIMARY KEY DESC'];
        keyCols = ['id'];
        break;
      case 'textpk':
        keyDefs = ['k TEXT PRIMARY KEY NOT NULL'];
        keyCols = ['k'];
        break;
      case 'composite':
        keyDefs = ['a INTEGER NOT NULL', 'b TEXT NOT NULL'];
        suffix = ', PRIMARY KEY (a, b)';
        keyCols = ['a', 'b'];
        break;
      case 'without_rowid':
        keyDefs = ['k TEXT PRIMARY KEY'];
        keyCols = ['k'];
        break;
      case 'nokey':
        break;
    }
    const generated = r.chance(0.4) ? [`g ${strict ? 'TEXT ' : ''}GENERATED ALWAYS AS (typeof("${cols[0]!.replace(/"/g, '""')}") || '/' || length("${cols[0]!.replace(/"/g, '""')}")) ${r.pick(['VIRTUAL', 'STORED'])}`] : [];
    const options = [kind === 'without_rowid' ? 'WITHOUT ROWID' : '', strict ? 'STRICT' : ''].filter(Boolean).join(', ');
    db.exec(`CREATE TABLE ${name} (${[...keyDefs, ...defs, ...generated].join(', ')}${suffix})${options ? ` ${options}` : ''}`);
    if (r.chance(0.5)) db.exec(`CREATE INDEX ${name}_i ON ${name} ("${cols[0]!.replace(/"/g, '""')}")`);
    if (r.chance(0.4)) db.exec(`CREATE VIEW ${name}_v AS SELECT * FROM ${name}`);
    if (r.chance(0.5)) db.exec(`CREATE TRIGGER ${name}_log AFTER INSERT ON ${name} BEGIN INSERT INTO log (msg) VALUES ('inserted into ${name}'); END`);
    out.tables.push(name);
    if (kind === 'ipk' || kind === 'autoinc' || kind === 'ipk_desc') out.documentable[name] = cols[0]!;

    const rows = r.int(0, 18);
    const strictKind = (i: number) => (strict ? (types[i] === 'ANY' ? null : types[i]!) : null);
    const usedKeys = new Set<string>();
    for (let i = 0; i < rows; i++) {
      const values = cols.map((_, ci) => valueFor(r, strictKind(ci), utf8));
      let keyValues: GenValue[] = [];
      // (INTEGER PRIMARY KEY DESC is not the rowid: it takes no automatic value in a STRICT table)
      if (kind === 'ipk' || kind === 'autoinc' || kind === 'ipk_desc') {
        const max = db.prepare(`SELECT coalesce(max(id), 0) FROM ${name}`).pluck().safeIntegers(true).get() as bigint;
        keyValues = [r.chance(0.5) && kind !== 'ipk_desc' ? null : max + BigInt(r.int(1, 5))];
      }
      if (kind === 'textpk' || kind === 'without_rowid') keyValues = [r.chance(0.2) && utf8 ? { invalidText: Buffer.concat([Buffer.from(`k${i}`), r.pick(INVALID_UTF8)]) } : `k${i} ${text(r)}`];
      if (kind === 'composite') keyValues = [BigInt(i % 3), `${i} ${r.pick(WORDS)}`];
      const keyText = JSON.stringify(keyValues, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      if (keyValues[0] !== null && usedKeys.has(keyText)) continue;
      usedKeys.add(keyText);
      const extra: string[] = [];
      const extraValues: GenValue[] = [];
      // Rowids with gaps, set explicitly where the rowid is not a column (tables without a key, text keys).
      if ((kind === 'nokey' || kind === 'textpk' || kind === 'composite') && !cols.some((c) => c.toLowerCase() === 'rowid') && r.chance(0.6)) {
        const max = db.prepare(`SELECT coalesce(max(rowid), 0) FROM ${name}`).pluck().safeIntegers(true).get() as bigint;
        extra.push('rowid');
        extraValues.push(max + BigInt(r.int(1, 4)));
      }
      insertRow(db, name, [...extra, ...keyCols, ...cols], [...extraValues, ...keyValues, ...values]);
    }
    // Deletions leave gaps; an AUTOINCREMENT table loses its highest row (its counter must survive).
    if (kind === 'autoinc') db.exec(`DELETE FROM ${name} WHERE id = (SELECT max(id) FROM ${name})`);
    if (kind !== 'without_rowid' && r.chance(0.5)) db.exec(`DELETE FROM ${name} WHERE rowid IN (SELECT rowid FROM ${name} ORDER BY rowid LIMIT 2)`);
  }

  if (r.chance(0.6)) {
    db.exec(`CREATE VIRTUAL TABLE fts USING fts5(title, body${r.chance(0.3) ? ", tokenize = 'porter ascii'" : ''}${r.chance(0.3) ? ', detail=column' : ''})`);
    if (r.chance(0.5)) db.exec("INSERT INTO fts (fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)')");
    const n = r.int(1, 12);
    for (let i = 0; i < n; i++) {
      const body = r.chance(0.2) ? valueFor(r, null, utf8) : `${r.pick(WORDS)} ${r.pick(WORDS)} ${r.pick(WORDS)}`;
      insertRow(db, 'fts', ['rowid', 'title', 'body'], [BigInt(i * 3 + r.int(1, 2)), `${r.pick(WORDS)} title`, body]);
    }
    if (n > 2) db.exec('DELETE FROM fts WHERE rowid = (SELECT min(rowid) FROM fts)');
    out.tables.push('fts');
    out.fts.push('fts');
  }
  if (r.chance(0.4)) {
    db.exec("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT); CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id')");
    db.exec("CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts (rowid, body) VALUES (new.id, new.body); END");
    const n = r.int(1, 10);
    for (let i = 0; i < n; i++) insertRow(db, 'docs', ['id', 'body'], [BigInt(i * 2 + 1), `${r.pick(WORDS)} ${r.pick(WORDS)}`]);
    out.tables.push('docs');
    out.fts.push('docs_fts');
  }
  if (r.chance(0.25)) {
    db.exec("CREATE VIRTUAL TABLE bare USING fts5(x, content='')");
    db.exec("INSERT INTO bare (rowid, x) VALUES (1, 'alpha bravo')");
    out.refused.push('bare');
  }
  if (r.chance(0.3)) {
    const languageid = r.chance(0.5);
    db.exec(`CREATE VIRTUAL TABLE old_fts USING fts4(a, b${languageid ? ', languageid=lid' : ''})`);
    const n = r.int(1, 6);
    for (let i = 0; i < n; i++) {
      insertRow(db, 'old_fts', ['docid', 'a', 'b', ...(languageid ? ['lid'] : [])], [BigInt(i * 4 + 2), `${r.pick(WORDS)} ${r.pick(WORDS)}`, valueFor(r, null, utf8), ...(languageid ? [BigInt(r.int(0, 1))] : [])]);
    }
    out.tables.push('old_fts');
    if (!languageid) out.fts.push('old_fts'); // (MATCH on a languageid table searches language 0 only: compared through its rows)
  }
  if (r.chance(0.2)) {
    db.exec('CREATE VIRTUAL TABLE shapes USING geopoly(name)');
    insertRow(db, 'shapes', ['rowid', '_shape', 'name'], [5n, '[[0,0],[1,0],[1,1],[0,0]]', 'triangle']);
    insertRow(db, 'shapes', ['rowid', '_shape', 'name'], [9n, '[[0,0],[2,0],[2,2],[0,2],[0,0]]', 2.0]);
    out.tables.push('shapes');
  }
  if (r.chance(0.3)) {
    db.exec('CREATE VIRTUAL TABLE boxes USING rtree(id, x0, x1, +label)');
    const n = r.int(1, 6);
    for (let i = 0; i < n; i++) insertRow(db, 'boxes', ['id', 'x0', 'x1', 'label'], [BigInt(i + 1), i * 1.5, i * 1.5 + r.int(0, 3), r.chance(0.5) ? `box ${i}` : 2.0]);
    out.tables.push('boxes');
  }
  db.close();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** One value as `typeof:exact text`: -0 and 0, 1 and 1.0, text and blob of the same bytes all differ. */
function repr(type: string, v: unknown): string {
  if (type === 'real') return `real:${Object.is(v, -0) ? '-0' : String(v)}`;
  if (type === 'integer') return `integer:${String(v)}`;
  return `${type}:${v === null ? '' : String(v)}`;
}

/** Every row of a table: rowid (where it has one) and every column, generated ones included, in a stable order. */
export function tableRows(db: Database.Database, table: string): string[] {
  const cols = (db.prepare(`PRAGMA table_xinfo("${table}")`).all() as Array<{ name: string; hidden: number }>).filter((c) => Number(c.hidden) !== 1).map((c) => c.name);
  const listed = db.prepare("SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?").get(table) as { type: string; wr: number };
  const hasRowid = Number(listed.wr) === 0 && !cols.some((c) => ['rowid', '_rowid_', 'oid'].every((n) => cols.some((x) => x.toLowerCase() === n)));
  const rowidName = ['rowid', '_rowid_', 'oid'].find((n) => !cols.some((c) => c.toLowerCase() === n));
  const exprs = cols.flatMap((c) => {
    const q = `"${c.replace(/"/g, '""')}"`;
    return [`typeof(${q})`, `CASE WHEN typeof(${q}) IN ('text', 'blob') THEN hex(CAST(${q} AS BLOB)) ELSE ${q} END`];
  });
  const select = [...(hasRowid && rowidName ? [rowidName] : []), ...exprs];
  const rows = db.prepare(`SELECT ${select.join(', ')} FROM "${table}"`).raw(true).safeIntegers(true).all() as unknown[][];
  return rows
    .map((row) => {
      const parts: string[] = [];
      let i = 0;
      if (hasRowid && rowidName) parts.push(`rowid=${String(row[i++])}`);
      for (const c of cols) {
        const type = row[i++] as string;
        parts.push(`${c}=${repr(type, row[i++])}`);
      }
      return parts.join(' | ');
    })
    .sort();
}

/** What two databases must agree on after a round trip (refused tables left out of the row comparison). */
export function describeDatabase(file: string, gen: GeneratedDb): Record<string, unknown> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const schema = (db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_stat%'").raw(true).all() as unknown[][]).map((r) => JSON.stringify(r)).sort();
    const out: Record<string, unknown> = {
      schema,
      user_version: db.pragma('user_version', { simple: true }),
      application_id: db.pragma('application_id', { simple: true }),
      encoding: db.pragma('encoding', { simple: true }),
      journal_mode: db.pragma('journal_mode', { simple: true }),
      sqlite_sequence: db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get() ? db.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY name').raw(true).all() : null,
    };
    for (const t of gen.tables) out[`rows ${t}`] = tableRows(db, t);
    for (const f of gen.fts) {
      const fts5 = /USING\s+fts5/i.test(db.prepare('SELECT sql FROM sqlite_schema WHERE name = ?').pluck().get(f) as string);
      // FTS5: rowids and ranks in rank order; FTS3/4 (no rank): rowids and the offsets of each match.
      const query = fts5 ? `SELECT rowid, rank FROM "${f}" WHERE "${f}" MATCH ? ORDER BY rank, rowid` : `SELECT rowid, offsets("${f}") FROM "${f}" WHERE "${f}" MATCH ? ORDER BY rowid`;
      for (const w of FTS_WORDS.slice(0, 4)) out[`match ${f} ${w}`] = db.prepare(query).raw(true).all(w);
    }
    return out;
  } finally {
    db.close();
  }
}

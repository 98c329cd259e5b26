import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { DocumentError, fileNameForKey, keyFromFileName, parseDocumentText, renderDocument, type DocumentShape } from '../src/sync/documents.js';
import { syncImport } from '../src/sync/import.js';
import { materialize } from '../src/sync/materialize.js';
import type { MirrorManifest } from '../src/sync/mirror-manifest.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { parseRows, type SqlValue } from '../src/sync/rows.js';
import { syncStatus } from '../src/sync/status.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

// ---------------------------------------------------------------------------------------------
// The format, pure

const PAGE: DocumentShape = {
  columns: ['slug', 'title', 'n', 'score', 'big', 'data', 'gone', 'empty', 'multi', 'dashes', '1', 'content'],
  key: 'slug',
  body: 'content',
};

/** A row with every value that a careless YAML mapping would change. */
const TRICKY: SqlValue[] = [
  'Hello World',
  '007',
  42n,
  1, // a REAL that happens to be whole
  9007199254740993n,
  Buffer.from([0, 255, 16]),
  null,
  '',
  'line 1\nline 2\n',
  '---\nnot: front matter\n---',
  'true',
  '---\ntitle: fake\n---\n# Heading\r\nno final newline',
];

const TRICKY_TEXT = [
  '---',
  'title: "007"',
  'n: 42',
  'score: 1.0',
  'big: { $int: "9007199254740993" }',
  'data: { $base64: "AP8Q" }',
  'gone: null',
  'empty: ""',
  'multi: "line 1\\nline 2\\n"',
  'dashes: "---\\nnot: front matter\\n---"',
  '"1": "true"',
  '---',
  '---',
  'title: fake',
  '---',
  '# Heading\r',
  'no final newline',
].join('\n');

const rendered = (shape: DocumentShape, row: SqlValue[]) => {
  const doc = renderDocument(shape, row);
  if ('reason' in doc) throw new Error(doc.reason);
  return doc;
};

/** Parse errors as [message, line], to assert both. */
const parseError = (shape: DocumentShape, file: string, text: string): [string, number | null] => {
  try {
    parseDocumentText(shape, file, text);
  } catch (err) {
    if (err instanceof DocumentError) return [err.message, err.line];
    throw err;
  }
  throw new Error('it parsed');
};

describe('documents: one Markdown file per row (pure)', () => {
  it('golden: strings that look like other types stay quoted text, REAL 1.0 vs INTEGER, blobs and big integers, a body that looks like front matter', () => {
    const doc = rendered(PAGE, TRICKY);
    expect(doc.name).toBe('%48ello%20%57orld.md');
    expect(doc.text).toBe(TRICKY_TEXT);
    const back = parseDocumentText(PAGE, `wiki/pages/${doc.name}`, doc.text);
    expect(back).toEqual(TRICKY);
    // toEqual does not tell 1 from 1n: the types are what makes it lossless.
    expect(back.map((v) => (Buffer.isBuffer(v) ? 'blob' : v === null ? 'null' : typeof v))).toEqual(['string', 'string', 'bigint', 'number', 'bigint', 'blob', 'null', 'string', 'string', 'string', 'string', 'string']);
    expect(rendered(PAGE, back).text).toBe(doc.text); // the same data gives the same bytes
  });

  it('a NULL body is `body: null` in the front matter; an empty body is an empty file body; a non-text body goes in the front matter too', () => {
    const shape: DocumentShape = { columns: ['id', 'content', 'title'], key: 'id', body: 'content' };
    const cases: Array<[SqlValue, string]> = [
      [null, '---\ncontent: null\ntitle: "t"\n---\n'],
      ['', '---\ntitle: "t"\n---\n'],
      ['\n', '---\ntitle: "t"\n---\n\n'],
      [7n, '---\ncontent: 7\ntitle: "t"\n---\n'],
      [Buffer.from('hi'), '---\ncontent: { $base64: "aGk=" }\ntitle: "t"\n---\n'],
    ];
    for (const [body, text] of cases) {
      const doc = rendered(shape, [1n, body, 't']);
      expect(doc).toEqual({ name: '1.md', text });
      expect(parseDocumentText(shape, 'd/t/1.md', text)).toEqual([1n, body, 't']);
    }
    expect(parseDocumentText(shape, 'd/t/1.md', '---\ncontent: null\n---\n')[1]).toBeNull();
    expect(parseDocumentText(shape, 'd/t/1.md', '---\n---\n')[1]).toBe('');
    // Only the key and the body: the front matter is empty but still there.
    expect(rendered({ columns: ['id', 'b'], key: 'id', body: 'b' }, [3n, 'x'])).toEqual({ name: '3.md', text: '---\n---\nx' });
  });

  it('hand-written YAML reads as YAML 1.2 core: plain text, numbers, !!binary; a column left out is NULL; CRLF fences', () => {
    const shape: DocumentShape = { columns: ['id', 'title', 'n', 'r', 'when', 'bin', 'missing', 'body'], key: 'id', body: 'body' };
    const text = '---\r\ntitle: plain words\r\nn: 5\r\nr: 2.50\r\nwhen: 2026-01-01\r\nbin: !!binary aGk=\r\n---\r\nbody\r\n';
    expect(parseDocumentText(shape, 'd/t/9.md', text)).toEqual([9n, 'plain words', 5n, 2.5, '2026-01-01', Buffer.from('hi'), null, 'body\r\n']);
  });

  it('file names: integers as decimal, text percent-encoded (A-Z too, for case-insensitive disks); reversible and never shared', () => {
    const names: Array<[SqlValue, string]> = [
      [42n, '42.md'],
      [-7n, '-7.md'],
      [0n, '0.md'],
      ['42', '%342.md'], // text that reads as an integer never takes the integer's name
      ['-1', '%2D1.md'],
      ['042', '%3042.md'],
      ['hello-world_2', 'hello-world_2.md'],
      ['Hello', '%48ello.md'],
      ['hello', 'hello.md'],
      ['.hidden', '%2Ehidden.md'],
      ['a.md', 'a%2Emd.md'],
      ['100%', '100%25.md'],
      ['%', '%25.md'],
      ['', '%.md'],
      ['con', '%63on.md'], // a Windows device name
      ['Com1', '%43om1.md'],
      ['naïve/ü x', 'na%C3%AFve%2F%C3%BC%20x.md'],
      ['../etc', '%2E%2E%2Fetc.md'],
    ];
    for (const [key, name] of names) {
      expect(fileNameForKey(key), String(key)).toEqual({ name });
      expect(keyFromFileName(name)).toEqual(typeof key === 'number' ? BigInt(key) : key);
    }
    const folded = names.map(([, n]) => n.toLowerCase());
    expect(new Set(folded).size).toBe(names.length); // distinct even where case does not count
    for (const n of names.map(([, x]) => x)) expect(n).toMatch(/^[A-Za-z0-9_%-]+\.md$/);

    for (const key of [null, 1.5, Buffer.from('x')]) expect(fileNameForKey(key)).toEqual({ reason: expect.stringMatching(/cannot be a file name/) });
    expect(fileNameForKey('x'.repeat(201))).toEqual({ reason: expect.stringMatching(/over the limit of 200/) });
    expect(fileNameForKey('é'.repeat(34))).toEqual({ reason: expect.stringMatching(/204 characters once encoded/) });
    // Names this format never writes are refused rather than guessed (two names for one key would be two rows).
    expect(() => keyFromFileName('042.md')).toThrow(/not an integer key as this format writes it \(expected 42\.md/);
    expect(() => keyFromFileName('Hello.md')).toThrow(/for the key "Hello": %48ello\.md/);
    expect(() => keyFromFileName('%61.md')).toThrow(/not one this format writes/);
    expect(() => keyFromFileName('%2e.md')).toThrow(/uppercase hex/);
    expect(() => keyFromFileName('%FF.md')).toThrow(/not one this format writes/);
    expect(() => keyFromFileName('99999999999999999999.md')).toThrow(/integer range/);
  });

  it('malformed documents are refused with the path and the line', () => {
    const f = 'wiki/pages/abc.md';
    expect(parseError(PAGE, f, 'title: "x"\n')).toEqual([`${f} line 1: a document starts with a \`---\` line, then the front matter`, 1]);
    expect(parseError(PAGE, f, '---\ntitle: "x"\nbody without a closing line\n')).toEqual([`${f} line 1: the front matter opened here is never closed by a \`---\` line`, 1]);
    expect(parseError(PAGE, f, '---\ntitle: "x"\nnope: 1\n---\nbody')).toEqual([expect.stringContaining(`${f} line 3: unknown column nope`), 3]);
    expect(parseError(PAGE, f, '---\ntitle: "x"\ntitle: "y"\n---\n')).toEqual([expect.stringMatching(/line 3: the front matter is not valid YAML: Map keys must be unique/), 3]);
    expect(parseError(PAGE, f, '---\nn: 1\ntitle: "unterminated\n---\n')[1]).toBe(4);
    expect(parseError(PAGE, f, '---\nn: 1\ntitle: "a" b\n---\n')).toEqual([`${f} line 3: the front matter is not valid YAML: Unexpected scalar at node end`, 3]);
    expect(parseError(PAGE, f, '---\n- a\n---\n')).toEqual([`${f} line 2: the front matter must be \`column: value\` lines`, 2]);
    expect(parseError(PAGE, f, '---\ntitle: "x"\nn: true\n---\n')).toEqual([expect.stringMatching(/line 3: column n: true is a YAML boolean/), 3]);
    expect(parseError(PAGE, f, '---\ndata: { $base64: "not base64!" }\n---\n')).toEqual([expect.stringMatching(/line 2: column data: a mapping must be/), 2]);
    expect(parseError(PAGE, f, '---\nn: [1, 2]\n---\n')).toEqual([expect.stringMatching(/line 2: column n: a list is not a SQLite value/), 2]);
    expect(parseError(PAGE, f, '---\nn: 9223372036854775808\n---\n')).toEqual([expect.stringMatching(/line 2: column n: 9223372036854775808 is outside SQLite's integer range/), 2]);
    expect(parseError(PAGE, f, '---\nslug: "other"\n---\n')).toEqual([expect.stringMatching(/line 2: slug is the key, which is the file name/), 2]);
    expect(parseError(PAGE, f, '---\ncontent: null\n---\nbut a body')).toEqual([expect.stringMatching(/line 2: content is set in the front matter .* yet the document has a body/), 2]);
    expect(parseError(PAGE, 'wiki/pages/Bad Name.md', '---\n---\n')).toEqual([expect.stringMatching(/^wiki\/pages\/Bad Name\.md: the file name Bad Name\.md is not one this format writes/), null]);
  });

  it('JSONL integers are read as INTEGER, so a column without a declared type keeps 5, not 5.0', () => {
    const rows = parseRows('{"v":5,"r":2.5,"z":-0}\n', 't.jsonl', ['v', 'r', 'z']);
    expect(rows[0]!.map((v) => typeof v)).toEqual(['bigint', 'number', 'bigint']);
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v, r, z)');
    db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(...rows[0]!);
    expect(db.prepare('SELECT typeof(v), typeof(r) FROM t').raw(true).get()).toEqual(['integer', 'real']);
    db.close();
  });
});

// ---------------------------------------------------------------------------------------------
// Through real SQLite files and real git against a local bare repository


const DOCUMENTS = { 'notes.notes': { body: 'body' }, 'wiki.pages': { body: 'content' }, 'wiki.tags': { body: 'tag' }, 'wiki.nope': { body: 'x' } };

/** Rows that exercise the value conventions, as stored: bigint = INTEGER, number = REAL. */
const PAGES: SqlValue[][] = [
  ['Hello World', '007', 42n, 1, 9007199254740993n, Buffer.from([0, 255, 16]), 5n, '---\ntitle: fake\n---\n# Heading\r\nno final newline'],
  ['42', 'true', null, -2.5, null, null, 1, ''],
  ['.hidden', '2026-01-01', 0n, 0, -9007199254740993n, Buffer.alloc(0), '', null],
  ['naïve/ünïcode', 'null', -1n, 1e300, 1n, null, 'x', 'multi\nline\n---\n'],
  ['Case', '', 7n, 3.25, 2n, null, 9007199254740993n, 'upper'],
  ['case', 'multi\nline\ntitle', 8n, 0.1, 3n, null, null, 'lower'],
];

function makeWikiDb(file: string): void {
  const db = new Database(file);
  db.exec('CREATE TABLE pages (slug TEXT PRIMARY KEY, title TEXT, n INTEGER, score REAL, big INTEGER, data BLOB, anything, content TEXT) WITHOUT ROWID');
  db.exec('CREATE TABLE tags (page TEXT, tag TEXT, PRIMARY KEY (page, tag))');
  const insert = db.prepare('INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  for (const row of PAGES) insert.run(...row);
  db.exec("INSERT INTO tags VALUES ('42', 'x'), ('case', 'y')");
  db.close();
}

/** Every row with each value's SQLite type, in key order: equal means equal down to INTEGER vs REAL. */
function typedRows(file: string, table: string, orderBy: string): unknown[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  try {
    const cols = (db.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => `"${c.name}"`);
    return db.prepare(`SELECT ${cols.map((c) => `${c}, typeof(${c})`).join(', ')} FROM "${table}" ORDER BY ${orderBy}`).raw(true).all();
  } finally {
    db.close();
  }
}

function treeFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? treeFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

let work: string;
let root: string;
let bare: string;
beforeEach(() => {
  work = tempRoot('wb-sync-docs-');
  root = path.join(work, 'root');
  bare = seededBareRemote(work);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 12);
  makeWikiDb(path.join(root, 'db', 'wiki.db'));
  writeConfigFile(root, { sync: { github: { remote_url: bare, documents: DOCUMENTS } } });
});
afterEach(() => rmrf(work));

const commits = () => Number(git(work, '--git-dir', bare, 'rev-list', '--count', 'trunk'));
const remoteFile = (file: string, rev = 'trunk') => git(work, '--git-dir', bare, 'show', `${rev}:${file}`);
const notesDb = () => path.join(root, 'db', 'notes.db');
const noteRow = (id: number) => {
  const db = new Database(notesDb(), { readonly: true });
  try {
    return db.prepare('SELECT title, body FROM notes WHERE id = ?').get(id) as { title: string; body: string } | undefined;
  } finally {
    db.close();
  }
};
const sql = (statements: string) => {
  const db = new Database(notesDb());
  db.exec(statements);
  db.close();
};

/** Push, and fail with a clear message if push.ts does not hand sync.github.documents to materialize. */
async function pushDocuments() {
  const pushed = await syncPush(loadConfig(root));
  expect(pushed.status).toBe('pushed');
  const manifest = JSON.parse(remoteFile('manifest.json')) as MirrorManifest;
  expect(manifest.databases.notes?.tables.notes, 'push.ts must pass `documents: sync.documents` to materialize()').toMatchObject({ format: 'documents' });
  return pushed;
}

/** Everything after the front matter's closing line (documents here have no `---` line inside the front matter). */
const BODY = /(?<=^---\n(?:.*\n)*?---\n)[^]*$/;

/** Edit the mirror in another clone with plain git, as a person on GitHub would, and push it. */
function remoteEdit(edit: (clone: string) => void): void {
  const other = path.join(work, `other-${Math.random().toString(36).slice(2)}`);
  git(work, 'clone', '-q', bare, other);
  edit(other);
  git(other, 'add', '-A');
  git(other, 'commit', '-q', '-m', 'edit on the remote');
  git(other, 'push', '-q', 'origin', 'HEAD:trunk');
}

describe('documents with real git against a local bare repository', () => {
  it('push, clone, import: mapped tables come back equal down to the value types; refused mappings fall back to JSONL with a warning', async () => {
    const pushed = await pushDocuments();
    expect(pushed.rows).toMatchObject({ 'notes.notes': 12, 'notes.folders': 3, 'wiki.pages': 6, 'wiki.tags': 2 });
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);

    const manifest = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as MirrorManifest;
    expect(manifest.schema_version).toBe(1);
    expect(manifest.databases.notes!.tables).toEqual({ folders: { file: 'notes/folders.jsonl', rows: 3 }, notes: { dir: 'notes/notes/', format: 'documents', key: 'id', body: 'body', rows: 12 } });
    expect(manifest.databases.wiki!.tables).toEqual({ pages: { dir: 'wiki/pages/', format: 'documents', key: 'slug', body: 'content', rows: 6 }, tags: { file: 'wiki/tags.jsonl', rows: 2 } });
    expect(manifest.warnings).toEqual([
      { table: 'wiki.tags', reason: 'documents need a single-column primary key; tags has (page, tag); mirrored as wiki/tags.jsonl instead' },
      { table: 'wiki.nope', reason: 'sync.github.documents names wiki.nope, which is not a table of that database' },
    ]);
    expect(fs.readFileSync(path.join(clone, 'notes', 'notes', '1.md'), 'utf8')).toBe(`---\nfolder_id: 1\ntitle: "note 0"\n---\n${'body of note 0 '.repeat(5)}`);
    expect(fs.readdirSync(path.join(clone, 'wiki', 'pages')).sort()).toEqual(['%2Ehidden.md', '%342.md', '%43ase.md', '%48ello%20%57orld.md', '.gitattributes', 'case.md', 'na%C3%AFve%2F%C3%BCn%C3%AFcode.md']);
    // git stored the CRLF inside the body as it is.
    expect(fs.readFileSync(path.join(clone, 'wiki', 'pages', '%48ello%20%57orld.md'), 'utf8')).toMatch(/# Heading\r\nno final newline$/);
    expect(fs.readFileSync(path.join(clone, 'wiki', 'pages', '%2Ehidden.md'), 'utf8')).toMatch(/\ncontent: null\n---\n$/);

    const fresh = path.join(work, 'fresh');
    const imported = await syncImport(loadConfig(fresh), clone);
    expect(imported.databases.map((d) => [d.name, d.rows])).toEqual([
      ['notes', { folders: 3, notes: 12 }],
      ['wiki', { pages: 6, tags: 2 }],
    ]);
    for (const [dbName, table, order] of [['notes', 'notes', 'id'], ['notes', 'folders', 'id'], ['wiki', 'pages', 'slug'], ['wiki', 'tags', 'page, tag']] as const) {
      const src = typedRows(path.join(root, 'db', `${dbName}.db`), table, order);
      expect(src.length).toBeGreaterThan(0);
      expect(typedRows(path.join(fresh, 'db', `${dbName}.db`), table, order), `${dbName}.${table}`).toEqual(src);
    }
  });

  it('remote edits made by plain git (a body, a front-matter field, a new file, a deleted file) are pulled into the database', async () => {
    await pushDocuments();
    remoteEdit((clone) => {
      const dir = path.join(clone, 'notes', 'notes');
      fs.writeFileSync(path.join(dir, '4.md'), fs.readFileSync(path.join(dir, '4.md'), 'utf8').replace(BODY, 'rewritten on GitHub\n\n---\nwith a rule\n'));
      fs.writeFileSync(path.join(dir, '5.md'), fs.readFileSync(path.join(dir, '5.md'), 'utf8').replace('title: "note 4"', 'title: "edited title"'));
      fs.writeFileSync(path.join(dir, '100.md'), '---\nfolder_id: 2\ntitle: "new on GitHub"\n---\nhello from GitHub\n');
      fs.rmSync(path.join(dir, '2.md'));
      // A REAL becomes an INTEGER in a column without a declared type: the type comes through too.
      const page = path.join(clone, 'wiki', 'pages', '%342.md');
      fs.writeFileSync(page, fs.readFileSync(page, 'utf8').replace('anything: 1.0\n', 'anything: 7\n'));
    });
    const r = await syncPull(loadConfig(root));
    expect(r).toMatchObject({ status: 'applied', conflicts: [], rejected: [] });
    expect(r.applied).toEqual({ 'notes.notes': { upserts: 3, deletes: 1 }, 'wiki.pages': { upserts: 1, deletes: 0 } });
    const wiki = new Database(path.join(root, 'db', 'wiki.db'), { readonly: true });
    expect(wiki.prepare("SELECT anything, typeof(anything) FROM pages WHERE slug = '42'").raw(true).get()).toEqual([7, 'integer']);
    wiki.close();
    expect(noteRow(4)).toEqual({ title: 'note 3', body: 'rewritten on GitHub\n\n---\nwith a rule\n' });
    expect(noteRow(5)).toEqual({ title: 'edited title', body: 'body of note 4 '.repeat(5) });
    expect(noteRow(100)).toEqual({ title: 'new on GitHub', body: 'hello from GitHub\n' });
    expect(noteRow(2)).toBeUndefined();
    // The database now matches the remote byte for byte: nothing to push.
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('the same row edited on both sides is a conflict with both versions; the rest is applied; push still refuses', async () => {
    await pushDocuments();
    remoteEdit((clone) => {
      const dir = path.join(clone, 'notes', 'notes');
      fs.writeFileSync(path.join(dir, '5.md'), fs.readFileSync(path.join(dir, '5.md'), 'utf8').replace('title: "note 4"', 'title: "theirs"'));
      fs.writeFileSync(path.join(dir, '6.md'), fs.readFileSync(path.join(dir, '6.md'), 'utf8').replace(BODY, 'remote only\n'));
    });
    sql("UPDATE notes SET title = 'ours' WHERE id = 5");
    const r = await syncPull(loadConfig(root));
    expect(r.status).toBe('conflicts');
    expect(r.conflicts).toEqual([
      {
        table: 'notes.notes',
        key: '{"id":5}',
        path: 'notes/notes/5.md',
        base: expect.stringMatching(/"title":"note 4"/),
        ours: expect.stringMatching(/"title":"ours"/),
        theirs: expect.stringMatching(/"title":"theirs"/),
      },
    ]);
    expect(noteRow(5)!.title).toBe('ours');
    expect(noteRow(6)!.body).toBe('remote only\n');
    const head = git(work, '--git-dir', bare, 'rev-parse', 'trunk');
    expect((await syncPush(loadConfig(root))).status).toBe('remote_changed');
    expect(remoteFile('notes/notes/5.md', head)).toMatch(/title: "theirs"/);
  });

  it("a deleted row's file is pruned in the same commit as another change; dropping the mapping swaps the files in one commit", async () => {
    await pushDocuments();
    const before = commits();
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
    sql("DELETE FROM notes WHERE id = 7; UPDATE notes SET body = 'edited' WHERE id = 3;");
    const second = await syncPush(loadConfig(root));
    expect(second.status).toBe('pushed');
    expect(commits()).toBe(before + 1);
    const changed = git(work, '--git-dir', bare, 'show', '--name-status', '--format=', 'trunk').split('\n');
    expect(changed).toEqual(expect.arrayContaining(['D\tnotes/notes/7.md', 'M\tnotes/notes/3.md', 'M\tmanifest.json']));
    expect(git(work, '--git-dir', bare, 'ls-tree', '--name-only', 'trunk', 'notes/notes/')).not.toMatch(/notes\/notes\/7\.md/);
    expect(remoteFile('notes/notes/3.md')).toMatch(/\n---\nedited$/);

    // Without the mapping the table is JSONL again: every .md goes, the .jsonl comes, in one commit.
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
    const third = await syncPush(loadConfig(root));
    expect(third.status).toBe('pushed');
    expect(commits()).toBe(before + 2);
    const tree = git(work, '--git-dir', bare, 'ls-tree', '-r', '--name-only', 'trunk');
    expect(tree).not.toMatch(/notes\/notes\//);
    expect(tree).toMatch(/^notes\/notes\.jsonl$/m);
  });

  it('a malformed front matter on the remote is rejected with its path and line; nothing from that table is applied', async () => {
    await pushDocuments();
    remoteEdit((clone) => {
      const dir = path.join(clone, 'notes', 'notes');
      fs.writeFileSync(path.join(dir, '1.md'), fs.readFileSync(path.join(dir, '1.md'), 'utf8').replace('title: "note 0"', 'title: "changed"'));
      fs.writeFileSync(path.join(dir, '3.md'), '---\nfolder_id: 3\ntitle: "note 2\n---\nbody\n');
    });
    const r = await syncPull(loadConfig(root));
    expect(r.status).toBe('conflicts');
    expect(r.rejected).toEqual([{ path: 'notes/notes/3.md', reason: expect.stringMatching(/^notes\/notes\/3\.md line 4: the front matter is not valid YAML/) }]);
    expect(r.applied).toEqual({});
    expect(noteRow(1)!.title).toBe('note 0');
  });

  it('import refuses a clone with a malformed document, naming the path and line, and imports nothing', async () => {
    await pushDocuments();
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const page = path.join(clone, 'wiki', 'pages', 'case.md');
    fs.writeFileSync(page, fs.readFileSync(page, 'utf8').replace('n: 8', 'n: 8\nauthor: "me"'));
    const fresh = path.join(work, 'fresh');
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/wiki\/pages\/case\.md line 4: unknown column author/);
    fs.writeFileSync(page, '---\ntitle: "no end"\n');
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/wiki\/pages\/case\.md line 1: the front matter opened here is never closed/);
    // No database and no half-built temp file is left behind.
    expect(fs.existsSync(path.join(fresh, 'db')) ? fs.readdirSync(path.join(fresh, 'db')) : []).toEqual([]);
  });

  it('status counts document rows changed on each side', async () => {
    await pushDocuments();
    sql("UPDATE notes SET title = 'x' WHERE id = 1; DELETE FROM notes WHERE id = 2");
    remoteEdit((clone) => {
      const dir = path.join(clone, 'notes', 'notes');
      fs.writeFileSync(path.join(dir, '10.md'), `${fs.readFileSync(path.join(dir, '10.md'), 'utf8')} more`);
      fs.writeFileSync(path.join(dir, '200.md'), '---\n---\nnew\n');
    });
    const s = await syncStatus(loadConfig(root));
    expect(s).toMatchObject({ behind: 1, local_changes: { 'notes/notes/': 2 }, remote_changes: { 'notes/notes/': 2 } });
  });
});

describe('materialize with documents', () => {
  it('is deterministic, and the per-file cap applies per document', () => {
    const db = new Database(path.join(root, 'db', 'wiki.db'));
    db.prepare("UPDATE pages SET content = ? WHERE slug = 'case'").run('x'.repeat(5000));
    db.close();
    const dbs = loadConfig(root).databases;
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    materialize(a, dbs, { exclude: [], maxFileBytes: 1e9, documents: DOCUMENTS });
    materialize(b, dbs, { exclude: [], maxFileBytes: 1e9, documents: DOCUMENTS });
    const files = treeFiles(a);
    expect(files).toEqual(expect.arrayContaining(['manifest.json', 'notes/notes/12.md', 'wiki/pages/case.md', 'wiki/pages/.gitattributes']));
    expect(treeFiles(b)).toEqual(files);
    for (const f of files) expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).toBe(true);

    const capped = path.join(work, 'capped');
    const m = materialize(capped, dbs, { exclude: ['notes.folders'], maxFileBytes: 4000, documents: DOCUMENTS });
    expect(m.skipped).toEqual([
      { path: 'notes/folders.jsonl', reason: 'excluded by sync.github.exclude_tables' },
      { path: 'wiki/pages/case.md', reason: 'larger than the per-file cap of 3.9 KiB' },
    ]);
    expect(m.databases.wiki!.tables.pages).toMatchObject({ format: 'documents', rows: 5 });
    expect(fs.existsSync(path.join(capped, 'wiki', 'pages', 'case.md'))).toBe(false);
    expect(fs.existsSync(path.join(capped, 'wiki', 'pages', '%43ase.md'))).toBe(true);
  });

  it('rows whose key cannot be a file name are listed in skipped; the other rows are written', () => {
    const db = new Database(path.join(root, 'db', 'wiki.db'));
    // A rowid table with an untyped primary key takes any value, NULL included (an SQLite quirk).
    db.exec('CREATE TABLE odd (k PRIMARY KEY, body TEXT)');
    const insert = db.prepare('INSERT INTO odd VALUES (?, ?)');
    for (const row of [[null, 'a'], [1.5, 'b'], [Buffer.from('k'), 'c'], ['ok', 'd'], [3n, 'e'], ['x'.repeat(300), 'f']]) insert.run(...row);
    db.close();
    const out = path.join(work, 'odd');
    const m = materialize(out, loadConfig(root).databases, { exclude: [], maxFileBytes: 1e9, documents: { 'wiki.odd': { body: 'body' } } });
    expect(m.databases.wiki!.tables.odd).toEqual({ dir: 'wiki/odd/', format: 'documents', key: 'k', body: 'body', rows: 2 });
    expect(m.skipped).toEqual([
      { path: 'wiki/odd/', reason: 'row {"k":null}: a NULL key cannot be a file name (only integers and text)' },
      { path: 'wiki/odd/', reason: 'row {"k":1.5}: a real key cannot be a file name (only integers and text)' },
      { path: 'wiki/odd/', reason: `row {"k":"${'x'.repeat(61)}…: the key is 300 characters once encoded, over the limit of 200 for a file name` },
      { path: 'wiki/odd/', reason: 'row {"k":{"$base64":"aw=="}}: a blob key cannot be a file name (only integers and text)' },
    ]);
    expect(fs.readdirSync(path.join(out, 'wiki', 'odd')).sort()).toEqual(['.gitattributes', '3.md', 'ok.md']);
    expect(m.warnings).toBeUndefined();
  });
});

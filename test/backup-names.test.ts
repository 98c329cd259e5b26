import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { readLastRun } from '../src/backup/last-run.js';
import { validateManifest } from '../src/snapshot/manifest.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { CLI, makeNotesDb, rmrf, tableCounts, tempRoot } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot('wb-names-');
});
afterEach(() => rmrf(root));

const db = (rel: string) => path.join(root, 'db', rel);
const manifestOf = (id: string) => validateManifest(JSON.parse(fs.readFileSync(listLocalSnapshots(root).find((s) => s.id === id)!.manifestPath, 'utf8')));

describe('databases whose file names differ only in characters an old name mapping dropped', () => {
  it('db/émile.db, db/xmile.db and db/keep.db: all three are backed up, in each of 5 runs, under three names', async () => {
    makeNotesDb(db('émile.db'), 3);
    makeNotesDb(db('xmile.db'), 4);
    makeNotesDb(db('keep.db'), 5);
    const seen: string[][] = [];
    for (let run = 0; run < 5; run++) {
      const result = await runBackup(loadConfig(root), { manual: true });
      expect(result.skipped).toEqual([]);
      seen.push(result.databases.map((d) => d.name));
      expect(result.databases.map((d) => d.rows.notes).sort()).toEqual([3, 4, 5]);
      expect(readLastRun(root)).toMatchObject({ ok: true, databases: 3, skipped: [] });
    }
    expect(seen.every((names) => JSON.stringify(names) === JSON.stringify(seen[0]))).toBe(true);
    expect([...seen[0]!].sort()).toEqual(['%C3%A9mile', 'keep', 'xmile']);
    // The archive entries keep the three apart too, and name each file safely.
    const latest = listLocalSnapshots(root)[0]!;
    expect(manifestOf(latest.id).databases.map((d) => d.file).sort()).toEqual(['databases/%25%433%25%419mile/%C3%A9mile.db', 'databases/keep/keep.db', 'databases/xmile/xmile.db']);
  });

  it('a file under db/ that is not a database is skipped with the reason; the others are backed up and it is listed everywhere', async () => {
    makeNotesDb(db('a.db'), 3);
    fs.writeFileSync(db('junk.db'), 'this is not a database, just text that ends in .db');
    makeNotesDb(db('z.db'), 4);
    const result = await runBackup(loadConfig(root));
    expect(result.databases.map((d) => d.name)).toEqual(['a', 'z']);
    expect(result.skipped).toEqual([{ name: 'junk', reason: expect.stringMatching(/not a SQLite database/) }]);
    expect(manifestOf(result.snapshot_id).skipped).toEqual(result.skipped);
    expect(readLastRun(root)).toMatchObject({ ok: true, databases: 2, skipped: result.skipped });
  });

  it('a corrupt database is skipped with the reason; the others are backed up', async () => {
    makeNotesDb(db('good.db'), 3);
    makeNotesDb(db('bad.db'), 200);
    // Keep the header, overwrite the pages after it: SQLite opens it and then finds it malformed.
    const fd = fs.openSync(db('bad.db'), 'r+');
    fs.writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, 4096);
    fs.closeSync(fd);
    const result = await runBackup(loadConfig(root));
    expect(result.databases.map((d) => d.name)).toEqual(['good']);
    expect(result.skipped).toEqual([{ name: 'bad', reason: expect.stringMatching(/corrupt|malformed|not a SQLite/) }]);
    expect(readLastRun(root)?.skipped).toEqual(result.skipped);
  });
});

describe('databases under db/ that are symbolic links', () => {
  it('a database that is a symbolic link to the real file is backed up through the link, named after the link, and said so', async () => {
    const real = path.join(root, 'elsewhere', 'real-notes.db');
    makeNotesDb(real, 6);
    fs.mkdirSync(db(''), { recursive: true });
    fs.symlinkSync(real, db('notes.db'));
    // Alone under db/: it used to be "nothing to back up".
    const config = loadConfig(root);
    expect(config.databases).toEqual([{ name: 'notes', path: db('notes.db') }]);
    const result = await runBackup(config);
    expect(result.databases).toEqual([expect.objectContaining({ name: 'notes', via_link: true, rows: expect.objectContaining({ notes: 6 }) })]);
    expect(manifestOf(result.snapshot_id).databases[0]).toMatchObject({ name: 'notes', file: 'databases/notes/notes.db', via_link: true });
    // The link itself is untouched.
    expect(fs.lstatSync(db('notes.db')).isSymbolicLink()).toBe(true);
    expect(tableCounts(real).notes).toBe(6);

    const printed = execFileSync(process.execPath, [CLI, '--root', root, 'now'], { encoding: 'utf8' });
    expect(printed).toMatch(/^ {2}notes .* rows .*\(via link\)$/m);
  });

  it('a dangling link and a link loop are skipped with the reason; the other databases are backed up', async () => {
    makeNotesDb(db('real.db'), 2);
    fs.symlinkSync(path.join(root, 'gone.db'), db('dangling.db'));
    fs.symlinkSync(db('loop-b.db'), db('loop-a.db'));
    fs.symlinkSync(db('loop-a.db'), db('loop-b.db'));
    const config = loadConfig(root);
    expect(config.databases.map((d) => d.name)).toEqual(['real']);
    const result = await runBackup(config);
    expect(result.databases.map((d) => d.name)).toEqual(['real']);
    expect(result.skipped).toEqual([
      { name: 'dangling', reason: 'it is a symbolic link to a file that does not exist' },
      { name: 'loop-a', reason: 'it is a symbolic link that loops (it leads back to itself)' },
      { name: 'loop-b', reason: 'it is a symbolic link that loops (it leads back to itself)' },
    ]);
    expect(manifestOf(result.snapshot_id).skipped).toEqual(result.skipped);
    expect(readLastRun(root)?.skipped).toEqual(result.skipped);
  });
});

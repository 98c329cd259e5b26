import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { runRestore } from '../src/restore/restore.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { forge, sha256, type Forge } from './support/snapshot-forge.js';

/**
 * Whoever can write the remote can rewrite a snapshot's manifest and checksums so that they agree
 * (test/support/snapshot-forge.ts does exactly that). Every name, path and number in the manifest
 * must then be refused with the reason, the live data left byte-identical, and --undo still work.
 */
const run = promisify(execFile);

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-hostile-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
type Entry = Record<string, unknown>;
type Manifest = ReturnType<Forge['manifest']>;

/** Everything a hostile restore could damage: the databases, the config, the snapshot records. */
function state(): Record<string, string | null> {
  const files = ['db/a.db', 'db/a.db-wal', 'db/b.db', 'db/b.db-wal', 'wb-backup.yaml', 'backups/last_run.json', 'x'];
  const out: Record<string, string | null> = Object.fromEntries(files.map((f) => [f, fs.existsSync(path.join(root, f)) ? sha256(path.join(root, f)) : null]));
  out.rootEntries = fs.readdirSync(root).sort().join(',');
  out.outside = fs.readdirSync(work).sort().join(',');
  return out;
}

/**
 * a (schema 2) and b, backed up; then a row added to a and a consented restore, so that a safety
 * copy holding the row exists for --undo; then the latest snapshot is forged.
 */
async function setUp(): Promise<Forge> {
  makeNotesDb(live('a'), 20, 2);
  makeNotesDb(live('b'), 10, 1);
  fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'backup:\n  lock_wait_ms: 3000\n');
  await runBackup(loadConfig(root));
  const db = new Database(live('a'));
  db.exec("INSERT INTO notes(folder_id, title, body) VALUES (1, 'kept by the undo copy', 'x')");
  db.close();
  await runRestore(loadConfig(root), { snapshotId: 'latest', consent: async () => ({ granted: true }) });
  return forge(root, work);
}

function renameInArchive(f: Forge, from: string, to: string): void {
  fs.mkdirSync(path.dirname(path.join(f.dir, to)), { recursive: true });
  fs.renameSync(path.join(f.dir, from), path.join(f.dir, to));
}

const entry = (m: Manifest, name: string) => m.databases.find((d) => d.name === name) as Entry;

const cases: Array<[string, (m: Manifest, f: Forge) => void, RegExp]> = [
  ['a database named ../../x', (m) => void (entry(m, 'a').name = '../../x'), /database name "\.\.\/\.\.\/x" is not a safe name \(it contains a path separator\)/],
  ['a database named ..', (m) => void (entry(m, 'a').name = '..'), /database name "\.\." is not a safe name/],
  ['a database name with a control character', (m) => void (entry(m, 'a').name = 'a\u0007'), /is not a safe name \(it contains a control character\)/],
  [
    'an unknown database placed at wb-backup.yaml',
    (m, f) => {
      Object.assign(entry(m, 'a'), { name: 'zz', file: 'databases/zz/wb-backup.yaml', relative_path: 'wb-backup.yaml' });
      renameInArchive(f, 'databases/a/a.db', 'databases/zz/wb-backup.yaml');
    },
    /database zz lived at "wb-backup\.yaml": it is wb-backup's own wb-backup\.yaml/,
  ],
  [
    'a known database that says it lived at wb-backup.yaml',
    (m, f) => {
      Object.assign(entry(m, 'a'), { file: 'databases/a/wb-backup.yaml', relative_path: 'wb-backup.yaml' });
      renameInArchive(f, 'databases/a/a.db', 'databases/a/wb-backup.yaml');
    },
    /database a lived at "wb-backup\.yaml": it is wb-backup's own/,
  ],
  [
    'a database placed at backups/last_run.json',
    (m, f) => {
      Object.assign(entry(m, 'b'), { file: 'databases/b/last_run.json', relative_path: 'backups/last_run.json' });
      renameInArchive(f, 'databases/b/b.db', 'databases/b/last_run.json');
    },
    /lived at "backups\/last_run\.json": it is wb-backup's own backups/,
  ],
  [
    'a database placed at restore-journal.json',
    (m, f) => {
      Object.assign(entry(m, 'b'), { file: 'databases/b/restore-journal.json', relative_path: 'restore-journal.json' });
      renameInArchive(f, 'databases/b/b.db', 'databases/b/restore-journal.json');
    },
    /it is wb-backup's own restore-journal\.json/,
  ],
  ['a relative_path whose file name differs from the archive file', (m) => void (entry(m, 'a').relative_path = 'db/other.db'), /archive file "databases\/a\/a\.db", expected "databases\/a\/other\.db"/],
  [
    'an unknown database placed outside db/',
    (m, f) => {
      Object.assign(entry(m, 'a'), { name: 'zz', file: 'databases/zz/notes.db', relative_path: 'notes.db' });
      renameInArchive(f, 'databases/a/a.db', 'databases/zz/notes.db');
    },
    /database zz, which this setup does not know, at "notes\.db": only a \.db file under db\/ can receive/,
  ],
  ['an absolute relative_path', (m) => void (entry(m, 'a').relative_path = '/etc/passwd'), /relative_path "\/etc\/passwd": it is an absolute path/],
  ['a Windows drive path', (m) => void (entry(m, 'a').relative_path = 'C:\\Windows\\a.db'), /it is an absolute path/],
  ['a relative_path that climbs', (m) => void (entry(m, 'a').relative_path = 'db/../../a.db'), /relative_path "db\/\.\.\/\.\.\/a\.db": its component "\.\." is not a plain name/],
  ['two entries with one name', (m) => void m.databases.push({ ...entry(m, 'a') }), /two databases have the name "a"/],
  ['two entries on one relative_path', (m) => void (entry(m, 'b').relative_path = 'db/a.db'), /two databases have the relative path "db\/a\.db"/],
  [
    'an unknown name aimed at the file of a known database',
    (m, f) => {
      m.databases = m.databases.filter((d) => d.name !== 'a');
      Object.assign(entry(m, 'b'), { name: 'zz', file: 'databases/zz/a.db', relative_path: 'db/a.db' });
      renameInArchive(f, 'databases/b/b.db', 'databases/zz/a.db');
      fs.rmSync(path.join(f.dir, 'databases', 'a'), { recursive: true });
    },
    /puts database zz on the file of database a \(db\/a\.db\)/,
  ],
  ['an archive file under another name', (m) => void (entry(m, 'a').file = 'databases/b/a.db'), /archive file "databases\/b\/a\.db", expected "databases\/a\/a\.db"/],
  ['an archive file that climbs', (m) => void (entry(m, 'a').file = 'databases/a/../b/b.db'), /archive file "databases\/a\/\.\.\/b\/b\.db"/],
  ['a schema version that lies (the file says 2)', (m) => void (entry(m, 'a').user_version = 1), /Refusing to restore a: its schema version \(user_version in the file\) is 2, but the manifest says 1/],
  ['a page size that lies', (m) => void Object.assign(entry(m, 'a'), { page_size: 1024, page_count: (entry(m, 'a').bytes as number) / 1024 }), /its page size is 4096, but the manifest says 1024/],
  ['a huge byte count', (m) => void (entry(m, 'a').bytes = 1e20), /MANIFEST\.json is malformed \(databases\.0\.bytes/],
  ['a negative page count', (m) => void (entry(m, 'a').page_count = -1), /MANIFEST\.json is malformed \(databases\.0\.page_count/],
  ['bytes that disagree with the pages', (m) => void (entry(m, 'a').bytes = 4096), /database a says 4096 bytes, but \d+ pages of 4096 bytes are \d+/],
  ['a negative row count', (m) => void ((entry(m, 'a').rows as Record<string, number>).notes = -5), /MANIFEST\.json is malformed \(databases\.0\.rows\.notes/],
  ['a schema version beyond 32 bits', (m) => void (entry(m, 'a').user_version = 2 ** 40), /MANIFEST\.json is malformed \(databases\.0\.user_version/],
  ['a page size that is not a power of two', (m) => void (entry(m, 'a').page_size = 3000), /MANIFEST\.json is malformed \(databases\.0\.page_size: expected a power of two/],
  ['a snapshot id that is a path', (m) => void (m.snapshot_id = '../../snap'), /MANIFEST\.json is malformed \(snapshot_id/],
];

describe('a forged snapshot whose manifest and checksums agree', () => {
  it.each(cases)('%s: refused with the reason; live data byte-identical; --undo still works', async (_label, mutate, reason) => {
    const f = await setUp();
    const m = f.manifest();
    mutate(m, f);
    f.writeManifest(m);
    await f.seal();
    const before = state();

    const err = await runRestore(loadConfig(root), { snapshotId: 'latest', consent: async () => ({ granted: true }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect(describeError(err)).toMatch(reason);
    expect(describeError(err)).toMatch(/Nothing was (changed|restored)/);
    expect(state()).toEqual(before);
    // The dry run refuses the same way, over the CLI too.
    const dry = await run(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--dry-run']).catch((e: { stderr: string; code: number }) => e);
    expect((dry as { code: number }).code).toBe(1);
    expect((dry as { stderr: string }).stderr).toMatch(reason);
    expect(state()).toEqual(before);

    // The earlier restore can still be undone, with the configuration intact.
    const undo = await run(process.execPath, [CLI, '--root', root, 'restore', '--undo', '--yes']);
    expect(undo.stdout).toMatch(/undone/);
    const db = new Database(live('a'), { readonly: true });
    expect(db.prepare('SELECT count(*) FROM notes WHERE title = ?').pluck().get('kept by the undo copy')).toBe(1);
    db.close();
  });

  it('an unknown database whose folder under db/ is a link out of it: refused', async () => {
    const f = await setUp();
    fs.mkdirSync(path.join(work, 'elsewhere'));
    fs.symlinkSync(path.join(work, 'elsewhere'), path.join(root, 'db', 'link'));
    const m = f.manifest();
    Object.assign(entry(m, 'a'), { name: 'zz', file: 'databases/zz/zz.db', relative_path: 'db/link/zz.db' });
    renameInArchive(f, 'databases/a/a.db', 'databases/zz/zz.db');
    f.writeManifest(m);
    await f.seal();
    const before = state();
    await expect(runRestore(loadConfig(root), { snapshotId: 'latest', databases: ['zz'], consent: async () => ({ granted: true }) })).rejects.toThrow(
      /at "db\/link\/zz\.db", whose folder leads out of db\/ through a link/,
    );
    expect(state()).toEqual(before);
    expect(fs.readdirSync(path.join(work, 'elsewhere'))).toEqual([]);
  });

  it('an unknown database at a fresh .db path under db/ is restored there (the one place it may go)', async () => {
    const f = await setUp();
    const m = f.manifest();
    Object.assign(entry(m, 'a'), { name: 'zz', file: 'databases/zz/zz.db', relative_path: 'db/sub/zz.db' });
    renameInArchive(f, 'databases/a/a.db', 'databases/zz/zz.db');
    f.writeManifest(m);
    await f.seal();
    const done = await runRestore(loadConfig(root), { snapshotId: 'latest', databases: ['zz'], consent: async () => ({ granted: true }) });
    expect(done.databases).toMatchObject([{ name: 'zz', target: 'db/sub/zz.db', live_exists: false }]);
    expect(fs.existsSync(path.join(root, 'db', 'sub', 'zz.db'))).toBe(true);
  });
});

describe('a download from the remote', () => {
  it('never replaces a file this machine has: a local manifest with the same name is kept and the restore is refused', async () => {
    const { DirRemote } = await import('../src/remote/dir/dir-remote.js');
    const { writeConfigFile } = await import('../src/root/config.js');
    const { deleteLocalSnapshot } = await import('../src/snapshot/store.js');
    const nas = path.join(work, 'nas');
    fs.mkdirSync(nas);
    makeNotesDb(live('a'), 5);
    writeConfigFile(root, { remote: { dir: { path: nas } } });
    const made = await runBackup(loadConfig(root));
    deleteLocalSnapshot(root, made.snapshot_id);
    // A file of the same name this machine holds (say, kept by hand): the download must not overwrite it.
    const mine = path.join(root, 'backups', `${made.snapshot_id}.manifest.json`);
    fs.writeFileSync(mine, 'my own notes\n');
    const before = state();
    const err = await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, remote: new DirRemote(nas), consent: async () => ({ granted: true }) }).catch((e: unknown) => e);
    expect(describeError(err)).toMatch(new RegExp(`Downloading snapshot ${made.snapshot_id} .*${made.snapshot_id}\\.manifest\\.json already exists in backups/ and is kept as it is.*Nothing was changed`));
    expect(fs.readFileSync(mine, 'utf8')).toBe('my own notes\n');
    expect(state()).toEqual(before);
    expect(fs.readdirSync(path.join(root, 'backups')).filter((n) => n.includes('.download'))).toEqual([]);
    // Once the user moves it away, the same restore works.
    fs.rmSync(mine);
    const done = await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, remote: new DirRemote(nas), consent: async () => ({ granted: true }) });
    expect(done.snapshot_id).toBe(made.snapshot_id);
  });
});

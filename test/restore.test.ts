import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { runRestore, type RestoreOptions } from '../src/restore/restore.js';
import { extractArchive } from '../src/restore/extract.js';
import { runUndo } from '../src/restore/undo.js';
import { dumpTables, fileState } from './support/db-snapshot.js';
import { extractWithSystemTar, integrityCheck, makeNotesDb, REPO_ROOT, rmrf, tempRoot, waitFor } from './support/fixtures.js';
import { forge, sha256 } from './support/snapshot-forge.js';

let root: string;
let work: string;
beforeEach(() => {
  root = tempRoot();
  work = tempRoot('wb-work-');
});
afterEach(() => {
  rmrf(root);
  rmrf(work);
});

const yes = async () => ({ granted: true }) as const;
const live = (name: string) => path.join(root, 'db', `${name}.db`);

async function setUp(): Promise<string> {
  makeNotesDb(live('a'), 40, 2);
  makeNotesDb(live('b'), 15, 1);
  const { snapshot_id } = await runBackup(loadConfig(root));
  return snapshot_id;
}

function mutateLive(): void {
  const db = new Database(live('a'));
  db.exec("UPDATE notes SET title = 'changed' WHERE id <= 5; DELETE FROM notes WHERE id > 30; INSERT INTO folders(name) VALUES ('new')");
  db.close();
}

function restore(opts: Partial<RestoreOptions> = {}) {
  return runRestore(loadConfig(root), { snapshotId: 'latest', consent: yes, ...opts });
}

function leftovers(): string[] {
  return fs.readdirSync(root).filter((n) => n.startsWith('db.staging_') || n === 'restore-journal.json');
}

/** The refusal contract: a clear error, live files byte-identical, no staging left. */
async function expectRefusal(pattern: RegExp, opts: Partial<RestoreOptions> = {}): Promise<WbError> {
  const before = { a: fileState(live('a')), b: fileState(live('b')) };
  const err = await restore(opts).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WbError);
  expect(describeError(err)).toMatch(pattern);
  expect(describeError(err)).toMatch(/Nothing was (restored|changed)|upgrade wb-backup|Use another snapshot/);
  expect({ a: fileState(live('a')), b: fileState(live('b')) }).toEqual(before);
  expect(leftovers()).toEqual([]);
  expect(fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'))).toEqual([]);
  return err as WbError;
}

describe('restore round trip', () => {
  it('brings back exactly the snapshot content after rows were changed and deleted', async () => {
    const id = await setUp();
    const expected = { a: dumpTables(live('a')), b: dumpTables(live('b')) };
    mutateLive();
    expect(dumpTables(live('a'))).not.toEqual(expected.a);
    const result = await restore({ snapshotId: id });
    expect(result.databases.map((d) => d.name)).toEqual(['a', 'b']);
    expect(dumpTables(live('a'))).toEqual(expected.a);
    expect(dumpTables(live('b'))).toEqual(expected.b);
    expect(integrityCheck(live('a'))).toBe('ok');
    expect(result.pre_restore_dir).toMatch(/^db\.pre_restore_/);
    // The replaced files are kept, with the changes that were made.
    const kept = path.join(root, result.pre_restore_dir!, 'a', 'a.db');
    expect(dumpTables(kept).notes).toHaveLength(30);
    expect(leftovers()).toEqual([]);
  });

  it('restores only the databases asked for and leaves the others byte-identical', async () => {
    await setUp();
    mutateLive();
    const db = new Database(live('b'));
    db.exec('DELETE FROM notes');
    db.close();
    const bBefore = fileState(live('b'));
    const result = await restore({ databases: ['a'] });
    expect(result.databases.map((d) => d.name)).toEqual(['a']);
    expect(fileState(live('b'))).toEqual(bBefore);
    expect(dumpTables(live('a')).notes).toHaveLength(40);
  });

  it('a dry run verifies and plans, changes nothing, and returns a confirm token', async () => {
    await setUp();
    mutateLive();
    const before = fileState(live('a'));
    const plan = await restore({ dryRun: true, consent: undefined });
    expect(plan.dry_run).toBe(true);
    expect(plan.confirm_token).toMatch(/^wbc_restore_/);
    expect(plan.databases.find((d) => d.name === 'a')).toMatchObject({ target: path.join('db', 'a.db'), from_user_version: 2, to_user_version: 2, live_exists: true, rows: { folders: 3, notes: 40 } });
    expect(fileState(live('a'))).toEqual(before);
    expect(leftovers()).toEqual([]);
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'))).toEqual([]);
  });

  it('runs the migrations ladder on the staged copy, each raising user_version', async () => {
    await setUp();
    const mig = path.join(root, 'migrations', 'a');
    fs.mkdirSync(mig, { recursive: true });
    fs.writeFileSync(path.join(mig, '001_init.sql'), '-- already applied in the snapshot');
    fs.writeFileSync(path.join(mig, '002_index.sql'), '-- already applied');
    fs.writeFileSync(path.join(mig, '003_tags.sql'), "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO tags(name) VALUES ('a'), ('b');");
    fs.writeFileSync(path.join(mig, '004_flag.sql'), 'ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;');
    writeConfigFile(root, { databases: { a: { path: 'db/a.db', migrations: 'migrations/a' }, b: { path: 'db/b.db' } } });
    const result = await restore({ databases: ['a'] });
    expect(result.databases[0]).toMatchObject({ from_user_version: 2, to_user_version: 4, migrations_applied: ['003_tags.sql', '004_flag.sql'] });
    expect(result.databases[0]!.rows).toEqual({ folders: 3, notes: 40, tags: 2 });
    const db = new Database(live('a'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(4);
    db.close();
  });

  it('--undo puts back what the restore replaced', async () => {
    await setUp();
    mutateLive();
    const changed = dumpTables(live('a'));
    await restore();
    expect(dumpTables(live('a'))).not.toEqual(changed);
    await runUndo(loadConfig(root), { consent: yes });
    expect(dumpTables(live('a'))).toEqual(changed);
    expect(integrityCheck(live('a'))).toBe('ok');
  });

  it('restores a gzip snapshot (compression.codec: gzip) the same way', async () => {
    writeConfigFile(root, { compression: { codec: 'gzip' } });
    await setUp();
    const before = dumpTables(live('a'));
    mutateLive();
    const done = await restore();
    expect(done.snapshot_id).toMatch(/^snap-/);
    expect(fs.readdirSync(path.join(root, 'backups')).some((n) => n.endsWith('.tar.gz'))).toBe(true);
    expect(dumpTables(live('a'))).toEqual(before);
    expect(integrityCheck(live('a'))).toBe('ok');
  });

  it('a folder an interrupted background deletion left behind is removed by the next restore', async () => {
    await setUp();
    const leftover = path.join(root, 'db.discard_db.pre_restore_2026-01-01T00-00-00-000Z');
    fs.mkdirSync(path.join(leftover, 'a'), { recursive: true });
    fs.writeFileSync(path.join(leftover, 'a', 'a.db'), 'half-deleted');
    await restore();
    await waitFor(() => !fs.existsSync(leftover), 'the leftover discard folder to be deleted');
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'))).toHaveLength(1);
  });

  it('keeps only the 3 newest pre_restore folders', async () => {
    await setUp();
    for (let i = 0; i < 5; i++) await restore();
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'))).toHaveLength(3);
    // the older ones are deleted in the background, leaving nothing behind
    await waitFor(() => !fs.readdirSync(root).some((n) => n.startsWith('db.discard_')), 'the old pre_restore folders to be deleted');
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.'))).toHaveLength(3);
  });
});

describe('restore refusals (live databases untouched, no staging left)', () => {
  it('refuses without consent', async () => {
    await setUp();
    mutateLive();
    const err = await expectRefusal(/not performed: you said no/, { consent: async () => ({ granted: false, reason: 'you said no' }) });
    expect(err.code).toBe('consent_required');
  });

  it('a snapshot id that does not exist', async () => {
    const id = await setUp();
    const before = fileState(live('a'));
    const err = await restore({ snapshotId: 'snap-1999-01-01T00-00-00Z' }).catch((e: unknown) => e);
    expect((err as WbError).code).toBe('not_found');
    expect(describeError(err)).toContain(`No snapshot with id "snap-1999-01-01T00-00-00Z" exists. Known snapshots (newest first): ${id}`);
    expect(fileState(live('a'))).toEqual(before);
    expect(leftovers()).toEqual([]);
  });

  it('archive checksum mismatch (one flipped byte)', async () => {
    await setUp();
    mutateLive();
    const snap = forge(root, work).snapshot;
    const bytes = fs.readFileSync(snap.archivePath);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    fs.writeFileSync(snap.archivePath, bytes);
    await expectRefusal(/Checksum mismatch/);
  });

  it('a snapshot whose checksum file is missing', async () => {
    await setUp();
    fs.rmSync(forge(root, work).snapshot.checksumPath);
    await expectRefusal(/no checksum file.*cannot be verified/s);
  });

  it('unknown manifest_version', async () => {
    await setUp();
    const f = forge(root, work);
    f.writeManifest({ ...f.manifest(), manifest_version: 99 });
    await f.seal();
    const err = await expectRefusal(/manifest_version 99.*upgrade wb-backup/s);
    expect(err.code).toBe('manifest_invalid');
  });

  it('forward schema version (snapshot from newer code)', async () => {
    makeNotesDb(live('a'), 10, 5);
    await runBackup(loadConfig(root));
    // The code on this machine is older: its database and its migrations stop at version 2.
    fs.rmSync(live('a'));
    makeNotesDb(live('a'), 3, 1);
    const mig = path.join(root, 'migrations');
    fs.mkdirSync(mig);
    fs.writeFileSync(path.join(mig, '001_a.sql'), 'SELECT 1;');
    fs.writeFileSync(path.join(mig, '002_b.sql'), 'SELECT 1;');
    writeConfigFile(root, { databases: { a: { path: 'db/a.db', migrations: 'migrations' } } });
    makeNotesDb(live('b'), 1); // untouched bystander for expectRefusal
    await expectRefusal(/schema version 5 is newer.*Upgrade/s);
  });

  for (const [label, entry, pattern] of [
    ['an entry climbing out with ../', '../escape.txt', /climbs out/],
    ['an absolute path', '__ABS__', /absolute path/],
    ['a symlink', 'databases/a/link', /symbolic link/],
  ] as const) {
    it(`a hostile archive entry: ${label}`, async () => {
      await setUp();
      const f = forge(root, work);
      const src = path.join(work, 'src', 'inner');
      fs.mkdirSync(path.join(src, 'databases', 'a'), { recursive: true });
      fs.writeFileSync(path.join(work, 'src', 'escape.txt'), 'pwned');
      fs.symlinkSync('/etc/passwd', path.join(src, 'databases', 'a', 'link'));
      const abs = path.join(work, 'src', 'escape.txt');
      await f.seal({ extraEntries: { cwd: src, paths: [entry === '__ABS__' ? abs : entry] } });
      await expectRefusal(pattern);
      expect(fs.existsSync(path.join(root, 'escape.txt'))).toBe(false);
    });
  }

  it('an entry larger than its manifest announces (a tarball that would fill the disk)', async () => {
    await setUp();
    const f = forge(root, work);
    const m = f.manifest();
    // consistent with its page count, so that the archive entry's size is what gives it away
    Object.assign(m.databases.find((d) => d.name === 'a')!, { bytes: 4096, page_count: 1 });
    f.writeManifest(m);
    await f.seal();
    await expectRefusal(/entry "databases\/a\/a\.db" is \d+ bytes, the manifest says 4096/);
  });

  const canMount = process.getuid?.() === 0;
  it.runIf(canMount)('a disk without room to stage: refused before anything is written, then works once space is freed', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', root]);
    try {
      await setUp();
      mutateLive();
      const st = fs.statfsSync(root);
      const filler = path.join(root, 'filler');
      fs.writeFileSync(filler, Buffer.alloc(st.bavail * st.bsize - 8192));
      const err = await expectRefusal(/Not enough free space to restore: staging needs .* [KMG]iB .* has .* [KMGT]?i?B free/s);
      expect(err.code).toBe('disk_full');
      expect(err.hint).toMatch(/Free some space/);
      fs.rmSync(filler);
      const done = await restore();
      expect(done.databases.map((d) => d.name)).toEqual(['a', 'b']);
      expect(integrityCheck(live('a'))).toBe('ok');
    } finally {
      execFileSync('umount', ['-l', root]);
    }
  });

  it.runIf(canMount)('a disk that fills up mid-unpack: a disk_full error, and the caller can discard what was staged', async () => {
    makeNotesDb(live('big'), 3000);
    await runBackup(loadConfig(root));
    const snap = forge(root, work);
    const m = snap.manifest();
    const into = path.join(work, 'small');
    fs.mkdirSync(into);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32k', 'tmpfs', into]);
    try {
      const expected = new Map<string, number>([...m.databases.map((d) => [String(d.file), Number(d.bytes)] as const), ['MANIFEST.json', fs.statSync(snap.snapshot.manifestPath).size]]);
      const err = await extractArchive(snap.snapshot.archivePath, snap.snapshot.codec, path.join(into, 'staging'), { expected }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('disk_full');
      expect(describeError(err)).toMatch(/ran out of space while unpacking databases\/big\/big\.db.*Nothing was restored/s);
    } finally {
      execFileSync('umount', ['-l', into]);
    }
  });

  it('a staged database that fails integrity_check (a corrupted page)', async () => {
    await setUp();
    const f = forge(root, work);
    const dbFile = path.join(f.dir, 'databases', 'a', 'a.db');
    const probe = new Database(dbFile, { readonly: true });
    const indexRoot = Number(probe.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'notes_by_folder'").pluck().get());
    const pageSize = Number(probe.pragma('page_size', { simple: true }));
    probe.close();
    const bytes = fs.readFileSync(dbFile);
    // Scramble the cell area of the index's root page (keep its header so SQLite still parses it).
    const start = (indexRoot - 1) * pageSize + 64;
    for (let i = start; i < start + pageSize - 128; i++) bytes[i] = (i * 7919) & 0xff;
    fs.writeFileSync(dbFile, bytes);
    const m = f.manifest();
    const entry = m.databases.find((d) => d.name === 'a')!;
    entry.sha256 = sha256(dbFile);
    entry.bytes = bytes.length;
    f.writeManifest(m);
    await f.seal();
    await expectRefusal(/Refusing to restore a: .*(integrity_check|cannot be read|malformed)/s);
  });

  it('a foreign-key violation', async () => {
    await setUp();
    const f = forge(root, work);
    const dbFile = path.join(f.dir, 'databases', 'a', 'a.db');
    const db = new Database(dbFile);
    db.pragma('foreign_keys = OFF');
    db.exec("INSERT INTO notes(folder_id, title, body) VALUES (999, 'orphan', 'x')");
    db.close();
    const m = f.manifest();
    const entry = m.databases.find((d) => d.name === 'a')!;
    entry.sha256 = sha256(dbFile);
    entry.bytes = fs.statSync(dbFile).size;
    (entry.rows as Record<string, number>).notes = 41;
    f.writeManifest(m);
    await f.seal();
    await expectRefusal(/foreign_key_check: 1 violation.*notes row 41 -> folders/s);
  });

  it('a row-count mismatch', async () => {
    await setUp();
    const f = forge(root, work);
    const m = f.manifest();
    (m.databases.find((d) => d.name === 'a')!.rows as Record<string, number>).notes = 999;
    f.writeManifest(m);
    await f.seal();
    await expectRefusal(/table notes has 40 rows, the manifest says 999/);
  });

  it('a database in use by another process (and force overrides only that)', async () => {
    await setUp();
    const holder = spawn(process.execPath, ['-e', `const D=require('better-sqlite3');const d=new D(${JSON.stringify(live('a'))});d.prepare('select 1').get();console.log('open');setInterval(()=>{},1000)`], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let said = '';
    holder.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    try {
      await waitFor(() => said.includes('open'), 'the holder to open the database');
      const err = await expectRefusal(/a \(db\/a\.db\) is in use: it is open in another process \(pid \d+\).*force/s);
      expect(err.code).toBe('in_use');
      const forced = await restore({ force: true });
      expect(forced.warnings.join(' ')).toMatch(/replaced anyway \(force\)/);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('unknown database names are refused with the list of what the snapshot holds', async () => {
    await setUp();
    const before = fileState(live('a'));
    const err = await restore({ databases: ['a', 'nope'] }).catch((e: unknown) => e);
    expect((err as WbError).code).toBe('invalid_input');
    expect(describeError(err)).toMatch(/has no database named nope.*It holds: a, b/s);
    expect(fileState(live('a'))).toEqual(before);
    expect(leftovers()).toEqual([]);
  });
});

describe('archive read by standard tools', () => {
  it('the snapshot a restore uses can also be restored by hand with tar + sqlite', async () => {
    await setUp();
    const f = forge(root, work);
    expect(integrityCheck(path.join(f.dir, 'databases', 'a', 'a.db'))).toBe('ok');
    extractWithSystemTar(f.snapshot.archivePath, path.join(work, 'by-hand'));
    expect(fs.existsSync(path.join(work, 'by-hand', 'MANIFEST.json'))).toBe(true);
  });
});

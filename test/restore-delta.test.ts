import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup, type BackupResult } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { runRestore, type RestoreOptions } from '../src/restore/restore.js';
import { copyPageImage } from '../src/pages/image-file.js';
import { readLocalManifest } from '../src/snapshot/chain-set.js';
import { findLocalSnapshot } from '../src/snapshot/store.js';
import { parseChecksums } from '../src/snapshot/checksums.js';
import { fileState } from './support/db-snapshot.js';
import { integrityCheck, rmrf, tempRoot } from './support/fixtures.js';

/**
 * Restoring a snapshot that stores databases as page deltas: the chain (the full image, then each
 * delta) is rebuilt in staging, verified against the sha256 of the image taken at the snapshot's
 * time, and then restored like any image. A missing or damaged base is refused before anything
 * changes.
 */
let root: string;
let work: string;
beforeEach(() => {
  root = tempRoot('wb-delta-restore-');
  work = tempRoot('wb-delta-work-');
  // Small test databases change by a large share each time: keep the chain going anyway.
  writeConfigFile(root, { backup: { incremental: { max_delta_share: 100 } } });
  hour = 0;
});
afterEach(() => {
  rmrf(root);
  rmrf(work);
});

const yes = async () => ({ granted: true }) as const;
const live = (name: string) => path.join(root, 'db', `${name}.db`);
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
let hour = 0;
/** One snapshot an hour (manual: retention keeps them all), as the sidecar takes them. */
function snapshot(opts: { full?: boolean } = {}): Promise<BackupResult> {
  const at = new Date(Date.UTC(2026, 10, 20, 0, 0, 0) + hour++ * 3600_000);
  return runBackup(loadConfig(root), { manual: true, now: () => at, ...opts });
}

function restore(opts: Partial<RestoreOptions> = {}) {
  return runRestore(loadConfig(root), { snapshotId: 'latest', consent: yes, ...opts });
}

function makeDb(file: string, rows: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  // Incremental auto-vacuum: `PRAGMA incremental_vacuum` cuts the file while changing few pages (a shrinking delta).
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const add = db.prepare('INSERT INTO notes(body) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) add.run(`note ${i} ${'x'.repeat(i % 120)}`);
  })();
  db.close();
}

function change(file: string, sql: string): void {
  const db = new Database(file);
  db.exec(sql);
  db.close();
}

/**
 * What the snapshot holds of each database: the sha256 of a consistent copy taken right after it
 * (marked as a rollback-journal database, as snapshots store their images).
 */
async function consistentCopies(names: string[], tag: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = (await copyPageImage(live(n), path.join(work, `${tag}-${n}.img`), { asRollbackJournal: true })).index.imageSha256;
  return out;
}

function leftovers(): string[] {
  return fs.readdirSync(root).filter((n) => n.startsWith('db.staging_') || n === 'restore-journal.json' || n.startsWith('db.pre_restore_'));
}

function backupsFile(id: string, suffix: string): string {
  return path.join(root, 'backups', `${id}${suffix}`);
}

function archiveOf(id: string): string {
  return findLocalSnapshot(root, id).archivePath;
}

/** Rewrites a snapshot's .sha256 line for its archive, as if the damage had been there when it was taken. */
function rehash(id: string): void {
  const file = backupsFile(id, '.sha256');
  const sums = parseChecksums(fs.readFileSync(file, 'utf8'));
  sums.set(path.basename(archiveOf(id)), sha(archiveOf(id)));
  fs.writeFileSync(file, [...sums].map(([n, h]) => `${h}  ${n}\n`).join(''));
}

describe('restoring a delta snapshot', () => {
  it('gives back each database byte-identical to the copy taken at its time, for every snapshot of a chain of deltas with inserts, updates, deletes, growth and a VACUUM', async () => {
    makeDb(live('a'), 6000);
    makeDb(live('b'), 2000);
    const taken: Array<{ id: string; kind: string; stored: Record<string, string>; sha: Record<string, string> }> = [];
    const take = async (opts: { full?: boolean } = {}) => {
      const r = await snapshot(opts);
      taken.push({ id: r.snapshot_id, kind: r.kind, stored: Object.fromEntries(r.databases.map((d) => [d.name, d.stored])), sha: await consistentCopies(['a', 'b'], r.snapshot_id) });
    };
    const pages = () => fs.statSync(live('a')).size;
    await take();
    // Grows.
    change(live('a'), "INSERT INTO notes(body) SELECT 'grown ' || id FROM notes WHERE id <= 600");
    await take();
    // Updates and deletes in a few places.
    change(live('a'), "UPDATE notes SET body = body || ' edited' WHERE id BETWEEN 100 AND 250; UPDATE notes SET body = 'short' WHERE id BETWEEN 3000 AND 3100");
    change(live('b'), 'DELETE FROM notes WHERE id BETWEEN 500 AND 900');
    await take();
    // Shrinks: rows deleted at the end, their pages given back to the file system.
    const before = pages();
    change(live('a'), 'DELETE FROM notes WHERE id > 5000; PRAGMA incremental_vacuum');
    await take();
    expect(pages()).toBeLessThan(before);
    // VACUUM rewrites every page: the pipeline stores it whole.
    change(live('a'), "UPDATE notes SET body = 'v' || body WHERE id % 2 = 0; VACUUM");
    await take();
    // Grows again on top of the VACUUMed image, and b changes once more.
    change(live('a'), "INSERT INTO notes(body) SELECT 'again ' || id FROM notes WHERE id <= 400");
    change(live('b'), "INSERT INTO notes(body) VALUES ('one more')");
    await take();
    change(live('a'), "UPDATE notes SET body = 'last' WHERE id BETWEEN 10 AND 20");
    await take();

    expect(taken.map((t) => t.kind)).toEqual(['full', 'delta', 'delta', 'delta', 'delta', 'delta', 'delta']);
    expect(taken.map((t) => t.stored.a)).toEqual(['image', 'delta', 'delta', 'delta', 'image', 'delta', 'delta']);
    // The chain really goes through several deltas: the last one's b rests on the first full.
    expect(taken.at(-1)!.stored.b).toBe('delta');

    for (const t of [...taken].reverse()) {
      const manifest = readLocalManifest(findLocalSnapshot(root, t.id))!;
      for (const n of ['a', 'b']) expect(manifest.databases.find((d) => d.name === n)!.sha256, `${t.id} ${n}`).toBe(t.sha[n]);
      const result = await restore({ snapshotId: t.id });
      expect(result.databases.map((d) => d.name).sort()).toEqual(['a', 'b']);
      for (const n of ['a', 'b']) {
        expect(sha(live(n)), `${t.id} ${n}`).toBe(t.sha[n]);
        expect(integrityCheck(live(n))).toBe('ok');
      }
      expect(fs.readdirSync(root).filter((f) => f.startsWith('db.staging_'))).toEqual([]);
    }
  });

  it('a dry run of a delta snapshot rebuilds and verifies it, and changes nothing', async () => {
    makeDb(live('a'), 3000);
    await snapshot();
    change(live('a'), "UPDATE notes SET body = 'edited' WHERE id BETWEEN 40 AND 90; INSERT INTO notes(body) VALUES ('new')");
    const delta = await snapshot();
    expect(delta.kind).toBe('delta');
    change(live('a'), 'DELETE FROM notes WHERE id < 100');
    const before = fileState(live('a'));
    const result = await restore({ dryRun: true, consent: undefined });
    expect(result.dry_run).toBe(true);
    expect(result.databases[0]!.rows.notes).toBe(3001);
    expect(fileState(live('a'))).toEqual(before);
    expect(leftovers()).toEqual([]);
    // Its confirm token performs it.
    await restore({ confirmToken: result.confirm_token!, consent: undefined });
    expect(sha(live('a'))).toBe(readLocalManifest(findLocalSnapshot(root, delta.snapshot_id))!.databases[0]!.sha256);
  });

  it('restoring only a database stored whole from a delta snapshot does not need the chain', async () => {
    makeDb(live('a'), 3000);
    makeDb(live('b'), 300);
    await snapshot();
    change(live('a'), "UPDATE notes SET body = 'x' WHERE id < 10");
    change(live('b'), 'VACUUM; DELETE FROM notes WHERE id > 200; VACUUM');
    const r = await snapshot();
    expect(r.kind).toBe('delta');
    expect(Object.fromEntries(r.databases.map((d) => [d.name, d.stored]))).toEqual({ a: 'delta', b: 'image' });
    const want = readLocalManifest(findLocalSnapshot(root, r.snapshot_id))!.databases.find((d) => d.name === 'b')!.sha256;
    const base = readLocalManifest(findLocalSnapshot(root, r.snapshot_id))!.base!;
    fs.rmSync(archiveOf(base));
    await restore({ databases: ['b'] });
    expect(sha(live('b'))).toBe(want);
  });
});

describe('refusals: a delta whose base is missing or damaged', () => {
  async function chainOfTwoDeltas(): Promise<{ full: string; middle: string; last: string }> {
    makeDb(live('a'), 3000);
    makeDb(live('b'), 200);
    const full = await snapshot();
    change(live('a'), "UPDATE notes SET body = 'mid' WHERE id BETWEEN 1000 AND 1200");
    const middle = await snapshot();
    change(live('a'), "INSERT INTO notes(body) VALUES ('last'); DELETE FROM notes WHERE id BETWEEN 10 AND 30");
    const last = await snapshot();
    expect([full.kind, middle.kind, last.kind]).toEqual(['full', 'delta', 'delta']);
    // The live databases move on: a restore would change them.
    change(live('a'), "INSERT INTO notes(body) VALUES ('after the snapshots')");
    return { full: full.snapshot_id, middle: middle.snapshot_id, last: last.snapshot_id };
  }

  /** The refusal contract: a clear error, live files byte-identical, nothing staged or left. */
  async function expectRefusal(pattern: RegExp, code: string, opts: Partial<RestoreOptions> = {}): Promise<void> {
    const before = { a: fileState(live('a')), b: fileState(live('b')) };
    const err = await restore(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe(code);
    expect(describeError(err)).toMatch(pattern);
    expect(describeError(err)).toMatch(/Nothing was (restored|changed)/);
    expect({ a: fileState(live('a')), b: fileState(live('b')) }).toEqual(before);
    expect(leftovers()).toEqual([]);
  }

  it('the base archive was deleted: refused before anything is staged, naming the missing snapshot; the live databases are untouched', async () => {
    const { full, middle } = await chainOfTwoDeltas();
    fs.rmSync(archiveOf(full));
    // Nothing is staged at all: the refusal comes before the staging folder exists.
    const watch = fs.watch(root);
    const created: string[] = [];
    watch.on('change', (_e, name) => created.push(String(name)));
    await expectRefusal(new RegExp(`Cannot rebuild [ab] from snapshot .*its base snapshot ${full} \\(needed by ${middle}\\) is missing`), 'restore_refused');
    await expectRefusal(/missing/, 'restore_refused', { dryRun: true, consent: undefined });
    watch.close();
    expect(created.filter((n) => n.startsWith('db.staging_'))).toEqual([]);
  });

  it('a middle snapshot of the chain was deleted: refused, naming it', async () => {
    const { middle, last } = await chainOfTwoDeltas();
    fs.rmSync(archiveOf(middle));
    await expectRefusal(new RegExp(`its base snapshot ${middle} \\(needed by ${last}\\) is missing`), 'restore_refused');
  });

  it('the base holds another image than the delta was made from: refused before staging', async () => {
    const { full } = await chainOfTwoDeltas();
    // The base's manifest (and its checksum line) say another sha256 for a: the link does not hold.
    const manifestFile = backupsFile(full, '.manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Array<{ name: string; sha256: string }> };
    m.databases.find((d) => d.name === 'a')!.sha256 = 'f'.repeat(64);
    fs.writeFileSync(manifestFile, JSON.stringify(m, null, 2));
    await expectRefusal(/was made against another image of a than the one .* holds \(sha256 differs\)/, 'restore_refused');
  });

  it('the base archive is corrupted: refused by its checksum; the live databases are untouched', async () => {
    const { full } = await chainOfTwoDeltas();
    const archive = archiveOf(full);
    const bytes = fs.readFileSync(archive);
    bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0xff;
    fs.writeFileSync(archive, bytes);
    await expectRefusal(new RegExp(`Checksum mismatch for ${path.basename(archive).replace(/\./g, '\\.')}`), 'archive_invalid');
  });

  it('a delta in the middle of the chain is damaged inside a consistent archive: it fails half-way through rebuilding, and the live databases are untouched', async () => {
    const { middle } = await chainOfTwoDeltas();
    // Rebuild the middle archive with a delta whose page records are cut short, and record its
    // checksum as the snapshot's: only applying the delta can notice.
    const archive = archiveOf(middle);
    const { execFileSync } = await import('node:child_process');
    const unpacked = path.join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    const zstd = archive.endsWith('.zst');
    execFileSync('tar', ['-xf', archive, '-C', unpacked, ...(zstd ? ['--zstd'] : ['-z'])]);
    const deltaFile = (readLocalManifest(findLocalSnapshot(root, middle))!.databases.find((d) => d.name === 'a')!.delta!.file);
    const deltaPath = path.join(unpacked, ...deltaFile.split('/'));
    const good = fs.readFileSync(deltaPath);
    // Same size (the manifest says how large each entry is), garbage past the header.
    const bad = Buffer.from(good);
    for (let i = Math.floor(good.length / 3); i < good.length; i++) bad[i] = (i * 131) & 0xff;
    fs.writeFileSync(deltaPath, bad);
    const order = execFileSync('tar', ['-tf', archive, ...(zstd ? ['--zstd'] : ['-z'])], { encoding: 'utf8' }).trim().split('\n');
    fs.rmSync(archive);
    execFileSync('tar', ['-cf', archive, ...(zstd ? ['--zstd'] : ['-z']), '-C', unpacked, ...order]);
    rehash(middle);
    await expectRefusal(/delta .* is damaged/, 'archive_invalid');
  });
});

describe('wb-backup export', () => {
  async function twoDeltas(): Promise<string[]> {
    makeDb(live('a'), 3000);
    const ids = [(await snapshot()).snapshot_id];
    change(live('a'), "UPDATE notes SET body = 'one' WHERE id BETWEEN 5 AND 60");
    ids.push((await snapshot()).snapshot_id);
    change(live('a'), "INSERT INTO notes(body) SELECT 'two ' || id FROM notes WHERE id <= 200; DELETE FROM notes WHERE id BETWEEN 2000 AND 2100");
    ids.push((await snapshot()).snapshot_id);
    change(live('a'), "INSERT INTO notes(body) VALUES ('after')");
    return ids;
  }

  it('the export of a delta snapshot is byte-identical to what a restore of it puts back, and touches no live file', async () => {
    const ids = await twoDeltas();
    const { exportDatabase } = await import('../src/restore/export.js');
    const liveBefore = fileState(live('a'));
    const out = path.join(work, 'exported.db');
    const result = await exportDatabase(loadConfig(root), { snapshotId: ids[2]!, db: 'a', out });
    expect(result).toMatchObject({ snapshot_id: ids[2], db: 'a', stored: 'delta', chain: ids });
    expect(fileState(live('a'))).toEqual(liveBefore);
    expect(fs.readdirSync(work).filter((n) => n.startsWith('.wb-export-'))).toEqual([]);
    expect(integrityCheck(out)).toBe('ok');
    await restore({ snapshotId: ids[2]! });
    expect(sha(out)).toBe(sha(live('a')));
    expect(sha(out)).toBe(result.sha256);
    // A full snapshot exports too.
    const full = await exportDatabase(loadConfig(root), { snapshotId: ids[0]!, db: 'a', out: path.join(work, 'full.db') });
    expect(full.stored).toBe('image');
    expect(sha(path.join(work, 'full.db'))).toBe(readLocalManifest(findLocalSnapshot(root, ids[0]!))!.databases[0]!.sha256);
  });

  it('refuses an --out that exists, and a delta whose base is missing, writing nothing', async () => {
    const ids = await twoDeltas();
    const { exportDatabase } = await import('../src/restore/export.js');
    const out = path.join(work, 'taken.db');
    fs.writeFileSync(out, 'mine');
    const exists = await exportDatabase(loadConfig(root), { snapshotId: 'latest', db: 'a', out }).catch((e: unknown) => e);
    expect((exists as WbError).code).toBe('invalid_input');
    expect(describeError(exists)).toMatch(/already exists; export never overwrites/);
    expect(fs.readFileSync(out, 'utf8')).toBe('mine');
    fs.rmSync(archiveOf(ids[0]!));
    const missing = await exportDatabase(loadConfig(root), { snapshotId: 'latest', db: 'a', out: path.join(work, 'new.db') }).catch((e: unknown) => e);
    expect((missing as WbError).code).toBe('restore_refused');
    expect(describeError(missing)).toMatch(new RegExp(`its base snapshot ${ids[0]} .* is missing`));
    expect(fs.readdirSync(work).filter((n) => n !== 'taken.db')).toEqual([]);
  });

  it('the command: `wb-backup export latest --db a --out file.db`, exit 2 for bad usage or an existing file', async () => {
    await twoDeltas();
    const { spawnSync } = await import('node:child_process');
    const { CLI } = await import('./support/fixtures.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, 'export', ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    const out = path.join(work, 'cli.db');
    const ok = run('latest', '--db', 'a', '--out', out);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/exported a of snap-.* rebuilt from 3 snapshots .* sha256 [0-9a-f]{64} and integrity_check verified/);
    expect(sha(out)).toBe(readLocalManifest(findLocalSnapshot(root, 'latest'))!.databases[0]!.sha256);
    const again = run('latest', '--db', 'a', '--out', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    expect(run('latest', '--out', path.join(work, 'x.db')).status).toBe(2);
    const unknown = run('latest', '--db', 'nope', '--out', path.join(work, 'x.db'));
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/has no database named nope/);
    expect(fs.existsSync(path.join(work, 'x.db'))).toBe(false);
  });
});

describe('faults while a delta is rebuilt', () => {
  it('a restore killed (kill -9) half-way through applying a chain leaves the live databases untouched; the next command removes its staging and a restore then works', async () => {
    makeDb(live('a'), 3000);
    await snapshot();
    change(live('a'), "UPDATE notes SET body = 'one' WHERE id BETWEEN 5 AND 60");
    await snapshot();
    change(live('a'), "INSERT INTO notes(body) SELECT 'two ' || id FROM notes WHERE id <= 200");
    const last = await snapshot();
    expect(last.kind).toBe('delta');
    change(live('a'), "DELETE FROM notes WHERE id BETWEEN 100 AND 2000");
    const before = fileState(live('a'));
    const { spawn, spawnSync } = await import('node:child_process');
    const { CLI } = await import('./support/fixtures.js');
    const child = spawn(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes'], {
      stdio: 'ignore',
      env: { ...process.env, WB_BACKUP_CRASH_POINT: 'after-delta-applied', WB_BACKUP_LOG_LEVEL: 'silent' },
    });
    const signal = await new Promise((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    // Killed with the image half-rebuilt in staging: the live file never saw any of it.
    const staging = fs.readdirSync(root).filter((n) => n.startsWith('db.staging_'));
    expect(staging.length).toBe(1);
    expect(fs.existsSync(path.join(root, staging[0]!, '.chain'))).toBe(true);
    expect(fileState(live('a'))).toEqual(before);
    expect(fs.existsSync(path.join(root, 'restore-journal.json'))).toBe(false);
    // The next command cleans up; a restore then rebuilds the chain from the start.
    const list = spawnSync(process.execPath, [CLI, '--root', root, 'list'], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' } });
    expect(list.status).toBe(0);
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.staging_'))).toEqual([]);
    expect(fileState(live('a'))).toEqual(before);
    await restore();
    expect(leftovers().filter((n) => !n.startsWith('db.pre_restore_'))).toEqual([]);
    expect(sha(live('a'))).toBe(readLocalManifest(findLocalSnapshot(root, last.snapshot_id))!.databases[0]!.sha256);
  });
});

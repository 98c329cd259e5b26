import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { runRestore } from '../src/restore/restore.js';
import { runUndo } from '../src/restore/undo.js';
import { probeLiveDatabase } from '../src/restore/live-probe.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

const run = promisify(execFile);

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-dry-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

const live = (name: string) => path.join(root, 'db', `${name}.db`);

/** Every file under the root: bytes, size, mtime (ns) and mode. Equal trees: the dry run changed nothing. */
function tree(dir = root): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) {
        out[`${path.relative(dir, full)}/`] = 'dir';
        walk(full);
        continue;
      }
      const st = fs.lstatSync(full, { bigint: true });
      const hash = e.isFile() ? createHash('sha256').update(fs.readFileSync(full)).digest('hex') : 'not a file';
      out[path.relative(dir, full)] = `${hash} ${st.size} ${st.mtimeNs} ${st.mode}`;
    }
  };
  walk(dir);
  return out;
}

/** Make a database and stop its writer mid-way, the way a crash leaves it: files are copied while the connection is open. */
function crashedCopy(name: string, mode: 'wal' | 'journal'): void {
  const scratch = path.join(work, `scratch-${name}`);
  fs.mkdirSync(scratch, { recursive: true });
  const src = path.join(scratch, 'x.db');
  makeNotesDb(src, 50, 1);
  const db = new Database(src);
  if (mode === 'wal') {
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec("INSERT INTO notes(folder_id, title, body) VALUES (1, 'committed in the wal', 'x'); PRAGMA user_version = 1;");
    // Committed, but only in the -wal: a reader would rebuild the wal index (no -shm is copied).
    fs.copyFileSync(src, live(name));
    fs.copyFileSync(`${src}-wal`, `${live(name)}-wal`);
  } else {
    db.pragma('journal_mode = DELETE');
    db.pragma('cache_size = 2'); // spill to the file mid-transaction, so the journal is hot
    db.exec('BEGIN');
    db.exec("UPDATE notes SET body = hex(randomblob(400)); PRAGMA user_version = 7;");
    fs.copyFileSync(src, live(name));
    fs.copyFileSync(`${src}-journal`, `${live(name)}-journal`);
    db.exec('ROLLBACK');
  }
  db.close();
}

async function prepared(): Promise<string> {
  makeNotesDb(live('a'), 30, 1);
  makeNotesDb(live('b'), 30, 1);
  const { snapshot_id } = await runBackup(loadConfig(root));
  return snapshot_id;
}

describe('a dry run changes nothing, in any state of the live files', () => {
  it('a hot rollback journal: probed by its bytes, reported, and left for the next reader to roll back', async () => {
    await prepared();
    crashedCopy('b', 'journal');
    expect(probeLiveDatabase(live('b'))).toMatchObject({ hotJournal: true, userVersion: 1 });
    const before = tree();
    const { stdout } = await run(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--dry-run', '--json']);
    const plan = JSON.parse(stdout) as { dry_run: boolean; warnings: string[] };
    expect(plan.dry_run).toBe(true);
    expect(plan.warnings.join('\n')).toMatch(/b \(db\/b\.db\) has a rollback journal \(-journal\) left by a write that never finished/);
    const inProcess = await runRestore(loadConfig(root), { snapshotId: 'latest', dryRun: true });
    expect(inProcess.warnings.join('\n')).toMatch(/rollback journal/);
    expect(tree()).toEqual(before);
  });

  it('a WAL with committed frames and no -shm: read without recovering it, reported, the file and WAL untouched', async () => {
    await prepared();
    crashedCopy('a', 'wal');
    expect(probeLiveDatabase(live('a'))).toMatchObject({ hotJournal: false, userVersion: 1 });
    expect(probeLiveDatabase(live('a')).walCommittedFrames).toBeGreaterThan(0);
    const before = tree();
    const { stdout } = await run(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--dry-run', '--json']);
    const plan = JSON.parse(stdout) as { warnings: string[] };
    expect(plan.warnings.join('\n')).toMatch(/a \(db\/a\.db\) has \d+ committed page write\(s\) in its -wal not yet folded into the file/);
    await runRestore(loadConfig(root), { snapshotId: 'latest', dryRun: true });
    expect(tree()).toEqual(before);
  });

  it('a leftover restore-journal.json: the dry run does not recover it; it says the next real command will', async () => {
    const id = await prepared();
    const journal = {
      version: 1,
      kind: 'restore',
      snapshot_id: id,
      started_at: new Date().toISOString(),
      pre_restore_dir: path.join(root, 'db.pre_restore_2026-01-01T00-00-00-000Z'),
      incoming_dir: path.join(root, 'db.staging_2026-01-01T00-00-00-000Z'),
      items: [{ name: 'a', target: live('a'), incoming: path.join(root, 'db.staging_2026-01-01T00-00-00-000Z', 'databases', 'a', 'a.db') }],
      moved: [],
    };
    fs.writeFileSync(path.join(root, 'restore-journal.json'), JSON.stringify(journal));
    const before = tree();
    const { stdout } = await run(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--dry-run', '--json']);
    expect((JSON.parse(stdout) as { warnings: string[] }).warnings.join('\n')).toMatch(/an interrupted restore left restore-journal\.json: the next command that changes data completes or rolls it back first \(this dry run did not\)/);
    await runRestore(loadConfig(root), { snapshotId: 'latest', dryRun: true });
    await expect(runUndo(loadConfig(root), { dryRun: true })).rejects.toThrow(/Nothing to undo/);
    expect(tree()).toEqual(before);
  });

  it('all three at once, over the CLI and in process, and undo --dry-run too', async () => {
    await prepared();
    await runRestore(loadConfig(root), { snapshotId: 'latest', consent: async () => ({ granted: true }) });
    crashedCopy('a', 'wal');
    crashedCopy('b', 'journal');
    fs.writeFileSync(path.join(root, 'restore-journal.json'), '{"version": 1, "half-written": ');
    const before = tree();
    const { stdout } = await run(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--dry-run']);
    expect(stdout).toMatch(/dry run \(nothing changed\)/);
    expect(stdout).toMatch(/safety cop(y is|ies are) kept/);
    await run(process.execPath, [CLI, '--root', root, 'restore', '--undo', '--dry-run']);
    await runRestore(loadConfig(root), { snapshotId: 'latest', dryRun: true });
    expect(tree()).toEqual(before);
  });
});

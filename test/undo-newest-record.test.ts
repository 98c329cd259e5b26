// "--undo went back to the wrong point": when the newest safety copy (db.pre_restore_*) has a
// record that is missing or damaged, an undo must refuse and say so, never quietly put back an
// older copy. A crash mid-restore (a half-written folder recovery settles) must keep working.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { WbError } from '../src/core/errors.js';
import { loadConfig } from '../src/root/config.js';
import { runRestore } from '../src/restore/restore.js';
import { runUndo, runUndoIfAny } from '../src/restore/undo.js';
import { dumpTables } from './support/db-snapshot.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let root: string;
const live = () => path.join(root, 'db', 'notes.db');
const yes = async () => ({ granted: true as const });
const safetyCopies = () => fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_')).sort();

function edit(sql: string): void {
  const db = new Database(live());
  db.exec(sql);
  db.close();
}

/** A snapshot, then two restores of it with edits between: two safety copies, the newer holding the second edit. */
async function twoRestores(): Promise<{ afterFirstEdit: unknown; afterSecondEdit: unknown; restored: unknown }> {
  makeNotesDb(live(), 30);
  await runBackup(loadConfig(root), { remote: null });
  const restored = dumpTables(live());
  edit('DELETE FROM notes WHERE id % 2 = 0');
  const afterFirstEdit = dumpTables(live());
  await runRestore(loadConfig(root), { snapshotId: 'latest', remote: null, consent: yes });
  edit("UPDATE folders SET name = 'second edit'");
  const afterSecondEdit = dumpTables(live());
  await runRestore(loadConfig(root), { snapshotId: 'latest', remote: null, consent: yes });
  expect(safetyCopies()).toHaveLength(2);
  return { afterFirstEdit, afterSecondEdit, restored };
}

async function refusal(p: Promise<unknown>): Promise<WbError> {
  const err = await p.then(
    () => new Error('expected the undo to be refused'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WbError);
  return err as WbError;
}

beforeEach(() => {
  root = tempRoot('wb-undo-newest-');
});
afterEach(() => rmrf(root));

describe('undo never falls back to an older safety copy', () => {
  it('the newest safety copy’s record was moved away: undo and its dry run refuse, naming it and what to do; moving the folder away then undoes the older one', async () => {
    const { afterFirstEdit, restored } = await twoRestores();
    const [older, newest] = safetyCopies() as [string, string];
    fs.renameSync(path.join(root, newest, 'pre-restore.json'), path.join(root, 'moved-record.json'));

    for (const dryRun of [true, false]) {
      const err = await refusal(runUndo(loadConfig(root), { dryRun, consent: yes }));
      expect(err.code).toBe('restore_refused');
      expect(err.message).toContain(path.join(root, newest));
      expect(err.message).toMatch(/has no pre-restore\.json/);
      expect(err.message).toContain(`undoing the older ${older} instead would go back to the wrong point`);
      expect(err.message).toMatch(/Nothing was changed/);
      expect(err.hint).toContain(`To undo the operation before it (${older}), move ${newest} out of the data root first`);
    }
    expect(dumpTables(live())).toEqual(restored);
    expect(safetyCopies()).toEqual([older, newest]);

    // The person moves the damaged copy away, as told: the older one is then undone, on purpose.
    fs.renameSync(path.join(root, newest), path.join(root, 'set-aside'));
    await runUndo(loadConfig(root), { consent: yes });
    expect(dumpTables(live())).toEqual(afterFirstEdit);
  });

  it('the newest record is cut short or damaged: refused with what is wrong; putting it back makes the undo work', async () => {
    const { afterSecondEdit } = await twoRestores();
    const newest = safetyCopies().at(-1)!;
    const record = path.join(root, newest, 'pre-restore.json');
    const good = fs.readFileSync(record, 'utf8');

    fs.writeFileSync(record, good.slice(0, 40));
    expect((await refusal(runUndo(loadConfig(root), { consent: yes }))).message).toMatch(/cannot be read as JSON/);

    fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(good), completed: false }));
    expect((await refusal(runUndo(loadConfig(root), { consent: yes }))).message).toMatch(/does not say the operation completed/);

    fs.writeFileSync(record, JSON.stringify({ ...JSON.parse(good), databases: 'gone' }));
    expect((await refusal(runUndoIfAny(loadConfig(root), { dryRun: true }))).message).toMatch(/damaged pre-restore\.json \(databases: /);

    fs.writeFileSync(record, good);
    await runUndo(loadConfig(root), { consent: yes });
    expect(dumpTables(live())).toEqual(afterSecondEdit);
  });

  it('the only safety copy holding files has no record: nothing to undo, saying which folder and what is wrong', async () => {
    makeNotesDb(live(), 5);
    const odd = path.join(root, 'db.pre_restore_2026-01-01T00-00-00-000Z');
    fs.mkdirSync(path.join(odd, 'notes'), { recursive: true });
    fs.copyFileSync(live(), path.join(odd, 'notes', 'notes.db'));
    const before = dumpTables(live());
    const outcome = await runUndoIfAny(loadConfig(root), { dryRun: true });
    expect(outcome).toMatchObject({ nothing_to_undo: true });
    const { reason, hint } = outcome as { reason: string; hint: string };
    expect(reason).toContain(`${odd} holds files but has no pre-restore.json`);
    expect(hint).toMatch(/put its pre-restore\.json back/);
    const err = await refusal(runUndo(loadConfig(root), { consent: yes }));
    expect(err.code).toBe('not_found');
    expect(err.message).toMatch(/^Nothing to undo: /);
    expect(dumpTables(live())).toEqual(before);
    expect(fs.existsSync(path.join(odd, 'notes', 'notes.db'))).toBe(true);
  });

  it('an empty leftover folder newer than the last restore is passed over: it holds nothing to put back', async () => {
    const { afterSecondEdit } = await twoRestores();
    const leftover = path.join(root, `${safetyCopies().at(-1)!}-9`);
    fs.mkdirSync(leftover);
    const plan = await runUndoIfAny(loadConfig(root), { dryRun: true });
    expect('from' in plan && plan.from).toBe(safetyCopies().at(-2));
    await runUndo(loadConfig(root), { consent: yes });
    expect(dumpTables(live())).toEqual(afterSecondEdit);
  });

  it('a restore killed mid-swap after an earlier one: the dry run says recovery comes first; the undo recovers, then undoes the earlier restore', async () => {
    const { afterSecondEdit, restored } = await twoRestores();
    const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    // An edit, so the restore about to be killed has something to replace.
    edit("UPDATE folders SET name = 'third edit'");
    const beforeCrash = dumpTables(live());
    const child = spawn(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes'], { stdio: 'ignore', env: { ...process.env, WB_BACKUP_CRASH_POINT: 'after-move-aside', WB_BACKUP_LOG_LEVEL: 'silent' } });
    expect(await new Promise((resolve) => child.on('exit', (_c, signal) => resolve(signal)))).toBe('SIGKILL');
    expect(fs.existsSync(path.join(root, 'restore-journal.json'))).toBe(true);
    expect(safetyCopies()).toHaveLength(3);

    const dry = await refusal(runUndoIfAny(loadConfig(root), { dryRun: true }));
    expect(dry.code).toBe('restore_refused');
    expect(dry.message).toMatch(/interrupted and not yet recovered \(restore-journal\.json is still there\)/);
    expect(dry.hint).toMatch(/without a dry run/);

    // The real undo recovers first (the killed restore is rolled back), then undoes the last completed restore.
    const undo = cli('restore', '--undo', '--yes');
    expect(undo.status, undo.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'restore-journal.json'))).toBe(false);
    expect(dumpTables(live())).toEqual(afterSecondEdit);
    expect(beforeCrash).not.toEqual(afterSecondEdit);
    expect(restored).not.toEqual(afterSecondEdit);
  });
});

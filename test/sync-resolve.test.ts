import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { allResolved, conflictValue, heldResolution, keyMatches, recordConflicts, resolveDecision, CONFLICT_LINE_MAX } from '../src/sync/conflicts.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { resolveConflicts } from '../src/sync/resolve.js';
import { readState } from '../src/sync/state.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

describe('conflict decisions (pure)', () => {
  const rec = (base: string | null, ours: string | null, theirs: string | null) =>
    recordConflicts(null, [{ database: 'd', table: 't', key: '{"id":1}', base, ours, theirs }], { base: 'b', remote: 'r', branch: 'main', rejected: 0, now: 'now' }).items[0]!;

  it('theirs writes the remote row, deletes what the remote deleted; ours keeps; a side changed since is stale', () => {
    const c = rec('B', 'O', 'T');
    expect(resolveDecision(c, 'theirs', 'O', 'T')).toEqual({ kind: 'write', action: 'update', line: 'T' });
    expect(resolveDecision(c, 'ours', 'O', 'T')).toEqual({ kind: 'keep_ours' });
    expect(resolveDecision(c, 'theirs', 'O2', 'T')).toMatchObject({ kind: 'stale', reason: expect.stringMatching(/changed since the pull/) });
    expect(resolveDecision(c, 'theirs', 'O', 'T2')).toMatchObject({ kind: 'stale' });
    expect(resolveDecision(rec('B', 'O', null), 'theirs', 'O', null)).toEqual({ kind: 'delete' });
    expect(resolveDecision(rec('B', null, 'T'), 'theirs', null, 'T')).toEqual({ kind: 'write', action: 'insert', line: 'T' });
    expect(resolveDecision(rec('B', null, 'T'), 'ours', null, 'T')).toEqual({ kind: 'keep_ours' });
  });

  it('records bounded values with the whole line hashed, and carries an ours resolution only while both sides are unchanged', () => {
    const long = `{"id":1,"body":"${'x'.repeat(5000)}"}`;
    const v = conflictValue(long)!;
    expect(v.cut).toBe(true);
    expect(v.line.length).toBe(CONFLICT_LINE_MAX + 1);
    expect(v.bytes).toBe(long.length);
    const set = recordConflicts(null, [{ database: 'd', table: 't', key: '{"id":1}', base: 'B', ours: long, theirs: 'T' }], { base: 'b', remote: 'r', branch: 'main', rejected: 0, now: 'now' });
    expect(resolveDecision(set.items[0]!, 'ours', long, 'T')).toEqual({ kind: 'keep_ours' });
    expect(allResolved(set)).toBe(false);
    set.items[0]!.resolved = { take: 'ours', at: 'now' };
    expect(allResolved(set)).toBe(true);
    const same = { database: 'd', table: 't', key: '{"id":1}', base: 'B', ours: long, theirs: 'T' };
    expect(heldResolution(set, same)).toBeDefined();
    expect(heldResolution(set, { ...same, theirs: 'T2' })).toBeUndefined();
    expect(heldResolution(set, { ...same, ours: 'O2' })).toBeUndefined();
  });

  it('matches a key as listed or by the value of a one-column key', () => {
    expect(keyMatches('{"id":5}', '{"id":5}')).toBe(true);
    expect(keyMatches('{"id":5}', '5')).toBe(true);
    expect(keyMatches('{"k":"abc"}', 'abc')).toBe(true);
    expect(keyMatches('{"k":"abc"}', '"abc"')).toBe(true);
    expect(keyMatches('{"id":5}', '6')).toBe(false);
    expect(keyMatches('{"a":1,"b":2}', '1')).toBe(false);
  });
});

describe('github_sync_resolve with real git and SQLite', () => {
  let work: string;
  let root: string;
  let bare: string;
  const dbFile = () => path.join(root, 'db', 'notes.db');
  beforeEach(() => {
    work = tempRoot('wb-resolve-');
    root = path.join(work, 'root');
    bare = seededBareRemote(work);
    makeNotesDb(dbFile(), 10);
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
  });
  afterEach(() => rmrf(work));

  const remoteEdit = (edit: (lines: string[]) => string[]) => {
    const other = path.join(work, `other-${Math.random().toString(36).slice(2)}`);
    git(work, 'clone', '-q', bare, other);
    const full = path.join(other, 'notes', 'notes.jsonl');
    fs.writeFileSync(full, `${edit(fs.readFileSync(full, 'utf8').trimEnd().split('\n')).join('\n')}\n`);
    git(other, 'commit', '-q', '-am', 'edit on the remote');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
  };
  const sql = (s: string) => {
    const db = new Database(dbFile());
    db.exec(s);
    db.close();
  };
  const title = (id: number): unknown => {
    const db = new Database(dbFile(), { readonly: true });
    try {
      return db.prepare('SELECT title FROM notes WHERE id = ?').pluck().get(id);
    } finally {
      db.close();
    }
  };
  const remoteLine = (id: number) =>
    git(work, '--git-dir', bare, 'show', 'trunk:notes/notes.jsonl')
      .split('\n')
      .find((l) => l.startsWith(`{"id":${id},`));
  /** Row 5 edited on both sides (title "ours" here, "theirs" on the remote), row 6 only on the remote. */
  const conflictOnRow5 = async (remote: (l: string) => string | null = (l) => l.replace('"note 4"', '"theirs"')) => {
    await syncPush(loadConfig(root));
    remoteEdit((lines) => lines.flatMap((l) => (l.startsWith('{"id":5,') ? [remote(l)].filter((x): x is string => x !== null) : l.startsWith('{"id":6,') ? [l.replace('"note 5"', '"remote only"')] : [l])));
    sql("UPDATE notes SET title = 'ours' WHERE id = 5");
    const pulled = await syncPull(loadConfig(root));
    expect(pulled.status).toBe('conflicts');
    expect(pulled.conflicts.map((c) => c.key)).toEqual(['{"id":5}']);
  };
  const five = [{ database: 'notes', table: 'notes', key: '{"id":5}', take: 'theirs' as const }];

  it('theirs: the pull records the conflict, a dry run shows it and changes no byte, the resolve writes the remote row; then pull and push are clean', async () => {
    await conflictOnRow5();
    const recorded = readState(root).conflicts!;
    expect(recorded.items).toEqual([
      expect.objectContaining({ database: 'notes', table: 'notes', key: '{"id":5}', resolved: null, ours: expect.objectContaining({ line: expect.stringMatching(/"title":"ours"/) }), theirs: expect.objectContaining({ line: expect.stringMatching(/"title":"theirs"/) }) }),
    ]);
    expect(recorded.remote_commit).toBe(git(work, '--git-dir', bare, 'rev-parse', 'trunk'));

    const { syncStatus } = await import('../src/sync/status.js');
    const status = await syncStatus(loadConfig(root));
    expect(status.conflicts).toEqual({ total: 1, unresolved: 1 });
    expect(status.message).toMatch(/1 conflict\(s\) from the last pull are open: list and resolve them with github_sync_resolve/);
    const listed = await resolveConflicts(loadConfig(root));
    expect(listed).toMatchObject({ status: 'listed', counts: { total: 1, unresolved: 1, tables: { 'notes.notes': { unresolved: 1, resolved: 0 } } } });

    const before = fs.readFileSync(dbFile());
    const dry = await resolveConflicts(loadConfig(root), { resolutions: five, dryRun: true });
    expect(dry.status).toBe('dry_run');
    expect(dry.plan).toEqual([expect.objectContaining({ key: '{"id":5}', take: 'theirs', action: 'update', write: expect.objectContaining({ line: remoteLine(5) }), live: expect.objectContaining({ line: expect.stringMatching(/"title":"ours"/) }) })]);
    expect(dry.confirm_token).toMatch(/^wbc_resolve_conflicts_/);
    expect(fs.readFileSync(dbFile()).equals(before)).toBe(true);
    expect(fs.existsSync(path.join(root, 'sync', 'resolved'))).toBe(false);
    expect(title(5)).toBe('ours');

    // Without a token or an answer nothing happens.
    await expect(resolveConflicts(loadConfig(root), { resolutions: five })).rejects.toMatchObject({ code: 'consent_required' });
    const done = await resolveConflicts(loadConfig(root), { resolutions: five, confirmToken: dry.confirm_token! });
    expect(done).toMatchObject({ status: 'resolved', base_advanced: true, counts: { total: 0 } });
    expect(title(5)).toBe('theirs');
    // The safety copy holds the database as it was before.
    const copy = new Database(path.join(root, done.safety_copies[0]!.path.replace(/^<root>\//, '')), { readonly: true });
    expect(copy.prepare('SELECT title FROM notes WHERE id = 5').pluck().get()).toBe('ours');
    copy.close();
    expect(readState(root)).toMatchObject({ last_synced_sha: recorded.remote_commit, conflicts: null });

    expect((await syncPull(loadConfig(root))).status).toBe('up_to_date');
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');

    // The token was single-use.
    await expect(resolveConflicts(loadConfig(root), { resolutions: five, confirmToken: dry.confirm_token! })).resolves.toMatchObject({ status: 'none' });
  });

  it('ours: keeps the local row; the next push sends it and the remote gets it', async () => {
    await conflictOnRow5();
    const ours = [{ ...five[0]!, key: '5', take: 'ours' as const }];
    const done = await resolveConflicts(loadConfig(root), { resolutions: ours, consent: async () => ({ granted: true }) });
    expect(done).toMatchObject({ status: 'resolved', base_advanced: true, safety_copies: [], plan: [expect.objectContaining({ action: 'keep_ours' })] });
    expect(title(5)).toBe('ours');
    expect(title(6)).toBe('remote only');
    expect((await syncPull(loadConfig(root))).status).toBe('up_to_date');
    const pushed = await syncPush(loadConfig(root));
    expect(pushed.status).toBe('pushed');
    expect(remoteLine(5)).toMatch(/"title":"ours"/);
    expect(remoteLine(6)).toMatch(/"title":"remote only"/);
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('ours on one of two conflicts holds across the next pull; the base moves with the last one, and push sends ours', async () => {
    await syncPush(loadConfig(root));
    remoteEdit((lines) => lines.map((l) => (l.startsWith('{"id":5,') ? l.replace('"note 4"', '"theirs"') : l.startsWith('{"id":7,') ? l.replace('"note 6"', '"theirs 7"') : l)));
    sql("UPDATE notes SET title = 'ours' WHERE id IN (5, 7)");
    await syncPull(loadConfig(root));
    const kept = await resolveConflicts(loadConfig(root), { resolutions: [{ database: 'notes', table: 'notes', key: '5', take: 'ours' }], consent: async () => ({ granted: true }) });
    expect(kept).toMatchObject({ status: 'resolved', base_advanced: false, counts: { total: 2, unresolved: 1 } });
    // Push still refuses (the sync base has not moved), and the next pull reports only the open row.
    expect((await syncPush(loadConfig(root))).status).toBe('remote_changed');
    const again = await syncPull(loadConfig(root));
    expect(again.conflicts.map((c) => c.key)).toEqual(['{"id":7}']);
    expect(readState(root).conflicts?.items.map((i) => [i.key, i.resolved?.take ?? null])).toEqual([
      ['{"id":5}', 'ours'],
      ['{"id":7}', null],
    ]);
    const done = await resolveConflicts(loadConfig(root), { resolutions: [{ database: 'notes', table: 'notes', key: '{"id":7}', take: 'theirs' }], consent: async () => ({ granted: true }) });
    expect(done.base_advanced).toBe(true);
    expect(title(7)).toBe('theirs 7');
    expect((await syncPush(loadConfig(root))).status).toBe('pushed');
    expect(remoteLine(5)).toMatch(/"title":"ours"/);
    expect(remoteLine(7)).toMatch(/"title":"theirs 7"/);
  });

  it('a remote delete against a local edit: theirs deletes the local row, and push and pull are clean', async () => {
    await conflictOnRow5(() => null);
    const dry = await resolveConflicts(loadConfig(root), { resolutions: five, dryRun: true });
    expect(dry.plan).toEqual([expect.objectContaining({ action: 'delete', write: null })]);
    const done = await resolveConflicts(loadConfig(root), { resolutions: five, confirmToken: dry.confirm_token! });
    expect(done.base_advanced).toBe(true);
    expect(title(5)).toBeUndefined();
    expect((await syncPull(loadConfig(root))).status).toBe('up_to_date');
    // The rows already agree; only the manifest's row count, which the hand edit on the remote left at 10, is corrected.
    expect((await syncPush(loadConfig(root))).files_changed).not.toContain('notes/notes.jsonl');
    expect(remoteLine(5)).toBeUndefined();
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('refuses a token for a conflict already resolved, and a token whose rows changed since the dry run', async () => {
    // Two conflicts, so the first resolve leaves one open and a replay meets a recorded conflict.
    await syncPush(loadConfig(root));
    remoteEdit((lines) => lines.map((l) => (l.startsWith('{"id":5,') ? l.replace('"note 4"', '"theirs"') : l.startsWith('{"id":7,') ? l.replace('"note 6"', '"theirs 7"') : l)));
    sql("UPDATE notes SET title = 'ours' WHERE id IN (5, 7)");
    expect((await syncPull(loadConfig(root))).conflicts).toHaveLength(2);
    const dry = await resolveConflicts(loadConfig(root), { resolutions: five, dryRun: true });
    await resolveConflicts(loadConfig(root), { resolutions: five, confirmToken: dry.confirm_token! });
    const seven = [{ database: 'notes', table: 'notes', key: '{"id":7}', take: 'theirs' as const }];
    const dry7 = await resolveConflicts(loadConfig(root), { resolutions: seven, dryRun: true });
    const first = await resolveConflicts(loadConfig(root), { resolutions: five, confirmToken: dry.confirm_token! }).catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/already resolved/) });

    // The live row changes after the dry run: the token is refused and nothing is written.
    sql("UPDATE notes SET title = 'ours again' WHERE id = 7");
    await expect(resolveConflicts(loadConfig(root), { resolutions: seven, confirmToken: dry7.confirm_token! })).rejects.toMatchObject({ code: expect.stringMatching(/consent_required|invalid_input/) });
    expect(title(7)).toBe('ours again');
    // A new dry run sees a row different from the one the pull recorded: pull again.
    await expect(resolveConflicts(loadConfig(root), { resolutions: seven, dryRun: true })).rejects.toThrow(/changed since the pull/);
    // Keeping ours is refused the same way: the user would keep a row they did not see.
    await expect(resolveConflicts(loadConfig(root), { resolutions: [{ ...seven[0]!, take: 'ours' }], dryRun: true })).rejects.toThrow(/changed since the pull/);
    // A new pull records the row as it is now; 5 stays resolved (both sides equal), 7 is open.
    expect((await syncPull(loadConfig(root))).conflicts.map((c) => c.key)).toEqual(['{"id":7}']);
    const dry7b = await resolveConflicts(loadConfig(root), { resolutions: seven, dryRun: true });
    await resolveConflicts(loadConfig(root), { resolutions: seven, confirmToken: dry7b.confirm_token! });
    expect(title(7)).toBe('theirs 7');
    expect(readState(root).conflicts).toBeNull();
  });

  it('a replayed confirm_token is refused as already used', async () => {
    await syncPush(loadConfig(root));
    remoteEdit((lines) => lines.map((l) => (l.startsWith('{"id":5,') ? l.replace('"note 4"', '"theirs"') : l.startsWith('{"id":7,') ? l.replace('"note 6"', '"theirs 7"') : l)));
    sql("UPDATE notes SET title = 'ours' WHERE id IN (5, 7)");
    await syncPull(loadConfig(root));
    const keepBoth = [
      { database: 'notes', table: 'notes', key: '5', take: 'ours' as const },
      { database: 'notes', table: 'notes', key: '7', take: 'ours' as const },
    ];
    const dry = await resolveConflicts(loadConfig(root), { resolutions: keepBoth, dryRun: true });
    // A first use that fails on its own plan check still consumes the token.
    sql("UPDATE notes SET body = 'unrelated write' WHERE id = 1");
    await expect(resolveConflicts(loadConfig(root), { resolutions: keepBoth, confirmToken: dry.confirm_token! })).rejects.toThrow(/live databases changed since the dry run/);
    await expect(resolveConflicts(loadConfig(root), { resolutions: keepBoth, confirmToken: dry.confirm_token! })).rejects.toThrow(/already used/);
    expect(readState(root).conflicts?.items.every((i) => i.resolved === null)).toBe(true);
  });

  it("theirs fires the database's triggers, as a pull's write does", async () => {
    sql("CREATE TABLE audit (note_id INTEGER, title TEXT); CREATE TRIGGER notes_audit AFTER UPDATE ON notes BEGIN INSERT INTO audit VALUES (new.id, new.title); END;");
    await conflictOnRow5();
    sql('DELETE FROM audit');
    await resolveConflicts(loadConfig(root), { resolutions: five, consent: async () => ({ granted: true }) });
    const db = new Database(dbFile(), { readonly: true });
    expect(db.prepare('SELECT note_id, title FROM audit').all()).toEqual([{ note_id: 5, title: 'theirs' }]);
    db.close();
  });

  it('a resolution that would break a foreign key is refused and writes nothing', async () => {
    await syncPush(loadConfig(root));
    // The remote points note 5 at a folder that does not exist.
    remoteEdit((lines) => lines.map((l) => (l.startsWith('{"id":5,') ? l.replace('"note 4"', '"theirs"').replace(/"folder_id":\d+/, '"folder_id":99') : l)));
    sql("UPDATE notes SET title = 'ours' WHERE id = 5");
    await syncPull(loadConfig(root));
    const before = fs.readFileSync(dbFile());
    await expect(resolveConflicts(loadConfig(root), { resolutions: five, consent: async () => ({ granted: true }) })).rejects.toMatchObject({ code: 'sync_failed', message: expect.stringMatching(/FOREIGN KEY/) });
    expect(title(5)).toBe('ours');
    expect(fs.readFileSync(dbFile()).equals(before)).toBe(true);
    expect(readState(root).conflicts?.items[0]?.resolved).toBeNull();
  });

  it('a table mirrored as documents: the conflict carries its file, and theirs takes the edited document', async () => {
    writeConfigFile(root, { sync: { github: { remote_url: bare, documents: { 'notes.notes': { body: 'body' } } } } });
    await syncPush(loadConfig(root));
    const other = path.join(work, 'other-docs');
    git(work, 'clone', '-q', bare, other);
    const doc = path.join(other, 'notes', 'notes', '5.md');
    fs.writeFileSync(doc, fs.readFileSync(doc, 'utf8').replace('title: "note 4"', 'title: "theirs"'));
    git(other, 'commit', '-q', '-am', 'edit a document');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    sql("UPDATE notes SET title = 'ours' WHERE id = 5");
    await syncPull(loadConfig(root));
    expect(readState(root).conflicts?.items).toEqual([expect.objectContaining({ key: '{"id":5}', path: 'notes/notes/5.md' })]);
    const done = await resolveConflicts(loadConfig(root), { resolutions: five, consent: async () => ({ granted: true }) });
    expect(done.base_advanced).toBe(true);
    expect(title(5)).toBe('theirs');
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('the CLI: `sync resolve` lists, --dry-run changes nothing, --theirs --yes resolves', async () => {
    const { spawnSync } = await import('node:child_process');
    const { CLI } = await import('./support/fixtures.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, 'sync', 'resolve', ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    await conflictOnRow5();
    const listed = run();
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^listed: 1 of 1 conflict\(s\) open, in notes\.notes \(1\)/);
    expect(listed.stdout).toMatch(/notes\.notes \{"id":5\}\n    ours: .*"title":"ours".*\n    theirs: .*"title":"theirs"/);
    expect(run('--ours', '--theirs').status).toBe(2);
    const before = fs.readFileSync(dbFile());
    const dry = run('--theirs', '--key', '5', '--dry-run');
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^dry_run: Would write 1 row\(s\).*Run the command again without --dry-run/);
    expect(dry.stdout).toMatch(/notes\.notes \{"id":5\}: update -> .*"title":"theirs"/);
    expect(fs.readFileSync(dbFile()).equals(before)).toBe(true);
    // No terminal to ask on and no --yes: refused.
    expect(run('--theirs', '--table', 'notes').status).not.toBe(0);
    expect(title(5)).toBe('ours');
    const done = run('--theirs', '--db', 'notes', '--yes');
    expect(done.status, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^resolved: Resolved 1 conflict\(s\)/);
    expect(title(5)).toBe('theirs');
  });
});

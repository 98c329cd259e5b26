import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { materialize } from '../src/sync/materialize.js';
import { parseMirrorManifest } from '../src/sync/mirror-manifest.js';
import { syncImport } from '../src/sync/import.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { readState } from '../src/sync/state.js';
import { syncStatus } from '../src/sync/status.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let work: string;
let root: string;
let bare: string;
beforeEach(() => {
  work = tempRoot('wb-sync-manifest-');
  root = path.join(work, 'root');
  bare = seededBareRemote(work);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
});
afterEach(() => rmrf(work));

const ORIGIN = { where: 'in the test', hint: 'Fix it.' };

/** A manifest as materialize writes it for the notes database, as parsed JSON to edit. */
function writtenManifest(): Record<string, unknown> & { databases: Record<string, Record<string, unknown> & { tables: Record<string, Record<string, unknown>> }> } {
  const mirror = path.join(work, 'mirror');
  materialize(mirror, loadConfig(root).databases, { exclude: [], maxFileBytes: 1e9 });
  return JSON.parse(fs.readFileSync(path.join(mirror, 'manifest.json'), 'utf8'));
}

function refusal(text: string): WbError {
  try {
    parseMirrorManifest(text, ORIGIN);
  } catch (err) {
    if (err instanceof WbError) return err;
    throw err;
  }
  throw new Error('the manifest was accepted');
}

describe('the mirror manifest has one reader, and it validates', () => {
  it('accepts what materialize writes, as written (key order kept)', () => {
    const m = writtenManifest();
    const text = JSON.stringify(m, null, 2);
    expect(JSON.stringify(parseMirrorManifest(text, ORIGIN), null, 2)).toBe(text);
  });

  it('a manifest that is not JSON: manifest_invalid, naming the file and what to do', () => {
    const err = refusal('{"schema_version": 1, "databases": {');
    expect(err.code).toBe('manifest_invalid');
    expect(describeError(err)).toMatch(/^The manifest\.json in the test is not valid JSON \(.+\)\. Nothing was changed\. Fix it\.$/);
  });

  it('a field of the wrong type: manifest_invalid, naming the field', () => {
    const m = writtenManifest();
    m.databases.notes!.tables.notes!.rows = 'thirty';
    const err = refusal(JSON.stringify(m));
    expect(err.code).toBe('manifest_invalid');
    expect(err.message).toMatch(/manifest\.json in the test cannot be trusted: databases\.notes\.tables\.notes\.rows: .*expected number/);
    // Also under a key zod's record would skip, and for the lists every reader iterates.
    const proto = writtenManifest();
    proto.databases.notes!.tables = JSON.parse('{"__proto__": {"file": "notes/__proto__.jsonl", "rows": "x"}}');
    expect(refusal(JSON.stringify(proto)).message).toMatch(/databases\.notes\.tables\.__proto__\.rows/);
    const skipped = writtenManifest();
    skipped.skipped = 'nothing';
    expect(refusal(JSON.stringify(skipped)).message).toMatch(/cannot be trusted: skipped: .*expected array/);
    expect(refusal('[]').message).toMatch(/cannot be trusted: .*expected object/);
    expect(refusal(JSON.stringify({ ...writtenManifest(), schema_version: '1' })).message).toMatch(/cannot be trusted: schema_version: /);
    const newer = refusal(JSON.stringify({ ...writtenManifest(), schema_version: 2 }));
    expect(describeError(newer)).toMatch(/The mirror's schema_version is 2; this wb-backup reads 1\. Upgrade wb-backup\./);
  });

  it('a path outside the tree: manifest_invalid, naming the entry and the path it should have', () => {
    const m = writtenManifest();
    m.databases.notes!.tables.notes!.file = '../../outside.jsonl';
    expect(refusal(JSON.stringify(m)).message).toMatch(/puts the table notes\.notes in "\.\.\/\.\.\/outside\.jsonl", not notes\/notes\.jsonl/);
    const doc = writtenManifest();
    doc.databases.notes!.tables.notes = { dir: '/etc/', format: 'documents', key: 'id', body: 'body', rows: 5 };
    expect(refusal(JSON.stringify(doc)).message).toMatch(/puts the table notes\.notes in "\/etc\/", not notes\/notes\//);
  });
});

describe('a hostile or malformed manifest on the remote', () => {
  /** Push, then replace manifest.json on the remote (and edit a row there, which a pull would apply). */
  async function pushThenBreakRemoteManifest(manifestText: (original: string) => string): Promise<void> {
    await syncPush(loadConfig(root));
    const other = path.join(work, 'other');
    git(work, 'clone', '-q', bare, other);
    const jsonl = path.join(other, 'notes', 'notes.jsonl');
    fs.writeFileSync(jsonl, fs.readFileSync(jsonl, 'utf8').replace('"note 0"', '"edited on the remote"'));
    fs.writeFileSync(path.join(other, 'manifest.json'), manifestText(fs.readFileSync(path.join(other, 'manifest.json'), 'utf8')));
    git(other, 'commit', '-q', '-am', 'hand edit');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
  }
  const title = () => {
    const db = new Database(path.join(root, 'db', 'notes.db'), { readonly: true });
    try {
      return db.prepare('SELECT title FROM notes WHERE id = 1').pluck().get();
    } finally {
      db.close();
    }
  };
  const edit = (change: (m: { databases: Record<string, { tables: Record<string, Record<string, unknown>> }> }) => void) => (text: string) => {
    const m = JSON.parse(text);
    change(m);
    return JSON.stringify(m);
  };

  for (const [what, manifest, message] of [
    ['not JSON', () => '{ this is not json', /manifest\.json at commit [0-9a-f]{12} of the sync branch trunk is not valid JSON/],
    ['a wrong field type', edit((m) => void (m.databases.notes!.tables.notes!.rows = '5')), /cannot be trusted: databases\.notes\.tables\.notes\.rows/],
    ['a path outside the tree', edit((m) => void (m.databases.notes!.tables.notes!.file = '../../../etc/passwd')), /puts the table notes\.notes in "\.\.\/\.\.\/\.\.\/etc\/passwd"/],
  ] as const) {
    it(`pull refuses ${what} with a clear error and applies nothing`, async () => {
      await pushThenBreakRemoteManifest(manifest);
      const base = readState(root).last_synced_sha;
      const err = await syncPull(loadConfig(root)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('manifest_invalid');
      expect(describeError(err)).toMatch(message);
      expect(describeError(err)).toMatch(/Nothing was changed\. Put back a manifest\.json the sync wrote on trunk/);
      expect(title()).toBe('note 0');
      expect(readState(root).last_synced_sha).toBe(base);
    });
  }

  it('import of a clone whose manifest has a wrong field type is refused as manifest_invalid (not a crash)', async () => {
    await pushThenBreakRemoteManifest(edit((m) => void ((m as unknown as { skipped: unknown }).skipped = 'none')));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const fresh = path.join(work, 'fresh');
    const err = await syncImport(loadConfig(fresh), clone).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('manifest_invalid');
    expect(describeError(err)).toMatch(/cannot be trusted: skipped: .*Nothing was changed/);
    expect(fs.existsSync(path.join(fresh, 'db'))).toBe(false);
  });

  it('push reads the remote manifest only to carry records over: one it cannot trust is no crash (the remote moved, so direct refuses)', async () => {
    await pushThenBreakRemoteManifest(() => 'garbage');
    const pushed = await syncPush(loadConfig(root));
    expect(pushed).toMatchObject({ status: 'remote_changed', remote_changed_paths: ['manifest.json', 'notes/notes.jsonl'] });
  });
});

describe('github_sync_status counts rows, not lines', () => {
  it('one edited row is 1 change, here and on the remote; an added and a deleted row count 1 each', async () => {
    await syncPush(loadConfig(root));
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.exec("UPDATE notes SET title = 'edited here' WHERE id = 2");
    db.close();
    const other = path.join(work, 'other');
    git(work, 'clone', '-q', bare, other);
    const jsonl = path.join(other, 'notes', 'notes.jsonl');
    fs.writeFileSync(jsonl, fs.readFileSync(jsonl, 'utf8').replace('"note 0"', '"edited there"'));
    git(other, 'commit', '-q', '-am', 'one row edited on the remote');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    const s = await syncStatus(loadConfig(root));
    expect(s.local_changes).toEqual({ 'notes/notes.jsonl': 1 });
    expect(s.remote_changes).toEqual({ 'notes/notes.jsonl': 1 });
    expect(s.message).toMatch(/^1 row change\(s\) here and 1 on the remote \(1 commit\(s\)\)/);

    const more = new Database(path.join(root, 'db', 'notes.db'));
    more.exec("DELETE FROM notes WHERE id = 3; INSERT INTO notes (id, folder_id, title, body) SELECT 99, folder_id, 'new', body FROM notes WHERE id = 4");
    more.close();
    expect((await syncStatus(loadConfig(root))).local_changes).toEqual({ 'notes/notes.jsonl': 3 });
  });
});

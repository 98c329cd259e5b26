import { describe, expect, it } from 'vitest';
import { parseChecksums } from '../src/snapshot/checksums.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { claimConfirmToken, CONFIRM_TOKEN_TTL_MS, issueConfirmToken } from '../src/root/consent.js';
import { judgeEntry } from '../src/restore/entry-policy.js';
import { pendingMigrations } from '../src/restore/migrations.js';
import { migrationLossProblems, rowCountProblems } from '../src/restore/row-counts.js';
import { validateManifest } from '../src/snapshot/manifest.js';
import { thrownText } from './support/errors.js';

const expected = new Set(['MANIFEST.json', 'databases/a/a.db']);

describe('archive entry policy', () => {
  it.each([
    [{ path: 'databases/a/a.db', type: 'File' }, { ok: true, relative: 'databases/a/a.db' }],
    [{ path: './databases/a/a.db', type: 'File' }, { ok: true, relative: 'databases/a/a.db' }],
    [{ path: 'MANIFEST.json', type: 'OldFile' }, { ok: true, relative: 'MANIFEST.json' }],
  ])('accepts %j', (entry, verdict) => {
    expect(judgeEntry(entry, expected)).toEqual(verdict);
  });

  it.each([
    [{ path: '/etc/passwd', type: 'File' }, /absolute path/],
    [{ path: 'C:\\Windows\\x', type: 'File' }, /absolute path/],
    [{ path: '../x', type: 'File' }, /climbs out/],
    [{ path: 'databases/../../x', type: 'File' }, /climbs out/],
    [{ path: 'databases\\..\\..\\x', type: 'File' }, /climbs out/],
    [{ path: 'databases/a/a.db', type: 'SymbolicLink', linkpath: '/etc/passwd' }, /symbolic link \(to "\/etc\/passwd"\)/],
    [{ path: 'databases/a/a.db', type: 'Link', linkpath: 'MANIFEST.json' }, /hard link/],
    [{ path: 'databases/a/a.db', type: 'CharacterDevice' }, /CharacterDevice, not a regular file/],
    [{ path: 'databases/a/a.db', type: 'FIFO' }, /FIFO/],
    [{ path: 'databases/a', type: 'Directory' }, /directory/],
    [{ path: 'databases/b/b.db', type: 'File' }, /not listed in the manifest/],
    [{ path: 'databases/a/a.db\0x', type: 'File' }, /NUL/],
  ])('refuses %j', (entry, reason) => {
    const verdict = judgeEntry(entry, expected);
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toMatch(reason);
  });
});

describe('row counts', () => {
  it('must equal the manifest exactly before migrations', () => {
    expect(rowCountProblems({ a: 1, b: 2 }, { a: 1, b: 2 })).toEqual([]);
    expect(rowCountProblems({ a: 1, b: 2 }, { a: 1, b: 3, c: 0 })).toEqual(['table b has 3 rows, the manifest says 2', 'table c is not in the manifest']);
    expect(rowCountProblems({ a: 1 }, {})).toEqual(['table a is missing (manifest: 1 rows)']);
  });
  it('migrations may add rows and tables, never remove them', () => {
    expect(migrationLossProblems({ a: 1 }, { a: 5, t: 2 })).toEqual([]);
    expect(migrationLossProblems({ a: 3, b: 1 }, { a: 1 })).toEqual(['the migrations removed 2 rows from a', 'the migrations dropped table b (1 rows)']);
  });
});

describe('confirm tokens', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-token-'));
  const live = path.join(dir, 'a.db');
  fs.writeFileSync(live, 'x');
  const issue = (now = 1000) => issueConfirmToken({ operation: 'restore', root: dir, request: { snapshot_id: 'latest', databases: ['a', 'b'] }, plan: { p: 1 }, targets: [live] }, now);
  const expect_ = { operation: 'restore' as const, root: dir, request: { databases: ['a', 'b'], snapshot_id: 'latest' } };

  it('work once for the same request (key order does not matter) and hand back the recorded plan', () => {
    const t = issue();
    expect(claimConfirmToken(t, expect_, 2000)).toMatchObject({ ok: true, grant: { plan: { p: 1 } } });
    const replay = claimConfirmToken(t, expect_, 3000);
    expect(replay.ok ? '' : replay.reason).toMatch(/already used .*new dry run/);
  });
  it('refuse another request or operation without consuming the token', () => {
    const t = issue();
    const other = claimConfirmToken(t, { ...expect_, request: { snapshot_id: 'latest', databases: ['a'] } }, 2000);
    expect(other.ok ? '' : other.reason).toMatch(/different request/);
    const op = claimConfirmToken(t, { ...expect_, operation: 'import' }, 2000);
    expect(op.ok ? '' : op.reason).toMatch(/another operation \(restore\)/);
    expect(claimConfirmToken(t, expect_, 2000).ok).toBe(true);
  });
  it('refuse expiry, garbage, and live files that changed since the dry run', () => {
    const expired = claimConfirmToken(issue(), expect_, 1000 + CONFIRM_TOKEN_TTL_MS + 1);
    expect(expired.ok ? '' : expired.reason).toMatch(/expired/);
    const garbage = claimConfirmToken('nonsense', expect_);
    expect(garbage.ok ? '' : garbage.reason).toMatch(/not one this server issued.*new dry run/);
    const t = issue(Date.now());
    fs.writeFileSync(`${live}-wal`, 'frames');
    const changed = claimConfirmToken(t, expect_);
    expect(changed.ok ? '' : changed.reason).toMatch(/the live databases changed since the dry run \(a\.db-wal appeared\).*new dry run/);
    fs.rmSync(`${live}-wal`);
  });
});

describe('migrations ladder', () => {
  const ladder = [1, 2, 5].map((v) => ({ version: v, name: `00${v}_m.sql`, file: `/m/00${v}_m.sql` }));
  it('runs only what is newer than the snapshot', () => {
    expect(pendingMigrations(ladder, 0).map((m) => m.version)).toEqual([1, 2, 5]);
    expect(pendingMigrations(ladder, 2).map((m) => m.version)).toEqual([5]);
    expect(pendingMigrations(ladder, 5)).toEqual([]);
  });
});

describe('checksum files and manifests', () => {
  it('parse sha256sum output, text and binary mode', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    expect([...parseChecksums(`${a}  x.tar.zst\n${b} *y.json\nnoise\n`)]).toEqual([
      ['x.tar.zst', a],
      ['y.json', b],
    ]);
  });
  it('refuse unknown manifest versions and malformed manifests with what to do', () => {
    expect(thrownText(() => validateManifest({ manifest_version: 3 }))).toMatch(/manifest_version 3.*upgrade wb-backup/s);
    expect(() => validateManifest({ manifest_version: '1' })).toThrow(/manifest_version "1"/);
    expect(() => validateManifest([])).toThrow(/malformed|not a JSON object/);
    expect(() => validateManifest({ manifest_version: 1, snapshot_id: 'x' })).toThrow(/malformed \(.*created_at/);
  });
});

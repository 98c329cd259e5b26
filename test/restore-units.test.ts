import { describe, expect, it } from 'vitest';
import { parseChecksums } from '../src/restore/checksums.js';
import { checkConfirmToken, CONFIRM_TOKEN_TTL_MS, issueConfirmToken } from '../src/restore/consent.js';
import { judgeEntry } from '../src/restore/entry-policy.js';
import { pendingMigrations } from '../src/restore/migrations.js';
import { migrationLossProblems, rowCountProblems } from '../src/restore/row-counts.js';
import { validateManifest } from '../src/manifest.js';

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
  const subject = { root: '/r', snapshotId: 'snap-2026-01-01T00-00-00Z', databases: ['b', 'a'] };
  it('accept the same request (database order does not matter) within the time limit', () => {
    const t = issueConfirmToken(subject, 1000);
    expect(checkConfirmToken(t, { ...subject, databases: ['a', 'b'] }, 2000)).toEqual({ ok: true });
  });
  it('refuse another snapshot, other databases, expiry and garbage', () => {
    const t = issueConfirmToken(subject, 1000);
    expect(checkConfirmToken(t, { ...subject, snapshotId: 'snap-2026-01-01T01-00-00Z' }, 2000).ok).toBe(false);
    expect(checkConfirmToken(t, { ...subject, databases: ['a'] }, 2000).ok).toBe(false);
    expect(checkConfirmToken(t, subject, 1000 + CONFIRM_TOKEN_TTL_MS + 1)).toEqual({ ok: false, reason: 'the confirm_token has expired' });
    expect(checkConfirmToken('nonsense', subject).ok).toBe(false);
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
    expect(() => validateManifest({ manifest_version: 2 })).toThrow(/manifest_version 2.*upgrade wb-backup/s);
    expect(() => validateManifest({ manifest_version: '1' })).toThrow(/manifest_version "1"/);
    expect(() => validateManifest([])).toThrow(/malformed|not a JSON object/);
    expect(() => validateManifest({ manifest_version: 1, snapshot_id: 'x' })).toThrow(/malformed \(.*created_at/);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { WbError } from '../core/errors.js';
import { storedBytes, storedEntry, validateManifest, type Manifest, type ManifestDatabase } from '../snapshot/manifest.js';
import type { LocalSnapshot } from '../snapshot/store.js';
import { verifyAgainstChecksums } from '../snapshot/checksums.js';
import { syncFileDataAsync } from '../core/durable-file.js';
import { extractArchive } from './extract.js';
import { linkFile, rebuildFromChain, unpackChainArchives, type ChainLink, type DatabaseChains } from './chain-stage.js';
import { pendingMigrations, type Migration } from './migrations.js';
import { VerifyPool } from './verify-pool.js';
import type { VerifyResponse } from './verify-staged.js';
import type { Selected } from './targets.js';

/** What staging needs to know: the snapshot, the databases chosen and their migration ladders. */
export interface StageRequest {
  snapshot: LocalSnapshot;
  manifest: Manifest;
  selected: readonly Selected[];
  /** each database's migrations (by name), applied to the staged copy */
  ladders: ReadonlyMap<string, Migration[]>;
  stagingDir: string;
  /** a real restore makes the staged files durable (fdatasync) before the swap; a dry run does not */
  durable: boolean;
  /** called once everything is unpacked and the inner manifest checked, before the verdicts are awaited */
  onUnpacked: () => void;
  /** called as each chosen database passes its checks, with its size in bytes (progress) */
  onVerified?: (bytes: number) => void;
  /** called with each chunk's size as it is written into staging (progress) */
  onBytes?: (bytes: number) => void;
  /**
   * the chain of each selected database stored as a delta (resolveChains, before staging); a
   * delta without one is refused
   */
  chains?: DatabaseChains;
}

/** A staged database that passed every check: how its migrations and rows came out. */
export interface StagedDatabase {
  selected: Selected;
  applied: string[];
  rows: Record<string, number>;
  toVersion: number;
}

/**
 * Unpacks the chosen databases into the staging folder and verifies each one (checksum, header,
 * migrations, integrity, foreign keys, row counts) in a worker as soon as it is unpacked, while the
 * rest unpacks. The archive's own checksum is computed at the same time. Nothing is trusted before
 * all of it finishes. A database stored as a delta is rebuilt from its chain (`req.chains`; its
 * other archives unpack beside this one into `<staging>/.chain/`, checked against their checksums)
 * once everything is unpacked, then verified exactly like an unpacked image.
 * @returns one entry per selected database, in the order selected
 * @throws the archive's checksum error (checksum_mismatch), then a chain archive's error, before an
 *   unpacking error; WbError `archive_invalid` when the inner manifest differs or a delta is
 *   damaged; `restore_refused` naming the first database that failed a check
 */
export async function stageAndVerify(req: StageRequest): Promise<StagedDatabase[]> {
  const { snapshot, manifest, selected, stagingDir } = req;
  // The archive holds each database as it is stored: its image, or its delta against the base.
  const expected = new Map([...manifest.databases.map((d) => [storedEntry(d), storedBytes(d)] as const), ['MANIFEST.json', fs.statSync(snapshot.manifestPath).size] as const]);
  const wanted = new Set([...selected.map((s) => storedEntry(s.entry)), 'MANIFEST.json']);
  const deltas = selected.filter((s) => s.entry.stored === 'delta');
  const chains = chainsOf(deltas, req.chains);
  // The archive's checksum is computed while it unpacks into staging (nothing is trusted before
  // both finish); a mismatch is reported as such even when the damage also broke the unpacking.
  const archiveChecked = verifyAgainstChecksums(snapshot.checksumPath, snapshot.archivePath).then(
    () => null,
    (err: unknown) => err,
  );
  // Each database is verified in a worker as soon as it is unpacked, while the rest unpacks.
  const pool = new VerifyPool();
  const checks = new Map<string, Promise<VerifyResponse>>();
  const onImage = verifyOnUnpack(req, pool, checks);
  // A delta's base archives unpack beside the restored one; its image is verified once rebuilt.
  const chainRoot = path.join(stagingDir, '.chain');
  const chainsUnpacked = chains.size
    ? unpackChainArchives(chains, snapshot.id, chainRoot, req.onBytes).then(
        (shas) => ({ shas, problem: null }),
        (err: unknown) => ({ shas: new Map<string, string>(), problem: err }),
      )
    : null;
  const deltaFiles = new Set(deltas.map((s) => storedEntry(s.entry)));
  try {
    const unpackProblem = await extractArchive(snapshot.archivePath, snapshot.codec, stagingDir, {
      expected,
      wanted,
      onFile: (file, sha) => {
        if (!deltaFiles.has(file) && sha !== null) onImage(file, sha);
      },
      ...(req.onBytes ? { onBytes: req.onBytes } : {}),
    }).then(
      () => null,
      (err: unknown) => err,
    );
    const archiveProblem = await archiveChecked;
    const chainResult = await chainsUnpacked;
    if (archiveProblem) throw archiveProblem;
    if (chainResult?.problem) throw chainResult.problem;
    if (unpackProblem) throw unpackProblem;
    const inner = fs.readFileSync(path.join(stagingDir, 'MANIFEST.json'), 'utf8');
    if (inner !== fs.readFileSync(snapshot.manifestPath, 'utf8')) {
      throw new WbError('archive_invalid', 'The manifest inside the archive differs from the one beside it. Nothing was restored.', 'Use another snapshot.');
    }
    if (chainResult) {
      // The restored snapshot's own deltas were unpacked with the rest of it, into staging.
      const fileOf = (link: ChainLink) => (link.snapshot.id === snapshot.id ? path.join(stagingDir, ...storedEntry(link.entry).split('/')) : linkFile(chainRoot, link));
      for (const s of deltas) {
        const out = path.join(stagingDir, ...s.entry.file.split('/'));
        const sha = await rebuildFromChain(chains.get(s.entry.name)!, fileOf, chainResult.shas, out);
        // From here it is an unpacked image: the same checks, starting with its sha256.
        onImage(s.entry.file, sha);
      }
      fs.rmSync(chainRoot, { recursive: true, force: true });
    }
    req.onUnpacked();
    return await collectVerdicts(selected, checks);
  } finally {
    await chainsUnpacked;
    // Workers may still hold staged files open: let them finish before staging is removed.
    await Promise.allSettled(checks.values());
    await pool.close();
  }
}

/**
 * The chains of the selected databases stored as deltas.
 * @throws WbError `restore_refused` for one whose chain was not resolved
 */
function chainsOf(deltas: readonly Selected[], chains: DatabaseChains | undefined): Map<string, readonly ChainLink[]> {
  const out = new Map<string, readonly ChainLink[]>();
  for (const s of deltas) {
    const links = chains?.get(s.entry.name);
    if (!links?.length) throw new WbError('restore_refused', `Refusing to restore ${s.entry.name}: it is stored as a delta and its chain of snapshots was not resolved. Nothing was changed.`, 'Restore an older snapshot whose chain is whole.');
    out.set(s.entry.name, links);
  }
  return out;
}

/**
 * The extractor's per-file callback: checks a chosen database's sha256 and header at once, then
 * starts its verification in the pool (and, for a real restore, its flush to disk) beside the
 * unpacking. Each verdict lands in `checks` under the file's archive entry.
 */
function verifyOnUnpack(req: StageRequest, pool: VerifyPool, checks: Map<string, Promise<VerifyResponse>>): (file: string, sha: string) => void {
  const byFile = new Map(req.selected.map((s) => [s.entry.file, s]));
  return (file, sha) => {
    const s = byFile.get(file);
    if (!s) return;
    if (sha !== s.entry.sha256) {
      checks.set(file, Promise.resolve({ ok: false, problem: 'its file does not match the checksum in the manifest' }));
      return;
    }
    const staged = path.join(req.stagingDir, ...file.split('/'));
    const headerProblem = stagedHeaderProblem(staged, s.entry);
    if (headerProblem) {
      checks.set(file, Promise.resolve({ ok: false, problem: headerProblem }));
      return;
    }
    const pending = pendingMigrations(req.ladders.get(s.entry.name) ?? [], s.entry.user_version);
    // A real restore makes staged files durable before the swap, so a power cut after it cannot
    // leave them unwritten. The flush runs on I/O threads while a worker checks the file.
    const flushed = req.durable ? flushToDisk(staged) : Promise.resolve(null);
    const verdict = pool.verify({ staged, expectedRows: s.entry.rows, pending, durable: req.durable });
    checks.set(
      file,
      Promise.all([verdict, flushed]).then(([v, flushProblem]) => {
        const out = v.ok && flushProblem ? { ok: false as const, problem: flushProblem } : v;
        if (out.ok) req.onVerified?.(s.entry.bytes);
        return out;
      }),
    );
  };
}

/**
 * Each selected database's verdict, in order.
 * @throws WbError `restore_refused` for the first that failed (or is missing from the archive)
 */
async function collectVerdicts(selected: readonly Selected[], checks: ReadonlyMap<string, Promise<VerifyResponse>>): Promise<StagedDatabase[]> {
  const staged: StagedDatabase[] = [];
  for (const s of selected) {
    const verdict = (await checks.get(s.entry.file)) ?? { ok: false as const, problem: 'it is missing from the archive' };
    if (!verdict.ok) {
      throw new WbError('restore_refused', `Refusing to restore ${s.entry.name}: ${verdict.problem}. Nothing was changed.`, verdict.hint ?? 'Use another snapshot.');
    }
    staged.push({ selected: s, applied: verdict.applied, rows: verdict.rows, toVersion: verdict.toVersion });
  }
  return staged;
}

/** The staged file's own header must agree with the manifest: the schema version is read from the data, not trusted. */
function stagedHeaderProblem(staged: string, entry: ManifestDatabase): string | null {
  const header = Buffer.alloc(100);
  let n = 0;
  try {
    const fd = fs.openSync(staged, 'r');
    try {
      n = fs.readSync(fd, header, 0, 100, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return `its staged file cannot be read (${(err as Error).message})`;
  }
  if (n < 100 || header.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') return 'it is not an SQLite database';
  const userVersion = header.readInt32BE(60);
  if (userVersion !== entry.user_version) return `its schema version (user_version in the file) is ${userVersion}, but the manifest says ${entry.user_version}`;
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  if (pageSize !== entry.page_size) return `its page size is ${pageSize}, but the manifest says ${entry.page_size}`;
  return null;
}

/** fdatasync a staged file; resolves to a problem to report, or null. */
async function flushToDisk(file: string): Promise<string | null> {
  try {
    await syncFileDataAsync(file);
    return null;
  } catch (err) {
    return `it could not be written to disk (${(err as Error).message})`;
  }
}

/**
 * The manifest beside the archive: its checksum, then its contents. The archive's own checksum is
 * checked while it unpacks (stageAndVerify).
 * @throws WbError `manifest_invalid` when it is not JSON, or names another snapshot or codec
 */
export async function verifyManifest(snapshot: LocalSnapshot): Promise<Manifest> {
  await verifyAgainstChecksums(snapshot.checksumPath, snapshot.manifestPath);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(snapshot.manifestPath, 'utf8'));
  } catch (err) {
    throw new WbError('manifest_invalid', `The snapshot's manifest is not valid JSON (${(err as Error).message}). Nothing was restored.`, 'Use another snapshot.');
  }
  const manifest = validateManifest(raw);
  if (manifest.snapshot_id !== snapshot.id) {
    throw new WbError('manifest_invalid', `The manifest belongs to ${manifest.snapshot_id}, not ${snapshot.id}. Nothing was restored.`, 'Use another snapshot.');
  }
  if (manifest.codec !== snapshot.codec) {
    throw new WbError('manifest_invalid', `The manifest says ${manifest.codec} but the archive is ${snapshot.codec}. Nothing was restored.`, 'Use another snapshot.');
  }
  return manifest;
}


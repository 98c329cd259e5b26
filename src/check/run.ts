import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { makeOwnedTempDir, removeStaleOwnedTempDirs } from '../core/owned-temp.js';
import { ProgressReporter } from '../core/progress.js';
import { databaseChain, readLocalManifest } from '../snapshot/chain-set.js';
import { verifyAgainstChecksums } from '../snapshot/checksums.js';
import type { Manifest } from '../snapshot/manifest.js';
import { listLocalSnapshots, type LocalSnapshot } from '../snapshot/store.js';
import { compareSnapshotIds, parseSnapshotId, snapshotHost } from '../snapshot/id.js';
import { configuredHost, scopeByHost, type HostScope } from '../root/host.js';
import { remoteFromConfig } from '../remote/registry.js';
import { ensureLocalSnapshot, fetchChainLinksInto } from '../remote/fetch.js';
import type { Remote } from '../remote/remote.js';
import { linkFile, rebuildFromChain, resolveChains, unpackChainArchives, type ChainLink } from '../restore/chain-stage.js';
import { verifyManifest } from '../restore/stage.js';
import { verifyStaged } from '../restore/verify-staged.js';
import { LastCheckSchema, SnapshotVerdictSchema, readLastCheck, writeLastCheck, type LastCheck, type SnapshotVerdict } from './record.js';
import { parseReadData, pickRolling, sampleShare, type Random } from './sample.js';

/** How many snapshots a check reads in full. */
export type ReadData = { kind: 'none' } | { kind: 'all' } | { kind: 'share'; share: number } | { kind: 'rolling'; runsPerPeriod: number };

export interface CheckOptions {
  /** check the remote's copies (listing, manifests, chains; with readData: download and rebuild) instead of the local ones */
  remote: boolean;
  readData: ReadData;
  /** only these snapshots, whatever their host (default: every one of `host`'s) */
  ids?: readonly string[];
  /** whose snapshots: a host name or "all" (default: this machine's, its configured host) */
  host?: string;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number | undefined, message: string) => void;
  /** the remote to check; default: the configured one */
  remoteImpl?: Remote | null;
  now?: () => Date;
  random?: Random;
}

const MAX_LISTED = 20;

export const CheckResultSchema = z.object({
  where: z.enum(['local', 'remote']),
  ok: z.boolean().describe('true when every snapshot checked passed'),
  checked: z.number().int().describe('snapshots whose listing, checksums, manifest and chain were checked'),
  read: z.number().int().describe('of those, snapshots read in full: rebuilt in a temporary folder and checked like a restore (integrity_check, foreign_key_check, row counts)'),
  failed_count: z.number().int(),
  failed: z.array(SnapshotVerdictSchema).describe(`the snapshots that failed, with what failed (at most ${MAX_LISTED}; failed_count has them all)`),
  read_ids: z.array(z.string()).describe(`the snapshots read in full (at most ${MAX_LISTED})`),
  host: z
    .object({
      this_machine: z.string().describe("this machine's host name"),
      shown: z.string().describe('whose snapshots were checked: a host name, "all", or "named" when ids were given'),
      others: z.array(z.object({ host: z.string(), snapshots: z.number() })).describe('snapshots of other machines left unchecked (host "all" checks them), by host'),
    })
    .describe('which machines the check covered: several machines can share one remote, and by default a machine checks its own snapshots'),
  duration_ms: z.number(),
});
export type CheckResult = z.infer<typeof CheckResultSchema>;

/**
 * `wb-backup check` / data_backup_check: proof that stored copies restore, without restoring them.
 * Every snapshot of this machine (of `opts.host`: a host name or "all"; or those named, whatever
 * their host: several machines can share one remote, docs/remotes.md): its files are listed, its manifest and archive checksums hold,
 * the manifest validates, and each database stored as a delta has its whole chain (bases present,
 * sha256 links right). The snapshots chosen by `readData` are then rebuilt, database by database,
 * in a temporary folder outside the data root (downloaded there first for the remote) and checked
 * as a restore checks them. Live databases are never read or written. The result is recorded in
 * backups/last_check.json (health reads it).
 * @throws WbError `invalid_input` (an id that is not there), `remote_failed` (no remote, or it cannot be listed), `busy`
 */
export async function runCheck(config: Config, opts: CheckOptions): Promise<CheckResult> {
  const started = new Date((opts.now ?? (() => new Date()))().getTime());
  const t0 = Date.now();
  const where = opts.remote ? 'remote' : 'local';
  const previous = readLastCheck(config.root);
  const meter = new ProgressReporter((done, total, message) => opts.onProgress?.(done, total, message));
  // A work folder a killed check left (its process gone) is removed first.
  removeStaleOwnedTempDirs(os.tmpdir(), 'wb-check-');
  const work = makeOwnedTempDir(os.tmpdir(), 'wb-check-');
  try {
    // No root lock: a check may take long and must never hold back a snapshot; a snapshot that
    // retention removes while it is checked is left out rather than reported (checkLocal).
    const { verdicts, scope } = opts.remote ? await checkRemote(config, opts, previous, meter, work) : await checkLocal(config, opts, previous, meter, work);
    meter.stop();
    const failed = verdicts.filter((v) => !v.ok);
    const readAt = { ...(previous?.read_at ?? {}) };
    const mine = { ...(readAt[where] ?? {}) };
    for (const v of verdicts) if (v.read && v.ok) mine[v.id] = started.toISOString();
    readAt[where] = mine;
    const record: LastCheck = LastCheckSchema.parse({
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      where,
      ok: failed.length === 0,
      checked: verdicts.length,
      read: verdicts.filter((v) => v.read).length,
      failed: failed.slice(0, 50),
      read_at: readAt,
    });
    writeLastCheck(config.root, record);
    logger().info({ where, checked: record.checked, read: record.read, failed: failed.length }, 'check done');
    return {
      where,
      ok: record.ok,
      checked: record.checked,
      read: record.read,
      failed_count: failed.length,
      failed: failed.slice(0, MAX_LISTED),
      read_ids: verdicts.filter((v) => v.read).map((v) => v.id).slice(0, MAX_LISTED),
      host: scope,
      duration_ms: Date.now() - t0,
    };
  } finally {
    meter.stopMeasuring();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The snapshots to read in full, among `ids` (the ones checked). */
function chooseForReading(ids: readonly string[], readData: ReadData, lastRead: Record<string, string> | undefined, random?: Random): Set<string> {
  switch (readData.kind) {
    case 'none':
      return new Set();
    case 'all':
      return new Set(ids);
    case 'share':
      return new Set(sampleShare(ids, readData.share, random));
    case 'rolling':
      return new Set(pickRolling(ids, new Map(Object.entries(lastRead ?? {}).map(([id, at]) => [id, Date.parse(at)])), { runsPerPeriod: readData.runsPerPeriod, ...(random ? { random } : {}) }));
  }
}

/**
 * The ids to check among `all` (newest first): those named, whatever their host (an id names its
 * machine), else `opts.host`'s (default this machine's), the other machines' counted.
 */
function selectIds(config: Config, all: readonly string[], opts: CheckOptions, where: string): { ids: string[]; scope: HostScope } {
  const thisHost = configuredHost(config);
  const wanted = opts.ids;
  if (!wanted?.length) return scopeByHost(all, (id) => snapshotHost(id, thisHost) ?? thisHost, thisHost, opts.host ?? thisHost);
  const known = new Set(all);
  const missing = wanted.filter((id) => !known.has(id));
  if (missing.length) throw new WbError('invalid_input', `No ${where} snapshot with id ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}.`, `List them with \`wb-backup list\` (data_backup_list; --host all for every machine's).`);
  return { ids: [...new Set(wanted)], scope: { this_machine: thisHost, shown: 'named', others: [] } };
}

async function checkLocal(config: Config, opts: CheckOptions, previous: LastCheck | null, meter: ProgressReporter, work: string): Promise<{ verdicts: SnapshotVerdict[]; scope: HostScope }> {
  const local = listLocalSnapshots(config.root);
  const byId = new Map(local.map((s) => [s.id, s]));
  const { ids, scope } = selectIds(config, local.map((s) => s.id), opts, 'local');
  const toRead = chooseForReading(ids, opts.readData, previous?.read_at?.local, opts.random);
  // A snapshot read in full whose chain lacks a link here fetches it from the remote, as a restore
  // would, into the check's work folder (the data root is left as it is); checked like the others.
  const fetched = await fetchMissingLinks(config, opts, [...toRead].map((id) => byId.get(id)!), path.join(work, 'fetched-root'));
  for (const s of fetched.snapshots) if (!byId.has(s.id)) byId.set(s.id, s);
  const manifests = new Map<string, Manifest | null>();
  const manifestOf = (id: string) => {
    if (!manifests.has(id)) manifests.set(id, byId.has(id) ? readLocalManifest(byId.get(id)!) : null);
    return manifests.get(id)!;
  };
  const total = ids.reduce((n, id) => n + byId.get(id)!.bytes * (toRead.has(id) ? 2 : 1), 0);
  let done = 0;
  const verdicts: SnapshotVerdict[] = [];
  // Each archive's checksums are verified once, whether it is checked itself or is a link of another's chain.
  const stored = new Map<string, Promise<string[]>>();
  const storedProblems = (id: string) => {
    if (!stored.has(id)) stored.set(id, checkStoredSnapshot(byId.get(id)!, manifestOf));
    return stored.get(id)!;
  };
  for (const id of ids) {
    if (opts.signal?.aborted) throw new WbError('interrupted', 'The check was cancelled.');
    const snapshot = byId.get(id)!;
    meter.report({ done, total, message: `checking ${id}` });
    const problems = [...(await storedProblems(id))];
    const fetchProblem = fetched.problems.get(id);
    if (fetchProblem) problems.push(`its chain could not be fetched from the remote: ${fetchProblem}`);
    // A delta restores only if every archive of its chain does: a damaged link fails it too.
    if (problems.length === 0) {
      for (const link of chainLinks(manifestOf(id), manifestOf)) {
        if (!byId.has(link)) continue; // a missing base is already reported by chainProblems
        const linkProblems = await storedProblems(link);
        if (linkProblems.length) problems.push(`its chain needs ${link}, which is damaged: ${linkProblems[0]}`);
      }
    }
    done += snapshot.bytes;
    let read = false;
    if (toRead.has(id) && problems.length === 0) {
      meter.report({ done, total, message: `reading ${id}` });
      problems.push(...(await readSnapshot(config.root, snapshot, work, fetched.snapshots)));
      read = true;
    }
    if (toRead.has(id)) done += snapshot.bytes;
    // Pruned by a snapshot's retention sweep while it was checked: gone on purpose, not damaged.
    if (problems.length && !fs.existsSync(snapshot.archivePath)) continue;
    verdicts.push({ id, where: 'local', read, ok: problems.length === 0, problems });
  }
  return { verdicts, scope };
}

/**
 * The chain links the snapshots `toRead` lack here, downloaded from the configured remote into
 * `intoRoot` (only when some link is missing; never into the data root). A snapshot whose links
 * could not be fetched keeps its chain problem and gets the reason why.
 */
async function fetchMissingLinks(config: Config, opts: CheckOptions, toRead: readonly LocalSnapshot[], intoRoot: string): Promise<{ snapshots: LocalSnapshot[]; problems: Map<string, string> }> {
  const snapshots: LocalSnapshot[] = [];
  const problems = new Map<string, string>();
  if (!toRead.length) return { snapshots, problems };
  const remote = opts.remoteImpl !== undefined ? opts.remoteImpl : remoteFromConfig(config);
  if (!remote) return { snapshots, problems };
  for (const snapshot of toRead) {
    if (opts.signal?.aborted) throw new WbError('interrupted', 'The check was cancelled.');
    try {
      snapshots.push(...(await fetchChainLinksInto(config, snapshot, remote, intoRoot, opts.signal)));
    } catch (err) {
      if (err instanceof WbError && err.code === 'interrupted') throw err;
      problems.set(snapshot.id, describeError(err));
    }
  }
  return { snapshots, problems };
}

/** The other snapshots a snapshot's deltas are rebuilt from (bases, their bases, ...), as far as manifests tell. */
function chainLinks(manifest: Manifest | null, manifestOf: (id: string) => Manifest | null): string[] {
  const links: string[] = [];
  let cur = manifest;
  while (cur?.kind === 'delta' && cur.base && !links.includes(cur.base) && links.length < 1000) {
    links.push(cur.base);
    cur = manifestOf(cur.base);
  }
  return links;
}

/** Checksums, manifest and chains of one local snapshot; the problems found, each naming what. */
async function checkStoredSnapshot(snapshot: LocalSnapshot, manifestOf: (id: string) => Manifest | null): Promise<string[]> {
  const problems: string[] = [];
  let manifest: Manifest | null = null;
  if (!fs.existsSync(snapshot.manifestPath) || !fs.existsSync(snapshot.checksumPath)) {
    const gone = [snapshot.manifestPath, snapshot.checksumPath].filter((f) => !fs.existsSync(f)).map((f) => path.basename(f));
    return [`${gone.join(' and ')} ${gone.length > 1 ? 'are' : 'is'} missing beside the archive, so the snapshot cannot be verified or restored: restore another snapshot, or put the file back (a remote copy of this snapshot has it)`];
  }
  try {
    manifest = await verifyManifest(snapshot);
  } catch (err) {
    problems.push(`manifest: ${describeError(err)}`);
  }
  try {
    await verifyAgainstChecksums(snapshot.checksumPath, snapshot.archivePath);
  } catch (err) {
    problems.push(`archive: ${describeError(err)}`);
  }
  if (manifest) problems.push(...chainProblems(manifest, manifestOf));
  return problems;
}

/** Each database stored as a delta must have its whole chain: every base there, every sha256 link right. */
function chainProblems(manifest: Manifest, manifestOf: (id: string) => Manifest | null): string[] {
  const problems: string[] = [];
  const lookup = (id: string) => (id === manifest.snapshot_id ? manifest : manifestOf(id));
  for (const d of manifest.databases) {
    if (d.stored !== 'delta') continue;
    try {
      databaseChain(lookup, manifest.snapshot_id, d.name);
    } catch (err) {
      problems.push(`chain of ${d.name}: ${describeError(err)}`);
    }
  }
  return problems;
}

/**
 * Rebuilds every database of `snapshot` (from its chain) in `work` and checks it as a restore
 * would: the image's sha256, integrity_check, foreign_key_check, the manifest's row counts.
 * `root` is the data root whose backups/ holds the chain (the real one, or a download folder).
 */
async function readSnapshot(root: string, snapshot: LocalSnapshot, work: string, extra: readonly LocalSnapshot[] = []): Promise<string[]> {
  const problems: string[] = [];
  let manifest: Manifest;
  try {
    manifest = await verifyManifest(snapshot);
  } catch (err) {
    return [`manifest: ${describeError(err)}`];
  }
  let chains: Map<string, ChainLink[]>;
  try {
    chains = resolveChains(root, snapshot, manifest, manifest.databases, extra);
  } catch (err) {
    return [`chain: ${describeError(err)}`];
  }
  for (const entry of manifest.databases) {
    const dir = fs.mkdtempSync(path.join(work, 'db-'));
    try {
      const links = chains.get(entry.name) ?? [{ snapshot, entry }];
      const shas = await unpackChainArchives(new Map([[entry.name, links]]), null, dir);
      const rebuilt = path.join(dir, 'rebuilt.db');
      const sha = await rebuildFromChain(links, (l) => linkFile(dir, l), shas, rebuilt);
      if (sha !== entry.sha256) {
        problems.push(`${entry.name}: the rebuilt image does not match the sha256 in the manifest`);
        continue;
      }
      const verdict = verifyStaged({ staged: rebuilt, expectedRows: entry.rows, pending: [] });
      if (!verdict.ok) problems.push(`${entry.name}: ${verdict.problem}`);
    } catch (err) {
      problems.push(`${entry.name}: ${describeError(err)}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return problems;
}

async function checkRemote(config: Config, opts: CheckOptions, previous: LastCheck | null, meter: ProgressReporter, work: string): Promise<{ verdicts: SnapshotVerdict[]; scope: HostScope }> {
  const remote = opts.remoteImpl !== undefined ? opts.remoteImpl : remoteFromConfig(config);
  if (!remote) throw new WbError('remote_failed', 'No remote is configured, so there is no remote copy to check.', 'Set `remote:` in wb-backup.yaml (docs/remotes.md), or check the local snapshots (without --remote).');
  const call = opts.signal ? { signal: opts.signal } : {};
  let listed;
  try {
    listed = (await remote.list(call)).filter((r) => parseSnapshotId(r.id) !== null);
  } catch (err) {
    throw new WbError('remote_failed', `The remote (${remote.label}) could not be listed: ${describeError(err)}`, 'Check the network and the remote settings, then run the check again.');
  }
  listed.sort((a, b) => compareSnapshotIds(b.id, a.id));
  const byId = new Map(listed.map((r) => [r.id, r]));
  const { ids, scope } = selectIds(config, listed.map((r) => r.id), opts, 'remote');
  const toRead = chooseForReading(ids.filter((id) => byId.get(id)!.complete), opts.readData, previous?.read_at?.remote, opts.random);
  const manifests = new Map<string, Manifest | null>();
  const problemsOfManifest = new Map<string, string>();
  const manifestOf = async (id: string): Promise<Manifest | null> => {
    if (!manifests.has(id)) {
      try {
        manifests.set(id, byId.has(id) ? await remote.manifest(id, call) : null);
      } catch (err) {
        manifests.set(id, null);
        problemsOfManifest.set(id, describeError(err));
      }
    }
    return manifests.get(id)!;
  };
  // A download root of its own: chains downloaded once serve every snapshot that needs them.
  const downloadRoot = path.join(work, 'remote-root');
  const downloadConfig: Config = { ...config, root: downloadRoot };
  const total = ids.reduce((n, id) => n + (toRead.has(id) ? 2 * byId.get(id)!.bytes : 0), 0) || undefined;
  let done = 0;
  const verdicts: SnapshotVerdict[] = [];
  for (const id of ids) {
    if (opts.signal?.aborted) throw new WbError('interrupted', 'The check was cancelled.');
    meter.report({ done, ...(total !== undefined ? { total } : {}), message: `checking ${id} on ${remote.label}` } as { done: number; total?: number; message: string });
    const problems: string[] = [];
    if (byId.get(id)!.deleting) problems.push('half deleted on the remote (a retention sweep stopped part way): the next backup\'s sweep finishes deleting it');
    else if (!byId.get(id)!.complete) problems.push('incomplete on the remote (a push that did not finish): the next backup pushes it again');
    const manifest = await manifestOf(id);
    if (!manifest) problems.push(`manifest: ${problemsOfManifest.get(id) ?? 'missing'}`);
    else {
      // Bases must be on the remote too: prefetch their manifests, then check the chain synchronously.
      const seen = new Set<string>();
      let cur: Manifest | null = manifest;
      while (cur?.base && !seen.has(cur.base)) {
        seen.add(cur.base);
        cur = await manifestOf(cur.base);
      }
      problems.push(...chainProblems(manifest, (x) => manifests.get(x) ?? null));
    }
    let read = false;
    if (toRead.has(id) && problems.length === 0) {
      try {
        const snapshot = await ensureLocalSnapshot(downloadConfig, id, remote, opts.signal);
        done += byId.get(id)!.bytes;
        meter.report({ done, ...(total !== undefined ? { total } : {}), message: `reading ${id}` } as { done: number; total?: number; message: string });
        problems.push(...(await checkStoredSnapshot(snapshot, (x) => readLocalManifestById(downloadRoot, x))));
        if (problems.length === 0) problems.push(...(await readSnapshot(downloadRoot, snapshot, work)));
      } catch (err) {
        problems.push(`download: ${describeError(err)}`);
      }
      read = true;
      done += byId.get(id)!.bytes;
    }
    verdicts.push({ id, where: 'remote', read, ok: problems.length === 0, problems });
  }
  return { verdicts, scope };
}

function readLocalManifestById(root: string, id: string): Manifest | null {
  const s = listLocalSnapshots(root).find((x) => x.id === id);
  return s ? readLocalManifest(s) : null;
}

export { parseReadData };

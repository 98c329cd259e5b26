import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../root/config.js';
import { rootLayout } from '../root/paths.js';
import { encodeSegment } from '../root/names.js';
import { WbError } from '../core/errors.js';
import { ensureLocalSnapshot } from '../remote/fetch.js';
import { remoteFromConfig } from '../remote/registry.js';
import { verifyManifest } from '../restore/stage.js';
import { HotCopier } from '../backup/hot-copy.js';
import { chooseCodec } from '../snapshot/codec.js';
import { cachedSnapshotDatabase, cacheEntryOf, resolveSnapshotId } from './cache.js';

/** A side of a diff: a snapshot id, "latest" (the newest local snapshot) or "live" (the databases now). */
export type SideName = string;

/** A side resolved: its databases' names, and how to get each as a file nobody writes. */
export interface Side {
  /** "live", or the snapshot id ("latest" resolved) */
  label: string;
  kind: 'snapshot' | 'live';
  databases: string[];
  /** a live database that could not be copied: name -> why */
  skipped: Record<string, string>;
  /** the database as a file to read (rebuilt into the cache, or a fresh hot copy) */
  file(db: string): Promise<string>;
  /** removes the hot copies of a live side */
  close(): void;
}

/**
 * Opens one side. A snapshot side reads its manifest (fetching the snapshot from the remote when
 * only the remote has it) and rebuilds databases into the cache on demand. The live side takes a
 * consistent copy of each live database the way a backup does (backup/hot-copy: a page image from
 * one read transaction, in a worker) into a private folder under the cache, removed by close():
 * the live file is only read, as by any backup.
 * @throws WbError `not_found` (no such snapshot), `invalid_input` (a database name it does not have)
 */
export async function openSide(config: Config, name: SideName, wanted: string[] | undefined, signal?: AbortSignal): Promise<Side> {
  if (name === 'live') return openLive(config, wanted);
  const snapshot = await ensureLocalSnapshot(config, resolveSnapshotId(config.root, name), remoteFromConfig(config), signal);
  const manifest = await verifyManifest(snapshot);
  const names = manifest.databases.map((d) => d.name);
  const keep: string[] = [];
  const databases = wanted ? names.filter((n) => wanted.includes(n)) : names;
  return {
    label: snapshot.id,
    kind: 'snapshot',
    databases,
    skipped: {},
    async file(db) {
      // The side's other databases are rebuilt in the same pass over the archives (alongWith).
      const c = await cachedSnapshotDatabase(config, snapshot.id, db, { ...(signal ? { signal } : {}), keep, alongWith: databases });
      keep.push(cacheEntryOf(c.file));
      return c.file;
    },
    close() {},
  };
}

function openLive(config: Config, wanted: string[] | undefined): Side {
  const dbs = config.databases.filter((d) => !wanted || wanted.includes(d.name));
  const dir = path.join(path.dirname(rootLayout(config.root).snapshotCacheDir), `live-${process.pid}-${randomBytes(6).toString('hex')}`);
  let copier: HotCopier | null = null;
  const skipped: Record<string, string> = {};
  return {
    label: 'live',
    kind: 'live',
    databases: dbs.map((d) => d.name),
    skipped,
    async file(name) {
      const db = dbs.find((d) => d.name === name);
      if (!db) throw new WbError('invalid_input', `There is no live database named ${name}.`, 'Use a name data_backup_list or health_status shows.');
      fs.mkdirSync(dir, { recursive: true });
      copier ??= new HotCopier();
      const dest = path.join(dir, `${encodeSegment(name)}.db`);
      const copied = await copier.copy({ source: db.path, dest, busyTimeoutMs: 5000, codec: chooseCodec(config.compression.codec) });
      if (copied.kind !== 'copied') {
        const why = copied.kind === 'skipped' ? copied.reason : copied.message;
        skipped[name] = why;
        throw new WbError(copied.kind === 'failed' && copied.code === 'disk_full' ? 'disk_full' : 'snapshot_failed', `The live database ${name} could not be copied: ${why}.`, 'Try again when it is readable, or compare two snapshots instead.');
      }
      return dest;
    },
    close() {
      void copier?.close();
      copier = null;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

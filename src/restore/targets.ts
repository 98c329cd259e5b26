import fs from 'node:fs';
import path from 'node:path';
import type { Config, VitalDatabase } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { unsafeRelativePathReason, type Manifest, type ManifestDatabase } from '../snapshot/manifest.js';
import { displayPath, rootLayout } from '../root/paths.js';
import { journalPath, realTarget } from './journal.js';

/** A snapshot database chosen for a restore, and the live file it goes to. */
export interface Selected {
  entry: ManifestDatabase;
  target: string;
  /** its configured (or discovered) database; undefined for a name this setup does not know */
  vital: VitalDatabase | undefined;
}

/** @throws WbError `restore_refused` with the message (saying nothing was changed) and the hint */
export function refuse(message: string, hint = 'Use another snapshot, or restore by hand (docs/formats.md).'): never {
  throw new WbError('restore_refused', `${message} Nothing was changed.`, hint);
}

/** Data-root files and folders of wb-backup itself: never a restore target, whatever a manifest or configuration says. */
function rootOwnPathReason(root: string, target: string): string | null {
  const rel = path.relative(root, target);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const first = rel.split(path.sep)[0] ?? '';
  const layout = rootLayout(root);
  const own = [path.basename(layout.configYaml), path.basename(layout.configJson), path.basename(layout.backupsDir), path.basename(journalPath(root))];
  if (own.includes(first) || first.startsWith(path.basename(journalPath(root))) || first.startsWith(path.basename(layout.lockTarget))) return `it is wb-backup's own ${first}`;
  if (/^db\.(pre_restore|staging|discard)_/.test(first)) return `it is inside wb-backup's folder ${first}`;
  return null;
}

/** The nearest existing folder above `file`, resolved through links. */
function realParent(file: string): string {
  let dir = path.dirname(file);
  for (;;) {
    try {
      return fs.realpathSync(dir);
    } catch {
      const up = path.dirname(dir);
      if (up === dir) return dir;
      dir = up;
    }
  }
}

/**
 * Where a snapshot database goes. A configured (or discovered) database goes to its own file; any
 * other name only to a `.db` file under <root>/db/ (through no link out of it). The manifest's name
 * and relative_path are untrusted: anything else is refused with the reason.
 */
function targetFor(config: Config, entry: ManifestDatabase): { target: string; vital: VitalDatabase | undefined } {
  // No real snapshot ever says a database lived in one of wb-backup's own files: such a manifest is
  // hostile even when the name is known (and the configured file would be used).
  const claimed = rootOwnPathReason(config.root, path.join(config.root, ...entry.relative_path.split(/[\\/]/)));
  if (claimed) refuse(`The snapshot says database ${entry.name} lived at "${entry.relative_path}": ${claimed}. The manifest is damaged or hostile.`);
  const vital = config.databases.find((d) => d.name === entry.name);
  let target: string;
  if (vital) target = vital.path;
  else {
    const rel = entry.relative_path;
    const why = unsafeRelativePathReason(rel);
    const parts = rel.split(/[\\/]/);
    const hint = `Restore only the databases this setup knows (databases: [...]), or add ${entry.name} under databases: in wb-backup.yaml to say where it goes.`;
    if (why) refuse(`The snapshot places database ${entry.name} at "${rel}", which is unsafe: ${why}.`, hint);
    if (parts[0] !== 'db' || parts.length < 2 || !rel.endsWith('.db')) {
      refuse(`The snapshot places database ${entry.name}, which this setup does not know, at "${rel}": only a .db file under db/ can receive a database the configuration does not name.`, hint);
    }
    target = path.join(config.root, ...parts);
    const dbDir = rootLayout(config.root).dbDir;
    let realDb = dbDir;
    try {
      realDb = fs.realpathSync(dbDir);
    } catch {
      /* no db/ yet: nothing under it can be a link */
    }
    const parent = realParent(target);
    if (parent !== realDb && !parent.startsWith(realDb + path.sep) && fs.existsSync(dbDir)) {
      refuse(`The snapshot places database ${entry.name} at "${rel}", whose folder leads out of db/ through a link.`, hint);
    }
    // The file itself may be a link (discovery skips one that leads nowhere, so its name is unknown):
    // the swap would write where it leads, creating folders there.
    const real = realTarget(target);
    const realDir = realParent(real);
    if (real !== target && fs.existsSync(dbDir) && realDir !== realDb && !realDir.startsWith(realDb + path.sep)) {
      refuse(`The snapshot places database ${entry.name} at "${rel}", a symbolic link that leads out of db/ (to ${real}).`, hint);
    }
  }
  const own = rootOwnPathReason(config.root, target);
  if (own) refuse(`The snapshot would restore database ${entry.name} over ${displayPath(config.root, target)}: ${own}.`);
  return { target, vital };
}

/**
 * The databases of the snapshot to restore (all, or the requested names) with their targets.
 * @throws WbError `invalid_input` for a name the snapshot lacks; `restore_refused` when a target is
 *   unsafe, or two databases would land on one file
 */
export function selectDatabases(config: Config, manifest: Manifest, requested: string[] | undefined): Selected[] {
  const available = manifest.databases.map((d) => d.name);
  if (requested && requested.length) {
    const unknown = requested.filter((n) => !available.includes(n));
    if (unknown.length) {
      throw new WbError('invalid_input', `Snapshot ${manifest.snapshot_id} has no database named ${unknown.join(', ')}.`, `It holds: ${available.join(', ')}.`);
    }
  }
  const names = requested && requested.length ? [...new Set(requested)] : available;
  const selected = manifest.databases.filter((d) => names.includes(d.name)).map((entry) => ({ entry, ...targetFor(config, entry) }));
  // One live file receives one database: two entries on one target (also through a link, or under
  // case folding on macOS and Windows) would make the second swap over the first.
  const byTarget = new Map<string, string>();
  const fold = process.platform === 'darwin' || process.platform === 'win32';
  for (const s of selected) {
    let key = path.resolve(s.target);
    try {
      key = fs.realpathSync(key);
    } catch {
      key = path.join(realParent(key), path.basename(key));
    }
    if (fold) key = key.toLowerCase();
    const other = byTarget.get(key);
    if (other) refuse(`The snapshot puts databases ${other} and ${s.entry.name} on the same file, ${displayPath(config.root, s.target)}.`);
    byTarget.set(key, s.entry.name);
  }
  // A known database's file receives only that database.
  for (const s of selected) {
    const owner = config.databases.find((d) => d.name !== s.entry.name && path.resolve(d.path) === path.resolve(s.target));
    if (owner) refuse(`The snapshot puts database ${s.entry.name} on the file of database ${owner.name} (${displayPath(config.root, s.target)}).`);
  }
  return selected;
}


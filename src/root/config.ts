import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { WbError } from '../core/errors.js';
import { expandHome, rootLayout } from './paths.js';
import { RetentionPolicySchema } from './retention-schema.js';
import { SyncConfigSchema } from './sync-schema.js';
import { RemoteSectionSchema } from './remote-section.js';
import { byCodeUnit } from '../core/text-order.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { HostNameSchema } from './host.js';
import { MAX_LOGICAL_NAME, isSafeLogicalName, logicalNameForPath, logicalNameProblem } from './names.js';

/** The names a configuration usually gives; every name is checked by names.ts's isSafeLogicalName (which also takes %XX escapes). */
export const DB_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const DatabaseEntrySchema = z
  .object({
    path: z.string().min(1).describe('SQLite file, absolute or relative to the data root'),
    migrations: z.string().min(1).optional().describe('folder of NNN_name.sql migrations raising PRAGMA user_version'),
  })
  .strict();

export const ConfigFileSchema = z
  .object({
    databases: z
      .record(z.string(), DatabaseEntrySchema)
      .superRefine((record, ctx) => {
        // Checked here rather than on the key schema, so the error names the key and says why.
        for (const name of Object.keys(record)) {
          if (!isSafeLogicalName(name)) ctx.addIssue({ code: 'custom', path: [name], message: `${logicalNameProblem(name)} (at most ${MAX_LOGICAL_NAME} characters)` });
        }
      })
      .optional()
      .describe('logical name -> file; absent: every *.db under <root>/db/'),
    host: HostNameSchema.optional().describe(
      "this machine's name in snapshot ids and on remotes (default: the hostname made safe for ids); several machines can share one remote when each has its own",
    ),
    retention: RetentionPolicySchema.prefault({}),
    compression: z
      .object({
        codec: z.enum(['auto', 'zstd', 'gzip']).default('auto'),
        level: z.number().int().min(1).max(19).optional(),
      })
      .strict()
      .prefault({}),
    backup: z
      .object({
        cadence_minutes: z.number().int().positive().default(60),
        lock_wait_ms: z.number().int().min(0).max(600_000).default(3000),
        incremental: z
          .object({
            enabled: z.boolean().default(true).describe('false: every snapshot stores each database whole'),
            full_every_hours: z.number().positive().max(24 * 365).default(24).describe('a full snapshot at least this often'),
            max_deltas: z.number().int().min(0).max(1000).default(48).describe('at most this many deltas after a full: a restore reads at most 1 + max_deltas archives'),
            max_delta_share: z.number().positive().max(100).default(1).describe("a full once the deltas since the last full add up to this share of the full's size: a restore reads at most (1 + share) x the full's bytes plus its own delta"),
          })
          .strict()
          .prefault({})
          .describe('incremental snapshots: page deltas against the previous snapshot (docs/formats.md, "Chains")'),
        check_period_days: z.number().int().min(1).max(365).default(7).describe('the daily check job reads every snapshot in full at least once in this many days'),
      })
      .strict()
      .prefault({}),
    restore: z
      .object({
        keep_safety_copies: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(3)
          .describe('how many db.pre_restore_* safety copies (what restores, undos and imports replaced) are kept; the plan names the one it would prune'),
      })
      .strict()
      .prefault({}),
    remote: RemoteSectionSchema.nullable().default(null).describe('off-machine copies: {<backend>: {settings}}; each backend (src/remote/<name>/) owns the schema of its settings'),
    sync: SyncConfigSchema.optional().describe('github-sync: a readable mirror of the databases in a git repository'),
    health: z
      .object({
        opt_in: z.array(z.string()).default([]).describe('opt-in health components the user enabled, e.g. github_backups'),
        disabled: z
          .array(z.string())
          .default([])
          .describe('opt-in health components turned off: not checked, their work stops (sidecar jobs, GitHub copies); their settings and data are kept'),
      })
      .strict()
      .prefault({}),
    inspect: z
      .object({
        cache_max_mb: z.number().int().min(1).max(1_048_576).default(2048).describe('the rebuilt-snapshot cache (<root>/cache/snapshots) keeps at most this many MiB; the least recently used copies go first'),
        query_timeout_ms: z.number().int().min(100).max(600_000).default(5000).describe('data_snapshot_query stops a query that runs longer than this'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8787),
        allowed_hosts: z.array(z.string()).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ConfigFile = z.infer<typeof ConfigFileSchema>;

export interface VitalDatabase {
  name: string;
  /** absolute path of the live file */
  path: string;
  migrationsDir?: string;
}

export interface Config extends Omit<ConfigFile, 'databases'> {
  root: string;
  configFile: string | null;
  databases: VitalDatabase[];
  /** true when the list came from scanning <root>/db/ rather than the config */
  discovered: boolean;
  /** *.db files discovery found but cannot back up (dangling or looping links), with the reason; absent when none */
  skipped?: DiscoverySkip[];
}

/** Parse and validate a config object; errors name the field path and what was expected. */
export function parseConfigFile(raw: unknown, source: string): ConfigFile {
  const result = ConfigFileSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    return `  - ${where}: ${issue.message}`;
  });
  throw new WbError(
    'config_invalid',
    `The configuration in ${source} is invalid:\n${lines.join('\n')}`,
    '\nFix these fields (docs/configuration.md lists every field and its default), then run the command again.',
  );
}

export function loadConfig(root: string): Config {
  const layout = rootLayout(root);
  const hasYaml = fs.existsSync(layout.configYaml);
  const hasJson = fs.existsSync(layout.configJson);
  if (hasYaml && hasJson) {
    throw new WbError(
      'config_invalid',
      'Both wb-backup.yaml and wb-backup.json exist in the data root, so it is unclear which one applies.',
      'Keep one of them.',
    );
  }
  let file: ConfigFile;
  let configFile: string | null = null;
  if (hasYaml || hasJson) {
    configFile = hasYaml ? layout.configYaml : layout.configJson;
    const text = fs.readFileSync(configFile, 'utf8');
    let raw: unknown;
    try {
      raw = hasYaml ? YAML.parse(text) : JSON.parse(text);
    } catch (err) {
      throw new WbError(
        'config_invalid',
        `${path.basename(configFile)} is not valid ${hasYaml ? 'YAML' : 'JSON'}: ${(err as Error).message}`,
        'Fix the syntax and run the command again.',
      );
    }
    file = parseConfigFile(raw, path.basename(configFile));
  } else {
    file = parseConfigFile({}, 'defaults');
  }
  const { databases, ...rest } = file;
  const vital = databases
    ? Object.entries(databases).map(([name, entry]) => ({
        name,
        // `~/` is the home folder, as in a shell; other relative paths are relative to the data root.
        path: path.resolve(root, expandHome(entry.path)),
        ...(entry.migrations ? { migrationsDir: path.resolve(root, expandHome(entry.migrations)) } : {}),
      }))
    : null;
  const discovery = vital ? null : discoverWithSkips(layout.dbDir);
  return { ...rest, root, configFile, databases: vital ?? discovery!.databases, discovered: !databases, ...(discovery?.skipped.length ? { skipped: discovery.skipped } : {}) };
}

/** A *.db under <root>/db/ that discovery found but cannot back up (a dangling link, a loop), with why. */
export interface DiscoverySkip {
  name: string;
  reason: string;
}

/**
 * Every *.db under <root>/db/ (recursively), in code-unit order of the paths. The name is its path
 * without ".db" through names.ts's logicalNameForPath (`sub/beta.db` -> `sub.beta`, `émile.db` ->
 * `%C3%A9mile`): the same files give the same names on every run, and two files never one name.
 * A symbolic link to a file is a database too (named after the link, backed up through it); a
 * link that dangles, loops or points at something else is returned in `skipped` with the reason.
 * Folders reached through links are not walked (a link to an ancestor would never end).
 */
export function discoverDatabases(dbDir: string): VitalDatabase[] {
  return discoverWithSkips(dbDir).databases;
}

/** discoverDatabases, with what it had to leave out and why. */
export function discoverWithSkips(dbDir: string): { databases: VitalDatabase[]; skipped: DiscoverySkip[] } {
  const found: VitalDatabase[] = [];
  const skipped: DiscoverySkip[] = [];
  walkDbFolder(dbDir, dbDir, found, skipped);
  return { databases: oncePerFile(found, skipped), skipped };
}

/** Walk one folder of db/ (recursively, not through links), adding databases to `found` and what it leaves out to `skipped`. */
function walkDbFolder(dbDir: string, dir: string, found: VitalDatabase[], skipped: DiscoverySkip[]): void {
  const entries = readUtf8Entries(dbDir, dir, skipped);
  if (!entries) return;
  for (const entry of entries.sort((a, b) => byCodeUnit(a.name, b.name))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      walkDbFolder(dbDir, full, found, skipped);
      continue;
    }
    if (!entry.name.endsWith('.db') || !(entry.isFile() || entry.isSymbolicLink())) continue;
    const named = logicalNameForPath(path.relative(dbDir, full).slice(0, -'.db'.length).split(path.sep));
    if ('reason' in named) {
      skipped.push({ name: path.relative(dbDir, full).split(path.sep).join('/'), reason: named.reason });
      continue;
    }
    const problem = entry.isSymbolicLink() ? linkProblem(full) : null;
    if (problem) skipped.push({ name: named.name, reason: problem });
    else found.push({ name: named.name, path: full });
  }
}

/**
 * The entries of `dir` whose names are UTF-8 (read as bytes: a name that is not UTF-8 would come
 * back with U+FFFD, so two such files would share one name and neither path would exist). Database
 * files and folders with other names go to `skipped` with the reason; null when the folder cannot
 * be read (no db/ folder at all is an empty list; a sub-folder that cannot be read is worth saying).
 */
function readUtf8Entries(dbDir: string, dir: string, skipped: DiscoverySkip[]): fs.Dirent[] | null {
  let raw: fs.Dirent<Buffer>[];
  try {
    raw = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
  } catch (err) {
    if (dir !== dbDir) skipped.push({ name: path.relative(dbDir, dir).split(path.sep).join('/'), reason: `the folder cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` });
    return null;
  }
  const entries: fs.Dirent[] = [];
  for (const e of raw) {
    const text = strictUtf8(e.name);
    if (text !== null) {
      entries.push(Object.assign(e, { name: text }) as unknown as fs.Dirent);
      continue;
    }
    if (!(e.isDirectory() || (e.name.subarray(-3).toString('latin1') === '.db' && (e.isFile() || e.isSymbolicLink())))) continue;
    const shown = [...e.name].map((b) => (b >= 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
    const rel = path.relative(dbDir, dir).split(path.sep).filter(Boolean);
    skipped.push({
      name: [...rel, shown].join('/'),
      reason: `its ${e.isDirectory() ? 'folder ' : ''}name is not valid UTF-8, so it cannot be named or backed up${e.isDirectory() ? ' (nor anything in it)' : ''}; rename it (e.g. convmv -f latin1 -t utf8)`,
    });
  }
  return entries;
}

/**
 * Two entries on one file (a link to another database under db/, or a hard link): back it up
 * once, under the entry that is not a link, else the first. Two copies of one file in a snapshot
 * would make every restore of it refuse ("puts two databases on the same file").
 */
function oncePerFile(found: VitalDatabase[], skipped: DiscoverySkip[]): VitalDatabase[] {
  const byFile = new Map<string, VitalDatabase>();
  const once: VitalDatabase[] = [];
  for (const d of found) {
    let id: string;
    try {
      const st = fs.statSync(d.path);
      id = `${st.dev}:${st.ino}`;
    } catch {
      once.push(d);
      continue;
    }
    const first = byFile.get(id);
    if (!first) {
      byFile.set(id, d);
      once.push(d);
      continue;
    }
    const dIsLink = fs.lstatSync(d.path).isSymbolicLink();
    const [kept, dropped] = dIsLink || fs.lstatSync(first.path).isSymbolicLink() === false ? [first, d] : [d, first];
    if (kept === d) {
      once[once.indexOf(first)] = d;
      byFile.set(id, d);
    }
    skipped.push({ name: dropped.name, reason: `it is the same file as database ${kept.name} (a link), which is backed up` });
  }
  return once;
}

/** `bytes` as UTF-8 text, or null when they are not valid UTF-8. */
function strictUtf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Why a symbolic link under db/ cannot be backed up through, or null when it leads to a regular file. */
function linkProblem(link: string): string | null {
  try {
    return fs.statSync(link).isFile() ? null : 'it is a symbolic link to something that is not a regular file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return 'it is a symbolic link that loops (it leads back to itself)';
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'it is a symbolic link to a file that does not exist';
    return `it is a symbolic link that cannot be followed (${code ?? 'error'})`;
  }
}

/** Write a config file (YAML) atomically; used by fixers and the demo. */
export function writeConfigFile(root: string, file: z.input<typeof ConfigFileSchema>): string {
  const layout = rootLayout(root);
  parseConfigFile(file, 'the new configuration');
  fs.mkdirSync(root, { recursive: true });
  writeFileAtomic(layout.configYaml, YAML.stringify(file));
  return layout.configYaml;
}

/**
 * Change some fields of the config file, keeping everything else in it (comments and order too),
 * validating the result before it replaces the file. Creates wb-backup.yaml when there is none.
 */
export function updateConfigFile(root: string, edit: (doc: YAML.Document) => void): string {
  const layout = rootLayout(root);
  if (fs.existsSync(layout.configJson) && !fs.existsSync(layout.configYaml)) {
    const raw = JSON.parse(fs.readFileSync(layout.configJson, 'utf8')) as unknown;
    const doc = new YAML.Document(raw);
    edit(doc);
    const next = doc.toJS() as unknown;
    parseConfigFile(next, 'the updated configuration');
    writeFileAtomic(layout.configJson, `${JSON.stringify(next, null, 2)}\n`);
    return layout.configJson;
  }
  const doc = fs.existsSync(layout.configYaml) ? YAML.parseDocument(fs.readFileSync(layout.configYaml, 'utf8')) : new YAML.Document({});
  edit(doc);
  parseConfigFile(doc.toJS() as unknown, 'the updated configuration');
  fs.mkdirSync(root, { recursive: true });
  writeFileAtomic(layout.configYaml, doc.toString());
  return layout.configYaml;
}

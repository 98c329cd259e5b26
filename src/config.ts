import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { WbError } from './errors.js';
import { rootLayout } from './paths.js';
import { RetentionPolicySchema } from './retention.js';
import { SyncConfigSchema } from './sync/config.js';
import { byCodeUnit } from './text-order.js';
import { writeFileAtomic } from './durable-file.js';

export const DB_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const DatabaseEntrySchema = z
  .object({
    path: z.string().min(1).describe('SQLite file, absolute or relative to the data root'),
    migrations: z.string().min(1).optional().describe('folder of NNN_name.sql migrations raising PRAGMA user_version'),
  })
  .strict();

const GithubRemoteSchema = z
  .object({
    github: z
      .object({
        repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected "owner/name"'),
        part_bytes: z.number().int().min(1024).optional().describe('split archives larger than this (default just under 2 GiB, the release-asset limit)'),
      })
      .strict(),
  })
  .strict();
const DirRemoteSchema = z
  .object({ dir: z.object({ path: z.string().min(1), part_bytes: z.number().int().min(1024).optional() }).strict() })
  .strict();

export const ConfigFileSchema = z
  .object({
    databases: z
      .record(z.string().regex(DB_NAME_PATTERN, 'database names use letters, digits, "_", "." and "-"'), DatabaseEntrySchema)
      .optional()
      .describe('logical name -> file; absent: every *.db under <root>/db/'),
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
    remote: z.union([GithubRemoteSchema, DirRemoteSchema]).nullable().default(null),
    sync: SyncConfigSchema.optional().describe('github-sync: a readable mirror of the databases in a git repository'),
    health: z
      .object({
        opt_in: z.array(z.string()).default([]).describe('opt-in health components the user enabled, e.g. github_backups'),
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
        path: path.resolve(root, entry.path),
        ...(entry.migrations ? { migrationsDir: path.resolve(root, entry.migrations) } : {}),
      }))
    : discoverDatabases(layout.dbDir);
  return { ...rest, root, configFile, databases: vital, discovered: !databases };
}

/** Every *.db under <root>/db/ (recursively); the name is its relative path without ".db", "/" -> ".". */
export function discoverDatabases(dbDir: string): VitalDatabase[] {
  const found: VitalDatabase[] = [];
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries.sort((a, b) => byCodeUnit(a.name, b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.db')) {
        const rel = path.relative(dbDir, full).slice(0, -'.db'.length);
        const name = rel.split(path.sep).join('.').replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^[^A-Za-z0-9]/, 'x');
        found.push({ name, path: full });
      }
    }
  };
  walk(dbDir);
  return found;
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

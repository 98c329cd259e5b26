// "health disable <typo> exits 1 while other bad usage exits 2", and "health.disabled: [bogus] in
// wb-backup.yaml is accepted silently": a name that is no health component is bad usage on the
// command line, and a configuration problem health_status reports, naming the known components.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { WbError } from '../src/core/errors.js';
import { healthStatus, setComponentEnabled } from '../src/health/service.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { blockedReason } from '../src/sidecar/service.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let root: string;
beforeEach(() => {
  root = tempRoot('wb-health-names-');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
});
afterEach(() => rmrf(root));

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
const KNOWN = 'Known components: github_backups, github_sync, local_backups.';
const backupJob = { name: 'backup', file: 'data-backup.md', description: '', schedule: '0 * * * *', capability: 'data_backup', args: {}, requires: 'local_backups', enabled: true, catch_up: true };

describe('health component names', () => {
  it('health disable, enable and --component with an unknown name exit 2 (bad usage), naming the components', () => {
    for (const args of [['health', 'disable', 'github_backup'], ['health', 'enable', 'nope'], ['health', '--component', 'nope']]) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/There is no health component "(github_backup|nope)"\. Components.*github_backups/s);
    }
  });

  it('wb-backup fix with an unknown requirement name exits 2 (bad usage, as health disable does), listing the known names', () => {
    for (const name of ['nope', 'local_backups.nope', 'github_backup']) {
      const r = cli('fix', name);
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toMatch(new RegExp(`There is no requirement "${name.replace(/\./g, '\\.')}"\\. Known: .*github_backups`, 's'));
    }
  });

  it('health.disabled naming no component is reported by health (CLI exit 2, MCP error result) with the known names; snapshots go on', async () => {
    writeConfigFile(root, { health: { disabled: ['github_backup'] } });
    const r = cli('health');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`health.disabled in ${path.join(root, 'wb-backup.yaml')} names "github_backup", which is not a health component. ${KNOWN}`);
    expect(r.stderr).toMatch(/Correct or remove that name under health\.disabled \(components that can be turned on or off: github_backups, github_sync\)/);

    const err = await healthStatus({ root, cacheMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('config_invalid');

    const { client, close } = await connectStdio(root);
    try {
      const result = (await client.callTool({ name: 'health_status', arguments: {} })) as { isError?: boolean; content: Array<{ text: string }> };
      expect(result.isError).toBe(true);
      expect(result.content[0]!.text).toContain(KNOWN);
    } finally {
      await close();
    }

    // A typo in health: must not stop the backups: the sidecar's job still runs, and so does `now`.
    expect(await blockedReason(root, backupJob)).toBeNull();
    expect((await runBackup(loadConfig(root), { remote: null })).snapshot_id).toMatch(/^snap-/);
    // Turning a real component off still works, and the report clears once the name is fixed.
    expect((await setComponentEnabled({ root }, 'github_sync', false)).enabled).toBe(false);
    writeConfigFile(root, { health: { disabled: ['github_sync'] } });
    expect((await healthStatus({ root, cacheMs: 0 })).map((c) => c.id).sort()).toEqual(['github_backups', 'github_sync', 'local_backups']);
  });

  it('health.opt_in naming no component is refused the same way, listing every unknown name', async () => {
    writeConfigFile(root, { health: { opt_in: ['github_backups', 'gitub_sync', 'cloud'] } });
    const err = (await healthStatus({ root, cacheMs: 0 }).catch((e: unknown) => e)) as WbError;
    expect(err).toBeInstanceOf(WbError);
    expect(err.message).toMatch(/health\.opt_in in .* names "gitub_sync", "cloud", which are not health components\. Known components:/);
    expect(err.hint).toMatch(/Correct or remove those names under health\.opt_in/);
  });
});

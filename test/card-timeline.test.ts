// "On the card I pick two snapshots and see what changed between them": the timeline lists the
// kept snapshots with their tier, size and host; a comparison shows the diff counts; nothing is written.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';

let browser: Browser;
let server: HttpServerProcess;
let root: string;
let older: string;
let newer: string;

beforeAll(async () => {
  root = tempRoot('wb-card-timeline-');
  const file = path.join(root, 'db', 'notes.db');
  makeNotesDb(file, 40);
  older = (await runBackup(loadConfig(root), { remote: null, manual: true })).snapshot_id;
  const db = new Database(file);
  db.prepare('DELETE FROM notes WHERE id <= 7').run();
  db.close();
  newer = (await runBackup(loadConfig(root), { remote: null, manual: true })).snapshot_id;
  server = await startHttpServerProcess(root);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  rmrf(root);
});

describe('the snapshot timeline on the card', () => {
  it('lists both snapshots with their tier and host, and comparing them shows 7 rows deleted', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(server.url);
    await expect.poll(() => page.locator('#timeline-list li').count()).toBe(2);
    const first = page.locator(`#timeline-list li[data-timeline-snapshot="${newer}"]`);
    await expect.poll(() => first.textContent()).toMatch(/manual/);
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'backups', `${newer}.manifest.json`), 'utf8')) as { host: string };
    expect(await first.textContent()).toContain(manifest.host);
    expect(await page.locator('#diff-from').inputValue()).toBe(older);
    expect(await page.locator('#diff-to').inputValue()).toBe(newer);
    const liveBefore = fs.statSync(path.join(root, 'db', 'notes.db'));
    await page.locator('#diff-run').click();
    await expect.poll(() => page.locator('#diff-result [data-totals]').textContent(), { timeout: 60_000 }).toMatch(/0 added, 7 deleted, 0 changed row\(s\)/);
    expect(await page.locator('#diff-result tr[data-table]').count()).toBe(1);
    const liveAfter = fs.statSync(path.join(root, 'db', 'notes.db'));
    expect([liveAfter.ino, liveAfter.size, liveAfter.mtimeMs]).toEqual([liveBefore.ino, liveBefore.size, liveBefore.mtimeMs]);
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = await page.locator('html').evaluate((e) => e.scrollWidth - e.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the diff API answers counts only, never row values', async () => {
    const res = await fetch(`${server.url}/api/diff?from=${older}&to=${newer}`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { totals: { rows_deleted: number }; databases: Array<{ tables: Array<Record<string, unknown>> }> };
    expect(body.totals.rows_deleted).toBe(7);
    expect(Object.keys(body.databases[0]!.tables[0]!).sort()).toEqual(['added', 'changed', 'compared', 'deleted', 'table']);
    const bad = await fetch(`${server.url}/api/diff?from=${older}`);
    expect(bad.status).toBe(400);
  });
});

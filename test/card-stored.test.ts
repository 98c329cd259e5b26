import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { formatBytes } from '../src/core/size-format.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { deleteLocalSnapshot, listLocalSnapshots } from '../src/snapshot/store.js';
import { makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';

// The card shows the bytes stored locally and on the remote (deltas count what they store), as
// the list endpoint reports them. Real server process, real headless Chromium.
const SHOTS = path.join(REPO_ROOT, 'test-results', 'card');

let browser: Browser;
let root: string;
let nas: string;
let server: HttpServerProcess;
beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  root = tempRoot('wb-card-stored-');
  nas = tempRoot('wb-card-stored-nas-');
  makeNotesDb(path.join(root, 'db', 'notes.db'), 500);
  writeConfigFile(root, { remote: { dir: { path: nas } } });
  const start = Date.UTC(2026, 10, 22, 8, 30);
  for (let h = 0; h < 3; h++) await runBackup(loadConfig(root), { now: () => new Date(start + h * 3_600_000) });
  // The oldest (the full) is now on the remote only: the two sides store different amounts.
  deleteLocalSnapshot(root, listLocalSnapshots(root).at(-1)!.id);
  server = await startHttpServerProcess(root);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  rmrf(root);
  rmrf(nas);
});

describe('the health card, bytes stored', () => {
  for (const width of [1100, 375]) {
    it(`shows the bytes stored locally and on the remote, and which snapshots are deltas (${width}px)`, async () => {
      const local = listLocalSnapshots(root).reduce((n, s) => n + s.bytes, 0);
      const remote = fs.readdirSync(nas).reduce((n, id) => n + fs.statSync(path.join(nas, id, `${id}.tar.zst`)).size, 0);
      expect(remote).toBeGreaterThan(local);
      const page = await browser.newPage({ viewport: { width, height: 800 } });
      const errors: string[] = [];
      page.on('console', (m) => (m.type() === 'error' ? errors.push(m.text()) : undefined));
      await page.goto(`${server.url}/`);
      const stored = page.locator('#stored');
      await stored.waitFor({ state: 'visible' });
      expect(await stored.textContent()).toBe(`${formatBytes(local)} stored locally · ${formatBytes(remote)} on the remote`);
      const newest = listLocalSnapshots(root)[0]!.id;
      expect(await page.locator(`[data-snapshot="${newest}"]`).textContent()).toBe(`${newest} · delta`);
      await page.screenshot({ path: path.join(SHOTS, `stored-${width}.png`), fullPage: true });
      expect(errors).toEqual([]);
      await page.close();
    });
  }
});

import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/config.js';
import { makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';

let root: string;
let emu: GithubEmulator;
let server: HttpServerProcess;
let browser: Browser;

beforeAll(async () => {
  root = tempRoot();
  emu = await startGithubEmulator();
  makeNotesDb(path.join(root, 'db', 'notes.db'), 12);
  writeConfigFile(root, {});
  server = await startHttpServerProcess(root, [], emu.ghEnv());
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await emu?.close();
  rmrf(root);
});

describe('the settings-tab health card in headless Chromium', () => {
  it('renders statuses, enables GitHub copies, fixes the repository through the form, and backs up on a click', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 1100 } });
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(`${server.url}/`);
    const local = page.locator('[data-component="local_backups"]');
    await local.waitFor();
    await expect.poll(() => local.locator('[data-requirement="local_backups.databases-found"] .badge').getAttribute('data-status')).toBe('ok');
    expect(await local.locator('[data-requirement="local_backups.databases-found"] .detail').textContent()).toMatch(/1 database\(s\): notes/);
    const gh = page.locator('[data-component="github_backups"]');
    expect(await gh.locator('.badge').first().getAttribute('data-status')).toBe('unwanted');

    await gh.locator('[data-enable="github_backups"]').click();
    const repoReq = gh.locator('[data-requirement="github_backups.repo-configured"]');
    await expect.poll(() => repoReq.locator('.badge').getAttribute('data-status'), { timeout: 20_000 }).toBe('fail');
    expect(await gh.locator('[data-requirement="github_backups.gh-cli-installed"] .badge').getAttribute('data-status')).toBe('ok');
    expect(await gh.locator('[data-requirement="github_backups.gh-authenticated"] .badge').getAttribute('data-status')).toBe('ok');

    await repoReq.locator('input[name="repo"]').fill('card-backups');
    await repoReq.locator('button[type="submit"]').click();
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 20_000 }).not.toMatch(/^Fixing/);
    await expect.poll(() => gh.locator('[data-requirement="github_backups.repo-configured"] .badge').getAttribute('data-status'), { timeout: 20_000 }).toBe('ok');
    expect(emu.repo('octo/card-backups')?.isPrivate).toBe(true);

    await page.locator('#backup-now').click();
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 30_000 }).toMatch(/Snapshot snap-.* saved/);
    const snapshotId = (await page.locator('#message').textContent())!.match(/snap-\S+/)![0];
    await expect.poll(() => page.locator(`[data-snapshot="${snapshotId}"]`).count()).toBe(1);
    expect(await page.locator('#last-snapshot').textContent()).toMatch(/on the remote/);
    // The snapshot went to the repository the form configured.
    expect(emu.repo('octo/card-backups')!.releases.map((r) => r.tag_name)).toEqual([snapshotId]);

    fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: path.join(REPO_ROOT, 'test-results', 'health-card.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('refuses state changes from a foreign origin or without a JSON body', async () => {
    const url = `${server.url}/api/health/fix/github_backups`;
    const foreign = await fetch(url, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{}' });
    expect(foreign.status).toBe(403);
    const noOrigin = await fetch(`${server.url}/api/backup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(noOrigin.status).toBe(403);
    const form = await fetch(url, { method: 'POST', headers: { origin: server.url, 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    expect(form.status).toBe(415);
    const page = await fetch(`${server.url}/`);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await page.text()).not.toMatch(/<script>[^<]/);
  });
});

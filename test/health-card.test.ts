import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { emptyBareRemote } from './support/bare-remote.js';
import { makeNotesDb, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';

// Every card behaviour is checked at a desktop and a phone width; the screenshots land in
// test-results/card/ (gitignored) for a person to look at.
const WIDTHS = [1100, 375] as const;
const SHOTS = path.join(REPO_ROOT, 'test-results', 'card');
const TOKEN = 'c0ffee'.repeat(10) + 'beef'; // 64 characters, like `openssl rand -hex 32`

let emu: GithubEmulator;
let browser: Browser;
const cleanups: Array<() => Promise<unknown> | void> = [];

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  emu = await startGithubEmulator();
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
afterAll(async () => {
  await browser?.close();
  for (const c of cleanups.reverse()) await c();
  await emu?.close();
});

/** A data root with one database and the given config, served by a real `serve --http` process. */
async function serveRoot(config: Parameters<typeof writeConfigFile>[1], env: Record<string, string>, args: string[] = []): Promise<HttpServerProcess> {
  const root = tempRoot();
  makeNotesDb(path.join(root, 'db', 'notes.db'), 12);
  writeConfigFile(root, config);
  const server = await startHttpServerProcess(root, args, env);
  cleanups.push(() => rmrf(root), () => server.stop());
  return server;
}

interface CardPage {
  page: Page;
  consoleErrors: string[];
  shot(name: string, fullPage?: boolean): Promise<void>;
}

/** A page at `width` px whose timers are under the test's control (refreshes happen when the test says). */
async function openCard(url: string, width: number): Promise<CardPage> {
  const page = await browser.newPage({ viewport: { width, height: width > 500 ? 900 : 740 } });
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    // The 401 that tells the page to ask for a token is logged by Chromium itself; it is expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) consoleErrors.push(m.text());
  });
  await page.clock.install();
  await page.goto(url);
  return {
    page,
    consoleErrors,
    shot: async (name, fullPage = true) => {
      await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage });
    },
  };
}

const refreshCount = async (page: Page) => Number((await page.locator('body').getAttribute('data-refreshes')) ?? '0');

/** Lets the page's 15 s timer fire once and waits until that refresh has finished. */
async function nextRefresh(page: Page): Promise<void> {
  await expect.poll(() => page.locator('body').getAttribute('data-refreshing')).toBeNull();
  const before = await refreshCount(page);
  await page.clock.runFor(15_000);
  await expect.poll(() => refreshCount(page), { timeout: 20_000 }).toBeGreaterThan(before);
}

const statusOf = (row: Locator) => row.locator('.badge').first().getAttribute('data-status');

/** True when the element is fully inside the visible part of the page (not below the fold). */
const inViewport = (loc: Locator) =>
  loc.evaluate((e) => {
    const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= e.ownerDocument.documentElement.clientHeight;
  });

describe('the health card: fixing through the card, in headless Chromium', () => {
  for (const width of WIDTHS) {
    it(`renders statuses, enables GitHub copies, fixes the repository through the form, and backs up on a click (${width}px)`, async () => {
      const server = await serveRoot({}, emu.ghEnv());
      const repoName = `card-backups-${width}`;
      const { page, consoleErrors, shot } = await openCard(`${server.url}/`, width);
      const local = page.locator('[data-component="local_backups"]');
      await local.waitFor();
      await expect.poll(() => statusOf(local.locator('[data-requirement="local_backups.databases-found"]'))).toBe('ok');
      expect(await local.locator('[data-requirement="local_backups.databases-found"] .detail').textContent()).toMatch(/1 database\(s\): notes/);
      const gh = page.locator('[data-component="github_backups"]');
      expect(await gh.locator('.badge').first().getAttribute('data-status')).toBe('unwanted');

      await gh.locator('[data-enable="github_backups"]').click();
      const repoReq = gh.locator('[data-requirement="github_backups.repo-configured"]');
      await expect.poll(() => statusOf(repoReq), { timeout: 20_000 }).toBe('fail');
      expect(await statusOf(gh.locator('[data-requirement="github_backups.gh-cli-installed"]'))).toBe('ok');
      expect(await statusOf(gh.locator('[data-requirement="github_backups.gh-authenticated"]'))).toBe('ok');

      await repoReq.locator('input[name="repo"]').fill(repoName);
      await repoReq.locator('button[type="submit"]').click();
      await expect.poll(() => statusOf(repoReq), { timeout: 20_000 }).toBe('ok');
      // The outcome is said where the user is looking: in the sticky status line and under the form.
      expect(await page.locator('#message').textContent()).toMatch(new RegExp(`Created private repository octo/${repoName}`));
      expect(await inViewport(page.locator('#message'))).toBe(true);
      expect(await repoReq.locator('.result').textContent()).toMatch(/Created private repository/);
      expect(emu.repo(`octo/${repoName}`)?.isPrivate).toBe(true);

      await page.locator('#backup-now').click();
      await expect.poll(() => page.locator('#message').textContent(), { timeout: 30_000 }).toMatch(/Snapshot snap-.* saved/);
      const snapshotId = (await page.locator('#message').textContent())!.match(/snap-\S+/)![0];
      await expect.poll(() => page.locator(`[data-snapshot="${snapshotId}"]`).count()).toBe(1);
      expect(await page.locator('#last-snapshot').textContent()).toMatch(/on the remote/);
      // The snapshot went to the repository the form configured.
      expect(emu.repo(`octo/${repoName}`)!.releases.map((r) => r.tag_name)).toEqual([snapshotId]);
      await shot('full-flow');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  }
});

describe('the health card keeps what the user reads and types through refreshes', () => {
  let loggedOut: HttpServerProcess; // gh installed but not signed in: the repository requirement is blocked
  let noGh: HttpServerProcess; // gh not on PATH: two requirements are blocked, one behind the other
  let noRepo: HttpServerProcess; // signed in, no repository yet: the repository form is offered
  beforeAll(async () => {
    const enabled = { health: { opt_in: ['github_backups'] } };
    [loggedOut, noGh, noRepo] = await Promise.all([
      serveRoot(enabled, emu.ghEnv({ token: null })),
      serveRoot(enabled, { ...emu.ghEnv(), PATH: path.join(tempRoot(), 'no-gh-here') }),
      serveRoot(enabled, emu.ghEnv()),
    ]);
  });

  for (const width of WIDTHS) {
    it(`"How to fix" shows its steps, and they stay open through refreshes until hidden (${width}px)`, async () => {
      const { page, consoleErrors, shot } = await openCard(`${loggedOut.url}/`, width);
      const auth = page.locator('[data-requirement="github_backups.gh-authenticated"]');
      await expect.poll(() => statusOf(auth), { timeout: 20_000 }).toBe('fail');
      await auth.locator('[data-fix="github_backups.gh-authenticated"]').click();
      const steps = auth.locator('[data-steps="github_backups.gh-authenticated"]');
      await steps.waitFor({ state: 'visible' });
      expect(await steps.locator('ol.steps li').first().textContent()).toMatch(/gh auth login --web/);
      // The fix itself refreshes the page; then the 15 s timer does, twice. The panel is the same node throughout.
      await steps.evaluate((e) => e.setAttribute('data-marker', 'still-me'));
      await nextRefresh(page);
      await nextRefresh(page);
      expect(await steps.isVisible()).toBe(true);
      expect(await steps.getAttribute('data-marker')).toBe('still-me');
      expect(await steps.locator('ol.steps li').count()).toBe(3);
      expect(await page.locator('#message').textContent()).toBe('How to fix “gh signed in to GitHub”: follow the steps shown under it.');
      // The person is told what to do next in the card's own words, not an agent's tool call or a raw id.
      expect(await steps.innerText()).toMatch(/then press Check again\./);
      expect(await steps.innerText()).not.toMatch(/health_status|github_backups\./);
      await steps.scrollIntoViewIfNeeded();
      expect(await inViewport(page.locator('#message'))).toBe(true);
      await shot('how-to-fix-steps', false);
      await shot('how-to-fix-steps-page');
      await steps.locator('[data-hide-steps]').click();
      expect(await steps.isVisible()).toBe(false);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it(`a blocked requirement names what blocks it by title and offers no form (${width}px)`, async () => {
      const { page, consoleErrors, shot } = await openCard(`${loggedOut.url}/`, width);
      const repo = page.locator('[data-requirement="github_backups.repo-configured"]');
      await expect.poll(() => statusOf(repo), { timeout: 20_000 }).toBe('blocked');
      expect(await repo.locator('.detail').first().textContent()).toBe('Blocked by “gh signed in to GitHub”: fix that first.');
      expect(await repo.locator('input, form, button').count()).toBe(0);
      // The fix it waits for is offered on its own row.
      expect(await page.locator('[data-fix="github_backups.gh-authenticated"]').isVisible()).toBe(true);
      expect(await page.locator('main').innerText()).not.toMatch(/github_backups\./);
      await nextRefresh(page);
      expect(await repo.locator('input, form, button').count()).toBe(0);
      await shot('blocked-by-title');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it(`a requirement blocked behind another blocked one names both by title (${width}px)`, async () => {
      const { page, consoleErrors, shot } = await openCard(`${noGh.url}/`, width);
      const installed = page.locator('[data-requirement="github_backups.gh-cli-installed"]');
      await expect.poll(() => statusOf(installed), { timeout: 20_000 }).toBe('fail');
      const auth = page.locator('[data-requirement="github_backups.gh-authenticated"]');
      const repo = page.locator('[data-requirement="github_backups.repo-configured"]');
      expect(await auth.locator('.detail').first().textContent()).toBe('Blocked by “GitHub CLI (gh) installed”: fix that first.');
      expect(await repo.locator('.detail').first().textContent()).toBe(
        'Blocked by “gh signed in to GitHub”, which waits for “GitHub CLI (gh) installed”: fix “GitHub CLI (gh) installed” first.',
      );
      // Neither blocked requirement offers its fixer ("How to fix" for sign-in, the form for the repository).
      expect(await auth.locator('button').count()).toBe(0);
      expect(await repo.locator('input, button').count()).toBe(0);
      expect(await installed.locator('[data-fix="github_backups.gh-cli-installed"]').isVisible()).toBe(true);
      await shot('blocked-chain');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it(`text typed into a fix form survives refreshes, with the focus, and a refused fix keeps it (${width}px)`, async () => {
      const { page, consoleErrors, shot } = await openCard(`${noRepo.url}/`, width);
      const repo = page.locator('[data-requirement="github_backups.repo-configured"]');
      await expect.poll(() => statusOf(repo), { timeout: 20_000 }).toBe('fail');
      const input = repo.locator('input[name="repo"]');
      await input.fill('half-typed-na');
      await nextRefresh(page);
      // Meanwhile a snapshot is taken elsewhere: the refresh shows it (the page is updated, not frozen).
      const backup = await fetch(`${noRepo.url}/api/backup`, { method: 'POST', headers: { origin: noRepo.url, 'content-type': 'application/json' }, body: '{}' });
      const { snapshot_id: snapshotId } = (await backup.json()) as { snapshot_id: string };
      await nextRefresh(page);
      expect(await page.locator(`[data-snapshot="${snapshotId}"]`).count()).toBe(1);
      expect(await statusOf(page.locator('[data-check="local_backups.backup-freshness"]'))).toBe('ok');
      expect(await input.inputValue()).toBe('half-typed-na');
      expect(await input.evaluate((e) => e === e.ownerDocument.activeElement)).toBe(true);
      // Not focused any more (the user looks elsewhere): still kept.
      await page.locator('h1').click();
      await nextRefresh(page);
      expect(await input.inputValue()).toBe('half-typed-na');

      // An invalid name is refused; the text stays for correcting, and the reason is shown where the user is.
      await input.fill('not a valid name!');
      await repo.locator('button[type="submit"]').click();
      await expect.poll(() => repo.locator('.result').textContent(), { timeout: 20_000 }).toMatch(/Check the form: repo: a repository name like/);
      expect(await page.locator('#message').getAttribute('class')).toMatch(/error/);
      expect(await inViewport(page.locator('#message'))).toBe(true);
      await nextRefresh(page);
      expect(await input.inputValue()).toBe('not a valid name!');
      await shot('typed-text-kept', false);
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  }

  it('the fix API refuses a blocked requirement, naming the blocker by title, before asking GitHub anything', async () => {
    const post = (url: string, id: string, body: unknown) =>
      fetch(`${url}/api/health/fix/${id}`, { method: 'POST', headers: { origin: url, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const blocked = await post(loggedOut.url, 'github_backups.repo-configured', { inputs: { repo: 'would-fail' } });
    expect(blocked.status).toBe(409);
    expect(await blocked.json()).toEqual({
      error: { code: 'blocked', message: '“Private backup repository configured” is blocked by “gh signed in to GitHub”: fix that first.' },
    });
    const chained = await post(noGh.url, 'github_backups.repo-configured', { inputs: { repo: 'would-fail' } });
    expect(((await chained.json()) as { error: { message: string } }).error.message).toBe(
      '“Private backup repository configured” is blocked by “gh signed in to GitHub”, which waits for “GitHub CLI (gh) installed”: fix “GitHub CLI (gh) installed” first.',
    );
    expect(emu.repo('octo/would-fail')).toBeFalsy();
    // The requirement that blocks the others is still fixable.
    const handoff = await post(loggedOut.url, 'github_backups.gh-authenticated', {});
    expect(handoff.status).toBe(200);
    expect(((await handoff.json()) as { status: string }).status).toBe('handoff');
  });

  it('refuses state changes from a foreign origin or without a JSON body', async () => {
    const server = noRepo;
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

describe('the health card turns opt-in components off and on, and sets up github-sync', () => {
  for (const width of WIDTHS) {
    it(`"Turn off" says plainly what stops and what is kept, shows the component as turned off, and "Turn on" brings it back (${width}px)`, async () => {
      const server = await serveRoot({ health: { opt_in: ['github_backups'] } }, emu.ghEnv());
      const { page, consoleErrors, shot } = await openCard(`${server.url}/`, width);
      const gh = page.locator('[data-component="github_backups"]');
      await expect.poll(() => statusOf(gh), { timeout: 20_000 }).not.toBe('unwanted');
      // The core component has no such button: it cannot be turned off.
      expect(await page.locator('[data-component="local_backups"] [data-turn-off]').count()).toBe(0);
      await gh.locator('[data-turn-off="github_backups"]').click();
      await expect.poll(() => statusOf(gh), { timeout: 20_000 }).toBe('unwanted');
      const said = (await page.locator('#message').textContent())!;
      expect(said).toMatch(/Off-machine copies on GitHub is off: it is no longer checked or reported/);
      expect(said).toMatch(/Nothing was deleted/);
      expect(await page.locator('#message').getAttribute('class')).toMatch(/ok/);
      expect(await inViewport(page.locator('#message'))).toBe(true);
      expect(await gh.innerText()).toMatch(/Turned off: not checked, and its work is paused\. Its settings are kept\./);
      expect(await gh.locator('[data-requirement]').count()).toBe(0);
      await shot('component-turned-off', false);
      await nextRefresh(page);
      expect(await gh.locator('[data-turn-on="github_backups"]').isVisible()).toBe(true);

      await gh.locator('[data-turn-on="github_backups"]').click();
      await expect.poll(() => statusOf(gh), { timeout: 20_000 }).not.toBe('unwanted');
      expect(await page.locator('#message').textContent()).toMatch(/is on/);
      expect(await gh.locator('[data-requirement="github_backups.repo-configured"]').count()).toBe(1);
      expect(await gh.locator('[data-turn-off="github_backups"]').isVisible()).toBe(true);
      await shot('component-turned-on');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });

    it(`github-sync: enabled, then its repository form takes a remote URL alone (the other fields left empty), and the empty remote is ready for a first push (${width}px)`, async () => {
      const work = tempRoot('wb-card-sync-');
      cleanups.push(() => rmrf(work));
      const bare = emptyBareRemote(work, { tellHead: false });
      const server = await serveRoot({}, emu.ghEnv());
      const { page, consoleErrors, shot } = await openCard(`${server.url}/`, width);
      const sync = page.locator('[data-component="github_sync"]');
      await sync.locator('[data-enable="github_sync"]').click();
      const repo = sync.locator('[data-requirement="github_sync.repo-configured"]');
      await expect.poll(() => statusOf(repo), { timeout: 20_000 }).toBe('fail');
      expect(await repo.locator('input').count()).toBe(3);
      await repo.locator('input[name="remote_url"]').fill(bare);
      await repo.locator('button[type="submit"]').click();
      await expect.poll(() => statusOf(repo), { timeout: 20_000 }).toBe('ok');
      expect(await page.locator('#message').textContent()).toMatch(/It has no commits yet: the first push .* creates branch main, written to sync\.github\.branch\./);
      const reachable = sync.locator('[data-requirement="github_sync.remote-reachable"]');
      expect(await statusOf(reachable)).toBe('ok');
      expect(await reachable.locator('.detail').first().textContent()).toBe('reachable and empty: the first push creates branch main');
      await shot('sync-set-up');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  }

  it('the component API turns one off and on, refuses the core one, and wants a boolean', async () => {
    const server = await serveRoot({ health: { opt_in: ['github_sync'] } }, emu.ghEnv());
    const post = (id: string, body: unknown) =>
      fetch(`${server.url}/api/health/component/${id}`, { method: 'POST', headers: { origin: server.url, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const off = await post('github_sync', { enabled: false });
    expect(off.status).toBe(200);
    expect(await off.json()).toMatchObject({ component: 'github_sync', enabled: false, changed: true, message: expect.stringMatching(/Nothing was deleted/) });
    expect((await post('local_backups', { enabled: false })).status).toBe(400);
    expect((await post('github_sync', { enabled: 'no' })).status).toBe(400);
    const foreign = await fetch(`${server.url}/api/health/component/github_sync`, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{"enabled":true}' });
    expect(foreign.status).toBe(403);
  });
});

describe('the health card in token mode', () => {
  let server: HttpServerProcess;
  let url: string;
  beforeAll(async () => {
    server = await serveRoot({}, { ...emu.ghEnv(), WB_BACKUP_HTTP_TOKEN: TOKEN }, ['--host', '0.0.0.0']);
    url = server.url.replace('0.0.0.0', '127.0.0.1');
  });

  for (const width of WIDTHS) {
    it(`asks for the access token at once instead of "loading…", refuses a wrong one, and loads with the right one (${width}px)`, async () => {
      const { page, consoleErrors, shot } = await openCard(`${url}/`, width);
      const box = page.locator('#token-box');
      await box.waitFor({ state: 'visible' });
      expect(await page.locator('#token-why').textContent()).toMatch(/WB_BACKUP_HTTP_TOKEN/);
      expect(await page.locator('#token').evaluate((e) => e === e.ownerDocument.activeElement)).toBe(true);
      expect(await page.locator('#last-snapshot').textContent()).toBe('Waiting for the access token (see above).');
      expect(await page.locator('#backup-now').isDisabled()).toBe(true);
      expect(await inViewport(box)).toBe(true);
      expect(await page.locator('#message').isVisible()).toBe(false); // the box asks; no second, red message
      await shot('token-asked', false);

      await page.locator('#token').fill('not-the-token-' + 'x'.repeat(40));
      await page.locator('#token').press('Enter');
      await expect.poll(() => page.locator('#token-why').textContent()).toMatch(/not accepted/);
      expect(await box.isVisible()).toBe(true);
      expect(await page.locator('#message').textContent()).toMatch(/not accepted/);
      await shot('token-refused', false);

      await page.locator('#token').fill(TOKEN);
      await page.locator('#token-save').click();
      await page.locator('[data-component="local_backups"]').waitFor();
      expect(await box.isVisible()).toBe(false);
      expect(await page.locator('#last-snapshot').textContent()).toBe('No snapshot yet.');
      expect(await page.locator('#backup-now').isDisabled()).toBe(false);
      expect(await page.locator('#message').isVisible()).toBe(false);
      await shot('token-accepted');
      expect(consoleErrors).toEqual([]);
      await page.close();
    });
  }
});

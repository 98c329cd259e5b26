/**
 * The GitHub emulator driven by the REAL gh binary (Debian's gh 2.23 at /usr/bin/gh), as the gh
 * backend will drive it. These tests pin both the emulator's behaviour and what gh prints, so a gh
 * upgrade that changes either shows up here first.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type GithubEmulator, startGithubEmulator } from './support/github-emulator/index.js';
import { rmrf, tempRoot } from './support/fixtures.js';

const GH = '/usr/bin/gh';
const hasGh = fs.existsSync(GH);

let emu: GithubEmulator;
let dir: string;

beforeEach(async () => {
  emu = await startGithubEmulator();
  dir = tempRoot('gh-emu-test-');
});
afterEach(async () => {
  await emu.close();
  rmrf(dir);
});

interface GhResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs gh with the emulator's environment only (no shell, nothing inherited from the user). */
async function gh(args: string[], opts: { token?: string | null } = {}): Promise<GhResult> {
  const r = await execa(GH, args, { env: emu.ghEnv(opts), extendEnv: false, reject: false, cwd: dir, stdin: 'ignore', timeout: 60_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function ghOk(args: string[]): Promise<string> {
  const r = await gh(args);
  if (r.exitCode !== 0) throw new Error(`gh ${args.join(' ')} exited ${r.exitCode}\n${r.stderr}`);
  return r.stdout;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function writeRandom(name: string, bytes: number): { file: string; sha: string } {
  const data = randomBytes(bytes);
  const file = path.join(dir, name);
  fs.writeFileSync(file, data);
  return { file, sha: sha256(data) };
}

const since = (n: number): string[] => emu.requests.slice(n).map((r) => `${r.method} ${r.host} ${r.path.split('?')[0]} ${r.status}${r.graphqlOperation ? ` ${r.graphqlOperation}` : ''}`);

/** One request to the emulator in proxy form, as gh sends it (absolute URL in the request line). */
function raw(method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const proxy = new URL(emu.proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method, path: url, headers: { host: new URL(url).host, ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('github emulator over raw HTTP', () => {
  const auth = { authorization: 'Bearer test-token' };

  it('answers the GHES layout too, hides private repositories from anonymous callers, refuses unknown hosts', async () => {
    emu.createRepo('octo/secret', { private: true });
    emu.createRepo('octo/open', { private: false });
    const ghes = await raw('GET', 'http://github.localhost/api/v3/repos/octo/secret', auth);
    expect(ghes.status).toBe(200);
    expect(JSON.parse(ghes.body)).toMatchObject({ full_name: 'octo/secret', private: true, visibility: 'private', default_branch: 'main', owner: { login: 'octo', type: 'User' } });
    expect((await raw('GET', 'http://api.github.localhost/repos/octo/secret')).status).toBe(404);
    expect((await raw('GET', 'http://api.github.localhost/repos/octo/open')).status).toBe(200);
    const anonWrite = await raw('POST', 'http://api.github.localhost/repos/octo/open/releases', {}, '{"tag_name":"v1"}');
    expect(anonWrite.status).toBe(401);
    expect(JSON.parse(anonWrite.body)).toMatchObject({ message: 'Requires authentication' });
    const bad = await raw('GET', 'http://api.github.localhost/user', { authorization: 'token nope' });
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body)).toMatchObject({ message: 'Bad credentials', documentation_url: expect.stringContaining('docs.github.com') });
    expect((await raw('GET', 'http://example.com/')).status).toBe(502);
    expect(emu.requests.at(-1)).toMatchObject({ host: 'example.com', unhandled: true });
  });

  it('paginates with rel next/last/prev/first and validates release bodies like GitHub', async () => {
    emu.createRepo('octo/r');
    const missing = await raw('POST', 'http://api.github.localhost/repos/octo/r/releases', auth, '{}');
    expect(missing.status).toBe(422);
    expect(JSON.parse(missing.body)).toMatchObject({ message: 'Invalid request.\n\n"tag_name" wasn\'t supplied.' });
    for (let i = 0; i < 7; i++) {
      expect((await raw('POST', 'http://api.github.localhost/repos/octo/r/releases', auth, JSON.stringify({ tag_name: `t${i}` }))).status).toBe(201);
    }
    const dup = await raw('POST', 'http://api.github.localhost/repos/octo/r/releases', auth, '{"tag_name":"t0"}');
    expect(dup.status).toBe(422);
    expect(JSON.parse(dup.body)).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });
    const mid = await raw('GET', 'http://api.github.localhost/repos/octo/r/releases?per_page=3&page=2', auth);
    const id = emu.repo('octo/r')!.id;
    const base = `http://api.github.localhost/repositories/${id}/releases?per_page=3`;
    expect(mid.headers.link).toBe(`<${base}&page=1>; rel="prev", <${base}&page=3>; rel="next", <${base}&page=3>; rel="last", <${base}&page=1>; rel="first"`);
    expect((JSON.parse(mid.body) as Array<{ tag_name: string }>).map((r) => r.tag_name)).toEqual(['t3', 't2', 't1']);
    expect(mid.headers['x-oauth-scopes']).toContain('repo');
  });
});

describe.runIf(hasGh)('github emulator with the real gh', () => {
  describe('auth', () => {
    it('gh auth status succeeds with the token and reports its scopes', async () => {
      const r = await gh(['auth', 'status', '--hostname', 'github.localhost']);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toContain('Logged in to github.localhost as octo (GH_TOKEN)');
      expect(r.stderr).toMatch(/Token scopes: .*repo/);
    });

    it('gh auth status fails without a token, and with a wrong one', async () => {
      const none = await gh(['auth', 'status', '--hostname', 'github.localhost'], { token: null });
      expect(none.exitCode).not.toBe(0);
      expect(none.stderr).toContain('authentication failed');
      const wrong = await gh(['auth', 'status', '--hostname', 'github.localhost'], { token: 'nope' });
      expect(wrong.exitCode).not.toBe(0);
      expect(wrong.stderr).toContain('The github.localhost token in GH_TOKEN is no longer valid.');
    });

    it('gh 2.23 auth status insists on read:org for classic tokens, and skips the check without scopes', async () => {
      await emu.close();
      emu = await startGithubEmulator({ scopes: ['repo'] });
      const repoOnly = await gh(['auth', 'status', '--hostname', 'github.localhost']);
      expect(repoOnly.exitCode).not.toBe(0);
      expect(repoOnly.stderr).toContain("the token in GH_TOKEN is missing required scope 'read:org'");
      await emu.close();
      emu = await startGithubEmulator({ scopes: [] });
      expect((await gh(['auth', 'status', '--hostname', 'github.localhost'])).exitCode).toBe(0);
    });

    it('a revoked token gets 401 Bad credentials and gh says so', async () => {
      emu.createRepo('octo/backups');
      await ghOk(['release', 'list', '-R', 'octo/backups']);
      emu.revokeToken();
      const api = await gh(['api', 'user']);
      expect(api.exitCode).not.toBe(0);
      expect(api.stdout).toContain('"message":"Bad credentials"');
      expect(api.stderr).toContain('gh: Bad credentials (HTTP 401)');
      const list = await gh(['release', 'list', '-R', 'octo/backups']);
      expect(list.exitCode).not.toBe(0);
      expect(list.stderr).toContain('401 Unauthorized');
      expect(list.stderr).toContain('Bad credentials');
      expect(emu.requests.at(-1)?.status).toBe(401);
    });
  });

  describe('repositories', () => {
    it('repo create --private --add-readme, then repo view --json', async () => {
      const n = emu.requests.length;
      const out = await ghOk(['repo', 'create', 'octo/wb-backups', '--private', '--add-readme']);
      expect(out.trim()).toBe('http://github.localhost/octo/wb-backups');
      expect(since(n)).toEqual(['GET api.github.localhost /users/octo 200', 'POST api.github.localhost /user/repos 201']);
      expect(emu.repo('octo/wb-backups')).toMatchObject({ isPrivate: true, empty: false, defaultBranch: 'main' });

      const view = JSON.parse(await ghOk(['repo', 'view', 'octo/wb-backups', '--json', 'name,isPrivate,defaultBranchRef'])) as unknown;
      expect(view).toEqual({ name: 'wb-backups', isPrivate: true, defaultBranchRef: { name: 'main' } });

      const again = await gh(['repo', 'create', 'octo/wb-backups', '--private', '--add-readme']);
      expect(again.exitCode).not.toBe(0);
      expect(again.stderr).toContain('HTTP 422: Repository creation failed.');
      expect(again.stderr).toContain('name already exists on this account');
    });

    it('repo create without a README goes through GraphQL and leaves the repository empty', async () => {
      await ghOk(['repo', 'create', 'octo/bare', '--private']);
      expect(emu.requests.at(-1)).toMatchObject({ graphqlOperation: 'RepositoryCreate', status: 200 });
      expect(emu.repo('octo/bare')).toMatchObject({ isPrivate: true, empty: true });
      const view = JSON.parse(await ghOk(['repo', 'view', 'octo/bare', '--json', 'isPrivate,isEmpty,defaultBranchRef'])) as unknown;
      expect(view).toEqual({ isPrivate: true, isEmpty: true, defaultBranchRef: { name: '' } });
    });

    it('an unknown repository is a GraphQL NOT_FOUND for repo view and a REST 404 for releases', async () => {
      const view = await gh(['repo', 'view', 'octo/missing', '--json', 'name']);
      expect(view.exitCode).not.toBe(0);
      expect(view.stderr.trim()).toBe("GraphQL: Could not resolve to a Repository with the name 'octo/missing'. (repository)");
      const create = await gh(['release', 'create', 'v1', '-R', 'octo/missing', '--notes', 'x']);
      expect(create.exitCode).not.toBe(0);
      expect(create.stderr.trim()).toBe('HTTP 404: Not Found (http://api.github.localhost/repos/octo/missing/releases)');
    });
  });

  describe('releases and assets', () => {
    beforeEach(() => emu.createRepo('octo/backups', { private: true }));

    it('create with a 3 MB asset, list, download byte-identical, upload --clobber, delete', async () => {
      const snap = writeRandom('snap-1.tar.zst', 3 * 1024 * 1024 + 17);
      let n = emu.requests.length;
      const url = await ghOk(['release', 'create', 'snap-1', snap.file, '-R', 'octo/backups', '--title', 'Snapshot 1', '--notes', 'first']);
      expect(url.trim()).toBe('http://github.localhost/octo/backups/releases/tag/snap-1');
      const id = emu.repo('octo/backups')!.releases[0]!.id;
      expect(since(n)).toEqual([
        'HEAD api.github.localhost /repos/octo/backups/releases/tags/snap-1 404',
        'POST api.github.localhost /repos/octo/backups/releases 201',
        `POST uploads.github.localhost /repos/octo/backups/releases/${id}/assets 201`,
        `PATCH api.github.localhost /repos/octo/backups/releases/${id} 200`,
      ]);
      const rel = emu.repo('octo/backups')!.releases[0]!;
      expect(rel).toMatchObject({ tag_name: 'snap-1', draft: false, name: 'Snapshot 1' });
      expect(rel.assets).toEqual([expect.objectContaining({ name: 'snap-1.tar.zst', size: 3 * 1024 * 1024 + 17, sha256: snap.sha })]);
      expect(emu.repo('octo/backups')!.tags).toEqual(['snap-1']);

      // gh 2.23's release list has no --json: tab-separated title, type, tag, date.
      const list = await ghOk(['release', 'list', '-R', 'octo/backups']);
      expect(list.split('\n')[0]).toMatch(/^Snapshot 1\tLatest\tsnap-1\t\d{4}-\d\d-\d\dT/);

      const out = path.join(dir, 'dl');
      n = emu.requests.length;
      await ghOk(['release', 'download', 'snap-1', '-R', 'octo/backups', '-D', out]);
      expect(sha256(fs.readFileSync(path.join(out, 'snap-1.tar.zst')))).toBe(snap.sha);
      const assetId = rel.assets[0]!.id;
      expect(since(n)).toEqual(
        expect.arrayContaining([
          `GET api.github.localhost /repos/octo/backups/releases/assets/${assetId} 302`,
          `GET objects.github.localhost /github-production-release-asset/${emu.repo('octo/backups')!.id}/${assetId} 200`,
        ]),
      );

      // Same name again: refused without --clobber, replaced with it.
      const newer = writeRandom('snap-1.tar.zst', 1024 * 1024);
      const dup = await gh(['release', 'upload', 'snap-1', newer.file, '-R', 'octo/backups']);
      expect(dup.exitCode).not.toBe(0);
      expect(dup.stderr.trim()).toBe('asset under the same name already exists: [snap-1.tar.zst]');
      n = emu.requests.length;
      await ghOk(['release', 'upload', 'snap-1', newer.file, '-R', 'octo/backups', '--clobber']);
      expect(since(n)).toContain(`DELETE api.github.localhost /repos/octo/backups/releases/assets/${assetId} 204`);
      expect(emu.repo('octo/backups')!.releases[0]!.assets).toEqual([expect.objectContaining({ name: 'snap-1.tar.zst', sha256: newer.sha, size: 1024 * 1024 })]);

      // Deleting the release keeps its tag, as on GitHub; --cleanup-tag would remove it.
      await ghOk(['release', 'delete', 'snap-1', '-R', 'octo/backups', '--yes']);
      expect(emu.repo('octo/backups')).toMatchObject({ releases: [], tags: ['snap-1'] });
      const gone = await gh(['release', 'view', 'snap-1', '-R', 'octo/backups']);
      expect(gone.exitCode).not.toBe(0);
      expect(gone.stderr.trim()).toBe('release not found');
    });

    it('release delete --cleanup-tag deletes the tag ref too', async () => {
      await ghOk(['release', 'create', 'v1', '-R', 'octo/backups', '--notes', 'x']);
      await ghOk(['release', 'delete', 'v1', '-R', 'octo/backups', '--yes', '--cleanup-tag']);
      expect(emu.requests.at(-1)).toMatchObject({ method: 'DELETE', path: '/repos/octo/backups/git/refs/tags/v1', status: 204 });
      expect(emu.repo('octo/backups')).toMatchObject({ releases: [], tags: [] });
    });

    it('gh api --paginate follows the Link header across pages', async () => {
      for (let i = 1; i <= 35; i++) await ghOk(['release', 'create', `r${String(i).padStart(2, '0')}`, '-R', 'octo/backups', '--notes', 'x']);
      const n = emu.requests.length;
      // Without per_page gh asks for 100 a page; pin a small page to make it follow links.
      const tags = (await ghOk(['api', 'repos/octo/backups/releases?per_page=10', '--paginate', '--jq', '.[].tag_name'])).trim().split('\n');
      expect(tags).toHaveLength(35);
      expect(tags[0]).toBe('r35');
      expect(new Set(tags).size).toBe(35);
      const id = emu.repo('octo/backups')!.id;
      expect(emu.requests.slice(n).map((r) => r.path)).toEqual([
        '/repos/octo/backups/releases?per_page=10',
        `/repositories/${id}/releases?per_page=10&page=2`,
        `/repositories/${id}/releases?per_page=10&page=3`,
        `/repositories/${id}/releases?per_page=10&page=4`,
      ]);
      // gh release list pages through GraphQL instead.
      const listed = (await ghOk(['release', 'list', '-R', 'octo/backups', '-L', '40'])).trim().split('\n');
      expect(listed).toHaveLength(35);
    });

    it('publishing in an empty repository fails with "Repository is empty." and gh removes its draft', async () => {
      emu.createRepo('octo/empty', { empty: true });
      const snap = writeRandom('a.tar.zst', 1000);
      const r = await gh(['release', 'create', 'v1', snap.file, '-R', 'octo/empty', '--notes', 'x']);
      expect(r.exitCode).not.toBe(0);
      const id = emu.requests.find((q) => q.method === 'PATCH')!.path.split('/').pop();
      expect(r.stderr.trim()).toBe(`HTTP 422: Validation Failed (http://api.github.localhost/repos/octo/empty/releases/${id})\nRepository is empty.`);
      expect(emu.repo('octo/empty')).toMatchObject({ releases: [], tags: [], empty: true });
      // Without assets gh publishes in one POST, which fails the same way.
      const direct = await gh(['release', 'create', 'v1', '-R', 'octo/empty', '--notes', 'x']);
      expect(direct.stderr.trim()).toBe('HTTP 422: Validation Failed (http://api.github.localhost/repos/octo/empty/releases)\nRepository is empty.');
    });

    it('a second create of the same tag fails', async () => {
      const snap = writeRandom('a.tar.zst', 1000);
      await ghOk(['release', 'create', 'v1', snap.file, '-R', 'octo/backups', '--notes', 'x']);
      // With assets gh checks first (HEAD …/releases/tags/v1) and refuses locally.
      const withAsset = await gh(['release', 'create', 'v1', snap.file, '-R', 'octo/backups', '--notes', 'x']);
      expect(withAsset.exitCode).not.toBe(0);
      expect(withAsset.stderr.trim()).toBe('a release with the same tag name already exists: v1');
      // Without assets it POSTs straight away and GitHub answers 422 already_exists.
      const bare = await gh(['release', 'create', 'v1', '-R', 'octo/backups', '--notes', 'x']);
      expect(bare.exitCode).not.toBe(0);
      expect(bare.stderr.trim()).toBe('HTTP 422: Validation Failed (http://api.github.localhost/repos/octo/backups/releases)\nRelease.tag_name already exists');
      expect(emu.repo('octo/backups')!.releases).toHaveLength(1);
    });

    it('drafts: hidden from GET /releases/tags/T, found by gh through GraphQL', async () => {
      await ghOk(['release', 'create', 'd1', '-R', 'octo/backups', '--notes', 'x', '--draft']);
      expect(emu.repo('octo/backups')).toMatchObject({ tags: [], releases: [{ tag_name: 'd1', draft: true }] });
      const byTag = await gh(['api', 'repos/octo/backups/releases/tags/d1']);
      expect(byTag.exitCode).not.toBe(0);
      expect(byTag.stderr).toContain('HTTP 404');
      const view = await ghOk(['release', 'view', 'd1', '-R', 'octo/backups', '--json', 'tagName,isDraft']);
      expect(JSON.parse(view)).toEqual({ tagName: 'd1', isDraft: true });
    });
  });

  describe('faults', () => {
    beforeEach(() => emu.createRepo('octo/backups', { private: true }));

    it('a persistent drop on the uploads host makes gh release upload fail; clearing it lets it through', async () => {
      await ghOk(['release', 'create', 'v1', '-R', 'octo/backups', '--notes', 'x']);
      const snap = writeRandom('a.tar.zst', 2 * 1024 * 1024);
      emu.inject({ kind: 'drop', match: { host: 'uploads.github.localhost' }, times: Infinity });
      const r = await gh(['release', 'upload', 'v1', snap.file, '-R', 'octo/backups']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/^Post "http:\/\/uploads\.github\.localhost\/repos\/octo\/backups\/releases\/\d+\/assets\?label=&name=a\.tar\.zst": /);
      expect(r.stderr, r.stderr).toMatch(/EOF|connection reset|broken pipe|closed/);
      const dropped = emu.requests.filter((q) => q.fault === 'drop');
      expect(dropped.length).toBeGreaterThanOrEqual(1);
      expect(dropped.every((q) => q.status === 0)).toBe(true);
      expect(emu.repo('octo/backups')!.releases[0]!.assets).toEqual([]);

      emu.clearFaults();
      await ghOk(['release', 'upload', 'v1', snap.file, '-R', 'octo/backups']);
      expect(emu.repo('octo/backups')!.releases[0]!.assets[0]!.sha256).toBe(snap.sha);
    });

    it('a one-shot 502 on POST releases fails the first create and not the second', async () => {
      emu.inject({ kind: 'status', status: 502, match: { method: 'POST', path: /^\/repos\/[^/]+\/[^/]+\/releases$/ } });
      const first = await gh(['release', 'create', 'v1', '-R', 'octo/backups', '--notes', 'x']);
      expect(first.exitCode).not.toBe(0);
      expect(first.stderr.trim()).toBe('HTTP 502: 502 Bad Gateway (http://api.github.localhost/repos/octo/backups/releases)');
      expect(emu.repo('octo/backups')!.releases).toEqual([]);
      await ghOk(['release', 'create', 'v1', '-R', 'octo/backups', '--notes', 'x']);
      expect(emu.repo('octo/backups')!.releases).toHaveLength(1);
    });

    it('faults can target a GraphQL operation, and delays let the request through', async () => {
      emu.inject({ kind: 'status', status: 503, match: { graphqlOperation: 'RepositoryReleaseList' } });
      emu.inject({ kind: 'delay', ms: 200, match: { graphqlOperation: 'RepositoryReleaseList' } });
      const failed = await gh(['release', 'list', '-R', 'octo/backups']);
      expect(failed.exitCode).not.toBe(0);
      expect(failed.stderr).toContain('503 Service Unavailable');
      await ghOk(['release', 'list', '-R', 'octo/backups']);
      expect(emu.requests.filter((q) => q.graphqlOperation === 'RepositoryReleaseList').map((q) => [q.status, q.fault])).toEqual([
        [503, 'status'],
        [200, 'delay'],
      ]);
    });
  });

  describe('coverage guards', () => {
    it('an unknown GraphQL operation is refused with 400 and flagged', async () => {
      const r = await gh(['api', 'graphql', '-f', 'query=query SomethingNew { viewer { login } }']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stdout).toContain('GraphQL operation SomethingNew is not emulated');
      expect(emu.requests.at(-1)).toMatchObject({ status: 400, unhandled: true, graphqlOperation: 'SomethingNew' });
    });

    it('unknown fields get GitHub\'s undefinedField error', async () => {
      emu.createRepo('octo/backups');
      const r = await gh(['api', 'graphql', '-f', 'query=query RepositoryInfo { repository(owner: "octo", name: "backups") { name nope } }']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain("Field 'nope' doesn't exist on type 'Repository'");
    });
  });
});

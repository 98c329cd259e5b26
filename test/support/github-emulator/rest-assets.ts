/**
 * Release assets: list/get/edit/delete on the API host, uploads on the uploads host, and downloads.
 *
 * Downloads work like GitHub's: the asset's API URL with `Accept: application/octet-stream` answers
 * 302 to a short-lived signed URL on another host (here objects.github.localhost). That host ignores
 * the Authorization header (Go's client strips it on a cross-host redirect anyway) and checks the
 * signature instead, so a client that forgets to follow redirects, or re-sends the wrong URL, fails
 * here as it would against GitHub.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { visibleRepo, writableRepo } from './access.js';
import { API_BASE, OBJECTS_BASE } from './hosts.js';
import { type Ctx, notFound, pace, paginate, readJsonObject, sendError, sendJson, sendNoContent, str, validationFailed } from './http.js';
import { type Route, route } from './router.js';
import { assetJson } from './serialize.js';
import type { Asset, Release, Repo, World } from './state.js';

const D = {
  list: 'https://docs.github.com/rest/releases/assets#list-release-assets',
  get: 'https://docs.github.com/rest/releases/assets#get-a-release-asset',
  update: 'https://docs.github.com/rest/releases/assets#update-a-release-asset',
  del: 'https://docs.github.com/rest/releases/assets#delete-a-release-asset',
  upload: 'https://docs.github.com/rest/releases/assets#upload-a-release-asset',
};

/** GitHub's own cap on one asset. */
const MAX_ASSET_BYTES = 2 * 1024 * 1024 * 1024 - 1;
const SIGNED_URL_TTL_S = 300;

/**
 * GitHub "renames asset filenames that have special characters, non-alphanumeric characters, and
 * leading or trailing periods". The exact table is undocumented; this approximates it: characters
 * outside [A-Za-z0-9._+-] become '.', and leading/trailing periods go. Ordinary names pass unchanged.
 */
export function githubAssetName(raw: string): string {
  return raw.replace(/[^A-Za-z0-9._+-]/g, '.').replace(/^\.+|\.+$/g, '');
}

function assetIn(ctx: Ctx, repo: Repo, idText: string, docs: string): { release: Release; asset: Asset } | undefined {
  const found = /^\d+$/.test(idText) ? ctx.world.findAsset(repo, Number(idText)) : undefined;
  if (!found || (found.release.draft && ctx.caller.kind !== 'viewer')) {
    notFound(ctx, docs);
    return undefined;
  }
  return found;
}

function sign(world: World, assetId: number, expires: number): string {
  return createHmac('sha256', world.signingKey).update(`${assetId}:${expires}`).digest('hex');
}

export function signedDownloadUrl(world: World, repo: Repo, asset: Asset): string {
  const expires = Math.floor(Date.now() / 1000) + SIGNED_URL_TTL_S;
  const q = new URLSearchParams({
    'X-Expires': String(expires),
    'X-Signature': sign(world, asset.id, expires),
    'response-content-disposition': `attachment; filename=${asset.name}`,
    'response-content-type': 'application/octet-stream',
  });
  return `${OBJECTS_BASE}/github-production-release-asset/${repo.id}/${asset.id}?${q.toString()}`;
}

function wantsBytes(ctx: Ctx): boolean {
  const accept = ctx.req.headers.accept ?? '';
  return accept.split(',').some((t) => t.trim().toLowerCase().startsWith('application/octet-stream'));
}

export const assetRoutes: readonly Route[] = [
  route('GET', '/repos/:owner/:repo/releases/:id/assets', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.list);
    if (!repo) return;
    const release = /^\d+$/.test(p.id!) ? ctx.world.findRelease(repo, Number(p.id)) : undefined;
    if (!release || (release.draft && ctx.caller.kind !== 'viewer')) return notFound(ctx, D.list);
    const { page, link } = paginate(release.assets, ctx.query, `${API_BASE}/repositories/${repo.id}/releases/${release.id}/assets`);
    sendJson(ctx, 200, page.map((a) => assetJson(repo, a, release, ctx.world)), link ? { Link: link } : {});
  }),

  route('GET', '/repos/:owner/:repo/releases/assets/:id', (ctx, p) => {
    const repo = visibleRepo(ctx, p.owner!, p.repo!, D.get);
    if (!repo) return;
    const found = assetIn(ctx, repo, p.id!, D.get);
    if (!found) return;
    if (wantsBytes(ctx)) {
      ctx.res.writeHead(302, { Location: signedDownloadUrl(ctx.world, repo, found.asset), 'Content-Length': '0' });
      ctx.res.end();
      return;
    }
    sendJson(ctx, 200, assetJson(repo, found.asset, found.release, ctx.world));
  }),

  route('PATCH', '/repos/:owner/:repo/releases/assets/:id', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.update);
    if (!repo) return;
    const found = assetIn(ctx, repo, p.id!, D.update);
    if (!found) return;
    const body = await readJsonObject(ctx);
    if (!body) return;
    const name = str(body.name);
    if (name !== undefined) {
      const clean = githubAssetName(name);
      if (found.release.assets.some((a) => a !== found.asset && a.name === clean)) {
        return validationFailed(ctx, D.update, [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
      }
      found.asset.name = clean;
    }
    const label = str(body.label);
    if (label !== undefined) found.asset.label = label;
    found.asset.updatedAt = ctx.world.now();
    sendJson(ctx, 200, assetJson(repo, found.asset, found.release, ctx.world));
  }),

  // gh release upload --clobber deletes the old asset through this before uploading again.
  route('DELETE', '/repos/:owner/:repo/releases/assets/:id', (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.del);
    if (!repo) return;
    const found = assetIn(ctx, repo, p.id!, D.del);
    if (!found) return;
    found.release.assets = found.release.assets.filter((a) => a !== found.asset);
    sendNoContent(ctx);
  }),
];

/** POST {upload_url}?name=N&label=L on the uploads host, raw bytes as the body. */
export const uploadRoutes: readonly Route[] = [
  route('POST', '/repos/:owner/:repo/releases/:id/assets', async (ctx, p) => {
    const repo = writableRepo(ctx, p.owner!, p.repo!, D.upload);
    if (!repo) return;
    const release = /^\d+$/.test(p.id!) ? ctx.world.findRelease(repo, Number(p.id)) : undefined;
    if (!release) return notFound(ctx, D.upload);
    const rawName = ctx.query.get('name');
    if (!rawName) return validationFailed(ctx, D.upload, [{ resource: 'ReleaseAsset', code: 'missing_field', field: 'name' }]);
    const name = githubAssetName(rawName);
    if (release.assets.some((a) => a.name === name)) {
      return validationFailed(ctx, D.upload, [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
    }
    const declared = Number(ctx.req.headers['content-length'] ?? NaN);
    if (!Number.isFinite(declared)) return sendError(ctx, 411, 'Length Required', D.upload);
    if (declared > MAX_ASSET_BYTES) return sendError(ctx, 422, 'Asset is too large', D.upload);

    // Stream the body in, hashing as it comes, instead of buffering it through the JSON reader.
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.req) {
      const b = chunk as Buffer;
      hash.update(b);
      chunks.push(b);
      await pace(ctx, b.length); // a 'slow' fault: the client's send is held back meanwhile
    }
    const data = Buffer.concat(chunks);
    // A client that sent fewer bytes than it declared never reaches here (Node aborts the request);
    // this guards against the reverse as well.
    if (data.length !== declared) return sendError(ctx, 400, 'Bad Content-Length', D.upload);
    // The release may have gained an asset of that name while this one was streaming in.
    if (release.assets.some((a) => a.name === name)) {
      return validationFailed(ctx, D.upload, [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }]);
    }
    const now = ctx.world.now();
    const asset: Asset = {
      id: ctx.world.id(),
      name,
      label: ctx.query.get('label') ?? '',
      contentType: ctx.req.headers['content-type'] ?? 'application/octet-stream',
      data,
      sha256: hash.digest('hex'),
      uploader: ctx.world.viewerLogin,
      createdAt: now,
      updatedAt: now,
      downloadCount: 0,
    };
    release.assets.push(asset);
    sendJson(ctx, 201, assetJson(repo, asset, release, ctx.world));
  }),
];

async function serveBytes(ctx: Ctx, asset: Asset): Promise<void> {
  asset.downloadCount += 1;
  ctx.res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(asset.data.length),
    'Content-Disposition': `attachment; filename=${asset.name}`,
    'Last-Modified': new Date(asset.updatedAt).toUTCString(),
    ETag: `"${asset.sha256.slice(0, 32)}"`,
  });
  if (!ctx.bytesPerSecond) {
    ctx.res.end(asset.data);
    return;
  }
  // A 'slow' fault: the body goes out in slices at its pace.
  const slice = 64 * 1024;
  for (let at = 0; at < asset.data.length && !ctx.res.destroyed; at += slice) {
    ctx.res.write(asset.data.subarray(at, at + slice));
    await pace(ctx, Math.min(slice, asset.data.length - at));
  }
  ctx.res.end();
}

/** S3-style refusal, as object storage answers a bad or expired signature. */
function accessDenied(ctx: Ctx, why: string): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${why}</Message></Error>`;
  ctx.res.writeHead(403, { 'Content-Type': 'application/xml', 'Content-Length': String(Buffer.byteLength(xml)) });
  ctx.res.end(xml);
}

export const objectRoutes: readonly Route[] = [
  route('GET', '/github-production-release-asset/:repoId/:assetId', async (ctx, p) => {
    const repo = ctx.world.findRepoById(Number(p.repoId));
    const found = repo ? ctx.world.findAsset(repo, Number(p.assetId)) : undefined;
    const expires = Number(ctx.query.get('X-Expires'));
    const sig = Buffer.from(ctx.query.get('X-Signature') ?? '', 'hex');
    const want = found ? Buffer.from(sign(ctx.world, found.asset.id, expires), 'hex') : Buffer.alloc(0);
    if (!found || sig.length !== want.length || !timingSafeEqual(sig, want)) return accessDenied(ctx, 'Request has invalid signature');
    if (expires < Date.now() / 1000) return accessDenied(ctx, 'Request has expired');
    await serveBytes(ctx, found.asset);
  }),
];

/** browser_download_url on the web host: public repositories redirect to storage; private ones 404 (no browser session here). */
export const webRoutes: readonly Route[] = [
  route('GET', '/:owner/:repo/releases/download/:tag/:name', (ctx, p) => {
    const repo = ctx.world.findRepo(p.owner!, p.repo!);
    const release = repo && !repo.private ? repo.releases.find((r) => !r.draft && r.tagName === p.tag) : undefined;
    const asset = release?.assets.find((a) => a.name === p.name);
    if (!repo || !asset) {
      ctx.res.writeHead(404, { 'Content-Type': 'text/html; charset=utf-8' });
      ctx.res.end('<!DOCTYPE html><html><body><h1>404</h1><p>Not Found</p></body></html>');
      return;
    }
    ctx.res.writeHead(302, { Location: signedDownloadUrl(ctx.world, repo, asset), 'Content-Length': '0' });
    ctx.res.end();
  }),
];

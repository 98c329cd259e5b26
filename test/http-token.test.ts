import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';

// Token mode of `serve --http`, against real server processes with real fetch.
const TOKEN = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'; // like `openssl rand -hex 32`

let root: string;
let tokenServer: HttpServerProcess;
let loopbackServer: HttpServerProcess;
let url: string;

beforeAll(async () => {
  root = tempRoot();
  makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
  [tokenServer, loopbackServer] = await Promise.all([
    startHttpServerProcess(root, ['--host', '0.0.0.0'], { WB_BACKUP_HTTP_TOKEN: TOKEN }),
    startHttpServerProcess(root),
  ]);
  url = tokenServer.url.replace('0.0.0.0', '127.0.0.1');
});
afterAll(async () => {
  await tokenServer?.stop();
  await loopbackServer?.stop();
  rmrf(root);
});

const getHealth = (authorization?: string) => fetch(`${url}/api/health`, { headers: authorization === undefined ? {} : { authorization } });

describe('serve --http refuses a token that does not protect anything', () => {
  it.each([
    ['a one-character token on a public address', ['--host', '0.0.0.0'], 'x'],
    ['a 31-character token on a public address', ['--host', '0.0.0.0'], 'a'.repeat(31)],
    ['a short token on loopback', [], 'secret'],
  ])('%s is refused at start, saying the minimum and how to make one', async (_what, args, token) => {
    const started = startHttpServerProcess(root, args, { WB_BACKUP_HTTP_TOKEN: token });
    await expect(started).rejects.toThrow(/server exited \([1-9]\d*\)/);
    const message = String(await started.catch((e: Error) => e.message));
    expect(message).toMatch(new RegExp(`WB_BACKUP_HTTP_TOKEN is ${token.length} character\\(s\\) long; it must be at least 32 random characters`));
    expect(message).toMatch(/openssl rand -hex 32/);
    if (token.length > 3) expect(message).not.toContain(token); // the secret itself is never echoed
  });

  it.each([
    ['a space', `${'a'.repeat(20)} ${'b'.repeat(20)}`],
    ['non-ASCII letters', 'é'.repeat(40)],
  ])('a token with %s (which an Authorization header cannot carry) is refused at start', async (_what, token) => {
    const message = String(await startHttpServerProcess(root, ['--host', '0.0.0.0'], { WB_BACKUP_HTTP_TOKEN: token }).catch((e: Error) => e.message));
    expect(message).toMatch(/contains a space, a control character or a non-ASCII character/);
    expect(message).toMatch(/openssl rand -hex 32/);
  });

  it('binding a public address with no token at all says how to make one', async () => {
    const message = String(await startHttpServerProcess(root, ['--host', '0.0.0.0']).catch((e: Error) => e.message));
    expect(message).toMatch(/at least 32 characters \(make one with `openssl rand -hex 32`/);
  });
});

describe('the bearer token check', () => {
  it.each(['Bearer', 'bearer', 'BEARER', 'bEaReR'])('accepts the scheme written "%s" (schemes are case-insensitive, RFC 7235)', async (scheme) => {
    const res = await getHealth(`${scheme} ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { components: unknown[] }).components.length).toBeGreaterThan(0);
  });

  it('accepts several spaces between the scheme and the token', async () => {
    expect((await getHealth(`Bearer   ${TOKEN}`)).status).toBe(200);
  });

  it('an MCP client sending "authorization: bearer <token>" in lower case gets in', async () => {
    const client = new Client({ name: 't', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `bearer ${TOKEN}` } } }));
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('health_status');
    } finally {
      await client.close();
    }
  });

  it('a missing token gets 401 saying a token is needed', async () => {
    for (const header of [undefined, '', 'Bearer', `Basic ${TOKEN}`, TOKEN]) {
      const res = await getHealth(header);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="wb-backup"');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('token_required');
    }
  });

  it('a wrong token gets 401 invalid_token, whatever its length', async () => {
    const wrong = [TOKEN.replace(/.$/, TOKEN.endsWith('0') ? '1' : '0'), TOKEN.slice(0, -1), `${TOKEN}0`, 'x'];
    for (const token of wrong) {
      const res = await getHealth(`Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="wb-backup", error="invalid_token"');
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('token_invalid');
      expect(body.error.message).not.toContain(TOKEN);
    }
  });

  it('the card page itself loads without a token (it asks for one), the API does not', async () => {
    for (const p of ['/', '/card.js', '/card.css']) expect((await fetch(`${url}${p}`)).status).toBe(200);
    expect((await fetch(`${url}/api/health`)).status).toBe(401);
  });
});

describe('no response names the web framework', () => {
  it('sends no X-Powered-By header, on pages, API answers, refusals and not-found, with and without a token', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const responses = await Promise.all([
      fetch(`${url}/`),
      fetch(`${url}/card.js`),
      fetch(`${url}/api/health`),
      fetch(`${url}/api/health`, { headers: auth }),
      fetch(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      fetch(`${url}/no-such-page`, { headers: auth }),
      fetch(`${loopbackServer.url}/`),
      fetch(`${loopbackServer.url}/api/health`),
      fetch(`${loopbackServer.url}/no-such-page`),
      fetch(`${loopbackServer.url}/api/backup`, { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{}' }),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 401, 200, 401, 404, 200, 200, 404, 403]);
    for (const r of responses) expect(r.headers.get('x-powered-by')).toBeNull();
  });
});

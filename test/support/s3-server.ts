/**
 * An S3-compatible server for tests: fauxqs 1.9.2 started as a real server process on a free
 * port, behind a thin HTTP layer of our own that
 * - answers conditional writes as S3 does (fauxqs ignores If-None-Match and overwrites): PutObject
 *   and CompleteMultipartUpload with `If-None-Match: *` on a key that exists get
 *   412 PreconditionFailed, checked and written one request per key at a time;
 * - injects faults: a dropped connection (e.g. one multipart part), an S3 error status N times
 *   (503 SlowDown, 403 InvalidAccessKeyId), a conflicting writer (another machine's bytes written
 *   at a key just before or just after ours), and a mode that ignores conditional writes as some
 *   S3-compatible stores do.
 * Path-style only (force_path_style: true): the bucket is the first path segment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './fixtures.js';

/** Which requests a fault applies to. */
export interface S3Match {
  method?: string;
  /** the object key (path after the bucket, decoded) */
  key?: RegExp;
  /** the raw query string, e.g. /partNumber=/ for a multipart part, /uploadId=/ without it for completion */
  query?: RegExp;
}

export type S3Fault =
  /** close the connection without an answer, as a network fault does */
  | { kind: 'drop'; match: S3Match; times?: number }
  /** answer an S3 error (status + Code) instead of forwarding */
  | { kind: 'status'; status: number; code: string; match: S3Match; times?: number }
  /** another writer puts `body` at the same key just `before` or just `after` the matched request */
  | { kind: 'conflict'; when: 'before' | 'after'; body: string; match: S3Match; times?: number };

export interface S3Request {
  method: string;
  key: string;
  query: string;
  /** the request's headers (lower-case names), to see what the SDK sent (checksums, conditions) */
  headers: http.IncomingHttpHeaders;
  /** the fault kind that answered it, when one did */
  fault?: S3Fault['kind'] | 'precondition';
}

export interface S3TestServer {
  /** the layer's URL: give it as remote.s3.endpoint with force_path_style: true */
  endpoint: string;
  /** fauxqs itself, behind the layer (for reading what is stored without faults) */
  upstream: string;
  bucket: string;
  /** every request the layer saw, in order */
  requests: S3Request[];
  inject(fault: S3Fault): void;
  clearFaults(): void;
  /** behave as stores that ignore If-None-Match (accept and overwrite) */
  ignoreConditionalWrites: boolean;
  /** keys stored under `prefix` with their sizes, read from fauxqs directly */
  keys(prefix?: string): Promise<Map<string, number>>;
  /** an object's bytes read from fauxqs directly; null when absent */
  get(key: string): Promise<Buffer | null>;
  /** write an object into fauxqs directly (another writer, a damaged copy) */
  put(key: string, body: string | Buffer): Promise<void>;
  close(): Promise<void>;
}

/**
 * The environment the S3 remote sees in tests: fake static keys and a region, and no shared
 * config/credentials files, so the machine's own ~/.aws is never read. Assign it to process.env
 * of the test process (the SDK reads the process environment).
 */
export function s3TestEnv(): Record<string, string> {
  const none = path.join(os.tmpdir(), 'wb-no-aws-config');
  return {
    AWS_ACCESS_KEY_ID: 'AKIAWBBACKUPTEST0000',
    AWS_SECRET_ACCESS_KEY: 'wb-backup-test-secret-not-real',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: path.join(none, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(none, 'credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** Point this test process's AWS SDK at the fake keys of s3TestEnv (and away from ~/.aws); returns the undo. */
export function useS3TestEnv(): () => void {
  const saved = new Map<string, string | undefined>();
  const env = { ...s3TestEnv(), AWS_PROFILE: undefined, AWS_SESSION_TOKEN: undefined, AWS_DEFAULT_PROFILE: undefined };
  for (const [k, v] of Object.entries(env)) {
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>wbtest</RequestId></Error>`;
}

const MESSAGES: Record<string, string> = {
  SlowDown: 'Please reduce your request rate.',
  PreconditionFailed: 'At least one of the pre-conditions you specified did not hold',
  InvalidAccessKeyId: 'The AWS Access Key Id you provided does not exist in our records.',
  InternalError: 'We encountered an internal error. Please try again.',
  ConditionalRequestConflict: 'A conflicting operation occurred. If using PutObject you can retry the request.',
};

/** Start fauxqs as its own Node process on a free port; resolves once it answers. */
async function startFauxqs(bucket: string): Promise<{ child: ChildProcess; port: number }> {
  // A free port chosen by fauxqs (port 0), printed by this launcher once it listens.
  const launcher = `import { startFauxqs } from 'fauxqs';
const s = await startFauxqs({ port: 0, logger: false, init: { buckets: [${JSON.stringify(bucket)}] } });
process.stdout.write(JSON.stringify({ port: s.port }) + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', launcher], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        child.stdout!.off('data', onData);
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`fauxqs exited (${code}) before listening: ${stderr}`)));
  });
  child.stdout!.resume(); // nothing more is read; never let the pipe fill
  return { child, port };
}

/** One plain HTTP request to fauxqs (which does not check signatures): status and body. */
function upstreamRequest(port: number, method: string, pathAndQuery: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathAndQuery, headers: body ? { 'content-length': body.length, 'content-type': 'application/octet-stream' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function matches(m: S3Match, req: S3Request): boolean {
  return (!m.method || m.method === req.method) && (!m.key || m.key.test(req.key)) && (!m.query || m.query.test(req.query));
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Start fauxqs with `bucket` and the layer in front of it. */
export async function startS3Server(bucket = 'wb-test'): Promise<S3TestServer> {
  const { child, port: upstreamPort } = await startFauxqs(bucket);
  const faults: (S3Fault & { left: number })[] = [];
  const requests: S3Request[] = [];
  /** per-key queue: a conditional write's check and write happen one at a time per key, as S3 guarantees */
  const keyLocks = new Map<string, Promise<void>>();
  const state = { ignoreConditionalWrites: false };

  const objectPath = (key: string) => `/${bucket}/${encodeKey(key)}`;

  async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = keyLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    keyLocks.set(key, before.then(() => mine));
    await before;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  function answer(res: http.ServerResponse, status: number, code: string, method: string): void {
    const body = method === 'HEAD' ? '' : s3ErrorXml(code, MESSAGES[code] ?? code);
    res.writeHead(status, { 'content-type': 'application/xml', 'x-amz-request-id': 'wbtest', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Send the request on to fauxqs as it is, and its answer back. */
  function forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    return new Promise((resolve) => {
      const headers = { ...req.headers, host: `127.0.0.1:${upstreamPort}` };
      const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
        upRes.on('end', () => resolve());
        upRes.on('error', () => resolve());
      });
      up.on('error', () => {
        res.destroy();
        resolve();
      });
      up.end(body);
    });
  }

  async function readBody(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://layer');
    const segments = url.pathname.split('/').slice(1);
    const key = segments.slice(1).map(decodeURIComponent).join('/');
    const method = req.method ?? 'GET';
    const seen: S3Request = { method, key, query: url.search.slice(1), headers: req.headers };
    requests.push(seen);
    const fault = faults.find((f) => f.left > 0 && matches(f.match, seen));
    if (fault) fault.left--;
    if (fault?.kind === 'drop') {
      seen.fault = 'drop';
      req.socket.destroy();
      return;
    }
    const body = await readBody(req);
    if (fault?.kind === 'status') {
      seen.fault = 'status';
      return answer(res, fault.status, fault.code, method);
    }
    const conflict = fault?.kind === 'conflict' ? fault : undefined;
    if (conflict) seen.fault = 'conflict';
    const isPut = method === 'PUT' && key !== '' && !url.searchParams.has('partNumber') && !url.searchParams.has('uploadId');
    const isComplete = method === 'POST' && url.searchParams.has('uploadId');
    const conditional = (isPut || isComplete) && req.headers['if-none-match'] === '*';
    if (!conditional) {
      if (conflict?.when === 'before') await upstreamRequest(upstreamPort, 'PUT', objectPath(key), Buffer.from(conflict.body));
      await forward(req, res, body);
      if (conflict?.when === 'after') await upstreamRequest(upstreamPort, 'PUT', objectPath(key), Buffer.from(conflict.body));
      return;
    }
    await withKeyLock(key, async () => {
      if (conflict?.when === 'before') await upstreamRequest(upstreamPort, 'PUT', objectPath(key), Buffer.from(conflict.body));
      if (!state.ignoreConditionalWrites && (await upstreamRequest(upstreamPort, 'HEAD', objectPath(key))).status === 200) {
        seen.fault = 'precondition';
        // A multipart upload refused at completion is over, as on S3: its parts are dropped.
        if (isComplete) await upstreamRequest(upstreamPort, 'DELETE', `${objectPath(key)}?uploadId=${encodeURIComponent(url.searchParams.get('uploadId') ?? '')}`);
        answer(res, 412, 'PreconditionFailed', method);
      } else {
        await forward(req, res, body);
      }
      if (conflict?.when === 'after') await upstreamRequest(upstreamPort, 'PUT', objectPath(key), Buffer.from(conflict.body));
    });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  async function keys(prefix = ''): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    let token = '';
    for (;;) {
      const q = `list-type=2&prefix=${encodeURIComponent(prefix)}${token ? `&continuation-token=${encodeURIComponent(token)}` : ''}`;
      const { status, body } = await upstreamRequest(upstreamPort, 'GET', `/${bucket}?${q}`);
      if (status !== 200) throw new Error(`listing fauxqs failed: HTTP ${status}`);
      const xml = body.toString('utf8');
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const k = /<Key>([\s\S]*?)<\/Key>/.exec(m[1]!)?.[1] ?? '';
        const size = Number(/<Size>(\d+)<\/Size>/.exec(m[1]!)?.[1] ?? 0);
        found.set(k.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'"), size);
      }
      const next = /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(xml)?.[1];
      if (!/<IsTruncated>true<\/IsTruncated>/.test(xml) || !next) return found;
      token = next;
    }
  }

  return {
    endpoint: `http://127.0.0.1:${port}`,
    upstream: `http://127.0.0.1:${upstreamPort}`,
    bucket,
    requests,
    inject(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    get ignoreConditionalWrites() {
      return state.ignoreConditionalWrites;
    },
    set ignoreConditionalWrites(v: boolean) {
      state.ignoreConditionalWrites = v;
    },
    keys,
    async get(key) {
      const { status, body } = await upstreamRequest(upstreamPort, 'GET', objectPath(key));
      return status === 200 ? body : null;
    },
    async put(key, body) {
      const { status } = await upstreamRequest(upstreamPort, 'PUT', objectPath(key), Buffer.from(body));
      if (status !== 200) throw new Error(`writing ${key} into fauxqs failed: HTTP ${status}`);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(path.join(os.tmpdir(), 'wb-no-aws-config'), { recursive: true, force: true });
    },
  };
}

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { runBackup } from '../src/backup/pipeline.js';
import { runCheck } from '../src/check/run.js';
import { listSnapshots } from '../src/backup/list.js';
import { WbError } from '../src/core/errors.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { BACKENDS, createRemote } from '../src/remote/registry.js';
import { RemoteError, type Remote, type SnapshotFiles } from '../src/remote/remote.js';
import { withRetry } from '../src/remote/retry.js';
import { S3Remote } from '../src/remote/s3/s3-remote.js';
import { runRestore } from '../src/restore/restore.js';
import { deleteLocalSnapshot } from '../src/snapshot/store.js';
import { dumpTables } from './support/db-snapshot.js';
import { CLI, makeNotesDb, rmrf, tempRoot, waitFor } from './support/fixtures.js';
import { describeRemoteBehaviour, makeSnapshots } from './support/remote-suite.js';
import { s3TestEnv, startS3Server, useS3TestEnv, type S3TestServer } from './support/s3-server.js';

// The SDK reads credentials from this process's environment: fake keys, and never the machine's ~/.aws.
const restoreEnv = useS3TestEnv();
afterAll(restoreEnv);

const PREFIX = 'team/laptop';
const fastRetry = { attempts: 3, baseDelayMs: 20 };

/** The s3 remote as the registry builds it from wb-backup.yaml: the backend wrapped in the one retry loop. */
function s3Remote(s3: S3TestServer, opts: { partBytes?: number; retry?: { attempts: number; baseDelayMs: number }; bucket?: string; checksums?: 'when_required' | 'when_supported' } = {}): Remote {
  const settings = {
    bucket: opts.bucket ?? s3.bucket,
    prefix: PREFIX,
    endpoint: s3.endpoint,
    force_path_style: true,
    ...(opts.partBytes ? { part_bytes: opts.partBytes } : {}),
    ...(opts.checksums ? { checksums: opts.checksums } : {}),
  };
  return createRemote({ s3: settings }, '/', { retry: opts.retry ?? fastRetry });
}

const snapshotKey = (id: string, file: string) => `${PREFIX}/${id}/${file}`;

/** True when the request carries an SDK transport checksum (what R2 and B2 reject). */
const checksummed = (r: { headers: Record<string, unknown> }) =>
  Object.keys(r.headers).some((h) => h.startsWith('x-amz-checksum-') || h === 'x-amz-sdk-checksum-algorithm' || h === 'x-amz-trailer');

describeRemoteBehaviour('s3 (fauxqs process behind the S3 conditional-write layer)', async ({ partBytes }) => {
  const s3 = await startS3Server();
  return {
    remote: s3Remote(s3, partBytes ? { partBytes } : {}),
    storedNames: async (id) => [...(await s3.keys(`${PREFIX}/${id}/`)).keys()].map((k) => k.slice(`${PREFIX}/${id}/`.length)),
    // An object of the snapshot is being written (a PUT of a piece or a part reached the store).
    whenStoring: (id, stop) => waitFor(() => stop() || s3.requests.some((r) => r.method === 'PUT' && r.key.startsWith(`${PREFIX}/${id}/`)), 'an object upload'),
    // Every read of the snapshot's objects answers 500 InternalError, as in a store outage; listing still works.
    breakReads: async (id) => s3.inject({ kind: 'status', status: 500, code: 'InternalError', match: { method: 'GET', key: new RegExp(`/${id}/`) }, times: Infinity }),
    cleanup: () => s3.close(),
  };
});

describe('the test layer in front of fauxqs answers conditional writes as S3 does', () => {
  let s3: S3TestServer;
  let client: S3Client;
  beforeEach(async () => {
    s3 = await startS3Server();
    client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', maxAttempts: 1, requestChecksumCalculation: 'WHEN_REQUIRED' });
  });
  afterEach(async () => {
    client.destroy();
    await s3.close();
  });
  const failureOf = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as { name: string; $metadata: { httpStatusCode?: number } });

  it('PutObject with If-None-Match: * creates a key once; the second gets 412 PreconditionFailed and changes nothing', async () => {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/one', Body: 'first', IfNoneMatch: '*' }));
    const err = await failureOf(client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/one', Body: 'second', IfNoneMatch: '*' })));
    expect(err?.name).toBe('PreconditionFailed');
    expect(err?.$metadata.httpStatusCode).toBe(412);
    expect((await s3.get('k/one'))?.toString()).toBe('first');
    // Without the header a PUT overwrites, as on S3.
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/one', Body: 'third' }));
    expect((await s3.get('k/one'))?.toString()).toBe('third');
  });

  it('CompleteMultipartUpload with If-None-Match: * on an existing key gets 412 and leaves the object as it was', async () => {
    await s3.put('k/big', 'already here');
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: 'k/big' }));
    const part = await client.send(new UploadPartCommand({ Bucket: s3.bucket, Key: 'k/big', UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 7) }));
    const err = await failureOf(
      client.send(new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: 'k/big', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } })),
    );
    expect(err?.name).toBe('PreconditionFailed');
    expect(err?.$metadata.httpStatusCode).toBe(412);
    expect((await s3.get('k/big'))?.toString()).toBe('already here');
  });

  it('two conditional writers racing for one key: exactly one wins', async () => {
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((body) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/race', Body: body, IfNoneMatch: '*' })).then(() => body, () => null)),
    );
    const winners = results.filter((r) => r !== null);
    expect(winners).toHaveLength(1);
    expect((await s3.get('k/race'))?.toString()).toBe(winners[0]);
  });

  it('in the mode of stores that ignore the header, a conditional write overwrites (what the read-back guards against)', async () => {
    s3.ignoreConditionalWrites = true;
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/one', Body: 'first', IfNoneMatch: '*' }));
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'k/one', Body: 'second', IfNoneMatch: '*' }));
    expect((await s3.get('k/one'))?.toString()).toBe('second');
  });
});

describe('S3 faults converge, or fail with what to do', () => {
  let s3: S3TestServer;
  let root: string;
  let snaps: SnapshotFiles[];
  beforeAll(async () => {
    root = tempRoot('wb-s3-faults-');
    snaps = await makeSnapshots(root, 2);
  });
  afterAll(() => rmrf(root));
  beforeEach(async () => {
    s3 = await startS3Server();
  });
  afterEach(() => s3.close());

  const keysOf = async (id: string) => [...(await s3.keys(`${PREFIX}/${id}/`)).keys()].sort();
  const filesOf = (snap: SnapshotFiles) => [snap.archivePath, snap.checksumPath, snap.manifestPath].map((f) => snapshotKey(snap.id, path.basename(f))).sort();
  const failure = async (p: Promise<unknown>) => {
    const err = await p.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    return err as RemoteError;
  };

  it('a large archive goes up in multipart pieces, and a part dropped by the network is retried until the push converges', async () => {
    const bigRoot = tempRoot('wb-s3-big-');
    const into = tempRoot('wb-dl-');
    try {
      // Over 11 MiB: more than fauxqs (like many proxies) takes in one request, so it must go multipart.
      const [big] = await makeSnapshots(bigRoot, 1, 12 * 1024);
      const bytes = fs.statSync(big!.archivePath).size;
      expect(bytes).toBeGreaterThan(11 * 1024 * 1024);
      s3.inject({ kind: 'drop', match: { method: 'PUT', query: /partNumber=2&/ } });
      const pushed = await s3Remote(s3).push(big!);
      expect(pushed).toEqual({ uploaded: true, attempts: 2 });
      expect(s3.requests.filter((r) => r.fault === 'drop')).toHaveLength(1);
      const parts = s3.requests.filter((r) => r.method === 'PUT' && /partNumber=/.test(r.query));
      expect(parts.length).toBeGreaterThanOrEqual(4);
      expect(parts.filter(checksummed)).toEqual([]); // the default checksum mode holds for multipart too
      expect(await keysOf(big!.id)).toEqual(filesOf(big!));
      expect((await s3Remote(s3).list()).find((s) => s.id === big!.id)).toEqual({ id: big!.id, complete: true, bytes });
      const got = await s3Remote(s3).download(big!.id, into);
      expect(fs.readFileSync(got.archivePath).equals(fs.readFileSync(big!.archivePath))).toBe(true);
    } finally {
      rmrf(into);
      rmrf(bigRoot);
    }
  });

  it('a store that answers 503 SlowDown is waited out: the push and the listing converge', async () => {
    s3.inject({ kind: 'status', status: 503, code: 'SlowDown', match: { method: 'PUT', key: /\.manifest\.json$/ }, times: 2 });
    const pushed = await s3Remote(s3, { retry: { attempts: 4, baseDelayMs: 20 } }).push(snaps[0]!);
    expect(pushed).toEqual({ uploaded: true, attempts: 3 });
    s3.inject({ kind: 'status', status: 503, code: 'SlowDown', match: { method: 'GET', query: /list-type=2/ } });
    expect((await s3Remote(s3).list()).map((s) => [s.id, s.complete])).toEqual([[snaps[0]!.id, true]]);
    expect(s3.requests.filter((r) => r.fault === 'status')).toHaveLength(3);
  });

  it('a store that keeps failing (500) fails the push as transient after the retries, and the snapshot does not count as pushed', async () => {
    s3.inject({ kind: 'status', status: 500, code: 'InternalError', match: { method: 'PUT', key: /\.sha256$/ }, times: Infinity });
    const err = await failure(s3Remote(s3).push(snaps[0]!));
    expect(err.kind).toBe('transient');
    expect(err.attempts).toBe(3);
    expect(err.message).toMatch(/InternalError \(HTTP 500\)/);
    expect((await s3Remote(s3).list()).find((s) => s.id === snaps[0]!.id)?.complete).toBe(false);
  });

  it('a push that broke before its manifest is incomplete on the remote, and the next push converges without duplicates', async () => {
    s3.inject({ kind: 'status', status: 500, code: 'InternalError', match: { method: 'PUT', key: /\.manifest\.json$/ }, times: Infinity });
    await failure(s3Remote(s3, { retry: { attempts: 1, baseDelayMs: 1 } }).push(snaps[0]!));
    expect((await failure(s3Remote(s3).manifest(snaps[0]!.id))).kind).toBe('incomplete');
    expect((await failure(s3Remote(s3).download(snaps[0]!.id, path.join(root, 'dl')))).kind).toBe('incomplete');
    s3.clearFaults();
    expect(await s3Remote(s3).push(snaps[0]!)).toEqual({ uploaded: true, attempts: 1 });
    expect(await keysOf(snaps[0]!.id)).toEqual(filesOf(snaps[0]!));
    expect((await s3Remote(s3).manifest(snaps[0]!.id)).snapshot_id).toBe(snaps[0]!.id);
  });

  it('a push that broke before its checksum object converges: our own manifest answering 412 is recognised as ours', async () => {
    s3.inject({ kind: 'status', status: 500, code: 'InternalError', match: { method: 'PUT', key: /\.sha256$/ }, times: Infinity });
    await failure(s3Remote(s3, { retry: { attempts: 1, baseDelayMs: 1 } }).push(snaps[0]!));
    s3.clearFaults();
    const before = s3.requests.length;
    expect(await s3Remote(s3).push(snaps[0]!)).toEqual({ uploaded: true, attempts: 1 });
    expect(await keysOf(snaps[0]!.id)).toEqual(filesOf(snaps[0]!));
    expect((await s3Remote(s3).list()).find((s) => s.id === snaps[0]!.id)?.complete).toBe(true);
    // Conditional writes only: the manifest and checksum PUTs carried If-None-Match: *.
    const publishes = s3.requests.slice(before).filter((r) => r.method === 'PUT' && /\.(manifest\.json|sha256)$/.test(r.key));
    expect(publishes.map((r) => r.headers['if-none-match'])).toEqual(['*', '*']);
  });

  it('two machines publishing the same snapshot name: the first copy is never overwritten, the second push is refused and says why', async () => {
    const theirs = `${'f'.repeat(64)}  ${path.basename(snaps[0]!.archivePath)}\n`;
    // The other machine's checksum object lands just before ours.
    s3.inject({ kind: 'conflict', when: 'before', body: theirs, match: { method: 'PUT', key: /\.sha256$/ } });
    const err = await failure(s3Remote(s3).push(snaps[0]!));
    expect(err.kind).toBe('refused');
    expect(err.attempts).toBe(1);
    expect(err.message).toMatch(/already holds a different .*\.sha256.*same name/);
    expect(err.hint).toMatch(/Nothing was overwritten.*prefix/);
    expect(s3.requests.some((r) => r.fault === 'precondition')).toBe(true);
    expect((await s3.get(snapshotKey(snaps[0]!.id, path.basename(snaps[0]!.checksumPath))))?.toString()).toBe(theirs);
    // Pushing again changes nothing either: the name is taken by another snapshot.
    expect((await failure(s3Remote(s3).push(snaps[0]!))).kind).toBe('refused');
    expect((await s3.get(snapshotKey(snaps[0]!.id, path.basename(snaps[0]!.checksumPath))))?.toString()).toBe(theirs);
  });

  it('a store that ignores If-None-Match lets another writer overwrite our checksum: the read-back catches it and the push does not count', async () => {
    s3.ignoreConditionalWrites = true;
    const theirs = `${'e'.repeat(64)}  ${path.basename(snaps[0]!.archivePath)}\n`;
    s3.inject({ kind: 'conflict', when: 'after', body: theirs, match: { method: 'PUT', key: /\.sha256$/ } });
    const err = await failure(s3Remote(s3).push(snaps[0]!));
    expect(err.kind).toBe('refused');
    expect(err.message).toMatch(/already holds a different .*\.sha256/);
    expect(s3.requests.some((r) => r.fault === 'precondition')).toBe(false);
  });

  it('refused credentials fail at once (no retries), say what to check, and never show the keys', async () => {
    s3.inject({ kind: 'status', status: 403, code: 'InvalidAccessKeyId', match: {}, times: Infinity });
    const err = await failure(s3Remote(s3).push(snaps[0]!));
    expect(err.kind).toBe('auth');
    expect(err.attempts).toBe(1);
    expect(err.hint).toMatch(/AWS_ACCESS_KEY_ID.*remote\.s3\.profile.*s3:PutObject/s);
    const env = s3TestEnv();
    expect(`${err.message} ${err.hint}`).not.toContain(env.AWS_SECRET_ACCESS_KEY);
    expect(`${err.message} ${err.hint}`).not.toContain(env.AWS_ACCESS_KEY_ID);
  });

  it('a bucket that does not exist is a permanent error pointing at remote.s3.bucket', async () => {
    const err = await failure(s3Remote(s3, { bucket: 'no-such-bucket' }).push(snaps[0]!));
    expect(err.kind).toBe('refused');
    expect(err.attempts).toBe(1);
    expect(err.message).toMatch(/NoSuchBucket/);
    expect(err.hint).toMatch(/remote\.s3\.bucket/);
  });

  it('uploads carry no SDK checksum by default (what R2 and B2 accept); checksums: when_supported adds them', async () => {
    await s3Remote(s3).push(snaps[0]!);
    const sent = (from: number) => s3.requests.slice(from).filter((r) => r.method === 'PUT' || r.method === 'POST');
    expect(sent(0).length).toBeGreaterThan(0);
    expect(sent(0).filter(checksummed)).toEqual([]);
    const before = s3.requests.length;
    await s3Remote(s3, { checksums: 'when_supported' }).push(snaps[1]!);
    expect(sent(before).filter(checksummed).length).toBeGreaterThan(0);
    expect((await s3Remote(s3).list()).filter((s) => s.complete).map((s) => s.id).sort()).toEqual([snaps[0]!.id, snaps[1]!.id].sort());
  });

  it('the sweep lists in bounded pages and counts every request (free tiers cap them)', async () => {
    const backend = new S3Remote({ bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, force_path_style: true }, { listPageKeys: 2, maxListPages: 2 });
    const remote = withRetry(backend, fastRetry);
    await remote.push(snaps[0]!);
    const before = backend.requests.list;
    expect((await remote.list()).length).toBe(1);
    expect(backend.requests.list - before).toBe(2); // 3 keys in pages of 2
    expect(s3.requests.filter((r) => /list-type=2/.test(r.query) && /max-keys=2/.test(r.query)).length).toBeGreaterThanOrEqual(2);
    // Past its page bound (6 keys need 3 pages of 2) a listing stops with what to do, instead of running on.
    await remote.push(snaps[1]!);
    const err = await failure(remote.list());
    expect(err.kind).toBe('refused');
    expect(err.hint).toMatch(/remote\.s3\.prefix/);
    expect(backend.requests).toMatchObject({ put: expect.any(Number), get: expect.any(Number), head: expect.any(Number) });
  });
});

describe('s3 settings', () => {
  it('is a registered backend whose settings have no field for credentials', () => {
    expect(Object.keys(BACKENDS)).toContain('s3');
    const err = (() => {
      try {
        createRemote({ s3: { bucket: 'my-bucket', access_key_id: 'AKIA…' } }, '/');
      } catch (e) {
        return e;
      }
      return null;
    })() as WbError;
    expect(err).toBeInstanceOf(WbError);
    expect(err.code).toBe('config_invalid');
    expect(err.message).toMatch(/access_key_id/);
    expect(BACKENDS.s3.schema.safeParse({ bucket: 'Bad_Bucket' }).success).toBe(false);
    expect(BACKENDS.s3.schema.safeParse({ bucket: 'wb', prefix: '../up' }).success).toBe(false);
    expect(BACKENDS.s3.schema.parse({ bucket: 'wb-backups', region: 'auto', endpoint: 'https://acct.r2.cloudflarestorage.com' })).toMatchObject({ region: 'auto' });
  });

  it('labels the remote by bucket and prefix', () => {
    expect(createRemote({ s3: { bucket: 'wb-backups', prefix: '/laptop/' } }, '/').label).toBe('s3:wb-backups/laptop');
  });
});

describe('s3 credentials and region come from the AWS chain only', () => {
  let s3: S3TestServer;
  let dir: string;
  let snaps: SnapshotFiles[];
  const saved: Record<string, string | undefined> = {};
  /** Change this process's environment for one test (restored after it). */
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (!(k in saved)) saved[k] = process.env[k];
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  beforeAll(async () => {
    dir = tempRoot('wb-s3-chain-');
    snaps = await makeSnapshots(dir, 1);
  });
  afterAll(() => rmrf(dir));
  beforeEach(async () => {
    s3 = await startS3Server();
  });
  afterEach(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      delete saved[k];
    }
    await s3.close();
  });
  const settings = (extra: Record<string, unknown> = {}) => ({ s3: { bucket: s3.bucket, endpoint: s3.endpoint, force_path_style: true, ...extra } });

  it('the profile setting takes the keys from that profile of the shared credentials file', async () => {
    const credentials = path.join(dir, 'credentials');
    fs.writeFileSync(credentials, '[backups]\naws_access_key_id = AKIAPROFILEKEY000000\naws_secret_access_key = profile-secret-not-real\n');
    setEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SHARED_CREDENTIALS_FILE: credentials });
    expect(await createRemote(settings({ profile: 'backups' }), '/', { retry: fastRetry }).push(snaps[0]!)).toEqual({ uploaded: true, attempts: 1 });
    // The request was signed with the profile's key (SigV4 names the key id in Authorization).
    expect(s3.requests.find((r) => r.method === 'PUT')?.headers.authorization).toMatch(/Credential=AKIAPROFILEKEY000000\//);
  });

  it('no credentials anywhere in the chain is an auth failure at once, saying where keys are looked for', async () => {
    setEnv({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    const err = (await createRemote(settings(), '/', { retry: fastRetry }).list().catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.kind).toBe('auth');
    expect(err.attempts).toBe(1);
    expect(err.hint).toMatch(/AWS_ACCESS_KEY_ID.*~\/\.aws\/credentials.*remote\.s3\.profile/s);
    expect(s3.requests).toEqual([]);
  });

  it('no region in the settings, the environment or the profile is a permanent error saying where to set it', async () => {
    setEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined });
    const err = (await createRemote(settings(), '/', { retry: fastRetry }).list().catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.kind).toBe('refused');
    expect(err.attempts).toBe(1);
    expect(err.hint).toMatch(/remote\.s3\.region.*AWS_REGION/);
    expect(await createRemote(settings({ region: 'auto' }), '/', { retry: fastRetry }).list()).toEqual([]);
  });
});

describe('data_backup and data_restore with the s3 remote from wb-backup.yaml', () => {
  let s3: S3TestServer;
  let root: string;
  beforeEach(async () => {
    s3 = await startS3Server();
    root = tempRoot();
    makeNotesDb(path.join(root, 'db', 'a.db'), 25);
    writeConfigFile(root, { remote: { s3: { bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, force_path_style: true } } });
  });
  afterEach(async () => {
    await s3.close();
    rmrf(root);
  });

  it('pushes, lists, and restores a snapshot that only the bucket has', async () => {
    const made = await runBackup(loadConfig(root), { manual: true });
    expect(made.remote).toMatchObject({ status: 'pushed', attempts: 1 });
    expect([...(await s3.keys(`${PREFIX}/${made.snapshot_id}/`)).keys()].sort()).toEqual(
      [made.archive.file, `${made.snapshot_id}.manifest.json`, `${made.snapshot_id}.sha256`].map((f) => snapshotKey(made.snapshot_id, f)).sort(),
    );
    const listed = await listSnapshots(loadConfig(root), 'all');
    expect(listed.remote).toMatchObject({ configured: true, listed: true, label: `s3:${s3.bucket}/${PREFIX}` });
    const content = dumpTables(path.join(root, 'db', 'a.db'));
    deleteLocalSnapshot(root, made.snapshot_id);
    fs.rmSync(path.join(root, 'db', 'a.db'));
    const restored = await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, consent: async () => ({ granted: true }) });
    expect(restored.databases.map((d) => d.name)).toEqual(['a']);
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(content);
    // Credentials came from the environment: nothing of them was written to the data root.
    const written = fs.readdirSync(root, { recursive: true }).map(String).filter((f) => fs.statSync(path.join(root, f)).isFile() && !f.endsWith('.db') && !/\.(tar\.zst|tar\.gz)$/.test(f));
    for (const f of written) expect(fs.readFileSync(path.join(root, f), 'utf8')).not.toContain(s3TestEnv().AWS_SECRET_ACCESS_KEY);
  });
});

describe("check --remote on the s3 remote: proof the bucket's copies restore", () => {
  it('a full and two deltas in the bucket pass; a flipped byte in one archive object is found and named', async () => {
    const s3 = await startS3Server();
    const root = tempRoot();
    try {
      makeNotesDb(path.join(root, 'db', 'notes.db'), 2000);
      writeConfigFile(root, { remote: { s3: { bucket: s3.bucket, prefix: PREFIX, endpoint: s3.endpoint, force_path_style: true } } });
      const ids: string[] = [];
      for (let h = 0; h < 3; h++) {
        const db = new Database(path.join(root, 'db', 'notes.db'));
        db.prepare('UPDATE notes SET title = ? WHERE id = ?').run(`hour ${h}`, 10 + h);
        db.close();
        const made = await runBackup(loadConfig(root), { now: () => new Date(Date.UTC(2026, 10, 22, h)) });
        expect(made.remote.status).toBe('pushed');
        ids.push(made.snapshot_id);
      }
      const clean = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'all' } });
      expect(clean).toMatchObject({ where: 'remote', ok: true, checked: 3, read: 3, failed_count: 0 });
      // One archive object damaged in the bucket (written behind wb-backup's back, same size).
      const archiveKey = [...(await s3.keys(`${PREFIX}/${ids[1]}/`)).keys()].find((k) => /\.tar\.(zst|gz)$/.test(k))!;
      const bytes = (await s3.get(archiveKey))!;
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await s3.put(archiveKey, bytes);
      const read = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'all' } });
      expect(read.ok).toBe(false);
      expect(read.failed.map((f) => f.id)).toContain(ids[1]);
      expect(read.failed.find((f) => f.id === ids[1])!.problems.join(' ')).toMatch(/[Cc]hecksum mismatch/);
      expect(read.failed.map((f) => f.id)).not.toContain(ids[0]);
    } finally {
      rmrf(root);
      await s3.close();
    }
  });
});

describe('wb-backup now with the s3 remote (the built CLI, credentials from the environment)', () => {
  it('pushes the snapshot to the bucket, prints that it did, and exits', async () => {
    const s3 = await startS3Server();
    const root = tempRoot();
    try {
      makeNotesDb(path.join(root, 'db', 'a.db'), 10);
      writeConfigFile(root, { remote: { s3: { bucket: s3.bucket, prefix: 'cli', endpoint: s3.endpoint, force_path_style: true } } });
      // Spawned, not spawnSync: the S3 layer runs in this process and must keep answering.
      const child = spawn(process.execPath, [CLI, '--root', root, 'now'], { env: { ...process.env, ...s3TestEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(0);
      expect(stdout).toMatch(/remote: pushed/);
      const keys = [...(await s3.keys('cli/')).keys()];
      expect(keys).toHaveLength(3);
      expect(keys.filter((k) => k.endsWith('.sha256'))).toHaveLength(1);
    } finally {
      rmrf(root);
      await s3.close();
    }
  });
});

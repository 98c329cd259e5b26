import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { WbError } from '../../core/errors.js';
import { logger } from '../../core/log.js';
import { syncFileData } from '../../core/durable-file.js';
import { parseSnapshotId } from '../../snapshot/id.js';
import type { Manifest } from '../../snapshot/manifest.js';
import { describeStoredSnapshot, downloadableLayout, manifestTooLarge, MAX_MANIFEST_BYTES, parseRemoteManifest } from '../listing.js';
import {
  cancelledError,
  partName,
  RemoteError,
  throwIfCancelled,
  type PushResult,
  type Remote,
  type RemoteCallOptions,
  type RemoteErrorKind,
  type RemoteSnapshot,
  type SnapshotFiles,
} from '../remote.js';
import type { S3Settings } from './index.js';

/** S3's own limit for one object (5 TiB): the default part size, i.e. archives are not split. */
const MAX_OBJECT_BYTES = 5 * 1024 ** 4;
/** Multipart piece size: above it an object goes up in pieces (S3's minimum is 5 MiB; fauxqs refuses single requests over ~11 MiB). */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;
/** Keys per ListObjectsV2 page (S3's maximum). */
const LIST_PAGE_KEYS = 1000;
/** Pages one listing may take before it gives up (10 million keys): a listing never runs unbounded. */
const MAX_LIST_PAGES = 10_000;

/** Requests made, by S3 operation, for bench output and logs (free tiers cap them per month). */
export interface S3RequestCounts {
  /** ListObjectsV2 calls (class A on S3 and R2) */
  list: number;
  /** GetObject calls (class B) */
  get: number;
  /** HeadObject calls (class B) */
  head: number;
  /** PutObject calls and multipart uploads (class A) */
  put: number;
  /** DeleteObject calls (free on S3 and R2) */
  delete: number;
}

/** Knobs tests and benches turn; the defaults are what wb-backup.yaml gets. */
export interface S3RemoteTuning {
  /** keys per ListObjectsV2 page (default 1000, S3's maximum) */
  listPageKeys?: number;
  /** pages a listing may take before failing 'refused' (default 10,000) */
  maxListPages?: number;
}

/** One of a snapshot's archive objects and the byte range of the local archive it holds. */
interface Piece {
  name: string;
  start: number;
  /** exclusive */
  end: number;
}

/** Error names S3-compatible stores answer when waiting and trying again helps. */
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequests',
  'RequestLimitExceeded',
  'RequestTimeout',
  'InternalError',
  'ServiceUnavailable',
  'ConditionalRequestConflict',
  'OperationAborted',
  'TimeoutError',
]);
/** Error names that mean the credentials (or their permissions) were refused. */
const AUTH_NAMES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'CredentialsProviderError',
]);
/** Error names that mean the store has no room left for this account. */
const FULL_NAMES = new Set(['QuotaExceeded', 'StorageQuotaExceeded', 'InsufficientStorage']);

/** What an SDK (or network) error carries that decides its kind: never its text. */
function facts(err: unknown): { name: string; status: number | undefined; code: string | undefined } {
  const e = (err ?? {}) as { name?: unknown; code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  const name = typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : 'Error';
  return { name, status, code: typeof e.code === 'string' ? e.code : undefined };
}

/** Passes a running byte total to `onBytes` only when it grew (the contract: strictly increasing). */
function byteReporter(onBytes: ((bytes: number) => void) | undefined): (total: number) => void {
  let passed = 0;
  return (total) => {
    if (!onBytes || !(total > passed)) return;
    passed = total;
    onBytes(total);
  };
}

/** A failure writing this machine's copy (its disk full or read-only), as opposed to reading the remote. */
function isLocalWriteFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS';
}

/** Thrown inside a method when S3 answered 404 for a key the caller asked about; mapped by the method. */
function isNoSuchKey(err: unknown): boolean {
  const { name, status } = facts(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket');
}

/**
 * An S3-compatible bucket (AWS S3, R2, B2, MinIO): a snapshot is the objects
 * `<prefix>/<id>/<file>` (the archive, or its .partNNN pieces; the manifest; the checksum file).
 * The archive goes up first (multipart above 8 MiB), the manifest and checksum objects last with a
 * conditional write (If-None-Match: *), and the snapshot is read back before push resolves. One
 * attempt per call: the SDK's own retries are off, the registry wraps it in retry.ts.
 */
export class S3Remote implements Remote {
  readonly label: string;
  /** requests made since this remote was created, by operation */
  readonly requests: S3RequestCounts = { list: 0, get: 0, head: 0, put: 0, delete: 0 };
  private readonly client: S3Client;
  private readonly bucket: string;
  /** '' or the prefix with one trailing slash */
  private readonly base: string;
  private readonly partBytes: number;
  private readonly listPageKeys: number;
  private readonly maxListPages: number;
  private regionChecked = false;

  constructor(settings: S3Settings, tuning: S3RemoteTuning = {}) {
    this.bucket = settings.bucket;
    const prefix = (settings.prefix ?? '').replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
    this.base = prefix ? `${prefix}/` : '';
    this.label = `s3:${settings.bucket}${prefix ? `/${prefix}` : ''}`;
    this.partBytes = settings.part_bytes ?? MAX_OBJECT_BYTES;
    this.listPageKeys = tuning.listPageKeys ?? LIST_PAGE_KEYS;
    this.maxListPages = tuning.maxListPages ?? MAX_LIST_PAGES;
    const mode = settings.checksums === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
    const config: S3ClientConfig = {
      // Credentials: nothing here, so the SDK's standard chain applies (env, shared files, profile, SSO, IMDS).
      ...(settings.region ? { region: settings.region } : {}),
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      ...(settings.profile ? { profile: settings.profile } : {}),
      forcePathStyle: settings.force_path_style ?? false,
      // Since SDK 3.729 every upload carries a CRC checksum by default, which R2, B2 and older
      // MinIO reject or mishandle; WHEN_REQUIRED sends one only where S3 demands it.
      requestChecksumCalculation: mode,
      responseChecksumValidation: mode,
      // One attempt per call: retry.ts is the one retry loop.
      maxAttempts: 1,
    };
    this.client = new S3Client(config);
  }

  private key(id: string, name: string): string {
    return `${this.base}${id}/${name}`;
  }

  /** A failure as the RemoteError of its kind, decided from the status code and error name. */
  private failure(err: unknown, what: string, signal?: AbortSignal): RemoteError | WbError {
    if (err instanceof RemoteError || err instanceof WbError) return err;
    if (signal?.aborted) return cancelledError(this.label, what);
    const { name, status, code } = facts(err);
    let kind: RemoteErrorKind;
    let hint: string;
    if (name === 'AbortError') {
      kind = 'cancelled';
      hint = 'Nothing half-done counts as on the remote; the next run converges.';
    } else if (AUTH_NAMES.has(name) || status === 401 || status === 403) {
      kind = 'auth';
      hint =
        'The store refused the credentials or their permissions. Check the AWS credential chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, remote.s3.profile) and that the key may s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject on the bucket (docs/remotes.md).';
    } else if (FULL_NAMES.has(name) || status === 507) {
      kind = 'full';
      hint = 'The bucket or account has no room left: raise its quota or free space there.';
    } else if (TRANSIENT_NAMES.has(name) || status === 408 || status === 409 || status === 429 || (status !== undefined && status >= 500) || (status === undefined && code !== undefined)) {
      kind = 'transient';
      hint = 'The store could not be reached or asked us to slow down; the next attempt tries again.';
    } else if (name === 'NoSuchBucket') {
      kind = 'refused';
      hint = 'Create the bucket, or fix remote.s3.bucket (and remote.s3.endpoint / region) in wb-backup.yaml.';
    } else {
      kind = 'refused';
      hint = 'Check remote.s3 in wb-backup.yaml (bucket, region, endpoint, force_path_style) against docs/remotes.md.';
    }
    const detail = `${name}${status !== undefined ? ` (HTTP ${status})` : ''}${err instanceof Error && err.message && err.message !== name ? `: ${err.message}` : ''}`;
    return new RemoteError(kind, `${what} ${this.label} failed: ${detail}`, hint);
  }

  /** The SDK needs a region to sign; without one (setting, AWS_REGION, profile) every call would fail the same way. */
  private async checkRegion(): Promise<void> {
    if (this.regionChecked) return;
    try {
      await this.client.config.region();
    } catch {
      throw new RemoteError('refused', `${this.label} has no region to sign requests for.`, 'Set remote.s3.region in wb-backup.yaml ("auto" on R2), or AWS_REGION, or a region in the AWS profile.');
    }
    this.regionChecked = true;
  }

  /** Every key under `prefix` with its size, in bounded ListObjectsV2 pages (counted). */
  private async listKeys(prefix: string, signal?: AbortSignal, maxKeys?: number): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    let token: string | undefined;
    for (let page = 1; ; page++) {
      if (page > this.maxListPages) {
        throw new RemoteError('refused', `Listing ${this.label} took more than ${this.maxListPages} pages of ${this.listPageKeys} keys.`, 'Give wb-backup a prefix of its own (remote.s3.prefix) that holds nothing else.');
      }
      this.requests.list++;
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: maxKeys ?? this.listPageKeys, ...(token ? { ContinuationToken: token } : {}) }),
        { abortSignal: signal },
      );
      for (const o of out.Contents ?? []) if (o.Key !== undefined) found.set(o.Key, o.Size ?? 0);
      token = out.IsTruncated && maxKeys === undefined ? out.NextContinuationToken : undefined;
      if (!token) return found;
    }
  }

  /** The snapshot's stored file names with their sizes. */
  private async storedFiles(id: string, signal?: AbortSignal): Promise<Map<string, number>> {
    const prefix = this.key(id, '');
    const files = new Map<string, number>();
    for (const [key, size] of await this.listKeys(prefix, signal)) {
      const name = key.slice(prefix.length);
      if (name && !name.includes('/')) files.set(name, size);
    }
    return files;
  }

  /** A small object's bytes (manifest, checksum file); WbError manifest_invalid when larger than any wb-backup writes. */
  private async getSmall(id: string, name: string, signal?: AbortSignal): Promise<Buffer> {
    this.requests.get++;
    const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id, name) }), { abortSignal: signal });
    const body = out.Body as (Readable & { transformToByteArray(): Promise<Uint8Array> }) | undefined;
    if (!body) return Buffer.alloc(0);
    if ((out.ContentLength ?? 0) > MAX_MANIFEST_BYTES) {
      body.destroy();
      throw manifestTooLarge(this.label, id, out.ContentLength ?? 0);
    }
    return Buffer.from(await body.transformToByteArray());
  }

  /** Upload `piece` of the local file, multipart above UPLOAD_PART_BYTES; the signal aborts it (and the multipart upload). */
  private async upload(file: string, id: string, piece: Piece, signal?: AbortSignal, onLoaded?: (bytes: number) => void): Promise<void> {
    this.requests.put += Math.max(1, Math.ceil((piece.end - piece.start) / UPLOAD_PART_BYTES));
    const body = piece.end > piece.start ? fs.createReadStream(file, { start: piece.start, end: piece.end - 1 }) : Buffer.alloc(0);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.key(id, piece.name), Body: body, ContentType: 'application/octet-stream' },
      partSize: UPLOAD_PART_BYTES,
      queueSize: 4,
      leavePartsOnError: false, // a failed multipart upload is aborted, not left to bill
    });
    if (onLoaded) upload.on('httpUploadProgress', (p) => onLoaded(Math.min(p.loaded ?? 0, piece.end - piece.start)));
    const onAbort = () => void upload.abort().catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await upload.done();
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (body instanceof fs.ReadStream) body.destroy();
    }
  }

  /**
   * Create a small object only if the key is free (If-None-Match: *). When it is taken (412), it is
   * read back: the same bytes are our own earlier attempt (fine), others are another writer's
   * snapshot, refused. A 409 (a concurrent conditional write) is transient: the retry settles it.
   */
  private async createOnce(id: string, name: string, bytes: Buffer, signal?: AbortSignal): Promise<void> {
    try {
      this.requests.put++;
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.key(id, name), Body: bytes, ContentLength: bytes.length, IfNoneMatch: '*', ContentType: name.endsWith('.json') ? 'application/json' : 'text/plain' }),
        { abortSignal: signal },
      );
    } catch (err) {
      if (facts(err).status !== 412) throw err;
      if (!(await this.getSmall(id, name, signal)).equals(bytes)) throw this.conflict(id, name);
    }
  }

  private conflict(id: string, name: string): RemoteError {
    return new RemoteError(
      'refused',
      `${this.label} already holds a different ${name} for ${id}: another machine or run published a snapshot under the same name.`,
      'Nothing was overwritten. Give each machine its own host name (the host setting) or remote.s3.prefix, then run the backup again.',
    );
  }

  async list(opts: RemoteCallOptions = {}): Promise<RemoteSnapshot[]> {
    const what = 'Listing';
    throwIfCancelled(opts.signal, this.label, what);
    try {
      await this.checkRegion();
      const bySnapshot = new Map<string, Map<string, number>>();
      for (const [key, size] of await this.listKeys(this.base, opts.signal)) {
        const rest = key.slice(this.base.length);
        const slash = rest.indexOf('/');
        if (slash < 0) continue;
        const id = rest.slice(0, slash);
        const name = rest.slice(slash + 1);
        if (!name || name.includes('/') || !parseSnapshotId(id)) continue;
        const files = bySnapshot.get(id) ?? new Map<string, number>();
        files.set(name, size);
        bySnapshot.set(id, files);
      }
      // Request counts in the log: what a run costs against a store's monthly request caps.
      logger().debug({ remote: this.label, snapshots: bySnapshot.size, requests: { ...this.requests } }, 's3 requests so far');
      return [...bySnapshot].map(([id, files]) => describeStoredSnapshot(id, [...files.keys()], (n) => files.get(n) ?? 0));
    } catch (err) {
      throw this.failure(err, what, opts.signal);
    }
  }

  async push(snapshot: SnapshotFiles, opts: RemoteCallOptions = {}): Promise<PushResult> {
    const { signal } = opts;
    const report = byteReporter(opts.onBytes);
    const { id } = snapshot;
    const what = `Pushing ${id} to`;
    throwIfCancelled(signal, this.label, what);
    const manifestName = path.basename(snapshot.manifestPath);
    const checksumName = path.basename(snapshot.checksumPath);
    const archiveName = path.basename(snapshot.archivePath);
    const ours = { manifest: fs.readFileSync(snapshot.manifestPath), checksum: fs.readFileSync(snapshot.checksumPath) };
    const size = fs.statSync(snapshot.archivePath).size;
    const pieces: Piece[] = [];
    if (size <= this.partBytes) pieces.push({ name: archiveName, start: 0, end: size });
    else for (let i = 0, start = 0; start < size; i++, start += this.partBytes) pieces.push({ name: partName(archiveName, i), start, end: Math.min(start + this.partBytes, size) });
    const archiveIntact = (stored: Map<string, number>) => pieces.every((p) => stored.get(p.name) === p.end - p.start);
    try {
      await this.checkRegion();
      const stored = await this.storedFiles(id, signal);
      // Already there? Only our own checksum file counts; another writer's is never replaced.
      for (const [name, bytes] of [[manifestName, ours.manifest], [checksumName, ours.checksum]] as const) {
        if (stored.has(name) && !(await this.getSmall(id, name, signal)).equals(bytes)) throw this.conflict(id, name);
      }
      if (stored.has(checksumName) && stored.has(manifestName) && archiveIntact(stored)) return { uploaded: false, attempts: 1 };

      // Objects of an earlier push with another layout (another part size) would confuse list() and
      // download(): removed before this push's archive goes up.
      const wanted = new Set([...pieces.map((p) => p.name), manifestName, checksumName]);
      for (const name of stored.keys()) {
        if (wanted.has(name)) continue;
        throwIfCancelled(signal, this.label, what);
        this.requests.delete++;
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(id, name) }), { abortSignal: signal });
      }
      // The archive first: until the checksum object exists, list() does not count the snapshot.
      // Bytes: the snapshot's files done so far (a piece already there counts as done).
      let done = 0;
      for (const piece of pieces) {
        throwIfCancelled(signal, this.label, what);
        if (!(stored.get(piece.name) === piece.end - piece.start && stored.has(checksumName))) {
          const before = done;
          await this.upload(snapshot.archivePath, id, piece, signal, (loaded) => report(before + loaded));
        }
        done += piece.end - piece.start;
        report(done);
      }
      throwIfCancelled(signal, this.label, what);
      await this.createOnce(id, manifestName, ours.manifest, signal);
      report((done += ours.manifest.length));
      await this.createOnce(id, checksumName, ours.checksum, signal);
      report((done += ours.checksum.length));
      await this.readBack(id, pieces, manifestName, ours.manifest, checksumName, ours.checksum, signal);
    } catch (err) {
      throw this.failure(err, what, signal);
    }
    return { uploaded: true, attempts: 1 };
  }

  /**
   * A published snapshot counts only once read back: the checksum and manifest objects hold our
   * bytes (a store that ignores If-None-Match may have let another writer replace them) and every
   * archive object has its size (HEAD).
   */
  private async readBack(id: string, pieces: Piece[], manifestName: string, manifest: Buffer, checksumName: string, checksum: Buffer, signal?: AbortSignal): Promise<void> {
    for (const [name, bytes] of [[checksumName, checksum], [manifestName, manifest]] as const) {
      if (!(await this.getSmall(id, name, signal)).equals(bytes)) throw this.conflict(id, name);
    }
    for (const piece of pieces) {
      this.requests.head++;
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(id, piece.name) }), { abortSignal: signal });
      if (head.ContentLength !== piece.end - piece.start) {
        throw new RemoteError(
          'transient',
          `${this.label} holds ${piece.name} with ${head.ContentLength ?? 0} bytes after the push, not ${piece.end - piece.start}.`,
          'The archive was replaced or lost after it was written; the next attempt uploads it again.',
        );
      }
    }
  }

  async download(id: string, dir: string, opts: RemoteCallOptions = {}): Promise<SnapshotFiles> {
    const { signal } = opts;
    const report = byteReporter(opts.onBytes);
    let received = 0;
    const what = `Reading ${id} from`;
    throwIfCancelled(signal, this.label, what);
    let tmp: string | undefined;
    try {
      await this.checkRegion();
      const stored = await this.storedFiles(id, signal);
      if (!stored.size) throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
      const names = [...stored.keys()];
      const layout = downloadableLayout(this.label, id, names);
      fs.mkdirSync(dir, { recursive: true });
      const archivePath = path.join(dir, layout.archiveName);
      const manifestPath = path.join(dir, `${id}.manifest.json`);
      const checksumPath = path.join(dir, `${id}.sha256`);
      for (const [name, file] of [[`${id}.manifest.json`, manifestPath], [`${id}.sha256`, checksumPath]] as const) {
        const bytes = await this.getSmall(id, name, signal);
        fs.writeFileSync(file, bytes);
        syncFileData(file);
        report((received += bytes.length));
      }
      // The pieces streamed one after the other into one file, written under a temporary name.
      const pieces = layout.pieces;
      const fetchPieces = async function* (this: S3Remote): AsyncGenerator<Buffer> {
        for (const name of pieces) {
          this.requests.get++;
          const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(id, name) }), { abortSignal: signal });
          for await (const chunk of (out.Body ?? []) as AsyncIterable<Buffer>) {
            report((received += chunk.length));
            yield chunk;
          }
        }
      }.bind(this);
      tmp = `${archivePath}.downloading`;
      await pipeline(fetchPieces(), fs.createWriteStream(tmp), ...(signal ? [{ signal }] : []));
      syncFileData(tmp);
      fs.renameSync(tmp, archivePath);
      tmp = undefined;
      return { id, archivePath, manifestPath, checksumPath };
    } catch (err) {
      if (tmp) fs.rmSync(tmp, { force: true });
      // Writing into `dir` (this machine's disk) failing is not the remote's fault: passed on as it is.
      if (!signal?.aborted && isLocalWriteFailure(err)) throw err;
      // Listed, then gone before it was read: a delete raced us; the snapshot is not whole.
      if (isNoSuchKey(err)) throw new RemoteError('incomplete', `${this.label} lost a file of ${id} while it was read.`, 'Use another snapshot, or try again.');
      throw this.failure(err, what, signal);
    }
  }

  async manifest(id: string, opts: RemoteCallOptions = {}): Promise<Manifest> {
    const { signal } = opts;
    const what = `Reading the manifest of ${id} from`;
    throwIfCancelled(signal, this.label, what);
    let text: string;
    try {
      await this.checkRegion();
      try {
        text = (await this.getSmall(id, `${id}.manifest.json`, signal)).toString('utf8');
      } catch (err) {
        if (!isNoSuchKey(err)) throw err;
        // No manifest: a half-pushed snapshot or none at all (one key is enough to tell).
        const any = await this.listKeys(this.key(id, ''), signal, 1);
        if (any.size) throw new RemoteError('incomplete', `${this.label} holds ${id} without its manifest.`, 'Use another snapshot; the next backup run re-pushes it if it is still kept locally.');
        throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
      }
    } catch (err) {
      throw this.failure(err, what, signal);
    }
    return parseRemoteManifest(this.label, id, text);
  }

  async delete(id: string, opts: RemoteCallOptions = {}): Promise<void> {
    const { signal } = opts;
    const what = `Deleting ${id} from`;
    throwIfCancelled(signal, this.label, what);
    try {
      await this.checkRegion();
      const names = [...(await this.storedFiles(id, signal)).keys()];
      // The checksum object first: from then on list() no longer counts the snapshot as complete.
      const rank = (n: string) => (n.endsWith('.sha256') ? 0 : n.endsWith('.manifest.json') ? 1 : 2);
      for (const name of names.sort((a, b) => rank(a) - rank(b))) {
        throwIfCancelled(signal, this.label, what);
        this.requests.delete++;
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(id, name) }), { abortSignal: signal });
      }
    } catch (err) {
      throw this.failure(err, what, signal);
    }
  }
}

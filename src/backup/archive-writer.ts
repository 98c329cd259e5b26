import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Pack } from 'tar';
import { compressor, type CodecStream } from '../snapshot/codec.js';
import type { Codec } from '../snapshot/manifest.js';
import { syncDirectoryAsync, syncFileAsync } from '../core/durable-file.js';

/** Counts and hashes the bytes that pass, so the archive is never read a second time. */
class HashTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Streams files into `<tmpPath>` as tar + codec while they are added, so compression of one
 * database overlaps the copy of the next and memory stays flat whatever the size.
 * Nothing is visible under a final name until the caller renames tmpPath.
 */
export class ArchiveWriter {
  private readonly pack: Pack;
  private readonly codec: CodecStream;
  private readonly tap = new HashTap();
  private readonly written: Promise<void>;
  private failure: Error | null = null;
  /** tar bytes handed to the compressor so far (the files read into the archive, with their headers): progress */
  packed = 0;
  /** called as tar bytes go to the compressor (progress) */
  onPacked: (() => void) | undefined;

  constructor(
    readonly cwd: string,
    readonly tmpPath: string,
    codec: Codec,
    level?: number,
  ) {
    // portable: no uid/gid/user names; the archive reads the same on every machine.
    // maxReadSize: node-tar reads 16 MiB at a time by default; 1 MiB keeps memory flat.
    this.pack = new Pack({ cwd, portable: true, strict: true, maxReadSize: 1 << 20 });
    this.codec = compressor(codec, level);
    this.pack.on('error', (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
    this.pack.on('warn', (_code: string, message: string) => this.fail(new Error(`tar: ${message}`)));
    this.pack.on('data', (chunk: Buffer) => {
      this.packed += chunk.length;
      this.onPacked?.();
    });
    this.pack.pipe(this.codec.input);
    const out = fs.createWriteStream(tmpPath, { flags: 'wx' });
    this.written = Promise.all([pipeline(this.codec.output, this.tap, out), this.codec.done]).then(() => undefined);
    this.written.catch((err: Error) => this.fail(err));
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.codec.abort();
  }

  /** Queue a file (path relative to cwd); it is streamed in order. */
  add(relativePath: string): void {
    if (this.failure) throw this.failure;
    this.pack.add(relativePath);
  }

  /** End the archive, wait until every byte is on disk (fsync), and return its size and sha256. */
  async finish(): Promise<{ bytes: number; sha256: string }> {
    if (this.failure) throw this.failure;
    this.pack.end();
    await this.written;
    if (this.failure) throw this.failure;
    await syncFileAsync(this.tmpPath);
    return { bytes: this.tap.bytes, sha256: this.tap.hash.digest('hex') };
  }

  /** Stop and delete the temp file (on error or cancellation). */
  async abort(): Promise<void> {
    this.fail(new Error('aborted'));
    this.pack.destroy?.();
    await this.written.catch(() => undefined);
    await fs.promises.rm(this.tmpPath, { force: true });
  }
}

/** fsync a directory so a rename in it survives a power cut (best effort; durable-file.ts flushes). */
export function fsyncDir(dir: string): Promise<void> {
  return syncDirectoryAsync(dir);
}

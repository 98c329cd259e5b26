import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { decompressFile } from '../snapshot/codec.js';
import { WbError } from '../core/errors.js';
import type { Codec } from '../snapshot/manifest.js';
import { judgeEntry } from './entry-policy.js';

export interface ExtractOptions {
  /** archive-relative path -> size the manifest announces; every entry must be one of these */
  expected: ReadonlyMap<string, number>;
  /** only these are written; the others are read past */
  wanted?: ReadonlySet<string>;
  /** called as each file is complete on disk, so checks can start while the rest unpacks */
  onFile?: (relative: string, sha256: string | null) => void;
  /** called with the size of each chunk written into `into` (progress) */
  onBytes?: (bytes: number) => void;
  /**
   * entries written without computing their sha256 (onFile gets null for them): a chain's base
   * image, which the sha256 of the rebuilt image covers, so it is not hashed twice
   */
  unhashed?: ReadonlySet<string>;
}

/** One file being written: synchronous writes, because an async round-trip per chunk left the pipeline idle most of the time. */
interface OpenFile {
  fd: number;
  hash: Hash | null;
}

function writeAll(fd: number, chunk: Buffer): void {
  let off = 0;
  while (off < chunk.length) off += fs.writeSync(fd, chunk, off, chunk.length - off);
}

function writeError(err: NodeJS.ErrnoException, relative: string, into: string): WbError {
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    return new WbError(
      'disk_full',
      `The disk ran out of space while unpacking ${relative} into ${path.basename(into)}. Nothing was restored; the live databases are untouched.`,
      `Free some space on the disk of the data root ${path.dirname(into)} (old ${path.join(path.dirname(into), 'db.pre_restore_*')} folders can go once you no longer need --undo), then restore again.`,
    );
  }
  return new WbError('restore_refused', `Writing ${relative} into staging failed: ${err.message}. Nothing was restored.`, 'Check the data root is writable, then restore again.');
}

/**
 * Unpack `archive` into `into`. Every entry must be a file the manifest lists, no larger than the
 * manifest says; only `wanted` ones are written. The first refused entry aborts the whole
 * extraction with its reason; the caller discards `into`. Each written file's sha256 is computed on
 * the way in (so nothing is read twice) and handed to `onFile`.
 * @throws WbError `archive_invalid` (unsafe, damaged or incomplete archive), `disk_full`, `restore_refused` (a write failed)
 */
export async function extractArchive(archive: string, codec: Codec, into: string, opts: ExtractOptions): Promise<void> {
  const stage = decompressFile(codec, archive);
  const run = new Extraction(into, opts, () => stage.abort());
  const parser = new Parser({ strict: true });
  parser.on('entry', (entry: ReadEntry) => run.onEntry(entry));
  parser.on('warn', (_code: string, message: string) => run.refuse(`tar: ${message}`));
  parser.on('error', (err: Error) => run.refuse(`tar: ${err.message}`));
  try {
    await Promise.all([pipeline(stage.output, parser), stage.done]);
  } catch (err) {
    if (!run.refusal) run.refuse(`it could not be decompressed (${(err as Error).message})`);
  } finally {
    run.closeOpen();
  }
  run.finish();
}

/** One extraction's state: the entries seen, the file being written, and the first refusal. */
class Extraction {
  readonly expected: ReadonlyMap<string, number>;
  readonly wanted: ReadonlySet<string>;
  readonly expectedNames: Set<string>;
  readonly seen = new Set<string>();
  refusal: WbError | null = null;
  open: OpenFile | null = null;

  constructor(
    readonly into: string,
    readonly opts: ExtractOptions,
    /** stops the decompression: nothing more is read once the extraction is refused */
    readonly abort: () => void,
  ) {
    this.expected = opts.expected;
    this.wanted = opts.wanted ?? new Set(opts.expected.keys());
    this.expectedNames = new Set(opts.expected.keys());
  }

  closeOpen(): void {
    if (this.open) fs.closeSync(this.open.fd);
    this.open = null;
  }

  /** The first error wins; the file being written is closed and the decompression stopped. */
  stop(err: WbError): void {
    this.refusal ??= err;
    this.closeOpen();
    this.abort();
  }

  refuse(reason: string): void {
    this.stop(new WbError('archive_invalid', `The snapshot archive is unsafe or damaged: ${reason}. Nothing was restored.`, 'Use another snapshot.'));
  }

  /** Each tar entry: judged, then written when wanted, else read past. */
  onEntry(entry: ReadEntry): void {
    if (this.refusal) return void entry.resume();
    const relative = this.judge(entry);
    if (relative === null || !this.wanted.has(relative)) return void entry.resume();
    this.write(entry, relative);
  }

  /** The entry's path in the archive when it is acceptable: a listed file, once, of the announced size; else null (refused). */
  judge(entry: ReadEntry): string | null {
    const verdict = judgeEntry({ path: entry.path, type: entry.type, linkpath: entry.linkpath }, this.expectedNames);
    if (!verdict.ok) {
      this.refuse(verdict.reason);
      return null;
    }
    const { relative } = verdict;
    if (this.seen.has(relative)) {
      this.refuse(`entry "${relative}" appears twice`);
      return null;
    }
    this.seen.add(relative);
    // A hostile or damaged archive must not fill the disk: the manifest says how large each file is.
    const announced = this.expected.get(relative) ?? 0;
    if (entry.size !== announced) {
      this.refuse(`entry "${relative}" is ${entry.size} bytes, the manifest says ${announced}`);
      return null;
    }
    return relative;
  }

  /** Writes the entry to a new file under `into`, hashing it on the way; onFile once it is complete. */
  write(entry: ReadEntry, relative: string): void {
    const dest = path.join(this.into, ...relative.split('/'));
    let file: OpenFile;
    try {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      // 'wx': never follow or overwrite something already there.
      file = { fd: fs.openSync(dest, 'wx', 0o600), hash: this.opts.unhashed?.has(relative) ? null : createHash('sha256') };
    } catch (err) {
      this.stop(writeError(err as NodeJS.ErrnoException, relative, this.into));
      return void entry.resume();
    }
    this.open = file;
    entry.on('data', (chunk: Buffer) => {
      if (this.open !== file) return;
      try {
        file.hash?.update(chunk);
        writeAll(file.fd, chunk);
        this.opts.onBytes?.(chunk.length);
      } catch (err) {
        this.stop(writeError(err as NodeJS.ErrnoException, relative, this.into));
      }
    });
    entry.on('end', () => {
      if (this.open !== file) return;
      this.closeOpen();
      if (!this.refusal) this.opts.onFile?.(relative, file.hash ? file.hash.digest('hex') : null);
    });
  }

  /** @throws the refusal, or WbError `archive_invalid` naming the listed files the archive lacked */
  finish(): void {
    if (this.refusal) throw this.refusal;
    const missing = [...this.expectedNames].filter((f) => !this.seen.has(f));
    if (missing.length) {
      throw new WbError('archive_invalid', `The snapshot archive lacks files its manifest lists: ${missing.join(', ')}. Nothing was restored.`, 'Use another snapshot.');
    }
  }
}

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
  onFile?: (relative: string, sha256: string) => void;
}

/** One file being written: synchronous writes, because an async round-trip per chunk left the pipeline idle most of the time. */
interface OpenFile {
  fd: number;
  hash: Hash;
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
      'Free some space on the disk of the data root (old db.pre_restore_* folders can go once you no longer need --undo), then restore again.',
    );
  }
  return new WbError('restore_refused', `Writing ${relative} into staging failed: ${err.message}. Nothing was restored.`, 'Check the data root is writable, then restore again.');
}

/**
 * Unpack `archive` into `into`. Every entry must be a file the manifest lists, no larger than the
 * manifest says; only `wanted` ones are written. The first refused entry aborts the whole
 * extraction with its reason; the caller discards `into`. Each written file's sha256 is computed on
 * the way in (so nothing is read twice) and handed to `onFile`.
 */
export async function extractArchive(archive: string, codec: Codec, into: string, opts: ExtractOptions): Promise<void> {
  const { expected, onFile } = opts;
  const wanted = opts.wanted ?? new Set(expected.keys());
  const expectedNames = new Set(expected.keys());
  const seen = new Set<string>();
  let refusal: WbError | null = null;
  let open: OpenFile | null = null;
  const parser = new Parser({ strict: true });
  const stage = decompressFile(codec, archive);

  const closeOpen = () => {
    if (open) fs.closeSync(open.fd);
    open = null;
  };
  const stop = (err: WbError) => {
    refusal ??= err;
    closeOpen();
    stage.abort();
  };
  const refuse = (reason: string) => stop(new WbError('archive_invalid', `The snapshot archive is unsafe or damaged: ${reason}. Nothing was restored.`, 'Use another snapshot.'));

  parser.on('entry', (entry: ReadEntry) => {
    if (refusal) return entry.resume();
    const verdict = judgeEntry({ path: entry.path, type: entry.type, linkpath: entry.linkpath }, expectedNames);
    if (!verdict.ok) {
      refuse(verdict.reason);
      return entry.resume();
    }
    const { relative } = verdict;
    if (seen.has(relative)) {
      refuse(`entry "${relative}" appears twice`);
      return entry.resume();
    }
    seen.add(relative);
    // A hostile or damaged archive must not fill the disk: the manifest says how large each file is.
    const announced = expected.get(relative) ?? 0;
    if (entry.size !== announced) {
      refuse(`entry "${relative}" is ${entry.size} bytes, the manifest says ${announced}`);
      return entry.resume();
    }
    if (!wanted.has(relative)) return entry.resume();
    const dest = path.join(into, ...relative.split('/'));
    let file: OpenFile;
    try {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      // 'wx': never follow or overwrite something already there.
      file = { fd: fs.openSync(dest, 'wx', 0o600), hash: createHash('sha256') };
    } catch (err) {
      stop(writeError(err as NodeJS.ErrnoException, relative, into));
      return entry.resume();
    }
    open = file;
    entry.on('data', (chunk: Buffer) => {
      if (open !== file) return;
      try {
        file.hash.update(chunk);
        writeAll(file.fd, chunk);
      } catch (err) {
        stop(writeError(err as NodeJS.ErrnoException, relative, into));
      }
    });
    entry.on('end', () => {
      if (open !== file) return;
      closeOpen();
      if (!refusal) onFile?.(relative, file.hash.digest('hex'));
    });
  });
  parser.on('warn', (_code: string, message: string) => refuse(`tar: ${message}`));
  parser.on('error', (err: Error) => refuse(`tar: ${err.message}`));

  try {
    await Promise.all([pipeline(stage.output, parser), stage.done]);
  } catch (err) {
    if (!refusal) refuse(`it could not be decompressed (${(err as Error).message})`);
  } finally {
    closeOpen();
  }
  if (refusal) throw refusal;
  const missing = [...expectedNames].filter((f) => !seen.has(f));
  if (missing.length) {
    throw new WbError('archive_invalid', `The snapshot archive lacks files its manifest lists: ${missing.join(', ')}. Nothing was restored.`, 'Use another snapshot.');
  }
}

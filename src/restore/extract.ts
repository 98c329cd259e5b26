import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { Transform } from 'node:stream';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import { decompressor } from '../codec.js';
import { WbError } from '../errors.js';
import type { Codec } from '../manifest.js';
import { judgeEntry } from './entry-policy.js';

/**
 * Unpack `archive` into `into`. Every entry must be one of `expectedFiles` (archive-relative paths
 * from the manifest); only those in `wanted` are written. The first refused entry aborts the whole
 * extraction with its reason; the caller discards `into`.
 */
export async function extractArchive(
  archive: string,
  codec: Codec,
  into: string,
  expectedFiles: ReadonlySet<string>,
  wanted: ReadonlySet<string> = expectedFiles,
  /** called as each file is complete on disk, so checks can start while the rest unpacks */
  onFile?: (relative: string, sha256: string) => void,
): Promise<Map<string, string>> {
  // sha256 of every written file, computed on the way in so nothing is read twice.
  const written = new Map<string, string>();
  const seen = new Set<string>();
  let refusal: WbError | null = null;
  const writes: Promise<void>[] = [];
  const parser = new Parser({ strict: true });
  const stage = decompressor(codec);

  const refuse = (reason: string) => {
    refusal ??= new WbError('archive_invalid', `The snapshot archive is unsafe or damaged: ${reason}. Nothing was restored.`, 'Use another snapshot.');
    stage.abort();
  };

  parser.on('entry', (entry: ReadEntry) => {
    if (refusal) return entry.resume();
    const verdict = judgeEntry({ path: entry.path, type: entry.type, linkpath: entry.linkpath }, expectedFiles);
    if (!verdict.ok) {
      refuse(verdict.reason);
      return entry.resume();
    }
    if (seen.has(verdict.relative)) {
      refuse(`entry "${verdict.relative}" appears twice`);
      return entry.resume();
    }
    seen.add(verdict.relative);
    if (!wanted.has(verdict.relative)) return entry.resume();
    const dest = path.join(into, ...verdict.relative.split('/'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    // 'wx': never follow or overwrite something already there.
    const out = fs.createWriteStream(dest, { flags: 'wx', mode: 0o600 });
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    writes.push(
      pipeline(entry, tap, out).then(
        () => {
          const sha = hash.digest('hex');
          written.set(verdict.relative, sha);
          if (!refusal) onFile?.(verdict.relative, sha);
        },
        (err: Error) => refuse(`writing ${verdict.relative} failed: ${err.message}`),
      ),
    );
  });
  parser.on('warn', (_code: string, message: string) => refuse(`tar: ${message}`));
  parser.on('error', (err: Error) => refuse(`tar: ${err.message}`));

  try {
    await Promise.all([pipeline(fs.createReadStream(archive), stage.input), pipeline(stage.output, parser), stage.done]);
  } catch (err) {
    if (!refusal) refuse(`it could not be decompressed (${(err as Error).message})`);
  }
  await Promise.allSettled(writes);
  if (refusal) throw refusal;
  const missing = [...expectedFiles].filter((f) => !seen.has(f));
  if (missing.length) {
    throw new WbError('archive_invalid', `The snapshot archive lacks files its manifest lists: ${missing.join(', ')}. Nothing was restored.`, 'Use another snapshot.');
  }
  return written;
}

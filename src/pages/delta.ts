import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { syncDirectoryAsync, syncFileAsync } from '../core/durable-file.js';
import { WbError, describeError } from '../core/errors.js';
import { hashFile } from '../core/hash.js';
import { compressor, decompressFile } from '../snapshot/codec.js';
import type { Codec } from '../snapshot/manifest.js';
import { ByteReader } from './byte-reader.js';
import type { PageChunk } from './image.js';
import { PageIndexBuilder, type ImageHasher, type PageHashIndex } from './page-index.js';

/**
 * The page delta: the pages of a database image whose hash differs from its base's page-hash
 * index, enough to rebuild the image from the base image. The whole file is one compressed stream
 * (zstd or gzip, told apart by their magic bytes) of, big-endian:
 *
 *   header   "WBPGDLT1", u16 version (1), u32 page size, u32 page count of the rebuilt image,
 *            u32 page count of the base, 32 bytes sha256 of the base image,
 *            u8 n + n bytes base snapshot id, u8 m + m bytes database name (UTF-8)
 *   records  u32 page number (1..page count, strictly increasing) + page-size bytes, per page
 *   end      u32 0
 *   trailer  u32 number of records, 32 bytes sha256 of the rebuilt image, "WBPGEND1"
 *
 * Pages past the base's page count are always records; pages past the new page count are dropped
 * (the image is cut to page count x page size). See docs/formats.md.
 */
export const DELTA_MAGIC = Buffer.from('WBPGDLT1', 'latin1');
export const DELTA_END_MAGIC = Buffer.from('WBPGEND1', 'latin1');
export const DELTA_VERSION = 1;
const FIXED_HEADER_BYTES = 8 + 2 + 4 + 4 + 4 + 32;

/** Which image a delta is applied to. */
export interface DeltaBaseIdentity {
  snapshotId: string;
  db: string;
  /** lowercase hex sha256 of the base image */
  imageSha256: string;
  pageCount: number;
}

export interface DeltaHeader {
  version: number;
  pageSize: number;
  /** pages of the image the delta rebuilds */
  pageCount: number;
  base: DeltaBaseIdentity;
}

export interface WriteDeltaOptions {
  /** the delta file to create (written as `<out>.partial`, flushed, then renamed) */
  out: string;
  /** the base snapshot's identity and page-hash index */
  base: { snapshotId: string; db: string; index: PageHashIndex };
  /** the new image: its page size and page count, and its pages in order */
  pageSize: number;
  pageCount: number;
  chunks: Iterable<PageChunk> | AsyncIterable<PageChunk>;
  codec: Codec;
  level?: number;
  /** hashes the whole new image on another thread (its chunks are handed over once used); default: this thread */
  imageHasher?: ImageHasher;
}

export interface DeltaWritten {
  /** bytes of the delta file */
  bytes: number;
  /** pages stored in the delta */
  changedPages: number;
  pageCount: number;
  /** sha256 of the new image */
  imageSha256: string;
  /** the new image's page-hash index (same hash width as the base's) */
  index: PageHashIndex;
}

function encodeHeader(h: DeltaHeader): Buffer {
  const id = Buffer.from(h.base.snapshotId, 'utf8');
  const db = Buffer.from(h.base.db, 'utf8');
  if (id.length < 1 || id.length > 255 || db.length < 1 || db.length > 255) throw new WbError('invalid_input', 'A delta needs a base snapshot id and a database name of 1 to 255 bytes.');
  const buf = Buffer.alloc(FIXED_HEADER_BYTES + 2 + id.length + db.length);
  DELTA_MAGIC.copy(buf, 0);
  buf.writeUInt16BE(h.version, 8);
  buf.writeUInt32BE(h.pageSize, 10);
  buf.writeUInt32BE(h.pageCount, 14);
  buf.writeUInt32BE(h.base.pageCount, 18);
  Buffer.from(h.base.imageSha256, 'hex').copy(buf, 22);
  buf[54] = id.length;
  id.copy(buf, 55);
  buf[55 + id.length] = db.length;
  db.copy(buf, 56 + id.length);
  return buf;
}

async function decodeHeader(r: ByteReader): Promise<DeltaHeader> {
  const fixed = await r.read(FIXED_HEADER_BYTES);
  if (!fixed.subarray(0, 8).equals(DELTA_MAGIC)) throw new Error('wrong magic: not a page delta');
  const version = fixed.readUInt16BE(8);
  if (version !== DELTA_VERSION) throw new Error(`version ${version} is unknown to this wb-backup`);
  const pageSize = fixed.readUInt32BE(10);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`page size ${pageSize} is impossible`);
  const pageCount = fixed.readUInt32BE(14);
  const basePages = fixed.readUInt32BE(18);
  const baseSha = fixed.subarray(22, 54).toString('hex');
  const idLen = (await r.read(1))[0]!;
  const snapshotId = (await r.read(idLen)).toString('utf8');
  const dbLen = (await r.read(1))[0]!;
  const db = (await r.read(dbLen)).toString('utf8');
  return { version, pageSize, pageCount, base: { snapshotId, db, imageSha256: baseSha, pageCount: basePages } };
}

/**
 * Writes the delta of a new image against a base's page-hash index, streaming: memory is one
 * chunk of pages plus the two indexes. Returns what was written and the new image's index.
 * Refuses with WbError('needs_full') before creating anything when the page size differs from
 * the base's (a page-size change or VACUUM with a new page size needs a full snapshot).
 */
export async function writeDelta(opts: WriteDeltaOptions): Promise<DeltaWritten> {
  const baseIndex = opts.base.index;
  if (opts.pageSize !== baseIndex.pageSize) {
    throw new WbError('needs_full', `${opts.base.db} now has pages of ${opts.pageSize} bytes, its base ${opts.base.snapshotId} ${baseIndex.pageSize}: a delta cannot bridge a page-size change.`, 'Take a full snapshot of it.');
  }
  const header = encodeHeader({ version: DELTA_VERSION, pageSize: opts.pageSize, pageCount: opts.pageCount, base: { snapshotId: opts.base.snapshotId, db: opts.base.db, imageSha256: baseIndex.imageSha256, pageCount: baseIndex.pageCount } });
  const partial = `${opts.out}.partial`;
  const comp = compressor(opts.codec, opts.level);
  const sink = pipeline(comp.output, fs.createWriteStream(partial, { flags: 'w' }));
  sink.catch(() => undefined); // observed below; a failure must not surface as unhandled first
  const put = async (buf: Buffer) => {
    if (!comp.input.write(buf)) await Promise.race([once(comp.input, 'drain'), sink, comp.done]);
  };
  const hasher = opts.imageHasher;
  const builder = new PageIndexBuilder(opts.pageSize, baseIndex.hashWidth, !hasher);
  const w = baseIndex.hashWidth;
  let changed = 0;
  let seen = 0;
  try {
    await put(header);
    for await (const chunk of opts.chunks) {
      if (chunk.first !== seen + 1 || chunk.data.length !== chunk.count * opts.pageSize) throw new WbError('invalid_input', `Pages came out of order or cut (chunk at page ${chunk.first}, expected ${seen + 1}).`);
      const hashes = builder.add(chunk.data);
      const records: Buffer[] = [];
      for (let i = 0; i < chunk.count; i++) {
        const pgno = chunk.first + i;
        const same = pgno <= baseIndex.pageCount && hashes.compare(baseIndex.hashes, (pgno - 1) * w, pgno * w, i * w, (i + 1) * w) === 0;
        if (same) continue;
        const no = Buffer.allocUnsafe(4);
        no.writeUInt32BE(pgno, 0);
        records.push(no, chunk.data.subarray(i * opts.pageSize, (i + 1) * opts.pageSize));
        changed++;
      }
      if (records.length > 0) await put(Buffer.concat(records));
      // The records were copied by concat: the chunk can go to the hashing thread.
      if (hasher) await hasher.update(chunk.data);
      seen += chunk.count;
    }
    if (seen !== opts.pageCount) throw new WbError('invalid_input', `The image had ${seen} pages, ${opts.pageCount} were announced.`);
    const index = builder.finish(hasher ? await hasher.digest() : undefined);
    const tail = Buffer.alloc(4 + 4 + 32 + 8);
    tail.writeUInt32BE(0, 0);
    tail.writeUInt32BE(changed, 4);
    Buffer.from(index.imageSha256, 'hex').copy(tail, 8);
    DELTA_END_MAGIC.copy(tail, 40);
    await put(tail);
    comp.input.end();
    await Promise.all([comp.done, sink]);
    await syncFileAsync(partial);
    fs.renameSync(partial, opts.out);
    await syncDirectoryAsync(path.dirname(opts.out));
    return { bytes: fs.statSync(opts.out).size, changedPages: changed, pageCount: seen, imageSha256: index.imageSha256, index };
  } catch (err) {
    comp.abort();
    await sink.catch(() => undefined);
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

/** zstd or gzip, from the file's first bytes; null for neither. */
export function deltaCodec(file: string): Codec | null {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const n = fs.readSync(fd, b, 0, 4, 0);
    if (n === 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

function openDelta(file: string): { reader: ByteReader; stop: () => Promise<void>; done: Promise<void> } {
  let codec: Codec | null;
  try {
    codec = deltaCodec(file);
  } catch (err) {
    throw new WbError('not_found', `The delta ${path.basename(file)} cannot be read: ${describeError(err)}`);
  }
  if (!codec) throw new WbError('archive_invalid', `${path.basename(file)} is not a page delta (neither zstd nor gzip).`);
  const stage = decompressFile(codec, file);
  const done = stage.done;
  done.catch(() => undefined);
  const reader = new ByteReader(stage.output);
  return { reader, done, stop: async () => { stage.abort(); await reader.close().catch(() => undefined); } };
}

/** The header of a delta file (reads only its first bytes). Throws WbError('archive_invalid'). */
export async function readDeltaHeader(file: string): Promise<DeltaHeader> {
  const d = openDelta(file);
  try {
    return await decodeHeader(d.reader);
  } catch (err) {
    throw err instanceof WbError ? err : new WbError('archive_invalid', `${path.basename(file)} is not a usable page delta: ${describeError(err)}.`);
  } finally {
    await d.stop();
  }
}

export interface ApplyDeltaOptions {
  /** the base image file */
  base: string;
  delta: string;
  /** the rebuilt image to create; must not exist (written as `<out>.partial`, verified, renamed) */
  out: string;
  /** when given, the delta must name this base snapshot and database */
  expectBase?: { snapshotId?: string; db?: string };
}

export interface DeltaApplied {
  pageSize: number;
  pageCount: number;
  bytes: number;
  changedPages: number;
  imageSha256: string;
}

const OUT_CHUNK = 1 << 20;

/**
 * Rebuilds an image from its base image and a delta, streaming (memory: about 1 MiB plus the
 * decompressor's buffers). Before anything is written, the base must be the one the delta names
 * (snapshot and database when `expectBase` says so, page count and sha256 always): otherwise
 * WbError('restore_refused'). The result is verified against the sha256 the delta records and
 * only then renamed to `out`; on a mismatch or a damaged delta nothing is left behind
 * (WbError('archive_invalid')).
 */
export async function applyDelta(opts: ApplyDeltaOptions): Promise<DeltaApplied> {
  const d = openDelta(opts.delta);
  const partial = `${opts.out}.partial`;
  let outFd: number | null = null;
  let baseFd: number | null = null;
  const damaged = (why: string) => new WbError('archive_invalid', `The delta ${path.basename(opts.delta)} is damaged: ${why}.`, 'Restore from another snapshot; the next snapshot will be a full one.');
  try {
    let header: DeltaHeader;
    try {
      header = await decodeHeader(d.reader);
    } catch (err) {
      throw damaged(describeError(err));
    }
    const refuse = (why: string) => new WbError('restore_refused', `The delta ${path.basename(opts.delta)} cannot be applied to ${path.basename(opts.base)}: ${why}.`, `It needs ${header.base.db} of snapshot ${header.base.snapshotId}; nothing was written.`);
    if (opts.expectBase?.snapshotId !== undefined && opts.expectBase.snapshotId !== header.base.snapshotId) throw refuse(`its base is snapshot ${header.base.snapshotId}, not ${opts.expectBase.snapshotId}`);
    if (opts.expectBase?.db !== undefined && opts.expectBase.db !== header.base.db) throw refuse(`its base is database ${header.base.db}, not ${opts.expectBase.db}`);
    let baseBytes: number;
    try {
      baseBytes = fs.statSync(opts.base).size;
    } catch {
      throw refuse('the base image is missing');
    }
    if (baseBytes !== header.base.pageCount * header.pageSize) throw refuse(`the base image has ${baseBytes} bytes, the delta's base ${header.base.pageCount} pages of ${header.pageSize}`);
    const baseDigest = await hashFile(opts.base);
    if (baseDigest.sha256 !== header.base.imageSha256) throw refuse('the base image is not the one the delta was made from (sha256 differs)');
    if (fs.existsSync(opts.out)) throw new WbError('invalid_input', `${path.basename(opts.out)} already exists.`, 'Choose a new output file.');

    baseFd = fs.openSync(opts.base, 'r');
    outFd = fs.openSync(partial, 'w');
    const { pageSize, pageCount } = header;
    const image = createHash('sha256');
    const per = Math.max(1, Math.floor(OUT_CHUNK / pageSize));
    let next = await nextRecord(d.reader, 0, pageCount, damaged);
    let records = 0;
    let written = 0;
    for (let first = 1; first <= pageCount; first += per) {
      const count = Math.min(per, pageCount - first + 1);
      const buf = Buffer.alloc(count * pageSize);
      const fromBase = Math.max(0, Math.min(count, header.base.pageCount - first + 1));
      if (fromBase > 0) fs.readSync(baseFd, buf, 0, fromBase * pageSize, (first - 1) * pageSize);
      for (let i = 0; i < count; i++) {
        const pgno = first + i;
        if (next === pgno) {
          (await readOr(d.reader, pageSize, damaged)).copy(buf, i * pageSize);
          records++;
          next = await nextRecord(d.reader, pgno, pageCount, damaged);
        } else if (pgno > header.base.pageCount) {
          throw damaged(`page ${pgno} is past the base's ${header.base.pageCount} pages and not in the delta`);
        }
      }
      image.update(buf);
      fs.writeSync(outFd, buf, 0, buf.length, written);
      written += buf.length;
    }
    if (next !== 0) throw damaged(`page ${next} is past the image's ${pageCount} pages`);
    const trailer = await readOr(d.reader, 44, damaged);
    if (!trailer.subarray(36, 44).equals(DELTA_END_MAGIC)) throw damaged('its end marker is missing');
    if (trailer.readUInt32BE(0) !== records) throw damaged(`it says ${trailer.readUInt32BE(0)} pages, it holds ${records}`);
    let atEnd: boolean;
    try {
      atEnd = await d.reader.atEnd();
    } catch (err) {
      throw damaged(describeError(err));
    }
    if (!atEnd) throw damaged('bytes follow its end marker');
    try {
      await d.done;
    } catch (err) {
      throw damaged(describeError(err));
    }
    const sha = image.digest('hex');
    const recorded = trailer.subarray(4, 36).toString('hex');
    if (sha !== recorded) throw damaged(`the rebuilt image's sha256 ${sha.slice(0, 12)}… is not the recorded ${recorded.slice(0, 12)}…`);
    fs.closeSync(outFd);
    outFd = null;
    await syncFileAsync(partial);
    fs.renameSync(partial, opts.out);
    await syncDirectoryAsync(path.dirname(opts.out));
    return { pageSize, pageCount, bytes: written, changedPages: records, imageSha256: sha };
  } catch (err) {
    if (outFd !== null) fs.closeSync(outFd);
    outFd = null;
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    if (outFd !== null) fs.closeSync(outFd);
    if (baseFd !== null) fs.closeSync(baseFd);
    await d.stop();
  }
}

/** `n` bytes of the delta's stream; a short or corrupt stream is a damaged delta. */
async function readOr(r: ByteReader, n: number, damaged: (why: string) => WbError): Promise<Buffer> {
  try {
    return await r.read(n);
  } catch (err) {
    throw damaged(describeError(err));
  }
}

/** The next record's page number (0 at the end marker); each must be above `after` and within the image. */
async function nextRecord(r: ByteReader, after: number, pageCount: number, damaged: (why: string) => WbError): Promise<number> {
  const b = await readOr(r, 4, damaged);
  const pgno = b.readUInt32BE(0);
  if (pgno !== 0 && pgno <= after) throw damaged(`page ${pgno} comes after page ${after}`);
  if (pgno > pageCount) throw damaged(`page ${pgno} is past the image's ${pageCount} pages`);
  return pgno;
}

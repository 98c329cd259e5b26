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
import { hashedChunks, isPageHasher, PageIndexBuilder, type ImageHasher, type PageHashIndex } from './page-index.js';

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
  /**
   * hashes the whole new image on another thread (its chunks are handed over once used); default:
   * this thread. One that can (core/sha256-thread.ts) also hashes a share of the pages
   * (`threadShare`, default 0.4) and hands the chunks back for reuse.
   */
  imageHasher?: ImageHasher;
  threadShare?: number;
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
  // Each chunk with its pages' hashes: hashed here, or shared with the hashing thread.
  const shared = isPageHasher(hasher) ? hasher : null;
  const hashedHere = async function* (): AsyncGenerator<{ chunk: PageChunk; hashes: Buffer }> {
    for await (const chunk of opts.chunks) {
      if (chunk.data.length !== chunk.count * opts.pageSize) throw new WbError('invalid_input', `Pages came out of order or cut (chunk at page ${chunk.first}, expected ${seen + 1}).`);
      yield { chunk, hashes: builder.add(chunk.data) };
    }
  };
  const stream = shared ? hashedChunks(opts.chunks, shared, opts.pageSize, w, 1 - (opts.threadShare ?? 0.4)) : hashedHere();
  try {
    await put(header);
    for await (const { chunk, hashes } of stream) {
      if (chunk.first !== seen + 1 || chunk.data.length !== chunk.count * opts.pageSize) throw new WbError('invalid_input', `Pages came out of order or cut (chunk at page ${chunk.first}, expected ${seen + 1}).`);
      if (shared) builder.addHashes(hashes, chunk.count);
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
      // The records were copied by concat: the chunk can go to the hashing thread (or back to its pool).
      if (shared) shared.recycle(chunk.data);
      else if (hasher) await hasher.update(chunk.data);
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

/** The base a delta must name to be applied in place: from the manifest's chain link. */
export interface InPlaceBase {
  /** the snapshot holding the base image */
  snapshotId: string;
  db: string;
  /** lowercase hex sha256 of the image now in the file (the manifest's, not re-hashed here) */
  baseSha256: string;
  /** the image's page count; when omitted, the file's size over the delta's page size */
  basePageCount?: number;
}

export interface DeltaAppliedInPlace {
  pageSize: number;
  /** pages of the image after the delta */
  pageCount: number;
  changedPages: number;
  /** the sha256 the delta's trailer records for the image it rebuilds (the caller compares it) */
  imageSha256: string;
}

/**
 * Applies a delta to an image file in place (a chain of one: see applyDeltaChainInPlace).
 * @throws WbError `restore_refused` (another base, before anything is written), `archive_invalid` (damaged)
 */
export async function applyDeltaInPlace(imageFile: string, deltaFile: string, expect: InPlaceBase): Promise<DeltaAppliedInPlace> {
  const applied = await applyDeltaChainInPlace(imageFile, [{ file: deltaFile, base: expect }]);
  return applied.steps[0]!;
}

/** One delta of a chain applied in place, and the base it must name. */
export interface ChainDeltaStep {
  file: string;
  base: InPlaceBase;
  /** named in messages beside the file name (e.g. the snapshot holding the delta) */
  label?: string;
}

export interface ChainAppliedInPlace {
  pageSize: number;
  /** pages of the final image */
  pageCount: number;
  /** pages written into the file (each page once, from the newest delta holding it) */
  pagesWritten: number;
  /** each delta's page count, pages and trailer sha256, in chain order (the caller compares them with the manifests) */
  steps: DeltaAppliedInPlace[];
}

/** One delta being read during the merge. */
interface ChainReader {
  step: ChainDeltaStep;
  d: ReturnType<typeof openDelta>;
  header: DeltaHeader;
  damaged: (why: string) => WbError;
  next: number;
  records: number;
  grown: number;
}

/**
 * Applies a chain of deltas (oldest first) to an image file in place, in one pass: the deltas'
 * records (each sorted by page number) are merged, and each page is written once, from the newest
 * delta holding it; then the file is cut to the last delta's page count. This is the same image as
 * applying them one by one: a page an older delta wrote and a newer one cut off is either cut from
 * the result or, if a still newer delta grows the image past it again, in that delta (pages past a
 * base's page count are always records). Cost: the union of the changed pages, not the image, and
 * nothing is re-hashed. Before anything is written every header must name its expected base
 * (snapshot, database, base sha256; page count: the file's size over the page size for the first,
 * the previous delta's page count for the others), else WbError('restore_refused'). A damaged
 * delta is WbError('archive_invalid'), possibly after some pages were written: either way the
 * caller discards the file. The trailer sha256s are returned unverified: hash the image once.
 * `afterWrite` runs after each batch of pages written (a test seam for crashes half-way).
 */
export async function applyDeltaChainInPlace(imageFile: string, chain: readonly ChainDeltaStep[], afterWrite?: () => void): Promise<ChainAppliedInPlace> {
  const readers: ChainReader[] = [];
  let fd: number | null = null;
  try {
    for (const step of chain) {
      const name = `${path.basename(step.file)}${step.label ? ` of ${step.label}` : ''}`;
      const damaged = (why: string) => new WbError('archive_invalid', `The delta ${name} is damaged: ${why}.`, 'Restore from another snapshot; the next snapshot will be a full one.');
      const d = openDelta(step.file);
      let header: DeltaHeader;
      try {
        header = await decodeHeader(d.reader);
      } catch (err) {
        await d.stop();
        throw damaged(describeError(err));
      }
      readers.push({ step, d, header, damaged, next: 0, records: 0, grown: 0 });
    }
    if (!readers.length) throw new WbError('invalid_input', 'A chain of deltas needs at least one delta.');
    const pageSize = readers[0]!.header.pageSize;
    readers.forEach((r, i) => {
      const { base } = r.header;
      const expect = r.step.base;
      const refuse = (why: string) =>
        new WbError('restore_refused', `The delta ${path.basename(r.step.file)}${r.step.label ? ` of ${r.step.label}` : ''} cannot be applied to ${expect.db} of snapshot ${expect.snapshotId}: ${why}. Nothing was changed.`, `It needs ${base.db} of snapshot ${base.snapshotId}; restore a snapshot whose chain is whole.`);
      if (base.snapshotId !== expect.snapshotId) throw refuse(`its base is snapshot ${base.snapshotId}`);
      if (base.db !== expect.db) throw refuse(`its base is database ${base.db}`);
      if (base.imageSha256 !== expect.baseSha256) throw refuse('it was made from another image of that database (base sha256 differs)');
      if (r.header.pageSize !== pageSize) throw refuse(`its pages are of ${r.header.pageSize} bytes, the chain's of ${pageSize}`);
      let basePages: number;
      if (i === 0) {
        let size: number;
        try {
          size = fs.statSync(imageFile).size;
        } catch {
          throw refuse('the base image is missing');
        }
        if (size % pageSize !== 0) throw refuse(`the base image's ${size} bytes are not whole pages of ${pageSize}`);
        basePages = size / pageSize;
        if (expect.basePageCount !== undefined && expect.basePageCount !== basePages) throw refuse(`the base image has ${basePages} pages, the chain says ${expect.basePageCount}`);
        if (base.pageCount !== basePages) throw refuse(`the base image has ${basePages} pages, the delta's base ${base.pageCount}`);
      } else {
        basePages = readers[i - 1]!.header.pageCount;
        if (expect.basePageCount !== undefined && expect.basePageCount !== basePages) throw refuse(`its base has ${basePages} pages, the chain says ${expect.basePageCount}`);
        if (base.pageCount !== basePages) throw refuse(`its base has ${basePages} pages, the delta's base ${base.pageCount}`);
      }
    });

    fd = fs.openSync(imageFile, 'r+');
    let run: Buffer[] = [];
    let runFirst = 0;
    let written = 0;
    const flush = () => {
      if (!run.length) return;
      const buf = run.length === 1 ? run[0]! : Buffer.concat(run);
      let off = 0;
      while (off < buf.length) off += fs.writeSync(fd!, buf, off, buf.length - off, (runFirst - 1) * pageSize + off);
      written += run.length;
      run = [];
      afterWrite?.();
    };
    const MAX_RUN = Math.max(1, Math.floor(OUT_CHUNK / pageSize));
    for (const r of readers) r.next = await nextRecord(r.d.reader, 0, r.header.pageCount, r.damaged);
    for (;;) {
      // The lowest page any delta holds next; the newest delta holding it wins.
      let pgno = 0;
      for (const r of readers) if (r.next !== 0 && (pgno === 0 || r.next < pgno)) pgno = r.next;
      if (pgno === 0) break;
      let page: Buffer | null = null;
      for (let i = readers.length - 1; i >= 0; i--) {
        const r = readers[i]!;
        if (r.next !== pgno) continue;
        const bytes = await readOr(r.d.reader, pageSize, r.damaged);
        page ??= Buffer.from(bytes);
        r.records++;
        if (pgno > r.header.base.pageCount) r.grown++;
        r.next = await nextRecord(r.d.reader, pgno, r.header.pageCount, r.damaged);
      }
      // Contiguous pages go out in one write: a grown image is mostly consecutive records.
      if (run.length && (pgno !== runFirst + run.length || run.length >= MAX_RUN)) flush();
      if (!run.length) runFirst = pgno;
      run.push(page!);
    }
    flush();
    const steps: DeltaAppliedInPlace[] = [];
    for (const r of readers) {
      const { pageCount, base } = r.header;
      if (pageCount > base.pageCount && r.grown !== pageCount - base.pageCount) throw r.damaged(`the image grows from ${base.pageCount} to ${pageCount} pages but only ${r.grown} new pages are in the delta`);
      const trailer = await readOr(r.d.reader, 44, r.damaged);
      if (!trailer.subarray(36, 44).equals(DELTA_END_MAGIC)) throw r.damaged('its end marker is missing');
      if (trailer.readUInt32BE(0) !== r.records) throw r.damaged(`it says ${trailer.readUInt32BE(0)} pages, it holds ${r.records}`);
      let atEnd: boolean;
      try {
        atEnd = await r.d.reader.atEnd();
      } catch (err) {
        throw r.damaged(describeError(err));
      }
      if (!atEnd) throw r.damaged('bytes follow its end marker');
      try {
        await r.d.done;
      } catch (err) {
        throw r.damaged(describeError(err));
      }
      steps.push({ pageSize, pageCount, changedPages: r.records, imageSha256: trailer.subarray(4, 36).toString('hex') });
    }
    const pageCount = readers.at(-1)!.header.pageCount;
    if (fs.fstatSync(fd).size !== pageCount * pageSize) fs.ftruncateSync(fd, pageCount * pageSize);
    return { pageSize, pageCount, pagesWritten: written, steps };
  } finally {
    if (fd !== null) fs.closeSync(fd);
    for (const r of readers) await r.d.stop();
  }
}

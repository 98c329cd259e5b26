import crypto, { createHash } from 'node:crypto';
import { WbError } from '../core/errors.js';
import type { PageChunk } from './image.js';

/**
 * The page-hash index of a database image: a truncated sha256 of every page, so the next snapshot
 * finds the pages that changed without reading the old image. Binary, big-endian:
 *
 *   0  8  magic "WBPGIDX1"
 *   8  2  version (1)
 *  10  2  hash width in bytes (4..32; 8 by default)
 *  12  4  page size in bytes
 *  16  4  page count
 *  20 32  sha256 of the whole image (pageCount x pageSize bytes)
 *  52  .  pageCount x width bytes: the first `width` bytes of sha256(page i), i = 1..pageCount
 *
 * The truncated hashes only find changes; the image sha256 is the integrity guarantee.
 */
export const PAGE_INDEX_MAGIC = Buffer.from('WBPGIDX1', 'latin1');
export const PAGE_INDEX_VERSION = 1;
export const PAGE_INDEX_HEADER_BYTES = 52;
/** 8 bytes: a changed page goes unnoticed with probability 2^-64 (see docs/formats.md). */
export const DEFAULT_HASH_WIDTH = 8;

export interface PageHashIndex {
  hashWidth: number;
  pageSize: number;
  pageCount: number;
  /** lowercase hex sha256 of the whole image */
  imageSha256: string;
  /** pageCount x hashWidth bytes */
  hashes: Buffer;
}

/** The truncated hash of page `pgno` (1-based) of `index`. */
export function pageHashAt(index: PageHashIndex, pgno: number): Buffer {
  const at = (pgno - 1) * index.hashWidth;
  return index.hashes.subarray(at, at + index.hashWidth);
}

/** `width` bytes of sha256(page). */
export function hashPage(page: Buffer, width: number): Buffer {
  return sha256Once(page).subarray(0, width);
}

// crypto.hash (Node >= 20.12) hashes in one call, about twice as fast as createHash for a 4 KiB
// page: per-page hashing is most of what a delta snapshot costs. Older Node 20 falls back.
const oneShot = (crypto as { hash?: (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer }).hash;
const sha256Once: (data: Buffer) => Buffer = oneShot ? (data) => oneShot('sha256', data, 'buffer') : (data) => createHash('sha256').update(data).digest();

/**
 * Builds an index while the pages stream past: `add` each chunk in page order, then `finish`.
 * Memory: the index itself (pageCount x width bytes). Also computes the image's sha256.
 */
export class PageIndexBuilder {
  private readonly image = createHash('sha256');
  private readonly parts: Buffer[] = [];
  private pages = 0;

  /**
   * @param hashImage false when the caller hashes the whole image itself (on another thread:
   *   core/sha256-thread.ts) and passes the digest to `finish`
   */
  constructor(readonly pageSize: number, readonly hashWidth = DEFAULT_HASH_WIDTH, private readonly hashImage = true) {
    checkWidth(hashWidth);
  }

  /** Adds whole pages (data.length a multiple of pageSize); returns the hashes just computed. */
  add(data: Buffer): Buffer {
    if (data.length % this.pageSize !== 0) throw new WbError('invalid_input', `A chunk of ${data.length} bytes is not whole pages of ${this.pageSize}.`);
    if (this.hashImage) this.image.update(data);
    const out = hashPages(data, this.pageSize, this.hashWidth);
    this.parts.push(out);
    this.pages += data.length / this.pageSize;
    return out;
  }

  /** Adds the hashes of the next `pages` pages, computed elsewhere (hashedChunks); only when the image is hashed elsewhere too. */
  addHashes(hashes: Buffer, pages: number): void {
    if (this.hashImage) throw new Error('PageIndexBuilder: addHashes leaves the image sha256 to the caller (hashImage false)');
    if (hashes.length !== pages * this.hashWidth) throw new WbError('invalid_input', `${hashes.length} bytes of hashes for ${pages} pages of ${this.hashWidth}.`);
    this.parts.push(hashes);
    this.pages += pages;
  }

  /** The index; `imageSha256` is required when the builder does not hash the image itself. */
  finish(imageSha256?: string): PageHashIndex {
    if (!this.hashImage && !imageSha256) throw new Error('PageIndexBuilder: the image sha256 is hashed elsewhere and was not given');
    return { hashWidth: this.hashWidth, pageSize: this.pageSize, pageCount: this.pages, imageSha256: this.hashImage ? this.image.digest('hex') : imageSha256!, hashes: Buffer.concat(this.parts) };
  }
}

/** `width` bytes of sha256 of each `pageSize` slice of `data`, back to back. */
export function hashPages(data: Buffer, pageSize: number, width: number): Buffer {
  const n = Math.floor(data.length / pageSize);
  const out = Buffer.allocUnsafe(n * width);
  for (let i = 0; i < n; i++) sha256Once(data.subarray(i * pageSize, (i + 1) * pageSize)).copy(out, i * width, 0, width);
  return out;
}

/**
 * Hashes a whole image elsewhere (core/sha256-thread.ts): `update` takes ownership of each buffer.
 * With `hashed`, `spare` and `recycle` it also hashes a share of each chunk's pages and hands the
 * buffers back for reuse (hashedChunks).
 */
export interface ImageHasher {
  update(data: Buffer): Promise<void>;
  digest(): Promise<string>;
  hashed?(data: Buffer, slices: { size: number; width: number; from: number }): Promise<{ data: Buffer; hashes: Buffer }>;
  spare?(bytes: number): Buffer;
  recycle?(data: Buffer): void;
}

/** A hasher that can share the per-page hashing and reuse buffers. */
export type PageHasher = Required<ImageHasher>;

export function isPageHasher(h: ImageHasher | undefined): h is PageHasher {
  return !!h && typeof h.hashed === 'function' && typeof h.spare === 'function' && typeof h.recycle === 'function';
}

/**
 * Each chunk with the hashes of its pages, in order, the per-page hashing shared between this
 * thread and the hashing thread: this one hashes the first `share` of each chunk's pages, the
 * hashing thread the rest (while it also feeds the chunk to the image's sha256), one chunk
 * behind, so both cores hash while this one reads. The consumer owns each yielded `data` and
 * gives it to `hasher.recycle` when done. Memory: about three chunks.
 */
export async function* hashedChunks(chunks: Iterable<PageChunk> | AsyncIterable<PageChunk>, hasher: PageHasher, pageSize: number, width: number, share: number): AsyncGenerator<{ chunk: PageChunk; hashes: Buffer }> {
  const queue: Array<Promise<{ chunk: PageChunk; hashes: Buffer }>> = [];
  try {
    for await (const chunk of chunks) {
      const mine = Math.min(chunk.count, Math.max(0, Math.round(chunk.count * share)));
      const local = hashPages(chunk.data.subarray(0, mine * pageSize), pageSize, width);
      const { first, count } = chunk;
      const done = hasher.hashed(chunk.data, { size: pageSize, width, from: mine }).then(({ data, hashes }) => ({ chunk: { first, count, data }, hashes: local.length ? Buffer.concat([local, hashes]) : hashes }));
      done.catch(() => undefined); // awaited below, in order
      queue.push(done);
      if (queue.length >= 2) yield await queue.shift()!;
    }
    while (queue.length) yield await queue.shift()!;
  } finally {
    // Stopped early: let what is in flight finish, so no rejection goes unobserved.
    await Promise.allSettled(queue);
  }
}

function checkWidth(width: number): void {
  if (!Number.isInteger(width) || width < 4 || width > 32) throw new WbError('invalid_input', `A page hash width of ${width} bytes is not supported.`, 'Use 4 to 32 bytes.');
}

/** The index as its binary file. */
export function encodePageIndex(index: PageHashIndex): Buffer {
  checkWidth(index.hashWidth);
  if (index.hashes.length !== index.pageCount * index.hashWidth) throw new WbError('invalid_input', `The index holds ${index.hashes.length} bytes of hashes for ${index.pageCount} pages of ${index.hashWidth}.`);
  const head = Buffer.alloc(PAGE_INDEX_HEADER_BYTES);
  PAGE_INDEX_MAGIC.copy(head, 0);
  head.writeUInt16BE(PAGE_INDEX_VERSION, 8);
  head.writeUInt16BE(index.hashWidth, 10);
  head.writeUInt32BE(index.pageSize, 12);
  head.writeUInt32BE(index.pageCount, 16);
  Buffer.from(index.imageSha256, 'hex').copy(head, 20);
  return Buffer.concat([head, index.hashes]);
}

/**
 * Reads an index file's bytes. Throws WbError('archive_invalid') on a wrong magic, an unknown
 * version, an impossible width or page size, or a length that does not match the page count.
 */
export function decodePageIndex(buf: Buffer): PageHashIndex {
  const bad = (why: string) => new WbError('archive_invalid', `Not a usable page-hash index: ${why}.`, 'The next snapshot of this database must be a full one.');
  if (buf.length < PAGE_INDEX_HEADER_BYTES || !buf.subarray(0, 8).equals(PAGE_INDEX_MAGIC)) throw bad('wrong magic');
  const version = buf.readUInt16BE(8);
  if (version !== PAGE_INDEX_VERSION) throw bad(`version ${version} is unknown`);
  const hashWidth = buf.readUInt16BE(10);
  if (hashWidth < 4 || hashWidth > 32) throw bad(`hash width ${hashWidth}`);
  const pageSize = buf.readUInt32BE(12);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw bad(`page size ${pageSize}`);
  const pageCount = buf.readUInt32BE(16);
  if (buf.length !== PAGE_INDEX_HEADER_BYTES + pageCount * hashWidth) throw bad(`${buf.length} bytes for ${pageCount} pages of ${hashWidth}-byte hashes`);
  return { hashWidth, pageSize, pageCount, imageSha256: buf.subarray(20, 52).toString('hex'), hashes: Buffer.from(buf.subarray(PAGE_INDEX_HEADER_BYTES)) };
}

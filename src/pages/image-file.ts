import fs from 'node:fs';
import path from 'node:path';
import { syncDirectoryAsync, syncFileAsync } from '../core/durable-file.js';
import { WbError } from '../core/errors.js';
import { openPageImage, type OpenPageImageOptions, type PageChunk, type PageImageInfo } from './image.js';
import { DEFAULT_HASH_WIDTH, PageIndexBuilder, type PageHashIndex } from './page-index.js';

/**
 * The pages of an image file (a rebuilt or copied database image) in order, about 1 MiB at a
 * time. Throws WbError('archive_invalid') when the file is not whole pages of `pageSize`.
 */
export function* imageFileChunks(file: string, pageSize: number, chunkPages?: number): Generator<PageChunk> {
  const bytes = fs.statSync(file).size;
  if (bytes % pageSize !== 0) throw new WbError('archive_invalid', `${path.basename(file)} is ${bytes} bytes, not whole pages of ${pageSize}.`);
  const pageCount = bytes / pageSize;
  const per = Math.max(1, chunkPages ?? Math.floor((1 << 20) / pageSize));
  const fd = fs.openSync(file, 'r');
  try {
    for (let first = 1; first <= pageCount; first += per) {
      const count = Math.min(per, pageCount - first + 1);
      const data = Buffer.alloc(count * pageSize);
      if (fs.readSync(fd, data, 0, data.length, (first - 1) * pageSize) !== data.length) throw new WbError('archive_invalid', `${path.basename(file)} shrank while it was read.`);
      yield { first, count, data };
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The page size a database image declares in its header (bytes 16-17; 1 means 65536). */
export function imagePageSize(file: string): number {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(2);
    if (fs.readSync(fd, b, 0, 2, 16) !== 2) throw new WbError('archive_invalid', `${path.basename(file)} is too short to be a database image.`);
    const v = b.readUInt16BE(0);
    return v === 1 ? 65536 : v;
  } finally {
    fs.closeSync(fd);
  }
}

export interface ImageCopied extends PageImageInfo {
  bytes: number;
  index: PageHashIndex;
}

/**
 * Copies a consistent page image of the live database `file` to `out` (written as
 * `<out>.partial`, flushed, renamed) and returns its page-hash index (with the image's sha256).
 * Memory: one chunk plus the index. Errors as openPageImage, plus fs errors as they are.
 */
export async function copyPageImage(file: string, out: string, opts: OpenPageImageOptions & { hashWidth?: number } = {}): Promise<ImageCopied> {
  const image = openPageImage(file, opts);
  const partial = `${out}.partial`;
  let fd: number | null = null;
  try {
    const builder = new PageIndexBuilder(image.pageSize, opts.hashWidth ?? DEFAULT_HASH_WIDTH);
    fd = fs.openSync(partial, 'w');
    let at = 0;
    for (const chunk of image.chunks()) {
      builder.add(chunk.data);
      fs.writeSync(fd, chunk.data, 0, chunk.data.length, at);
      at += chunk.data.length;
    }
    fs.closeSync(fd);
    fd = null;
    const info: PageImageInfo = { pageSize: image.pageSize, pageCount: image.pageCount, journalMode: image.journalMode, walPages: image.walPages, writersHeldMs: image.writersHeldMs };
    image.close();
    await syncFileAsync(partial);
    fs.renameSync(partial, out);
    await syncDirectoryAsync(path.dirname(out));
    return { ...info, bytes: at, index: builder.finish() };
  } catch (err) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    image.close();
  }
}

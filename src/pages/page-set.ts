import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../core/durable-file.js';
import { WbError } from '../core/errors.js';
import { decodePageIndex, encodePageIndex, type PageHashIndex } from './page-index.js';
import type { VerifiedArchive } from '../snapshot/checksums.js';

/**
 * The page-hash indexes of one snapshot's databases, kept beside it locally as `<id>.pages`, so
 * the next snapshot finds each database's changed pages without reading this one's archive.
 * Local only (a remote never needs it): a snapshot without one (version 1, or downloaded from a
 * remote) is simply no base for a delta. Binary:
 *
 *   "WBPGSET1", u32 length of the JSON table, the table (UTF-8 JSON, PageSetTable below),
 *   the indexes (page-index.ts format) back to back at the offsets the table gives,
 *   32 bytes sha256 of everything before them.
 *
 * `file` records the live file's identity (device and inode as decimal strings) when the index
 * was taken: another identity at the next snapshot means the file was replaced, and that database
 * is stored whole.
 */
export const PAGE_SET_MAGIC = Buffer.from('WBPGSET1', 'latin1');

const PageSetTableSchema = z.object({
  snapshot_id: z.string(),
  databases: z.array(
    z.object({
      name: z.string(),
      offset: z.number().int().min(0),
      length: z.number().int().min(0),
      file: z.object({ dev: z.string(), ino: z.string() }).nullable(),
    }),
  ),
  /**
   * The archives of this snapshot's chain (its own included) as they were when it was taken, each
   * found whole: checksummed as it was written, or read and matched against its checksums. The
   * next snapshot re-reads only those whose file changed since (absent in older files: all).
   */
  verified: z
    .array(z.object({ id: z.string(), sha256: z.string().regex(/^[0-9a-f]{64}$/), stamp: z.object({ ino: z.string(), size: z.string(), mtime_ns: z.string() }) }))
    .optional(),
});

export interface PageSetEntry {
  name: string;
  index: PageHashIndex;
  /** the live file's identity when the image was taken; null when unknown */
  file: { dev: string; ino: string } | null;
}

export interface PageSet {
  snapshotId: string;
  databases: Map<string, PageSetEntry>;
  /** the chain's archives found whole when the snapshot was taken (see the table's `verified`) */
  verified: VerifiedArchive[];
}

/** Writes `<id>.pages` atomically and durably; `verified`: the chain's archives found whole (see the table). */
export function writePageSet(file: string, snapshotId: string, entries: readonly PageSetEntry[], verified: readonly VerifiedArchive[] = []): number {
  const blobs = entries.map((e) => encodePageIndex(e.index));
  let offset = 0;
  const table = {
    snapshot_id: snapshotId,
    databases: entries.map((e, i) => {
      const row = { name: e.name, offset, length: blobs[i]!.length, file: e.file };
      offset += blobs[i]!.length;
      return row;
    }),
    verified,
  };
  const json = Buffer.from(JSON.stringify(table), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  const body = Buffer.concat([PAGE_SET_MAGIC, len, json, ...blobs]);
  const bytes = Buffer.concat([body, createHash('sha256').update(body).digest()]);
  writeFileAtomic(file, bytes);
  return bytes.length;
}

/**
 * Reads `<id>.pages`. Throws WbError('archive_invalid') when it is damaged (checksum, table or an
 * index does not read) or belongs to another snapshot; ENOENT as it is when there is none.
 */
export function readPageSet(file: string, snapshotId: string): PageSet {
  const buf = fs.readFileSync(file);
  const bad = (why: string) => new WbError('archive_invalid', `The page-hash indexes of ${snapshotId} are damaged: ${why}.`, 'The next snapshot will store these databases whole; nothing else is affected.');
  if (buf.length < 8 + 4 + 32 || !buf.subarray(0, 8).equals(PAGE_SET_MAGIC)) throw bad('wrong magic');
  const body = buf.subarray(0, buf.length - 32);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - 32))) throw bad('checksum mismatch');
  const jsonLength = body.readUInt32BE(8);
  if (12 + jsonLength > body.length) throw bad('table runs past the end');
  let table: z.infer<typeof PageSetTableSchema>;
  try {
    table = PageSetTableSchema.parse(JSON.parse(body.subarray(12, 12 + jsonLength).toString('utf8')));
  } catch (err) {
    throw bad(`table unreadable (${(err as Error).message.slice(0, 200)})`);
  }
  if (table.snapshot_id !== snapshotId) throw bad(`it belongs to ${table.snapshot_id}`);
  const blobs = body.subarray(12 + jsonLength);
  const databases = new Map<string, PageSetEntry>();
  for (const d of table.databases) {
    if (d.offset + d.length > blobs.length) throw bad(`the index of ${d.name} runs past the end`);
    databases.set(d.name, { name: d.name, index: decodePageIndex(blobs.subarray(d.offset, d.offset + d.length)), file: d.file });
  }
  return { snapshotId, databases, verified: table.verified ?? [] };
}

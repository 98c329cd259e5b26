import fs from 'node:fs';

/**
 * What a live database holds, learned without opening it through SQLite. Opening it, even read-only,
 * may recover a hot journal, rebuild the -shm, or checkpoint and delete the -wal when the last
 * connection closes: a dry run must change nothing, so it reads the files' bytes instead.
 */
export interface LiveProbe {
  exists: boolean;
  /** the committed schema version (PRAGMA user_version); null when absent or unreadable */
  userVersion: number | null;
  /** committed WAL frames not yet folded into the file: a reader would see them */
  walCommittedFrames: number;
  /** a -journal with a valid header: the next program to open the file rolls its write back */
  hotJournal: boolean;
}

const SQLITE_MAGIC = 'SQLite format 3\0';
const JOURNAL_MAGIC = Buffer.from('d9d505f920a163d7', 'hex');

function readAt(fd: number, length: number, position: number): Buffer | null {
  const buf = Buffer.alloc(length);
  const n = fs.readSync(fd, buf, 0, length, position);
  return n === length ? buf : null;
}

function withFile<T>(file: string, fn: (fd: number, size: number) => T, fallback: T): T {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return fallback;
  }
  try {
    return fn(fd, fs.fstatSync(fd).size);
  } catch {
    return fallback;
  } finally {
    fs.closeSync(fd);
  }
}

/** SQLite's WAL checksum: pairs of 32-bit words, native order given by the magic's low bit. */
function walChecksum(data: Buffer, bigEndian: boolean, s: [number, number]): [number, number] {
  let [s0, s1] = s;
  for (let i = 0; i + 8 <= data.length; i += 8) {
    const x0 = bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i);
    const x1 = bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

/** The committed frames of a -wal and the newest committed copy of page 1 among them (its header). */
function readWal(walFile: string): { committed: number; page1: Buffer | null } {
  return withFile(
    walFile,
    (fd, size) => {
      const header = size >= 32 ? readAt(fd, 32, 0) : null;
      if (!header) return { committed: 0, page1: null };
      const magic = header.readUInt32BE(0);
      if (magic !== 0x377f0682 && magic !== 0x377f0683) return { committed: 0, page1: null };
      const bigEndian = (magic & 1) === 1;
      const pageSize = header.readUInt32BE(8) === 1 ? 65536 : header.readUInt32BE(8);
      if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return { committed: 0, page1: null };
      let sum = walChecksum(header.subarray(0, 24), bigEndian, [0, 0]);
      if (sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) return { committed: 0, page1: null };
      const salt1 = header.readUInt32BE(16);
      const salt2 = header.readUInt32BE(20);
      let committed = 0;
      let frames = 0;
      let page1: Buffer | null = null;
      let pendingPage1: Buffer | null = null;
      for (let off = 32; off + 24 + pageSize <= size; off += 24 + pageSize) {
        const frame = readAt(fd, 24 + pageSize, off);
        if (!frame || frame.readUInt32BE(8) !== salt1 || frame.readUInt32BE(12) !== salt2) break;
        sum = walChecksum(frame.subarray(0, 8), bigEndian, sum);
        sum = walChecksum(frame.subarray(24), bigEndian, sum);
        if (sum[0] !== frame.readUInt32BE(16) || sum[1] !== frame.readUInt32BE(20)) break;
        frames++;
        if (frame.readUInt32BE(0) === 1) pendingPage1 = frame.subarray(24, 24 + 100);
        if (frame.readUInt32BE(4) !== 0) {
          // a commit frame: everything up to here is committed
          committed = frames;
          if (pendingPage1) page1 = pendingPage1;
        }
      }
      return { committed, page1 };
    },
    { committed: 0, page1: null },
  );
}

/** A rollback journal's header is valid (the write it belongs to never finished) and its saved page 1. */
function readJournal(journalFile: string): { hot: boolean; page1: Buffer | null } {
  return withFile(
    journalFile,
    (fd, size) => {
      const header = size >= 28 ? readAt(fd, 28, 0) : null;
      if (!header || !header.subarray(0, 8).equals(JOURNAL_MAGIC)) return { hot: false, page1: null };
      const sector = header.readUInt32BE(20);
      const pageSize = header.readUInt32BE(24);
      if (sector < 32 || sector > 65536 || pageSize < 512 || pageSize > 65536) return { hot: true, page1: null };
      const declared = header.readUInt32BE(8);
      const fit = Math.floor((size - sector) / (pageSize + 8));
      const records = declared === 0 || declared === 0xffffffff ? fit : Math.min(declared, fit);
      for (let i = 0; i < records; i++) {
        const off = sector + i * (pageSize + 8);
        const pgno = readAt(fd, 4, off);
        if (pgno && pgno.readUInt32BE(0) === 1) return { hot: true, page1: readAt(fd, 100, off + 4) };
      }
      return { hot: true, page1: null };
    },
    { hot: false, page1: null },
  );
}

function headerUserVersion(page1: Buffer | null): number | null {
  return page1 && page1.length >= 64 && page1.subarray(0, 16).toString('latin1') === SQLITE_MAGIC ? page1.readInt32BE(60) : null;
}

/**
 * Probe a live database by its bytes only. The schema version is the one a reader would see: from
 * a hot journal's saved page 1 (the write gets rolled back), else the newest committed page 1 in
 * the -wal, else the file's header.
 */
export function probeLiveDatabase(file: string): LiveProbe {
  const main = withFile(file, (fd) => readAt(fd, 100, 0), null);
  const exists = fs.existsSync(file);
  const wal = readWal(`${file}-wal`);
  const journal = readJournal(`${file}-journal`);
  const userVersion = headerUserVersion(journal.page1) ?? headerUserVersion(wal.page1) ?? headerUserVersion(main);
  return { exists, userVersion, walCommittedFrames: wal.committed, hotJournal: journal.hot };
}

/** Plan warnings for states a reader would act on; empty when the file is at rest. */
export function liveStateWarnings(name: string, shown: string, probe: LiveProbe): string[] {
  const w: string[] = [];
  if (probe.hotJournal) {
    w.push(
      `${name} (${shown}) has a rollback journal (-journal) left by a write that never finished: the next program to open it rolls that write back. The dry run did not open it; the restore moves the file and its journal aside together`,
    );
  }
  if (probe.walCommittedFrames > 0) {
    w.push(
      `${name} (${shown}) has ${probe.walCommittedFrames} committed page write(s) in its -wal not yet folded into the file; they are part of its current content and move aside with it`,
    );
  }
  return w;
}

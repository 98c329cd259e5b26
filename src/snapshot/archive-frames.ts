import fs from 'node:fs';

/**
 * Whether a .tar.zst archive is whole, from its zstd frame and block headers alone (3 bytes read per
 * block of up to 128 KiB, no decompression): every frame's blocks must end with a last block, and
 * the last frame (with its checksum when it has one) must end exactly where the file does. An
 * archive cut short (a copy or a disk that stopped part way) fails it; a flipped byte inside a block
 * does not (the checksum file and `check` find that). Format: RFC 8878.
 * @returns null when whole, else what is wrong (for a message)
 */
export function zstdArchiveProblem(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    return `it cannot be opened (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(18);
    const read = (at: number, n: number): Buffer | null => (at + n <= size && fs.readSync(fd, buf, 0, n, at) === n ? buf : null);
    let at = 0;
    let frames = 0;
    while (at < size) {
      const head = read(at, 4);
      if (!head) return 'it ends inside a zstd frame header (cut short)';
      const magic = head.readUInt32LE(0);
      if ((magic & 0xfffffff0) === 0x184d2a50) {
        // A skippable frame: magic, 4-byte length, payload.
        const len = read(at + 4, 4)?.readUInt32LE(0);
        if (len === undefined || at + 8 + len > size) return 'it ends inside a skippable zstd frame (cut short)';
        at += 8 + len;
        continue;
      }
      if (magic !== 0xfd2fb528) return frames ? 'bytes follow its last zstd frame that are no frame' : 'it is not a zstd archive';
      const fhd = read(at + 4, 1)?.readUInt8(0);
      if (fhd === undefined) return 'it ends inside a zstd frame header (cut short)';
      const fcsFlag = fhd >> 6;
      const singleSegment = (fhd >> 5) & 1;
      const checksum = (fhd >> 2) & 1;
      const dictFlag = fhd & 3;
      const headerBytes = 1 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + (fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag]!);
      at += 4 + headerBytes;
      for (;;) {
        const bh = read(at, 3);
        if (!bh) return 'it ends inside a zstd block header (cut short)';
        const header = bh.readUIntLE(0, 3);
        const last = header & 1;
        const type = (header >> 1) & 3;
        const blockSize = header >> 3;
        if (type === 3) return 'a zstd block header is damaged';
        at += 3 + (type === 1 ? 1 : blockSize);
        if (at > size) return 'it ends inside a zstd block (cut short)';
        if (last) break;
      }
      at += checksum ? 4 : 0;
      if (at > size) return 'it ends before its zstd checksum (cut short)';
      frames++;
    }
    return frames ? null : 'it holds no zstd frame';
  } catch (err) {
    return `it cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  } finally {
    fs.closeSync(fd);
  }
}

import fs from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { partName } from './remote.js';

/** A signal that never fires, for calls made without one. */
const NEVER = new AbortController().signal;

/** A pass-through stream that calls `onChunk` with the byte length of each chunk going through. */
export function countingStream(onChunk: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onChunk(chunk.length);
      done(null, chunk);
    },
  });
}

/**
 * Split `file` into `<name>.partNNN` files of at most `partBytes` in `outDir`, streaming (memory
 * does not grow with size). A file no larger than partBytes is not split: returns [file].
 * Rejects with an AbortError when `signal` fires (the part being written is left for the caller's cleanup).
 * `onChunk` gets the length of each chunk written into a part (increments), for progress.
 */
export async function splitFile(file: string, partBytes: number, outDir: string, signal?: AbortSignal, onChunk?: (bytes: number) => void): Promise<string[]> {
  const size = fs.statSync(file).size;
  if (size <= partBytes) return [file];
  fs.mkdirSync(outDir, { recursive: true });
  const parts: string[] = [];
  for (let index = 0, start = 0; start < size; index++, start += partBytes) {
    const part = path.join(outDir, partName(path.basename(file), index));
    const read = fs.createReadStream(file, { start, end: Math.min(start + partBytes, size) - 1 });
    if (onChunk) await pipeline(read, countingStream(onChunk), fs.createWriteStream(part), { signal: signal ?? NEVER });
    else await pipeline(read, fs.createWriteStream(part), { signal: signal ?? NEVER });
    parts.push(part);
  }
  return parts;
}

/**
 * Join parts (in the given order) into `out`, streaming, written under a temp name then renamed;
 * `signal` aborts it (nothing left at `out`). `onChunk` gets the length of each chunk written (increments).
 */
export async function joinFiles(parts: readonly string[], out: string, signal?: AbortSignal, onChunk?: (bytes: number) => void): Promise<void> {
  const tmp = `${out}.joining`;
  // One pipeline from a generator: a pipeline per part into one sink added listeners to it per part.
  async function* concatenated(): AsyncGenerator<Buffer> {
    for (const part of parts) {
      for await (const chunk of fs.createReadStream(part)) {
        onChunk?.((chunk as Buffer).length);
        yield chunk as Buffer;
      }
    }
  }
  try {
    await pipeline(concatenated(), fs.createWriteStream(tmp), { signal: signal ?? NEVER });
    fs.renameSync(tmp, out);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** The part files of `fileName` among `names`, in order; null when there are none or one is missing. */
export function partsOf(fileName: string, names: readonly string[]): string[] | null {
  const found = names.filter((n) => n.startsWith(`${fileName}.part`) && /\.part\d{3}$/.test(n)).sort();
  if (!found.length) return null;
  for (let i = 0; i < found.length; i++) if (found[i] !== partName(fileName, i)) return null;
  return found;
}

import fs from 'node:fs';
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import zlib from 'node:zlib';
import type { Codec } from './manifest.js';

export type CodecSetting = 'auto' | Codec;

let zstdAvailable: boolean | undefined;

/** zstd is several times faster than gzip at a smaller size and uses both cores; gzip needs nothing installed. */
export function hasZstd(): boolean {
  zstdAvailable ??= spawnSync('zstd', ['-V'], { stdio: 'ignore' }).status === 0;
  return zstdAvailable;
}

export function chooseCodec(setting: CodecSetting): Codec {
  if (setting === 'auto') return hasZstd() ? 'zstd' : 'gzip';
  return setting;
}

export function archiveExtension(codec: Codec): string {
  return codec === 'zstd' ? '.tar.zst' : '.tar.gz';
}

/** A compressing or decompressing stage: write into `input`, read from `output`. */
export interface CodecStream {
  input: Writable;
  output: Readable;
  /** resolves when the stage ended cleanly; rejects with the reason otherwise */
  done: Promise<void>;
  abort(): void;
}

function zstdProcess(args: string[], stdin: 'pipe' | 'ignore' = 'pipe'): CodecStream {
  const child = spawn('zstd', args, { stdio: [stdin, 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable, Readable, Readable>;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  // EPIPE on stdin when zstd exits early is reported through `done`, not as an unhandled error.
  child.stdin?.on('error', () => undefined);
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`zstd failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
  });
  return { input: child.stdin, output: child.stdout, done, abort: () => child.kill('SIGKILL') };
}

function zlibStage(stage: zlib.Gzip | zlib.Gunzip): CodecStream {
  const done = new Promise<void>((resolve, reject) => {
    stage.on('error', reject);
    stage.on('end', resolve);
  });
  return { input: stage, output: stage, done, abort: () => stage.destroy() };
}

export function compressor(codec: Codec, level?: number): CodecStream {
  if (codec === 'zstd') return zstdProcess(['-q', '-c', '-T0', `-${level ?? 3}`]);
  return zlibStage(zlib.createGzip({ level: Math.min(level ?? 6, 9) }));
}

/** The decompressed bytes of `file`. zstd reads the file itself: piping it through Node costs a copy per chunk on the main thread. */
export function decompressFile(codec: Codec, file: string): Omit<CodecStream, 'input'> {
  if (codec === 'zstd') return zstdProcess(['-q', '-d', '-c', '--', file], 'ignore');
  const stage = zlibStage(zlib.createGunzip());
  const source = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  source.on('error', (err) => stage.output.destroy(err));
  source.pipe(stage.input);
  return { output: stage.output, done: stage.done, abort: () => { source.destroy(); stage.abort(); } };
}

export function codecFromFileName(name: string): Codec | null {
  if (name.endsWith('.tar.zst')) return 'zstd';
  if (name.endsWith('.tar.gz')) return 'gzip';
  return null;
}

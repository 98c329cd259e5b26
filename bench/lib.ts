import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { formatBytes } from '../src/core/size-format.js';

export interface Measured {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** peak resident memory of the process itself (VmHWM), MiB */
  peakMb: number;
  /** peak of its largest child (zstd, sqlite3, gzip…), MiB */
  childPeakMb: number;
}

function vmHwmKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** Run a command, timing it and sampling its peak RSS (VmHWM is monotonic: the last read is the peak). */
export function measure(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak = 0;
    const childPeaks = new Map<number, number>();
    const sample = () => {
      if (child.pid === undefined) return;
      peak = Math.max(peak, vmHwmKb(child.pid));
      for (const c of childrenOf(child.pid)) childPeaks.set(c, Math.max(childPeaks.get(c) ?? 0, vmHwmKb(c)));
    };
    const timer = setInterval(sample, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve({ ms, code, stdout, stderr, peakMb: peak / 1024, childPeakMb: Math.max(0, ...childPeaks.values()) / 1024 });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A size as wb-backup writes sizes everywhere (IEC units: src/size-format.ts). */
export function mb(bytes: number): string {
  return formatBytes(bytes);
}

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/** Commit latencies a rate-writer process measured (bench/rate-writer.mjs), in ms. */
export interface WriterStats {
  commits: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Start bench/rate-writer.mjs committing ~650 tx/s into `file`; stop() ends it and returns its latencies. */
export async function startRateWriter(file: string): Promise<{ child: ChildProcess; stop(): Promise<WriterStats> }> {
  const child = spawn(process.execPath, [path.resolve('bench/rate-writer.mjs'), file, '650'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => ((out += d.toString()), out.includes('ready') && resolve())));
  return {
    child,
    stop: () =>
      new Promise((resolve) => {
        child.on('exit', () => resolve(JSON.parse(out.trim().split('\n').pop()!) as WriterStats));
        child.kill('SIGTERM');
      }),
  };
}

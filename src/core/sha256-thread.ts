import { startModuleWorker } from './worker-boot.js';
import type { Worker } from 'node:worker_threads';

/** Slices of a buffer to hash one by one: `size` bytes each, from slice `from`, `width` bytes of each sha256 kept. */
export interface SliceRequest {
  size: number;
  width: number;
  from: number;
}

/** A buffer back from the hashing thread, with the truncated sha256 of each slice asked for. */
export interface HashedBuffer {
  data: Buffer;
  /** (slices - from) x width bytes; empty when no slices were asked for */
  hashes: Buffer;
}

interface Pending {
  /** resolves a `hashed` call; absent for `update`, whose buffer goes to the spare pool */
  resolve?: (r: HashedBuffer) => void;
  reject?: (e: Error) => void;
}

/**
 * A sha256 computed on a thread of its own, so hashing a whole database image runs beside the
 * per-page hashing (and the reading) of the thread that streams it: on two cores a page-level
 * snapshot then costs about one hashing pass, not two. The thread can also take a share of the
 * per-page hashes (`hashed`), so both cores hash pages.
 *
 * `update` and `hashed` take ownership of the buffer (its memory is moved to the hashing thread
 * when it is a whole ArrayBuffer of its own, copied otherwise): do not use it afterwards. The
 * thread hands every buffer back: `update`'s go to a small pool that `spare` draws from (so a
 * reader reuses the same few buffers instead of leaving one per chunk to the garbage collector,
 * which, for buffers outside the JS heap, may wait for tens of MiB before collecting), `hashed`
 * resolves with its own. At most `maxInFlight` buffers wait for the thread; `update` resolves
 * when there is room. `digest` resolves to the lowercase hex sha256 of everything updated since
 * the last digest, and starts a new one.
 */
export class Sha256Thread {
  private readonly worker: Worker;
  private inFlight = 0;
  private room: Array<() => void> = [];
  private readonly pending: Pending[] = [];
  private readonly pool: Buffer[] = [];
  private pendingDigest: { resolve: (hex: string) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;

  constructor(private readonly maxInFlight = 3) {
    this.worker = startModuleWorker(new URL('./sha256-worker.js', import.meta.url));
    // Idle, the thread does not keep the process alive; while a digest is under way it does.
    this.worker.unref();
    this.worker.on('message', (m: { ack?: true; data?: Uint8Array; hashes?: Uint8Array; hex?: string }) => {
      if (m.ack) {
        this.inFlight--;
        const p = this.pending.shift();
        const data = m.data ? Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength) : null;
        if (p?.resolve) p.resolve({ data: data ?? Buffer.alloc(0), hashes: m.hashes ? Buffer.from(m.hashes.buffer, m.hashes.byteOffset, m.hashes.byteLength) : Buffer.alloc(0) });
        else if (data) this.recycle(data);
        this.room.shift()?.();
        if (this.inFlight === 0 && !this.pendingDigest) this.worker.unref();
      } else if (m.hex !== undefined) {
        const p = this.pendingDigest;
        this.pendingDigest = null;
        if (this.inFlight === 0) this.worker.unref();
        p?.resolve(m.hex);
      }
    });
    const fail = (err: Error) => {
      this.failed = err;
      this.pendingDigest?.reject(err);
      this.pendingDigest = null;
      for (const p of this.pending.splice(0)) p.reject?.(err);
      for (const r of this.room.splice(0)) r();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hashing thread stopped (exit code ${code})`)));
  }

  async update(data: Buffer): Promise<void> {
    await this.send(data, undefined, {});
  }

  /**
   * Hashes `data` into the digest, and each slice from `slices.from` on its own; resolves when the
   * thread is done with it, with the buffer handed back (the caller owns it again; give it to
   * `recycle` when done) and the slices' truncated hashes.
   */
  hashed(data: Buffer, slices: SliceRequest): Promise<HashedBuffer> {
    return new Promise((resolve, reject) => {
      this.send(data, slices, { resolve, reject }).catch(reject);
    });
  }

  /** A buffer of `bytes` bytes for the next chunk: one the thread handed back, or a new one. Its contents are garbage. */
  spare(bytes: number): Buffer {
    const i = this.pool.findIndex((b) => b.length === bytes);
    return i >= 0 ? this.pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(bytes);
  }

  /** Gives a buffer back for `spare` (a few are kept; the caller must not use it afterwards). */
  recycle(data: Buffer): void {
    if (this.pool.length < this.maxInFlight + 2 && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) this.pool.push(data);
  }

  digest(): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pendingDigest = { resolve, reject };
      this.worker.ref();
      this.worker.postMessage({ end: true });
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private async send(data: Buffer, slices: SliceRequest | undefined, p: Pending): Promise<void> {
    if (this.failed) throw this.failed;
    while (this.inFlight >= this.maxInFlight) await new Promise<void>((r) => this.room.push(r));
    if (this.failed) throw this.failed;
    this.inFlight++;
    this.pending.push(p);
    this.worker.ref();
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const msg = own ? { data: new Uint8Array(data.buffer, 0, data.byteLength), ...(slices ? { slices } : {}) } : { data: new Uint8Array(data), ...(slices ? { slices } : {}) };
    if (own) this.worker.postMessage(msg, [data.buffer as ArrayBuffer]);
    else this.worker.postMessage(msg);
  }
}

import { startModuleWorker } from './worker-boot.js';
import type { Worker } from 'node:worker_threads';

/**
 * A sha256 computed on a thread of its own, so hashing a whole database image runs beside the
 * per-page hashing (and the reading) of the thread that streams it: on two cores a page-level
 * snapshot then costs about one hashing pass, not two.
 *
 * `update` takes ownership of the buffer (its memory is moved to the hashing thread when it is a
 * whole ArrayBuffer of its own, copied otherwise): do not use it afterwards. At most `maxInFlight`
 * buffers wait for the thread; `update` resolves when there is room. `digest` resolves to the
 * lowercase hex sha256 of everything updated since the last digest, and starts a new one.
 */
export class Sha256Thread {
  private readonly worker: Worker;
  private inFlight = 0;
  private room: Array<() => void> = [];
  private pendingDigest: { resolve: (hex: string) => void; reject: (e: Error) => void } | null = null;
  private failed: Error | null = null;

  constructor(private readonly maxInFlight = 3) {
    this.worker = startModuleWorker(new URL('./sha256-worker.js', import.meta.url));
    // Idle, the thread does not keep the process alive; while a digest is under way it does.
    this.worker.unref();
    this.worker.on('message', (m: { ack?: true; hex?: string }) => {
      if (m.ack) {
        this.inFlight--;
        this.room.shift()?.();
      } else if (m.hex !== undefined) {
        const p = this.pendingDigest;
        this.pendingDigest = null;
        this.worker.unref();
        p?.resolve(m.hex);
      }
    });
    const fail = (err: Error) => {
      this.failed = err;
      this.pendingDigest?.reject(err);
      this.pendingDigest = null;
      for (const r of this.room.splice(0)) r();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the hashing thread stopped (exit code ${code})`)));
  }

  async update(data: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    while (this.inFlight >= this.maxInFlight) await new Promise<void>((r) => this.room.push(r));
    if (this.failed) throw this.failed;
    this.inFlight++;
    this.worker.ref();
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    if (own) this.worker.postMessage({ data: new Uint8Array(data.buffer) }, [data.buffer as ArrayBuffer]);
    else this.worker.postMessage({ data: new Uint8Array(data) });
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
}

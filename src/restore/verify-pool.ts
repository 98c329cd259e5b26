import { cpus } from 'node:os';
import { RequestWorker } from '../core/worker-boot.js';
import type { VerifyRequest, VerifyResponse } from './verify-staged.js';

/** A few worker threads verifying staged databases while the archive is still being unpacked. */
export class VerifyPool {
  private readonly idle: Array<RequestWorker<VerifyRequest, VerifyResponse>> = [];
  private readonly all: Array<RequestWorker<VerifyRequest, VerifyResponse>> = [];
  private readonly queue: Array<() => void> = [];

  constructor(size = Math.max(1, Math.min(2, cpus().length))) {
    for (let i = 0; i < size; i++) {
      const w = new RequestWorker<VerifyRequest, VerifyResponse>(new URL('./verify-worker.js', import.meta.url));
      this.all.push(w);
      this.idle.push(w);
    }
  }

  async verify(req: VerifyRequest): Promise<VerifyResponse> {
    const worker = this.idle.pop() ?? (await new Promise<RequestWorker<VerifyRequest, VerifyResponse>>((resolve) => this.queue.push(() => resolve(this.idle.pop()!))));
    try {
      return await worker.request(req);
    } finally {
      this.idle.push(worker);
      this.queue.shift()?.();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.close()));
  }
}

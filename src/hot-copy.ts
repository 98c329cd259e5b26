import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { HotCopyRequest, HotCopyResult } from './hot-copy-core.js';

export type { HotCopyResult, CopiedDatabase } from './hot-copy-core.js';

/**
 * The worker entry: the compiled .js when built. Under vitest only the .ts source exists, so the
 * worker registers tsx (a dev dependency) before importing it.
 */
function startWorker(): Worker {
  const js = new URL('./hot-copy-worker.js', import.meta.url);
  if (fs.existsSync(js)) return new Worker(js);
  const ts = new URL('./hot-copy-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { eval: true });
}

/** A single worker thread that copies databases one after the other. */
export class HotCopier {
  private readonly worker: Worker;
  private pending: { resolve: (r: HotCopyResult) => void; reject: (e: Error) => void } | null = null;

  constructor() {
    this.worker = startWorker();
    this.worker.on('message', (result: HotCopyResult) => {
      const p = this.pending;
      this.pending = null;
      p?.resolve(result);
    });
    this.worker.on('error', (err) => {
      const p = this.pending;
      this.pending = null;
      p?.reject(err);
    });
    this.worker.on('exit', (code) => {
      const p = this.pending;
      this.pending = null;
      p?.reject(new Error(`the copy worker stopped (exit code ${code})`));
    });
  }

  copy(req: HotCopyRequest): Promise<HotCopyResult> {
    if (this.pending) return Promise.reject(new Error('HotCopier runs one copy at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

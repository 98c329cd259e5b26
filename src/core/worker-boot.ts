import fs from 'node:fs';
import { Worker } from 'node:worker_threads';

/**
 * Start a worker thread from a module beside the caller: the compiled .js when built; under vitest
 * only the .ts source exists, so the worker registers tsx (a dev dependency) before importing it.
 */
export function startModuleWorker(jsUrl: URL): Worker {
  if (fs.existsSync(jsUrl)) return new Worker(jsUrl);
  const ts = new URL(jsUrl.href.replace(/\.js$/, '.ts')).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(ts)}); });`;
  return new Worker(boot, { eval: true });
}

/** One request at a time per worker, answered by one message. */
export class RequestWorker<Req, Res> {
  private readonly worker: Worker;
  private pending: { resolve: (r: Res) => void; reject: (e: Error) => void } | null = null;

  constructor(jsUrl: URL) {
    this.worker = startModuleWorker(jsUrl);
    const settle = (fn: (p: NonNullable<typeof this.pending>) => void) => {
      const p = this.pending;
      this.pending = null;
      if (p) fn(p);
    };
    this.worker.on('message', (r: Res) => settle((p) => p.resolve(r)));
    this.worker.on('error', (err) => settle((p) => p.reject(err)));
    this.worker.on('exit', (code) => settle((p) => p.reject(new Error(`the worker stopped (exit code ${code})`))));
  }

  request(req: Req): Promise<Res> {
    if (this.pending) return Promise.reject(new Error('a worker runs one request at a time'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

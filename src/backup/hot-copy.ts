import type { HotCopyRequest, HotCopyResult } from './hot-copy-core.js';
import { RequestWorker } from '../core/worker-boot.js';

export type { HotCopyResult, CopiedDatabase } from './hot-copy-core.js';

/** A worker thread that copies databases one after the other, off the main thread. */
export class HotCopier {
  private readonly worker = new RequestWorker<HotCopyRequest, HotCopyResult>(new URL('./hot-copy-worker.js', import.meta.url));

  copy(req: HotCopyRequest): Promise<HotCopyResult> {
    return this.worker.request(req);
  }

  close(): Promise<void> {
    return this.worker.close();
  }
}

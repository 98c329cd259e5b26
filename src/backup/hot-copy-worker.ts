// Runs in a worker thread: better-sqlite3 is synchronous, and a copy of a large database must not
// stall the main thread that streams the previous copy into the compressor.
import { parentPort } from 'node:worker_threads';
import { copyAndInspect, failedCopy, type HotCopyRequest } from './hot-copy-core.js';

if (!parentPort) throw new Error('hot-copy-worker must run as a worker thread');
const port = parentPort;
port.on('message', (req: HotCopyRequest) => {
  copyAndInspect(req).then(
    (result) => port.postMessage(result),
    (err: unknown) => port.postMessage(failedCopy(err)),
  );
});

// The hashing thread of sha256-thread.ts: updates one sha256 per message, answers each with an
// ack (so the sender can bound what waits), and with the hex digest on { end: true }.
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

if (!parentPort) throw new Error('sha256-worker must run as a worker thread');
const port = parentPort;
let hash: Hash = createHash('sha256');
port.on('message', (m: { data?: Uint8Array; end?: true }) => {
  if (m.data) {
    hash.update(m.data);
    port.postMessage({ ack: true });
  } else if (m.end) {
    port.postMessage({ hex: hash.digest('hex') });
    hash = createHash('sha256');
  }
});

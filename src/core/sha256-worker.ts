// The hashing thread of sha256-thread.ts: updates one sha256 per message and answers each with an
// ack (so the sender can bound what waits) that hands the buffer back (the sender reuses it: no
// buffer is left here for the garbage collector), with the truncated sha256 of each slice when
// asked; and with the hex digest on { end: true }.
import crypto, { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

if (!parentPort) throw new Error('sha256-worker must run as a worker thread');
const port = parentPort;
// crypto.hash (Node >= 20.12): one call per slice, about twice as fast as createHash for 4 KiB.
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;
const sha256Once = (data: Uint8Array): Buffer => (oneShot ? oneShot('sha256', data, 'buffer') : createHash('sha256').update(data).digest());
let hash: Hash = createHash('sha256');
port.on('message', (m: { data?: Uint8Array; end?: true; slices?: { size: number; width: number; from: number } }) => {
  if (m.data) {
    hash.update(m.data);
    let hashes: Uint8Array | undefined;
    if (m.slices) {
      const { size, width, from } = m.slices;
      const n = Math.floor(m.data.length / size);
      hashes = new Uint8Array(Math.max(0, n - from) * width);
      for (let i = from; i < n; i++) hashes.set(sha256Once(m.data.subarray(i * size, (i + 1) * size)).subarray(0, width), (i - from) * width);
    }
    const transfer = [m.data.buffer as ArrayBuffer, ...(hashes ? [hashes.buffer as ArrayBuffer] : [])];
    port.postMessage({ ack: true, data: m.data, ...(hashes ? { hashes } : {}) }, transfer);
  } else if (m.end) {
    port.postMessage({ hex: hash.digest('hex') });
    hash = createHash('sha256');
  }
});

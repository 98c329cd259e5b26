// Worker thread entry: verifies one staged database per message (see verify-staged.ts).
import { parentPort } from 'node:worker_threads';
import { verifyStaged, type VerifyRequest } from './verify-staged.js';

if (!parentPort) throw new Error('verify-worker must run as a worker thread');
const port = parentPort;
port.on('message', (req: VerifyRequest) => {
  try {
    port.postMessage(verifyStaged(req));
  } catch (err) {
    port.postMessage({ ok: false, problem: `verification crashed: ${(err as Error).message}` });
  }
});

// Takes the data root lock, notes entry and exit in a shared log, holds it briefly, releases.
import fs from 'node:fs';
import { acquireRootLock } from '../../src/root/lock.js';

const [root, log] = process.argv.slice(2);
if (!root || !log) throw new Error('usage: lock-contender.ts <root> <log>');
const lock = await acquireRootLock(root, 'contender', 60_000);
fs.appendFileSync(log, `enter ${process.pid}\n`);
await new Promise((r) => setTimeout(r, 50));
fs.appendFileSync(log, `exit ${process.pid}\n`);
await lock.release();

// Takes the data root lock and holds it until killed: stands in for a backup that dies mid-run.
import { acquireRootLock } from '../../src/root/lock.js';

const root = process.argv[2];
if (!root) throw new Error('usage: hold-lock.ts <root>');
await acquireRootLock(root, 'backup', 0);
process.stdout.write('locked\n');
setInterval(() => undefined, 1000);

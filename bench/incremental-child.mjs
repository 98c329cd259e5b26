// One wb-backup snapshot in a process of its own (so its peak RSS is wb-backup's alone, not the
// generator's), at an injected time: node bench/incremental-child.mjs <root> <iso time> [full]
// Runs the built code (dist/, `npm run build`). Prints one JSON line: the backup result, the
// process's own peak RSS (maxRSS, KiB) and the time each progress step began (ms from the start).
import { loadConfig } from '../dist/src/root/config.js';
import { runBackup } from '../dist/src/backup/pipeline.js';

const [root, iso, full] = process.argv.slice(2);
const started = performance.now();
const steps = [];
const result = await runBackup(loadConfig(root), {
  now: () => new Date(iso),
  full: full === 'full',
  onProgress: (p) => {
    if (steps.at(-1)?.message !== p.message) steps.push({ message: p.message, at_ms: Math.round(performance.now() - started) });
  },
});
process.stdout.write(`${JSON.stringify({ result, maxRssKb: process.resourceUsage().maxRSS, steps, total_ms: Math.round(performance.now() - started) })}\n`);

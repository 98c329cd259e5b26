// One wb-backup snapshot in a process of its own (so its peak RSS is wb-backup's alone, not the
// generator's), at an injected time: node bench/incremental-child.mjs <root> <iso time> [full]
// Runs the built code (dist/, `npm run build`). Prints one JSON line: the backup result, the
// process's own peak RSS (maxRSS, KiB) and the time each progress step began (ms from the start).
import fs from 'node:fs';
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
// CPU time, ms: this process (worker threads included) and its finished children (zstd), which
// the load of a shared machine disturbs far less than wall time.
const usage = process.resourceUsage();
const stat = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
const tick = 1000 / 100; // USER_HZ
const childCpuMs = (Number(stat[13]) + Number(stat[14])) * tick;
process.stdout.write(`${JSON.stringify({ result, maxRssKb: usage.maxRSS, steps, total_ms: Math.round(performance.now() - started), cpu_ms: Math.round((usage.userCPUTime + usage.systemCPUTime) / 1000 + childCpuMs) })}\n`);

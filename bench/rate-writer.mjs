// A writer committing small transactions at a steady rate (default 650/s) until SIGTERM; then
// prints {commits, p50_ms, p99_ms, max_ms} of its commit latencies.
import Database from 'better-sqlite3';

const [file, rateArg] = process.argv.slice(2);
const rate = Number(rateArg ?? 650);
const db = new Database(file, { timeout: 10_000 });
db.pragma('journal_mode = WAL');
db.exec('CREATE TABLE IF NOT EXISTS ticks (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, note TEXT)');
const insert = db.prepare('INSERT INTO ticks(at, note) VALUES (?, ?)');
const latencies = [];
let stop = false;
process.on('SIGTERM', () => (stop = true));
process.stdout.write('ready\n');
const interval = 1000 / rate;
let next = performance.now();
const tick = () => {
  if (stop) {
    const s = latencies.sort((a, b) => a - b);
    const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
    process.stdout.write(`${JSON.stringify({ commits: s.length, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: s[s.length - 1] ?? 0 })}\n`);
    db.close();
    process.exit(0);
  }
  const t0 = performance.now();
  insert.run(Date.now(), 'x'.repeat(100));
  latencies.push(performance.now() - t0);
  next += interval;
  setTimeout(tick, Math.max(0, next - performance.now()));
};
tick();

// A separate process committing small transactions to a WAL database at a set rate (default 400/s)
// until SIGTERM, recording when each commit started (ms since the epoch, comparable with the test
// process's clock) and how long it took. The transactions keep the invariants of writer-process.mjs:
//   count(events) == counter.n      and      sum(accounts.balance) == 1000 * count(accounts)
// Usage: node timed-writer-process.mjs <db-file> <out.json> [rate]. Prints "ready" once writing;
// on SIGTERM writes {commits, errors, samples: [[startedAtMs, latencyMs], ...]} to <out.json>.
import fs from 'node:fs';
import Database from 'better-sqlite3';

const [file, out, rateArg] = process.argv.slice(2);
if (!file || !out) throw new Error('usage: timed-writer-process.mjs <db-file> <out.json> [rate]');
const rate = Number(rateArg ?? 400);
const db = new Database(file, { timeout: 10_000 });
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(`
  CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
  INSERT OR IGNORE INTO counter VALUES (1, 0);
  CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
`);
if (db.prepare('SELECT count(*) FROM accounts').pluck().get() === 0) {
  const add = db.prepare('INSERT INTO accounts(balance) VALUES (1000)');
  db.transaction(() => { for (let i = 0; i < 10; i++) add.run(); })();
}
const addEvent = db.prepare('INSERT INTO events(payload) VALUES (?)');
const bump = db.prepare('UPDATE counter SET n = n + 1 WHERE id = 1');
const move = db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
const tx = db.transaction((i) => {
  addEvent.run(`event ${i} ${'x'.repeat(i % 200)}`);
  bump.run();
  const amount = (i % 7) + 1;
  move.run(-amount, (i % 10) + 1);
  move.run(amount, ((i + 3) % 10) + 1);
});

const samples = [];
let errors = 0;
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
process.stdout.write('ready\n');
const interval = 1000 / rate;
let next = performance.now();
const tick = () => {
  if (stopping) {
    db.close();
    fs.writeFileSync(out, JSON.stringify({ commits: samples.length, errors, samples }));
    process.exit(0);
  }
  const startedAt = performance.timeOrigin + performance.now();
  const t0 = performance.now();
  try {
    tx(samples.length);
    samples.push([startedAt, performance.now() - t0]);
  } catch (err) {
    errors++;
    process.stderr.write(`writer error: ${err.message}\n`);
  }
  next += interval;
  setTimeout(tick, Math.max(0, next - performance.now()));
};
tick();

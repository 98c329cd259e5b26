// A separate process that commits small transactions to a WAL database as fast as it can, the way a
// busy agent would, until SIGTERM. Invariants a consistent snapshot must satisfy:
//   count(events) == counter.n      and      sum(accounts.balance) == 1000 * count(accounts)
// Prints "ready" once it is writing, and a JSON line {commits, errors} when it stops.
import Database from 'better-sqlite3';

const file = process.argv[2];
if (!file) throw new Error('usage: writer-process.mjs <db-file>');
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

let commits = 0;
let errors = 0;
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
process.stdout.write('ready\n');
const loop = () => {
  if (stopping) {
    db.close();
    process.stdout.write(`${JSON.stringify({ commits, errors })}\n`);
    process.exit(0);
  }
  // Small batches between yields: continuous commits, yet the signal is still noticed.
  for (let k = 0; k < 20; k++) {
    try { tx(commits); commits++; } catch (err) { errors++; process.stderr.write(`writer error: ${err.message}\n`); }
  }
  setImmediate(loop);
};
loop();

// github-sync push vs. the same tree committed and pushed by hand (git add -A && git commit && git
// push), 100,000 rows in 5 tables: the incremental push after 100 changed rows, and a no-op push.
// Usage: npm run bench:sync -- [--rows 100000] [--runs 3]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { syncPush } from '../src/sync/push.js';
import { arg, median } from './lib.js';

const rows = Number(arg('rows', '100000'));
const runs = Number(arg('runs', '3'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-sync-'));
const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@example.invalid', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function makeDb(root: string): string {
  const file = path.join(root, 'db', 'bench.db');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    for (let t = 0; t < 5; t++) {
      db.exec(`CREATE TABLE t${t} (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, note TEXT)`);
      const ins = db.prepare(`INSERT INTO t${t} (name, n, note) VALUES (?, ?, ?)`);
      for (let i = 0; i < rows / 5; i++) ins.run(`row ${i} of table ${t}`, i * 7, `some text for row ${i}`);
    }
  })();
  db.close();
  return file;
}

function change100(file: string, round: number): void {
  const db = new Database(file);
  db.transaction(() => {
    for (let k = 0; k < 100; k++) db.prepare(`UPDATE t${k % 5} SET note = ? WHERE id = ?`).run(`changed in round ${round}`, 1 + ((k * 997 + round * 31) % (rows / 5)));
  })();
  db.close();
}

async function main(): Promise<void> {
  const bare = path.join(work, 'remote.git');
  git(work, 'init', '-q', '--bare', '-b', 'main', bare);
  const root = path.join(work, 'root');
  const file = makeDb(root);
  writeConfigFile(root, { sync: { github: { remote_url: bare, branch: 'main' } } });
  let t = Date.now();
  await syncPush(loadConfig(root));
  console.log(`${rows} rows in 5 tables; first push ${((Date.now() - t) / 1000).toFixed(2)} s`);

  // The hand-made reference works in its own clone: the same materialized tree, then plain git.
  const handBare = path.join(work, 'hand.git');
  git(work, 'init', '-q', '--bare', '-b', 'main', handBare);
  const hand = path.join(work, 'hand');
  git(work, 'clone', '-q', handBare, hand);
  const mirror = path.join(root, 'sync', 'repo');
  const copyTree = () => {
    for (const n of fs.readdirSync(hand)) if (n !== '.git') fs.rmSync(path.join(hand, n), { recursive: true, force: true });
    for (const n of fs.readdirSync(mirror)) if (n !== '.git') fs.cpSync(path.join(mirror, n), path.join(hand, n), { recursive: true });
  };
  copyTree();
  git(hand, 'add', '-A');
  git(hand, 'commit', '-q', '-m', 'first');
  git(hand, 'push', '-q', 'origin', 'HEAD:main');

  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 1; r <= runs; r++) {
    change100(file, r);
    t = Date.now();
    const res = await syncPush(loadConfig(root));
    ours.push(Date.now() - t);
    if (res.status !== 'pushed') throw new Error(`expected a push, got ${res.status}`);
    copyTree(); // the same tree, produced by our materializer; only git is timed
    t = Date.now();
    git(hand, 'add', '-A');
    git(hand, 'commit', '-q', '-m', `round ${r}`);
    git(hand, 'push', '-q', 'origin', 'HEAD:main');
    theirs.push(Date.now() - t);
  }
  const commitsBefore = git(work, '--git-dir', bare, 'rev-list', '--count', 'main').trim();
  const noop: number[] = [];
  for (let r = 0; r < runs; r++) {
    t = Date.now();
    const res = await syncPush(loadConfig(root));
    noop.push(Date.now() - t);
    if (res.status !== 'no_changes') throw new Error(`a no-op push said ${res.status}`);
  }
  const commitsAfter = git(work, '--git-dir', bare, 'rev-list', '--count', 'main').trim();
  const inc = median(ours);
  const ref = median(theirs);
  console.log(`incremental push, 100 changed rows (export + commit + push)   ${(inc / 1000).toFixed(2)} s`);
  console.log(`git add -A && git commit && git push of the same tree by hand  ${(ref / 1000).toFixed(2)} s`);
  console.log(`ratio ${(inc / ref).toFixed(2)} (target <= 2.0) ${inc / ref <= 2 ? 'MET' : 'MISSED'}`);
  console.log(`no-op push ${(median(noop) / 1000).toFixed(2)} s; commits before ${commitsBefore}, after ${commitsAfter}: ${commitsBefore === commitsAfter ? 'no commit (MET)' : 'made a commit (MISSED)'}`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// Page images against VACUUM INTO (issue 16): read speed on a ~100 MB WAL database, what each does
// to a writer committing ~650 transactions a second (p99/max commit latency), peak RSS of a page
// copy, and the size of a page delta after ~1% row churn next to the full image compressed.
// Usage: node --import tsx bench/page-image.ts [--mb 100] [--seconds 6]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { generateSet } from './generate.js';
import { arg, median, startRateWriter } from './lib.js';
import { formatBytes } from '../src/core/size-format.js';
import { openPageImage } from '../src/pages/image.js';
import { copyPageImage, imageFileChunks } from '../src/pages/image-file.js';
import { writeDelta } from '../src/pages/delta.js';
import { encodePageIndex } from '../src/pages/page-index.js';
import { chooseCodec, compressor } from '../src/snapshot/codec.js';

// A child that copies one page image and reports its own peak RSS: `--child-copy <src> <out>`.
if (process.argv[2] === '--child-copy') {
  const copied = await copyPageImage(process.argv[3]!, process.argv[4]!);
  process.stdout.write(`${JSON.stringify({ bytes: copied.bytes, maxRssKb: process.resourceUsage().maxRSS })}\n`);
  process.exit(0);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-bench-pages-'));
const seconds = Number(arg('seconds', '6'));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mbps = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

function vacuumInto(src: string, dest: string): void {
  fs.rmSync(dest, { force: true });
  const db = new Database(src, { timeout: 10_000 });
  db.prepare('VACUUM INTO ?').run(dest);
  db.close();
}

function readImageOnly(src: string): number {
  const img = openPageImage(src);
  let bytes = 0;
  for (const c of img.chunks()) bytes += c.data.length;
  img.close();
  return bytes;
}

async function main(): Promise<void> {
  const set = generateSet(path.join(work, 'set'), Number(arg('mb', '100')) / 0.35 / 1.3);
  const src = set.files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
  const size = fs.statSync(src).size;
  console.log(`source: ${path.basename(src)}, ${formatBytes(size)}, WAL mode, page cache warm`);

  // 1. Speed, no writer.
  const t = (f: () => unknown) => { const s = performance.now(); f(); return performance.now() - s; };
  const readMs = median([0, 1, 2].map(() => t(() => readImageOnly(src))));
  const copies: number[] = [];
  for (let i = 0; i < 3; i++) {
    fs.rmSync(path.join(work, 'img.db'), { force: true });
    const s = performance.now();
    await copyPageImage(src, path.join(work, 'img.db'));
    copies.push(performance.now() - s);
  }
  const copyMs = median(copies);
  const vacMs = median([0, 1, 2].map(() => t(() => vacuumInto(src, path.join(work, 'vac.db')))));
  console.log(`page image, read only          ${(readMs / 1000).toFixed(2)} s  ${mbps(size, readMs)}`);
  console.log(`page image + index + file      ${(copyMs / 1000).toFixed(2)} s  ${mbps(size, copyMs)}`);
  console.log(`VACUUM INTO                    ${(vacMs / 1000).toFixed(2)} s  ${mbps(size, vacMs)}`);

  const child = spawnSync(process.execPath, ['--import', 'tsx', 'bench/page-image.ts', '--child-copy', src, path.join(work, 'child.db')], { encoding: 'utf8' });
  const rss = JSON.parse(child.stdout.trim().split('\n').pop()!) as { maxRssKb: number };
  console.log(`peak RSS of a process copying a page image of ${formatBytes(size)}: ${formatBytes(rss.maxRssKb * 1024)}`);

  // 2. A writer at ~650 tx/s: alone, under repeated page images, under repeated VACUUM INTO.
  const phase = async (name: string, work_: (() => Promise<void>) | null) => {
    const writer = await startRateWriter(src);
    const until = Date.now() + seconds * 1000;
    let runs = 0;
    if (!work_) await sleep(seconds * 1000);
    else while (Date.now() < until) { await work_(); runs++; await sleep(50); }
    const s = await writer.stop();
    console.log(`${name.padEnd(30)} p50 ${s.p50_ms.toFixed(2)} ms  p99 ${s.p99_ms.toFixed(2)} ms  max ${s.max_ms.toFixed(1)} ms  (${s.commits} commits${work_ ? `, ${runs} copies` : ''})`);
    return s;
  };
  let heldMax = 0;
  await phase('writer alone (baseline)', null);
  await phase('during page images', async () => {
    fs.rmSync(path.join(work, 'img.db'), { force: true });
    const c = await copyPageImage(src, path.join(work, 'img.db'));
    heldMax = Math.max(heldMax, c.writersHeldMs);
  });
  console.log(`  page image held the write lock at most ${heldMax.toFixed(2)} ms`);
  await phase('during VACUUM INTO', async () => vacuumInto(src, path.join(work, 'vac.db')));

  // 3. ~1% row churn on the largest table, then a delta against the image before it.
  const before = await copyPageImage(src, path.join(work, 'before.db'));
  const db = new Database(src);
  const table = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name DESC").pluck().all() as string[];
  const big = table.map((n) => [n, Number(db.prepare(`SELECT count(*) FROM "${n}"`).pluck().get())] as const).sort((a, b) => b[1] - a[1])[0]!;
  const [name, rows] = big;
  const cols = (db.prepare(`PRAGMA table_info("${name}")`).all() as { name: string; type: string; pk: number }[]);
  const text = cols.find((c) => c.type.toUpperCase() === 'TEXT' && c.pk === 0)!.name;
  const ids = db.prepare(`SELECT rowid FROM "${name}"`).pluck().all() as number[];
  const pick = (n: number) => Array.from({ length: n }, () => ids[Math.floor(Math.random() * ids.length)]!);
  db.transaction(() => {
    for (const id of pick(Math.round(rows * 0.005))) db.prepare(`UPDATE "${name}" SET "${text}" = "${text}" || ' edited' WHERE rowid = ?`).run(id);
    for (const id of pick(Math.round(rows * 0.0025))) db.prepare(`DELETE FROM "${name}" WHERE rowid = ?`).run(id);
    const copyCols = cols.filter((c) => c.pk === 0).map((c) => `"${c.name}"`).join(', ');
    for (const id of pick(Math.round(rows * 0.005))) db.prepare(`INSERT INTO "${name}"(${copyCols}) SELECT ${copyCols} FROM "${name}" WHERE rowid = ?`).run(id);
  })();
  db.close();
  const after = await copyPageImage(src, path.join(work, 'after.db'));
  const codec = chooseCodec('auto');
  const delta = await writeDelta({ out: path.join(work, 'after.delta'), base: { snapshotId: 'before', db: 'bench', index: before.index }, pageSize: after.pageSize, pageCount: after.pageCount, chunks: imageFileChunks(path.join(work, 'after.db'), after.pageSize), codec });
  const comp = compressor(codec);
  const sink = pipeline(comp.output, fs.createWriteStream(path.join(work, 'after.full')));
  for (const c of imageFileChunks(path.join(work, 'after.db'), after.pageSize)) if (!comp.input.write(c.data)) await new Promise<void>((r) => comp.input.once('drain', () => r()));
  comp.input.end();
  await Promise.all([comp.done, sink]);
  const fullBytes = fs.statSync(path.join(work, 'after.full')).size;
  console.log(`~1% churn on ${name} (${rows} rows): ${delta.changedPages} of ${after.pageCount} pages changed; delta ${formatBytes(delta.bytes)} (${codec}) vs full ${formatBytes(fullBytes)}: ${(delta.bytes / fullBytes).toFixed(3)}x`);
  console.log(`page-hash index: ${formatBytes(encodePageIndex(after.index).length)} for ${after.pageCount} pages (${(encodePageIndex(after.index).length / after.pageCount * 1e5 / 1e6).toFixed(2)} MB per 100k pages)`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

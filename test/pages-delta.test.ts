import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WbError, describeError } from '../src/core/errors.js';
import { rejectionText } from './support/errors.js';
import { hasZstd } from '../src/snapshot/codec.js';
import type { Codec } from '../src/snapshot/manifest.js';
import { applyDelta, readDeltaHeader, writeDelta } from '../src/pages/delta.js';
import type { PageChunk } from '../src/pages/image.js';
import { copyPageImage, imageFileChunks } from '../src/pages/image-file.js';
import { decodePageIndex, encodePageIndex, hashPage, PAGE_INDEX_HEADER_BYTES, PageIndexBuilder, type PageHashIndex } from '../src/pages/page-index.js';
import { integrityCheck, rmrf, tempRoot } from './support/fixtures.js';
import { Rng } from './support/sqlite-gen.js';

let dir: string;
beforeEach(() => {
  dir = tempRoot('wb-pages-delta-');
});
afterEach(() => rmrf(dir));

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');
const codecs: Codec[] = hasZstd() ? ['zstd', 'gzip'] : ['gzip'];

function indexOf(image: Buffer, pageSize: number, width = 8): PageHashIndex {
  const b = new PageIndexBuilder(pageSize, width);
  b.add(image);
  return b.finish();
}

/** `image` as chunks of `per` pages (the way openPageImage hands them out). */
function* chunksOf(image: Buffer, pageSize: number, per: number): Generator<PageChunk> {
  const pages = image.length / pageSize;
  for (let first = 1; first <= pages; first += per) {
    const count = Math.min(per, pages - first + 1);
    yield { first, count, data: Buffer.from(image.subarray((first - 1) * pageSize, (first - 1 + count) * pageSize)) };
  }
}

/** Random page-level edits: overwrite some pages, append, or cut the image. */
function mutate(rng: Rng, image: Buffer, pageSize: number): Buffer {
  const pages = image.length / pageSize;
  const out = Buffer.from(image);
  const changes = rng.int(0, Math.max(1, Math.floor(pages / 4)));
  for (let i = 0; i < changes && pages > 0; i++) {
    const p = rng.int(0, pages - 1);
    const at = p * pageSize + rng.int(0, pageSize - 8);
    out.writeUInt32BE(rng.int(0, 0xffffffff), at); // often a few bytes, like a row update
  }
  const shape = rng.int(0, 9);
  if (shape < 2) {
    const add = rng.int(1, 6);
    const extra = Buffer.alloc(add * pageSize);
    for (let i = 0; i < extra.length; i += 4) extra.writeUInt32BE(rng.int(0, 0xffffffff), i);
    return Buffer.concat([out, extra]);
  }
  if (shape < 4 && pages > 2) return out.subarray(0, rng.int(1, pages - 1) * pageSize);
  return out;
}

function randomImage(rng: Rng, pages: number, pageSize: number): Buffer {
  const img = Buffer.alloc(pages * pageSize);
  for (let i = 0; i < img.length; i += 64) img.writeUInt32BE(rng.int(0, 0xffffffff), i); // sparse: compressible, distinct per page
  return img;
}

describe('the page-hash index', () => {
  it('encodes and decodes exactly, with the header the format describes', () => {
    const rng = new Rng(7);
    for (const [pageSize, pages, width] of [[1024, 0, 8], [4096, 37, 8], [65536, 3, 16], [512, 200, 4], [4096, 5, 32]] as const) {
      const index = indexOf(randomImage(rng, pages, pageSize), pageSize, width);
      const bytes = encodePageIndex(index);
      expect(bytes.length).toBe(PAGE_INDEX_HEADER_BYTES + pages * width);
      expect(bytes.subarray(0, 8).toString('latin1')).toBe('WBPGIDX1');
      expect(decodePageIndex(bytes)).toEqual(index);
    }
  });

  it('holds the truncated sha256 of each page and the sha256 of the whole image', () => {
    const rng = new Rng(8);
    const image = randomImage(rng, 10, 4096);
    const index = indexOf(image, 4096);
    expect(index.imageSha256).toBe(sha(image));
    for (let p = 0; p < 10; p++) expect(index.hashes.subarray(p * 8, p * 8 + 8)).toEqual(createHash('sha256').update(image.subarray(p * 4096, (p + 1) * 4096)).digest().subarray(0, 8));
    expect(hashPage(image.subarray(0, 4096), 8)).toEqual(index.hashes.subarray(0, 8));
  });

  it('costs 8 bytes a page: 100 000 pages fit in 800 052 bytes', () => {
    const index: PageHashIndex = { hashWidth: 8, pageSize: 4096, pageCount: 100_000, imageSha256: '0'.repeat(64), hashes: Buffer.alloc(800_000) };
    expect(encodePageIndex(index).length).toBe(800_052);
  });

  it('refuses a damaged or foreign index file', () => {
    const good = encodePageIndex(indexOf(randomImage(new Rng(9), 4, 4096), 4096));
    const cases: [string, Buffer][] = [
      ['wrong magic', Buffer.concat([Buffer.from('NOTANIDX'), good.subarray(8)])],
      ['cut', good.subarray(0, good.length - 1)],
      ['too long', Buffer.concat([good, Buffer.alloc(1)])],
      ['empty', Buffer.alloc(0)],
    ];
    const v2 = Buffer.from(good);
    v2.writeUInt16BE(2, 8);
    cases.push(['version', v2]);
    const w0 = Buffer.from(good);
    w0.writeUInt16BE(0, 10);
    cases.push(['width', w0]);
    const ps = Buffer.from(good);
    ps.writeUInt32BE(3000, 12);
    cases.push(['page size', ps]);
    for (const [what, buf] of cases) {
      expect(() => decodePageIndex(buf), what).toThrow(WbError);
      expect(() => decodePageIndex(buf), what).toThrow(/page-hash index/);
    }
  });
});

describe('page deltas', () => {
  for (const codec of codecs) {
    it(`${codec}: a chain of random page-level generations (change, append, shrink) rebuilds byte-identical, generation after generation`, async () => {
      for (const [seed, pageSize] of [[1, 4096], [2, 1024], [3, 65536], [4, 512]] as const) {
        const rng = new Rng(seed * 100 + (codec === 'zstd' ? 1 : 2));
        let image = randomImage(rng, rng.int(1, pageSize === 65536 ? 6 : 40), pageSize);
        let baseFile = path.join(dir, `g0-${seed}.img`);
        fs.writeFileSync(baseFile, image);
        let baseIndex = indexOf(image, pageSize);
        for (let gen = 1; gen <= 8; gen++) {
          const next = mutate(rng, image, pageSize);
          const deltaFile = path.join(dir, `g${gen}-${seed}.delta`);
          const written = await writeDelta({ out: deltaFile, base: { snapshotId: `snap-${gen - 1}`, db: 'notes', index: baseIndex }, pageSize, pageCount: next.length / pageSize, chunks: chunksOf(next, pageSize, rng.int(1, 5)), codec });
          expect(written.imageSha256).toBe(sha(next));
          expect(written.index).toEqual(indexOf(next, pageSize));
          // Exactly the pages whose hash differs from the base's, plus those past its end.
          let differing = 0;
          for (let p = 0; p < next.length / pageSize; p++) if (p >= image.length / pageSize || !next.subarray(p * pageSize, (p + 1) * pageSize).equals(image.subarray(p * pageSize, (p + 1) * pageSize))) differing++;
          expect(written.changedPages).toBe(differing);
          const header = await readDeltaHeader(deltaFile);
          expect(header.base).toEqual({ snapshotId: `snap-${gen - 1}`, db: 'notes', imageSha256: baseIndex.imageSha256, pageCount: baseIndex.pageCount });
          expect(header.pageCount).toBe(next.length / pageSize);
          const out = path.join(dir, `g${gen}-${seed}.img`);
          const applied = await applyDelta({ base: baseFile, delta: deltaFile, out, expectBase: { snapshotId: `snap-${gen - 1}`, db: 'notes' } });
          expect(applied.imageSha256).toBe(sha(next));
          expect(sha(fs.readFileSync(out))).toBe(sha(next));
          image = next;
          baseFile = out;
          baseIndex = written.index;
        }
      }
    });
  }

  it('a delta of a real database after row changes rebuilds it exactly and opens with integrity ok', async () => {
    const file = path.join(dir, 'live.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); CREATE INDEX notes_body ON notes(body)');
    const add = db.prepare('INSERT INTO notes(body) VALUES (?)');
    db.transaction(() => { for (let i = 0; i < 5000; i++) add.run(`note ${i} ${'w'.repeat(i % 150)}`); })();
    const base = await copyPageImage(file, path.join(dir, 'base.img'));
    db.exec("UPDATE notes SET body = body || ' edited' WHERE id % 97 = 0; DELETE FROM notes WHERE id % 101 = 0");
    db.transaction(() => { for (let i = 0; i < 300; i++) add.run(`late ${i}`); })();
    const now = await copyPageImage(file, path.join(dir, 'now.img'));
    const written = await writeDelta({ out: path.join(dir, 'now.delta'), base: { snapshotId: 'snap-a', db: 'notes', index: base.index }, pageSize: now.pageSize, pageCount: now.pageCount, chunks: imageFileChunks(path.join(dir, 'now.img'), now.pageSize), codec: codecs[0]! });
    expect(written.imageSha256).toBe(now.index.imageSha256);
    expect(written.changedPages).toBeGreaterThan(0);
    expect(written.changedPages).toBeLessThan(now.pageCount);
    await applyDelta({ base: path.join(dir, 'base.img'), delta: path.join(dir, 'now.delta'), out: path.join(dir, 'rebuilt.db') });
    expect(sha(fs.readFileSync(path.join(dir, 'rebuilt.db')))).toBe(now.index.imageSha256);
    expect(integrityCheck(path.join(dir, 'rebuilt.db'))).toBe('ok');
    db.close();
  });

  it('refuses a page-size change as needing a full snapshot, before creating anything', async () => {
    const rng = new Rng(11);
    const base = indexOf(randomImage(rng, 4, 4096), 4096);
    const next = randomImage(rng, 16, 1024);
    const out = path.join(dir, 'x.delta');
    const err = await writeDelta({ out, base: { snapshotId: 'snap-a', db: 'notes', index: base }, pageSize: 1024, pageCount: 16, chunks: chunksOf(next, 1024, 4), codec: 'gzip' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('needs_full');
    expect(describeError(err)).toMatch(/page-size change.*full snapshot/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  describe('refusals when applying', () => {
    async function fixture() {
      const rng = new Rng(12);
      const a = randomImage(rng, 8, 4096);
      const b = mutate(rng, a, 4096);
      fs.writeFileSync(path.join(dir, 'a.img'), a);
      await writeDelta({ out: path.join(dir, 'b.delta'), base: { snapshotId: 'snap-a', db: 'notes', index: indexOf(a, 4096) }, pageSize: 4096, pageCount: b.length / 4096, chunks: chunksOf(b, 4096, 3), codec: 'gzip' });
      return { a, b };
    }
    const before = () => fs.readdirSync(dir).sort();

    it('a missing base: restore_refused, nothing written', async () => {
      await fixture();
      fs.rmSync(path.join(dir, 'a.img'));
      const files = before();
      expect(await rejectionText(applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img') }))).toMatch(/base image is missing.*snap-a/);
      expect(before()).toEqual(files);
    });

    it('a base with other bytes (same size): restore_refused, nothing written', async () => {
      const { a } = await fixture();
      const other = Buffer.from(a);
      other[5000] = other[5000]! ^ 0xff;
      fs.writeFileSync(path.join(dir, 'a.img'), other);
      const files = before();
      const err = await applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img') }).catch((e: unknown) => e);
      expect((err as WbError).code).toBe('restore_refused');
      expect((err as WbError).message).toMatch(/sha256 differs/);
      expect(before()).toEqual(files);
    });

    it('a base of another size, or another snapshot or database than expected: restore_refused, nothing written', async () => {
      const { a } = await fixture();
      const files = before();
      await expect(applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img'), expectBase: { snapshotId: 'snap-z' } })).rejects.toThrow(/base is snapshot snap-a, not snap-z/);
      await expect(applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img'), expectBase: { db: 'tasks' } })).rejects.toThrow(/base is database notes, not tasks/);
      fs.writeFileSync(path.join(dir, 'a.img'), Buffer.concat([a, Buffer.alloc(4096)]));
      await expect(applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img') })).rejects.toThrow(/has 36864 bytes/);
      expect(before()).toEqual(files);
    });

    it('a damaged delta (cut, bit flip inside the compressed body, or not a delta): archive_invalid, no output left', async () => {
      const { b } = await fixture();
      const good = fs.readFileSync(path.join(dir, 'b.delta'));
      const raw = zlib.gunzipSync(good);
      const flipped = Buffer.from(raw);
      flipped[raw.length - 20] = flipped[raw.length - 20]! ^ 1; // inside the recorded image sha256
      const pageFlip = Buffer.from(raw);
      pageFlip[200] = pageFlip[200]! ^ 1; // inside a page: the rebuilt image no longer matches
      const variants: [string, Buffer][] = [
        ['cut', good.subarray(0, Math.floor(good.length / 2))],
        ['sha', zlib.gzipSync(flipped)],
        ['page', zlib.gzipSync(pageFlip)],
        ['trailing', zlib.gzipSync(Buffer.concat([raw, Buffer.from('x')]))],
        ['foreign', Buffer.from('plain text, not a delta')],
      ];
      for (const [what, bytes] of variants) {
        fs.writeFileSync(path.join(dir, 'bad.delta'), bytes);
        const err = await applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'bad.delta'), out: path.join(dir, 'b.img') }).catch((e: unknown) => e);
        expect((err as WbError).code, what).toBe('archive_invalid');
        expect(fs.existsSync(path.join(dir, 'b.img')), what).toBe(false);
        expect(fs.existsSync(path.join(dir, 'b.img.partial')), what).toBe(false);
      }
      // The good delta still applies.
      await applyDelta({ base: path.join(dir, 'a.img'), delta: path.join(dir, 'b.delta'), out: path.join(dir, 'b.img') });
      expect(sha(fs.readFileSync(path.join(dir, 'b.img')))).toBe(sha(b));
    });
  });
});

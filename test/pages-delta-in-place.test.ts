import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WbError } from '../src/core/errors.js';
import { hasZstd } from '../src/snapshot/codec.js';
import type { Codec } from '../src/snapshot/manifest.js';
import { applyDeltaChainInPlace, applyDeltaInPlace, writeDelta } from '../src/pages/delta.js';
import type { PageChunk } from '../src/pages/image.js';
import { PageIndexBuilder, type PageHashIndex } from '../src/pages/page-index.js';
import { rmrf, tempRoot } from './support/fixtures.js';
import { Rng } from './support/sqlite-gen.js';

let dir: string;
beforeEach(() => {
  dir = tempRoot('wb-pages-inplace-');
});
afterEach(() => rmrf(dir));

const sha = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');
const codecs: Codec[] = hasZstd() ? ['zstd', 'gzip'] : ['gzip'];

function indexOf(image: Buffer, pageSize: number): PageHashIndex {
  const b = new PageIndexBuilder(pageSize, 8);
  b.add(image);
  return b.finish();
}

function* chunksOf(image: Buffer, pageSize: number, per: number): Generator<PageChunk> {
  const pages = image.length / pageSize;
  for (let first = 1; first <= pages; first += per) {
    const count = Math.min(per, pages - first + 1);
    yield { first, count, data: Buffer.from(image.subarray((first - 1) * pageSize, (first - 1 + count) * pageSize)) };
  }
}

function randomPages(rng: Rng, pages: number, pageSize: number): Buffer {
  const img = Buffer.alloc(pages * pageSize);
  for (let i = 0; i < img.length; i += 64) img.writeUInt32BE(rng.int(0, 0xffffffff), i);
  return img;
}

/** Some pages edited, then the image cut to `pages` pages or grown with new ones. */
function next(rng: Rng, image: Buffer, pageSize: number, pages: number): Buffer {
  const out = Buffer.from(image);
  const have = image.length / pageSize;
  for (let i = 0; i < Math.max(1, have >> 3); i++) out.writeUInt32BE(rng.int(0, 0xffffffff), rng.int(0, have - 1) * pageSize + rng.int(0, pageSize - 8));
  if (pages <= have) return out.subarray(0, pages * pageSize);
  return Buffer.concat([out, randomPages(rng, pages - have, pageSize)]);
}

async function deltaOf(base: Buffer, image: Buffer, pageSize: number, baseId: string, file: string, codec: Codec = 'gzip'): Promise<string> {
  await writeDelta({ out: file, base: { snapshotId: baseId, db: 'notes', index: indexOf(base, pageSize) }, pageSize, pageCount: image.length / pageSize, chunks: chunksOf(image, pageSize, 3), codec });
  return file;
}

describe('applying a chain of deltas in place', () => {
  for (const codec of codecs) {
    it(`${codec}: a growing, shrinking, shrink-then-grow chain rebuilds each generation byte-identical in one file`, async () => {
      const pageSize = 4096;
      const rng = new Rng(codec === 'zstd' ? 31 : 32);
      const sizes = [10, 25, 25, 7, 3, 40, 12, 12, 1, 30];
      let image = randomPages(rng, sizes[0]!, pageSize);
      const file = path.join(dir, 'image.db');
      fs.writeFileSync(file, image);
      for (let gen = 1; gen < sizes.length; gen++) {
        const newer = next(rng, image, pageSize, sizes[gen]!);
        const delta = await deltaOf(image, newer, pageSize, `snap-${gen - 1}`, path.join(dir, `g${gen}.delta`), codec);
        const applied = await applyDeltaInPlace(file, delta, { snapshotId: `snap-${gen - 1}`, db: 'notes', baseSha256: sha(image), basePageCount: sizes[gen - 1]! });
        expect(applied.pageCount).toBe(sizes[gen]);
        expect(applied.imageSha256).toBe(sha(newer));
        expect(fs.statSync(file).size).toBe(newer.length);
        expect(sha(fs.readFileSync(file)), `generation ${gen}`).toBe(sha(newer));
        image = newer;
      }
    });
  }

  it('an unchanged image (a delta with no pages) leaves the file as it was', async () => {
    const rng = new Rng(33);
    const image = randomPages(rng, 6, 1024);
    const file = path.join(dir, 'image.db');
    fs.writeFileSync(file, image);
    const delta = await deltaOf(image, image, 1024, 'snap-a', path.join(dir, 'same.delta'));
    const applied = await applyDeltaInPlace(file, delta, { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(image) });
    expect(applied.changedPages).toBe(0);
    expect(sha(fs.readFileSync(file))).toBe(sha(image));
  });

  it('a delta made for another base (snapshot, database, image or size) is refused before anything is written', async () => {
    const rng = new Rng(34);
    const a = randomPages(rng, 8, 4096);
    const b = next(rng, a, 4096, 12);
    const file = path.join(dir, 'image.db');
    fs.writeFileSync(file, a);
    const delta = await deltaOf(a, b, 4096, 'snap-a', path.join(dir, 'b.delta'));
    const cases: Array<[string, Parameters<typeof applyDeltaInPlace>[2], RegExp]> = [
      ['snapshot', { snapshotId: 'snap-z', db: 'notes', baseSha256: sha(a) }, /its base is snapshot snap-a/],
      ['database', { snapshotId: 'snap-a', db: 'tasks', baseSha256: sha(a) }, /its base is database notes/],
      ['image', { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(b) }, /another image of that database/],
      ['page count', { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a), basePageCount: 9 }, /has 8 pages, the chain says 9/],
    ];
    for (const [what, expect_, why] of cases) {
      const err = await applyDeltaInPlace(file, delta, expect_).catch((e: unknown) => e);
      expect((err as WbError).code, what).toBe('restore_refused');
      expect((err as WbError).message, what).toMatch(why);
      expect(sha(fs.readFileSync(file)), what).toBe(sha(a));
    }
    // The file is not the base the delta names (one page more): refused, untouched.
    const longer = Buffer.concat([a, Buffer.alloc(4096)]);
    fs.writeFileSync(file, longer);
    const err = await applyDeltaInPlace(file, delta, { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) }).catch((e: unknown) => e);
    expect((err as WbError).code).toBe('restore_refused');
    expect((err as WbError).message).toMatch(/9 pages, the delta's base 8/);
    expect(sha(fs.readFileSync(file))).toBe(sha(longer));
    // A missing image.
    fs.rmSync(file);
    expect(((await applyDeltaInPlace(file, delta, { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) }).catch((e: unknown) => e)) as WbError).message).toMatch(/base image is missing/);
  });

  it('a corrupted delta (cut, flipped compressed byte, bad trailer, trailing bytes, not a delta) is archive_invalid', async () => {
    const rng = new Rng(35);
    const a = randomPages(rng, 8, 4096);
    const b = next(rng, a, 4096, 11);
    const good = fs.readFileSync(await deltaOf(a, b, 4096, 'snap-a', path.join(dir, 'b.delta')));
    const raw = zlib.gunzipSync(good);
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)] = flipped[Math.floor(good.length / 2)]! ^ 0x55;
    const noEnd = Buffer.from(raw);
    noEnd[raw.length - 1] = 0x21;
    const count = Buffer.from(raw);
    count.writeUInt32BE(count.readUInt32BE(raw.length - 44) + 1, raw.length - 44);
    // A grown image whose new pages are not all there: drop the last record (and fix nothing else).
    const variants: Array<[string, Buffer]> = [
      ['cut', good.subarray(0, Math.floor(good.length / 2))],
      ['flipped', flipped],
      ['end marker', zlib.gzipSync(noEnd)],
      ['record count', zlib.gzipSync(count)],
      ['trailing', zlib.gzipSync(Buffer.concat([raw, Buffer.from('x')]))],
      ['foreign', Buffer.from('plain text, not a delta')],
    ];
    for (const [what, bytes] of variants) {
      const file = path.join(dir, `image-${what}.db`);
      fs.writeFileSync(file, a);
      fs.writeFileSync(path.join(dir, 'bad.delta'), bytes);
      const err = await applyDeltaInPlace(file, path.join(dir, 'bad.delta'), { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) }).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(WbError);
      expect((err as WbError).code, what).toBe('archive_invalid');
      expect((err as WbError).message, what).toMatch(/damaged|not a page delta/);
    }
    // The good one applies.
    const file = path.join(dir, 'image.db');
    fs.writeFileSync(file, a);
    await applyDeltaInPlace(file, path.join(dir, 'b.delta'), { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) });
    expect(sha(fs.readFileSync(file))).toBe(sha(b));
  });

  it('a grown image whose delta lacks one of the new pages is archive_invalid', async () => {
    const rng = new Rng(36);
    const a = randomPages(rng, 4, 1024);
    const b = next(rng, a, 1024, 6);
    const raw = zlib.gunzipSync(fs.readFileSync(await deltaOf(a, b, 1024, 'snap-a', path.join(dir, 'b.delta'))));
    // Records end right before the end marker (u32 0) and trailer (44 bytes): drop the last record.
    const end = raw.length - 44 - 4;
    const cut = Buffer.concat([raw.subarray(0, end - (4 + 1024)), raw.subarray(end, end + 4), raw.subarray(end + 4)]);
    cut.writeUInt32BE(cut.readUInt32BE(cut.length - 44) - 1, cut.length - 44);
    fs.writeFileSync(path.join(dir, 'cut.delta'), zlib.gzipSync(cut));
    const file = path.join(dir, 'image.db');
    fs.writeFileSync(file, a);
    const err = await applyDeltaInPlace(file, path.join(dir, 'cut.delta'), { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) }).catch((e: unknown) => e);
    expect((err as WbError).code).toBe('archive_invalid');
    expect((err as WbError).message).toMatch(/grows from 4 to 6 pages but only 1 new pages/);
  });

  describe('a whole chain in one pass (each page written once, from the newest delta holding it)', () => {
    for (const [seed, sizes] of [
      [41, [10, 25, 25, 7, 3, 40, 12, 12, 1, 30]],
      [42, [20, 5, 30]],
      [43, [8, 8, 8, 8]],
      [44, [30, 2, 2, 31]],
    ] as const) {
      it(`sizes ${sizes.join(' -> ')}: byte-identical to the last generation, with each delta's trailer`, async () => {
        const pageSize = 1024;
        const rng = new Rng(seed);
        const gens = [randomPages(rng, sizes[0], pageSize)];
        const steps: Parameters<typeof applyDeltaChainInPlace>[1][number][] = [];
        for (let g = 1; g < sizes.length; g++) {
          gens.push(next(rng, gens[g - 1]!, pageSize, sizes[g]!));
          const file = await deltaOf(gens[g - 1]!, gens[g]!, pageSize, `snap-${g - 1}`, path.join(dir, `c${g}.delta`));
          steps.push({ file, base: { snapshotId: `snap-${g - 1}`, db: 'notes', baseSha256: sha(gens[g - 1]!), basePageCount: sizes[g - 1]! }, label: `snap-${g}` });
        }
        const image = path.join(dir, 'chain.db');
        fs.writeFileSync(image, gens[0]!);
        const applied = await applyDeltaChainInPlace(image, steps);
        expect(sha(fs.readFileSync(image))).toBe(sha(gens.at(-1)!));
        expect(applied.pageCount).toBe(sizes.at(-1));
        expect(applied.steps.map((x) => x.imageSha256)).toEqual(gens.slice(1).map(sha));
        expect(applied.steps.map((x) => x.pageCount)).toEqual(sizes.slice(1));
        // Never more pages written than the deltas hold, and a page two deltas hold is written once.
        expect(applied.pagesWritten).toBeLessThanOrEqual(applied.steps.reduce((n, x) => n + x.changedPages, 0));
      });
    }

    it('a delta in the middle naming another base is refused before any page is written; a damaged one names its snapshot', async () => {
      const rng = new Rng(45);
      const a = randomPages(rng, 8, 1024);
      const b = next(rng, a, 1024, 10);
      const c = next(rng, b, 1024, 6);
      const d1 = await deltaOf(a, b, 1024, 'snap-a', path.join(dir, 'b.delta'));
      const d2 = await deltaOf(b, c, 1024, 'snap-b', path.join(dir, 'c.delta'));
      const image = path.join(dir, 'chain.db');
      fs.writeFileSync(image, a);
      const wrong = await applyDeltaChainInPlace(image, [
        { file: d1, base: { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) } },
        { file: d2, base: { snapshotId: 'snap-b', db: 'notes', baseSha256: sha(a) }, label: 'snap-c' },
      ]).catch((e: unknown) => e);
      expect((wrong as WbError).code).toBe('restore_refused');
      expect((wrong as WbError).message).toMatch(/c\.delta of snap-c cannot be applied.*another image/);
      expect(sha(fs.readFileSync(image))).toBe(sha(a));
      const raw = zlib.gunzipSync(fs.readFileSync(d2));
      fs.writeFileSync(d2, zlib.gzipSync(raw.subarray(0, raw.length - 30)));
      const cut = await applyDeltaChainInPlace(image, [
        { file: d1, base: { snapshotId: 'snap-a', db: 'notes', baseSha256: sha(a) } },
        { file: d2, base: { snapshotId: 'snap-b', db: 'notes', baseSha256: sha(b) }, label: 'snap-c' },
      ]).catch((e: unknown) => e);
      expect((cut as WbError).code).toBe('archive_invalid');
      expect((cut as WbError).message).toMatch(/c\.delta of snap-c is damaged/);
    });
  });
});

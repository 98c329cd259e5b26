import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WbError } from '../src/core/errors.js';
import { RESULT_BYTE_BUDGET, SUMMARY_MAX, boundResult, boundSummary, pageResult } from '../src/mcp/bounded.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot('wb-bounded-unit-');
});
afterEach(() => rmrf(root));

// A fixed object with many fields, a record, an array of items with nested records, and a token.
const Item = z.object({ name: z.string(), rows: z.record(z.string(), z.number()), note: z.string() });
const Schema = z.object({
  a: z.string(), b: z.string(), c: z.string(), d: z.string(), e: z.string(), f: z.string(),
  token: z.string().optional(),
  counts: z.record(z.string(), z.number()),
  items: z.array(Item),
});

function big(n: number, noteChars = 10): z.infer<typeof Schema> {
  return {
    a: 'a', b: 'b', c: 'c', d: 'd', e: 'e', f: 'f',
    token: 'tok-123',
    counts: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])),
    items: Array.from({ length: n }, (_, i) => ({ name: `item${i}`, rows: Object.fromEntries(Array.from({ length: n }, (_, j) => [`t${j}`, j])), note: 'x'.repeat(noteChars) })),
  };
}

describe('bounded results', () => {
  it('a small result is returned whole, with no lists section and nothing stored', () => {
    const b = boundResult(root, 'tool', Schema, big(3));
    expect(b.result).toEqual(big(3));
    expect(fs.existsSync(path.join(root, 'mcp-results'))).toBe(false);
  });

  it('cuts records and arrays, never the fields of a fixed object, and keeps the result valid', () => {
    const b = boundResult(root, 'tool', Schema, big(100));
    expect(Schema.extend({ lists: z.unknown() }).parse(b.result)).toBeTruthy();
    expect(Object.keys(b.result)).toEqual(['lists', 'a', 'b', 'c', 'd', 'e', 'f', 'token', 'counts', 'items']);
    expect(b.cut.map((c) => c.path)).toEqual(expect.arrayContaining(['counts', 'items', 'items[0].rows']));
    expect(Buffer.byteLength(JSON.stringify(b.result))).toBeLessThanOrEqual(RESULT_BYTE_BUDGET);
  });

  it('items too large for the budget shrink the sample; long strings are cut and kept whole in the file', () => {
    const b = boundResult(root, 'tool', Schema, big(60, 5000));
    expect(Buffer.byteLength(JSON.stringify(b.result))).toBeLessThanOrEqual(RESULT_BYTE_BUDGET);
    const lists = b.result.lists as { strings_cut: number; result_file: string };
    expect(lists.strings_cut).toBeGreaterThan(0);
    expect((b.result.items as Array<{ note: string }>)[0]!.note).toMatch(/^x{1000}… \[4000 more characters in lists\.result_file\]$/);
    expect(JSON.parse(fs.readFileSync(lists.result_file, 'utf8')).items[59].note).toHaveLength(5000);
  });

  it('pages a record and an array to the end, every entry exactly once, in order', () => {
    const first = boundResult(root, 'tool', Schema, big(100));
    for (const [p, read] of [
      ['counts', (r: Record<string, unknown>) => Object.keys(r.counts as object)],
      ['items', (r: Record<string, unknown>) => (r.items as Array<{ name: string }>).map((i) => i.name)],
    ] as const) {
      const seen = read(first.result);
      let cursor = first.cut.find((c) => c.path === p)!.next_cursor;
      while (cursor) {
        const page = pageResult(root, 'tool', Schema, cursor, 7);
        seen.push(...read(page.result));
        cursor = page.cut.find((c) => c.path === p)!.next_cursor;
      }
      expect(seen).toEqual(read(big(100) as Record<string, unknown>));
    }
  });

  it('refuses a cursor of another tool, a forged one, and one whose result was pruned', () => {
    const first = boundResult(root, 'tool', Schema, big(100));
    const cursor = first.cut[0]!.next_cursor!;
    expect(() => pageResult(root, 'other', Schema, cursor)).toThrow(/belongs to tool, not other/);
    expect(() => pageResult(root, 'tool', Schema, 'eyJ2IjoxfQ')).toThrow(WbError);
    const forged = Buffer.from(JSON.stringify({ v: 1, t: 'tool', r: '../../etc/passwd', p: ['items'], o: 1 })).toString('base64url');
    expect(() => pageResult(root, 'tool', Schema, forged)).toThrow(/not a cursor this server returned/);
    fs.rmSync(path.join(root, 'mcp-results'), { recursive: true });
    expect(() => pageResult(root, 'tool', Schema, cursor)).toThrow(/was removed/);
  });

  it('a data root where the whole result cannot be stored still gets the sample, without cursors', () => {
    fs.writeFileSync(path.join(root, 'mcp-results'), 'not a folder');
    const b = boundResult(root, 'tool', Schema, big(100));
    expect(b.result.lists).toMatchObject({ result_file: null });
    expect(b.cut.length).toBeGreaterThan(0);
    expect(b.cut.every((c) => c.next_cursor === null)).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(b.result))).toBeLessThanOrEqual(RESULT_BYTE_BUDGET);
  });

  it('a long summary keeps its head and its tail (where a confirm token sits)', () => {
    const text = boundSummary(`Restore ${'db, '.repeat(2000)} with confirm_token "T-1".`, { result: {}, cut: [], resultFile: null });
    expect(text.length).toBeLessThan(SUMMARY_MAX + 200);
    expect(text).toMatch(/^Restore db, /);
    expect(text).toMatch(/confirm_token "T-1"\.$/);
  });
});

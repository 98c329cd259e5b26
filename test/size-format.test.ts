import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatRate } from '../src/core/size-format.js';
import { CARD_JS } from '../src/http/card-assets.js';
import { REPO_ROOT } from './support/fixtures.js';

describe('sizes are written one way (IEC: B, KiB, MiB, GiB)', () => {
  it.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [103_100, '100.7 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
    [5.5 * 1024 ** 2, '5.5 MiB'],
    [2 * 1024 ** 3 - 64 * 1024 ** 2, '1.9 GiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
  ])('%d bytes -> %s', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });

  it('rates use the same units', () => {
    expect(formatRate(12.3 * 1024 ** 2)).toBe('12.3 MiB/s');
  });

  it('the card formats with the same function', () => {
    expect(CARD_JS).toContain(formatBytes.toString());
  });

  it('no other code formats sizes by hand ("MB", "kB", "/ 1e6 ... toFixed")', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, e.name);
        if (e.isDirectory()) walk(full);
        else if (e.name.endsWith('.ts') && !full.endsWith(path.join('src', 'size-format.ts'))) {
          fs.readFileSync(full, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (/^\s*(\/\/|\*)/.test(line)) return; // comments may speak of sizes
              if (/['`"][^'`"]*\b\d*\s?(kB|MB|GB|KB)\b/.test(line) || /toFixed\([^)]*\)[^;]*['`](?:\s?)(KiB|MiB|GiB|kB|MB|GB)/.test(line) || /\/ ?(1e[369]|1024 ?\*\* ?\d)\)?\.toFixed/.test(line)) {
                offenders.push(`${path.relative(REPO_ROOT, full)}:${i + 1}: ${line.trim()}`);
              }
            });
        }
      }
    };
    for (const dir of ['src', 'capabilities', 'health']) walk(path.join(REPO_ROOT, dir));
    expect(offenders).toEqual([]);
  });
});

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { joinFiles, splitFile } from '../src/remote/parts.js';
import { rmrf, tempRoot } from './support/fixtures.js';

describe('splitFile / joinFiles', () => {
  let dir = '';
  afterEach(() => rmrf(dir));

  it('round-trips a file through many parts without piling listeners on the output', async () => {
    dir = tempRoot();
    const original = path.join(dir, 'archive.tar.zst');
    const bytes = crypto.randomBytes(12 * 1024 + 100);
    fs.writeFileSync(original, bytes);
    const parts = await splitFile(original, 1024, path.join(dir, 'parts'));
    expect(parts).toHaveLength(13);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const joined = path.join(dir, 'joined.tar.zst');
      await joinFiles(parts, joined);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on a later tick
      expect(fs.readFileSync(joined).equals(bytes)).toBe(true);
      expect(warnings.filter((w) => w.includes('MaxListeners'))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a missing part rejects and leaves no half-joined file', async () => {
    dir = tempRoot();
    const original = path.join(dir, 'a');
    fs.writeFileSync(original, crypto.randomBytes(5000));
    const parts = await splitFile(original, 1024, path.join(dir, 'parts'));
    fs.rmSync(parts[2]!);
    await expect(joinFiles(parts, path.join(dir, 'joined'))).rejects.toThrow(/ENOENT/);
    expect(fs.existsSync(path.join(dir, 'joined'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'joined.joining'))).toBe(false);
  });
});

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../src/core/durable-file.js';
import { rmrf, tempRoot } from './support/fixtures.js';

describe('writeFileAtomic', () => {
  let dir = '';
  afterEach(() => rmrf(dir));

  it('replaces the content and leaves no temporary file', () => {
    dir = tempRoot();
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, 'old');
    writeFileAtomic(file, 'new content\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('new content\n');
    writeFileAtomic(file, 'with a named temporary\n', `${file}.tmp`);
    expect(fs.readFileSync(file, 'utf8')).toBe('with a named temporary\n');
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
  });

  it('a rename that fails throws, and removes the temporary file', () => {
    dir = tempRoot();
    const target = path.join(dir, 'occupied');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    expect(() => writeFileAtomic(target, 'text')).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(fs.readdirSync(dir)).toEqual(['occupied']);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).toBe('x');
  });

  it.runIf(process.getuid?.() === 0)('a full disk keeps the old content and leaves no temporary file', () => {
    dir = tempRoot();
    const disk = path.join(dir, 'disk');
    fs.mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', disk]);
    try {
      const file = path.join(disk, 'wb-backup.yaml');
      fs.writeFileSync(file, 'retention: {}\n');
      let err: NodeJS.ErrnoException | undefined;
      try {
        writeFileAtomic(file, 'x'.repeat(256 * 1024));
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      expect(err?.code).toBe('ENOSPC');
      expect(fs.readFileSync(file, 'utf8')).toBe('retention: {}\n');
      expect(fs.readdirSync(disk)).toEqual(['wb-backup.yaml']);
    } finally {
      execFileSync('umount', [disk]);
    }
  });
});

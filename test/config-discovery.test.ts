import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { byCodeUnit } from '../src/core/text-order.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

describe('database discovery under <root>/db/', () => {
  let root = '';
  afterEach(() => rmrf(root));

  it('names every *.db by its relative path and lists them in the same order on every machine', () => {
    root = tempRoot();
    for (const rel of ['Zeta.db', 'alpha.db', 'sub/beta.db', 'émile.db', 'notes.txt']) {
      const file = path.join(root, 'db', rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      if (rel.endsWith('.db')) makeNotesDb(file, 1);
      else fs.writeFileSync(file, 'not a database');
    }
    const config = loadConfig(root);
    expect(config.discovered).toBe(true);
    // Code-unit order of the files (upper case before lower, accented letters last), not the
    // locale's collation, which would give alpha, émile, sub.beta, Zeta on most machines.
    // émile keeps its own name (escaped, names.ts), no longer one it could share with xmile.
    expect(config.databases.map((d) => d.name)).toEqual(['Zeta', 'alpha', 'sub.beta', '%C3%A9mile']);
    expect(config.databases.map((d) => path.relative(root, d.path))).toEqual([path.join('db', 'Zeta.db'), path.join('db', 'alpha.db'), path.join('db', 'sub', 'beta.db'), path.join('db', 'émile.db')]);
  });
});

describe('names of discovered databases', () => {
  let root = '';
  afterEach(() => rmrf(root));

  it('gives db/émile.db, db/xmile.db and db/keep.db three names, the same on every run', () => {
    root = tempRoot();
    for (const n of ['émile', 'xmile', 'keep']) makeNotesDb(path.join(root, 'db', `${n}.db`), 1);
    const runs = Array.from({ length: 5 }, () => loadConfig(root).databases.map((d) => d.name));
    expect(runs[0]).toEqual(['keep', 'xmile', '%C3%A9mile']);
    for (const names of runs) expect(names).toEqual(runs[0]);
  });

  it('keeps apart files an old mapping merged: a dot in a name and a folder, a leading _ and an x, NFC and NFD', () => {
    root = tempRoot();
    for (const rel of ['a.b.db', 'a/b.db', '_x.db', 'xx.db', 'e\u0301.db', '\u00e9.db']) makeNotesDb(path.join(root, 'db', rel), 1);
    const names = loadConfig(root).databases.map((d) => d.name);
    expect(names).toEqual(['%5Fx', 'a.b', 'a%2Eb', 'e%CC%81', 'xx', '%C3%A9']);
  });
});

describe('names that cannot be used', () => {
  let root = '';
  afterEach(() => rmrf(root));

  it('a file named just .db has no name: it is listed as skipped with the reason, the others are found', () => {
    root = tempRoot();
    makeNotesDb(path.join(root, 'db', '.db'), 1);
    makeNotesDb(path.join(root, 'db', 'ok.db'), 1);
    const config = loadConfig(root);
    expect(config.databases.map((d) => d.name)).toEqual(['ok']);
    expect(config.skipped).toEqual([{ name: '.db', reason: 'the file is named just ".db", so it has no name' }]);
  });

  it('the configuration takes the names discovery gives and refuses names that would climb out of a folder', () => {
    root = tempRoot();
    writeConfigFile(root, { databases: { '%C3%A9mile': { path: 'db/émile.db' }, 'sub.beta': { path: 'db/sub/beta.db' } } });
    expect(loadConfig(root).databases.map((d) => d.name)).toEqual(['%C3%A9mile', 'sub.beta']);
    expect(() => writeConfigFile(root, { databases: { '../../x': { path: 'db/x.db' } } })).toThrow(/databases\.\.\.\/\.\.\/x: "\.\.\/\.\.\/x" is not a database name: names use letters/);
  });
});

describe('byCodeUnit', () => {
  it('orders by UTF-16 code unit and is a consistent comparator', () => {
    expect(['b', 'B', 'a', 'é', 'A', 'a'].sort(byCodeUnit)).toEqual(['A', 'B', 'a', 'a', 'b', 'é']);
    expect(byCodeUnit('x', 'x')).toBe(0);
    expect(byCodeUnit('a', 'b')).toBe(-1);
    expect(byCodeUnit('b', 'a')).toBe(1);
  });
});

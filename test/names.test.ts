import { describe, expect, it } from 'vitest';
import {
  MAX_LOGICAL_NAME,
  MAX_SEGMENT,
  archiveEntry,
  decodeSegment,
  encodeSegment,
  escapeName,
  isSafeLogicalName,
  isSafeSegment,
  logicalNameForPath,
  logicalNameProblem,
  mirrorDocumentDir,
  mirrorTableFile,
  parseMirrorPath,
  pathForLogicalName,
  unescapeName,
} from '../src/root/names.js';
import { Rng } from './support/sqlite-gen.js';

/** The suites' one seeded generator (mulberry32): the same seed gives the same names on every run. */
const rng = (seed: number): (() => number) => {
  const r = new Rng(seed);
  return () => r.next();
};

// Pieces that make names awkward: separators, dots, case pairs, accents in both normal forms,
// Windows device names, controls, lone surrogates, characters that case-fold to ASCII.
const PIECES = [
  'a', 'A', 'z', 'Z', '0', '9', '_', '-', '.', '..', '/', '\\', ' ', '%', '%25', '~', ':', '*', '?', '"', '<', '>', '|',
  '\0', '\n', '\t', '\x7f', '\u0085', 'é', 'e\u0301', 'É', 'ß', 'ss', 'İ', 'ı', '\u212a', 'k', 'K', 'ﬀ', '日本', '🙂',
  '\ud800', '\udc00', 'con', 'CON', 'nul', 'com1', 'LPT9', 'aux', '.txt', 'x', '42', '-7', 'émile', 'xmile', 'keep',
];

function randomName(next: () => number): string {
  const kind = next();
  if (kind < 0.05) return '';
  if (kind < 0.1) return 'n'.repeat(1 + Math.floor(next() * 300)) + (next() < 0.5 ? 'é' : '');
  let out = '';
  const parts = 1 + Math.floor(next() * 6);
  for (let i = 0; i < parts; i++) {
    const r = next();
    out += r < 0.7 ? PIECES[Math.floor(next() * PIECES.length)]! : String.fromCharCode(Math.floor(next() * 0x10000));
  }
  return out;
}

function sample(seed: number, n: number): string[] {
  const next = rng(seed);
  const names = new Set<string>(PIECES);
  while (names.size < n) names.add(randomName(next));
  // Every name in both normal forms and both cases too: the pairs a macOS or Windows clone would merge.
  for (const name of [...names]) for (const v of [name.normalize('NFC'), name.normalize('NFD'), name.toUpperCase(), name.toLowerCase()]) names.add(v);
  return [...names];
}

const NAMES = sample(20261129, 3000);

describe('path segments of names taken from data', () => {
  it('leaves ordinary lowercase names as they are, so existing mirrors and snapshots keep their paths', () => {
    for (const name of ['notes', 'tasks', 'task_metadata', 'a-b', 'x1']) expect(encodeSegment(name)).toBe(name);
  });

  it('escapes what a file system would misread: separators, dots, case, controls, accents, devices', () => {
    expect(encodeSegment('../../../../escape')).toBe('%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fescape');
    expect(encodeSegment('Notes')).toBe('%4Eotes');
    expect(encodeSegment('émile')).toBe('%C3%A9mile');
    expect(encodeSegment('e\u0301mile')).toBe('e%CC%81mile');
    expect(encodeSegment('con')).toBe('%63on');
    expect(encodeSegment('42')).toBe('%342');
    expect(encodeSegment('')).toBe('%');
    expect(encodeSegment('a.')).toBe('a%2E');
    expect(encodeSegment('a ')).toBe('a%20');
  });

  it('round-trips every generated name that fits, and never gives two names one segment, even case-folded', () => {
    const seen = new Map<string, string>();
    for (const name of NAMES) {
      const seg = encodeSegment(name);
      const decoded = decodeSegment(seg);
      if (escapeName(name).length <= MAX_SEGMENT) expect(decoded).toEqual({ text: name });
      else expect(decoded).toEqual({ cut: true });
      // Case-insensitive (macOS, Windows) and normalizing (macOS) file systems: one folded key per name.
      const folded = seg.toLowerCase().normalize('NFD');
      const other = seen.get(folded);
      if (other !== undefined) expect({ name, other, seg }).toBe('two names share a segment');
      seen.set(folded, name);
      expect(seg.toUpperCase().toLowerCase()).toBe(seg.toLowerCase());
    }
    expect(seen.size).toBe(NAMES.length);
  });

  it('only ever writes segments that are safe on Linux, macOS and Windows', () => {
    for (const name of NAMES) {
      const seg = encodeSegment(name);
      expect(isSafeSegment(seg), JSON.stringify(name)).toBe(true);
      expect(seg.length).toBeLessThanOrEqual(MAX_SEGMENT);
      expect(seg).toMatch(/^[\x21-\x7e]+$/); // printable ASCII: no control character, no space, NFC = NFD
      expect(seg).not.toMatch(/[/\\:*?"<>|]/);
      expect(['.', '..']).not.toContain(seg);
      expect(seg).not.toMatch(/[. ]$/);
      expect(seg.split('.')[0]).not.toMatch(/^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i);
      // With the suffixes the mirror adds, still not a device name.
      expect(`${seg}.jsonl`.split('.')[0]).not.toMatch(/^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i);
    }
  });

  it('cuts long names with a hash that keeps them apart', () => {
    const a = encodeSegment(`${'n'.repeat(300)}a`);
    const b = encodeSegment(`${'n'.repeat(300)}b`);
    expect(a).not.toBe(b);
    expect(a.length).toBe(MAX_SEGMENT);
    expect(decodeSegment(a)).toEqual({ cut: true });
    expect(a).toMatch(/~[0-9a-f]{16}$/);
    // A cut never splits an escape.
    const accented = encodeSegment('é'.repeat(100));
    expect(accented.slice(0, -17)).toMatch(/^(?:%[0-9A-F]{2})+$/);
  });

  it('refuses segments it would not write, so one name has one path', () => {
    for (const bad of ['Notes', '%4eotes', '%6Eotes', '..', '.', 'a.b', 'a/b', '%', '%2', '%C3', 'con', '42', `${'n'.repeat(MAX_SEGMENT + 1)}`]) {
      const decoded = decodeSegment(bad);
      if (bad === '%') expect(decoded).toEqual({ text: '' });
      else expect(decoded, bad).toBeNull();
    }
    expect(unescapeName('%ED%A0%80')).toBe('\ud800'); // a lone surrogate has its own bytes
    expect(unescapeName('%ED%A0%BD%ED%B8%82')).toBeNull(); // a pair written as halves is not canonical
    expect(unescapeName('%C0%AE')).toBeNull(); // overlong "."
  });
});

describe('database names of files under db/', () => {
  it('gives émile, xmile and keep three different names, the same on every run', () => {
    const names = ['émile', 'xmile', 'keep'].map((n) => logicalNameForPath([n]));
    expect(names).toEqual([{ name: '%C3%A9mile' }, { name: 'xmile' }, { name: 'keep' }]);
    expect(['émile', 'xmile', 'keep'].map((n) => logicalNameForPath([n]))).toEqual(names);
  });

  it('keeps the names discovery always gave to ordinary files', () => {
    expect(logicalNameForPath(['Zeta'])).toEqual({ name: 'Zeta' });
    expect(logicalNameForPath(['sub', 'beta'])).toEqual({ name: 'sub.beta' });
    expect(logicalNameForPath(['task_metadata'])).toEqual({ name: 'task_metadata' });
  });

  it('tells a dot in a file name from a folder, and a leading _ from a letter', () => {
    expect(logicalNameForPath(['a.b'])).toEqual({ name: 'a%2Eb' });
    expect(logicalNameForPath(['a', 'b'])).toEqual({ name: 'a.b' });
    expect(logicalNameForPath(['_x'])).toEqual({ name: '%5Fx' });
    expect(logicalNameForPath(['xx'])).toEqual({ name: 'xx' });
    expect(logicalNameForPath([''])).toHaveProperty('reason');
  });

  it('round-trips generated paths, never gives two paths one name, and every name is safe', () => {
    const next = rng(7);
    const seen = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const depth = 1 + Math.floor(next() * 3);
      const components = Array.from({ length: depth }, () => randomName(next).replace(/[/\0]/g, '') || 'x');
      const key = components.join('/');
      const named = logicalNameForPath(components);
      if (!('name' in named)) throw new Error(named.reason);
      expect(isSafeLogicalName(named.name), named.name).toBe(true);
      expect(named.name.length).toBeLessThanOrEqual(MAX_LOGICAL_NAME);
      const other = seen.get(named.name);
      if (other !== undefined && other !== key) expect({ key, other }).toBe('two paths share a name');
      seen.set(named.name, key);
      if (!/~[0-9a-f]{16}$/.test(named.name) && !components.some((c) => c === '.' || c === '..' || c.includes('\\'))) expect(pathForLogicalName(named.name)).toEqual(components);
      // Through the mirror and the archive, still inside one folder.
      expect(encodeSegment(named.name)).not.toMatch(/[/\\]|^\.{1,2}$/);
    }
  });

  it('refuses names that could climb out of a folder or be read as an option', () => {
    for (const bad of ['../../x', '..', '.', '', 'a/b', 'a\\b', '-rf', '_x', ' x', 'x\n', 'é', '%c3', 'n'.repeat(MAX_LOGICAL_NAME + 1), 42]) {
      expect(isSafeLogicalName(bad), String(bad)).toBe(false);
      expect(logicalNameProblem(bad)).toBeTruthy();
    }
    for (const good of ['notes', 'Zeta', 'sub.beta', '%C3%A9mile', 'my.db.name']) expect(isSafeLogicalName(good)).toBe(true);
    // An escape spelling "..": still no path that climbs.
    expect(pathForLogicalName('%2E%2E.x')).toBeNull();
  });
});

describe('where names go', () => {
  it('keeps the archive and mirror paths of ordinary names', () => {
    expect(archiveEntry('notes', 'notes.db')).toBe('databases/notes/notes.db');
    expect(archiveEntry('tasks', 'task_metadata.db')).toBe('databases/tasks/task_metadata.db');
    expect(mirrorTableFile('notes', 'notes')).toBe('notes/notes.jsonl');
    expect(mirrorDocumentDir('notes', 'pages')).toBe('notes/pages/');
  });

  it('keeps a hostile table name inside its database folder', () => {
    const file = mirrorTableFile('notes', '../../../../escape');
    expect(file.split('/')).toHaveLength(2);
    expect(parseMirrorPath(file)).toEqual({ db: 'notes', table: encodeSegment('../../../../escape'), kind: 'jsonl' });
    expect(parseMirrorPath('../escape.jsonl')).toBeNull();
    expect(parseMirrorPath('notes/Notes.jsonl')).toBeNull();
    expect(archiveEntry('%2E%2E', '../x.db')).toBe('databases/%252%45%252%45/%2E%2E%2Fx.db');
  });
});

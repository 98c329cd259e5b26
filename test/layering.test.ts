import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layout stays true: each folder of src/ may import only from its own layer and the layers
 * below it (docs/architecture.md draws the same order). A new folder must be placed here.
 */
const LAYERS: string[][] = [
  ['core'], // no domain: errors, logs, flushing, hashing, sqlite helpers, gh/git runners, workers
  ['root'], // the data root: paths, config, names, lock, consent
  ['snapshot'], // the snapshot format shared by backup, restore and remotes
  ['pages'], // page-level images, page-hash indexes, deltas and the chain rule (incremental snapshots)
  ['remote'], // replicas: the Remote contract and its backends
  ['restore'], // the restore pipeline and the journaled swap
  ['check'], // proof that stored copies restore, without restoring them (reads chains like a restore)
  ['backup'], // the data_backup pipeline (finishes an interrupted restore first)
  ['inspect'], // look inside snapshots: the rebuilt-snapshot cache, diff and read-only query
  ['recover'], // row-level recovery from a snapshot (takes a safety snapshot first)
  ['sync'], // github-sync
  ['health'], // the health graph (loads the health/ plug-ins)
  ['capability'], // the capability contract and the capabilities/ loader
  ['sidecar'], // scheduled jobs (run capabilities)
  ['mcp', 'http', 'cli'], // the surfaces
];

const SRC = path.resolve(__dirname, '..', 'src');

function layerOf(folder: string): number {
  const i = LAYERS.findIndex((l) => l.includes(folder));
  return i;
}

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

/** Every relative import (static, dynamic, type-only and re-exports) of a file, resolved to a path. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) found.push(path.resolve(path.dirname(file), m[1]!));
  return found;
}

function topFolder(abs: string): string | null {
  const rel = path.relative(SRC, abs);
  if (rel.startsWith('..')) return null;
  const parts = rel.split(path.sep);
  return parts.length > 1 ? parts[0]! : '';
}

describe('the source layout', () => {
  it('has no loose files at the top of src/: every module sits in a concept folder', () => {
    const loose = fs.readdirSync(SRC).filter((n) => n.endsWith('.ts'));
    expect(loose).toEqual([]);
  });

  it('places every folder of src/ in a layer', () => {
    const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect(folders.filter((f) => layerOf(f) < 0)).toEqual([]);
    expect(folders.length).toBeGreaterThan(8);
  });

  it('never imports upward: a folder imports only its own layer and those below', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const file of tsFiles(SRC)) {
      const from = topFolder(file)!;
      for (const target of importsOf(file)) {
        const to = topFolder(target);
        if (to === null || to === from) continue;
        checked++;
        if (layerOf(to) > layerOf(from)) wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)} (${from} may not import ${to})`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(wrong).toEqual([]);
  });

  it('keeps src/ out of the plug-in folders: src never imports capabilities/, health/ plug-ins or sidecar-jobs/', () => {
    const wrong: string[] = [];
    for (const file of tsFiles(SRC)) {
      for (const target of importsOf(file)) if (topFolder(target) === null) wrong.push(`${path.relative(SRC, file)} -> ${target}`);
    }
    expect(wrong).toEqual([]);
  });

  it('flushes in one place: only core/durable-file.ts calls fsync or fdatasync', () => {
    const flushing = tsFiles(SRC).filter((f) => /\bf(data)?syncSync\(|\.(data)?sync\(\)|\bf(data)?sync\(/.test(fs.readFileSync(f, 'utf8')));
    expect(flushing.map((f) => path.relative(SRC, f))).toEqual([path.join('core', 'durable-file.ts')]);
  });

  it('names the data root in one place: only root/paths.ts joins a root with a name of its layout', () => {
    // A literal layout name joined onto a root-like variable, or a layout file name written out.
    const joined = /path\.join\((?:root|config\.root|ctx\.root)\b[^)]*'(db|backups|logs|sync|mcp-results)'/;
    const fileNames = /'(wb-backup\.yaml|wb-backup\.json|restore-journal\.json|last_run\.json|sidecar-history\.jsonl|\.wb-backup-demo)'/;
    const wrong = tsFiles(SRC)
      .filter((f) => !f.endsWith(path.join('root', 'paths.ts')))
      .filter((f) => fs.readFileSync(f, 'utf8').split('\n').some((line) => !/^\s*(\/\/|\*)/.test(line) && (joined.test(line) || fileNames.test(line))))
      .map((f) => path.relative(SRC, f));
    expect(wrong).toEqual([]);
  });

  it('docs/architecture.md draws the same folders as src/ has, in the layer order the check uses', () => {
    const doc = fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'architecture.md'), 'utf8');
    const tree = doc.slice(doc.indexOf('```'), doc.indexOf('```', doc.indexOf('```') + 3));
    const drawn = [...tree.matchAll(/^  ([a-z-]+)\/\s/gm)].map((m) => m[1]!);
    const folders = fs.readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    expect([...drawn].sort()).toEqual([...folders].sort());
    expect(drawn).toEqual(LAYERS.flat());
  });
});

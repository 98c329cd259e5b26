import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { create } from 'tar';
import { listLocalSnapshots, type LocalSnapshot } from '../../src/snapshot/store.js';
import { extractWithSystemTar } from './fixtures.js';

/**
 * Build hostile or damaged snapshots the way an attacker or a failing disk would: unpack a real
 * snapshot, change it, pack it again, and (unless told otherwise) rewrite the checksums so that
 * the damage is caught by the check under test and not by the checksum.
 */
export interface Forge {
  snapshot: LocalSnapshot;
  /** the unpacked content: MANIFEST.json and databases/... */
  dir: string;
  manifest(): Record<string, unknown> & { databases: Array<Record<string, unknown>> };
  writeManifest(m: unknown): void;
  /** pack `dir` (plus extra entries given as paths relative to cwd, kept verbatim) and seal */
  seal(opts?: { extraEntries?: { cwd: string; paths: string[] }; checksums?: boolean }): Promise<void>;
}

export function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function forge(root: string, work: string): Forge {
  const [snapshot] = listLocalSnapshots(root);
  if (!snapshot) throw new Error('forge: no snapshot to start from');
  const dir = path.join(work, 'forge');
  extractWithSystemTar(snapshot.archivePath, dir);
  const manifestFile = path.join(dir, 'MANIFEST.json');
  return {
    snapshot,
    dir,
    manifest: () => JSON.parse(fs.readFileSync(manifestFile, 'utf8')),
    writeManifest: (m) => fs.writeFileSync(manifestFile, `${JSON.stringify(m, null, 2)}\n`),
    async seal(opts = {}) {
      const tarFile = path.join(work, 'forged.tar');
      const entries = ['MANIFEST.json', ...listFiles(path.join(dir, 'databases')).map((f) => path.posix.join('databases', f))];
      await create({ file: tarFile, cwd: dir, portable: true }, entries);
      if (opts.extraEntries) {
        // preservePaths keeps "../x" and "/abs" names verbatim, as a hostile archive would have them.
        const extra = path.join(work, 'extra.tar');
        await create({ file: extra, cwd: opts.extraEntries.cwd, preservePaths: true, portable: true }, opts.extraEntries.paths);
        // Concatenate tar streams: drop the first one's end-of-archive blocks (two 512-byte zero blocks and padding).
        const a = fs.readFileSync(tarFile);
        let end = a.length;
        while (end >= 512 && a.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
        fs.writeFileSync(tarFile, Buffer.concat([a.subarray(0, end), fs.readFileSync(extra)]));
      }
      execFileSync('zstd', ['-q', '-f', tarFile, '-o', snapshot.archivePath]);
      fs.copyFileSync(manifestFile, snapshot.manifestPath);
      if (opts.checksums !== false) {
        fs.writeFileSync(
          snapshot.checksumPath,
          `${sha256(snapshot.archivePath)}  ${path.basename(snapshot.archivePath)}\n${sha256(snapshot.manifestPath)}  ${path.basename(snapshot.manifestPath)}\n`,
        );
      }
    },
  };
}

function listFiles(dir: string, prefix = ''): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), path.posix.join(prefix, e.name)) : [path.posix.join(prefix, e.name)],
  );
}

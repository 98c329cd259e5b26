import { describe, expect, it } from 'vitest';
import { downloadableLayout } from '../src/remote/listing.js';
import { RemoteError } from '../src/remote/remote.js';

const id = 'snap-2026-11-22T13-00-00Z';

function incomplete(names: string[]): string {
  try {
    downloadableLayout('dir:away', id, names);
  } catch (err) {
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).kind).toBe('incomplete');
    return (err as RemoteError).message;
  }
  throw new Error('expected a refusal');
}

describe('which stored files make a snapshot every backend can download', () => {
  it('a whole archive or every part, with the manifest and the checksum file', () => {
    expect(downloadableLayout('dir:away', id, [`${id}.tar.zst`, `${id}.manifest.json`, `${id}.sha256`])).toEqual({ archiveName: `${id}.tar.zst`, pieces: [`${id}.tar.zst`] });
    expect(downloadableLayout('dir:away', id, [`${id}.tar.gz.part002`, `${id}.tar.gz.part001`, `${id}.manifest.json`, `${id}.sha256`]).pieces).toEqual([`${id}.tar.gz.part001`, `${id}.tar.gz.part002`]);
  });

  it('refuses as incomplete, saying what is missing: no archive, a missing part, no manifest, no checksum file', () => {
    expect(incomplete([`${id}.manifest.json`, `${id}.sha256`])).toMatch(/no archive/);
    expect(incomplete([`${id}.tar.zst.part001`, `${id}.tar.zst.part003`, `${id}.manifest.json`, `${id}.sha256`])).toMatch(/incomplete set of parts/);
    expect(incomplete([`${id}.tar.zst`, `${id}.sha256`])).toMatch(/without its manifest or checksum file/);
    expect(incomplete([`${id}.tar.zst`, `${id}.manifest.json`])).toMatch(/without its manifest or checksum file/);
    // A name of another snapshot is not this one's archive (a remote's listing is untrusted).
    expect(incomplete(['snap-2026-11-22T12-00-00Z.tar.zst', `${id}.manifest.json`, `${id}.sha256`])).toMatch(/no archive/);
  });
});

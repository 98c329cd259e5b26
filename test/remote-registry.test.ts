import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WbError } from '../src/core/errors.js';
import { loadConfig } from '../src/root/config.js';
import { BACKENDS, createRemote, remoteFromConfig, remoteSettings } from '../src/remote/registry.js';
import { RemoteError } from '../src/remote/remote.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

/** The config_invalid message loading `yaml` gives (fails the test when it loads). */
function configError(yaml: string): string {
  fs.writeFileSync(path.join(root, 'wb-backup.yaml'), yaml);
  try {
    loadConfig(root);
  } catch (err) {
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('config_invalid');
    return (err as WbError).message;
  }
  throw new Error('the configuration loaded');
}

describe('the remote registry: each backend validates its own settings, at config load', () => {
  it('names the backends, one line each', () => {
    expect(Object.keys(BACKENDS).sort()).toEqual(['dir', 'github', 's3']);
  });

  it('a bad field of a backend fails config loading with its full path', () => {
    expect(configError('remote:\n  github:\n    repo: not-a-repo\n')).toMatch(/remote\.github\.repo: expected "owner\/name"/);
    expect(configError('remote:\n  dir:\n    path: ""\n')).toMatch(/remote\.dir\.path: /);
    expect(configError('remote:\n  dir:\n    path: /x\n    part_bytes: 10\n')).toMatch(/remote\.dir\.part_bytes: /);
    expect(configError('remote:\n  dir:\n    path: /x\n    colour: blue\n')).toMatch(/remote\.dir: .*colour/);
  });

  it('an unknown backend, two backends, or none are refused, naming the known ones', () => {
    expect(configError('remote:\n  ftp:\n    host: b\n')).toMatch(/remote\.ftp: unknown backend "ftp": expected github or dir or s3/);
    expect(configError('remote:\n  dir:\n    path: /x\n  github:\n    repo: o/r\n')).toMatch(/remote: expected exactly one backend \(github or dir or s3\), got dir, github/);
    expect(configError('remote: {}\n')).toMatch(/remote: expected exactly one backend/);
    expect(configError('remote:\n  dir: /x\n')).toMatch(/remote\.dir: /);
  });

  it('a valid section gives the backend, with typed settings for the code that needs them', () => {
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'remote:\n  github:\n    repo: octo/backups\n');
    const config = loadConfig(root);
    expect(remoteFromConfig(config)!.label).toBe('github:octo/backups');
    expect(remoteSettings(config, 'github')).toEqual({ repo: 'octo/backups' });
    expect(remoteSettings(config, 'dir')).toBeNull();
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'remote:\n  dir:\n    path: nas\n');
    expect(remoteFromConfig(loadConfig(root))!.label).toBe('dir:nas');
  });

  it('createRemote checks a section it is given directly the same way', () => {
    const err = (() => {
      try {
        createRemote({ github: { repo: 'nope' } }, root);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('config_invalid');
    expect((err as WbError).message).toMatch(/remote\.github\.repo: expected "owner\/name"/);
  });
});

describe('the retry wrapper every backend gets from the registry', () => {
  it('retries a transient failure up to the attempts, and says how many it made', async () => {
    const remote = createRemote({ dir: { path: path.join(root, 'not-mounted') } }, root, { retry: { attempts: 3, baseDelayMs: 1 } });
    const err = (await remote.list().catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.kind).toBe('transient');
    expect(err.attempts).toBe(3);
    expect(err.message).toMatch(/not there \(not mounted\?\)/);
  });

  it('does not retry a failure that is not transient', async () => {
    fs.mkdirSync(path.join(root, 'nas'));
    const remote = createRemote({ dir: { path: path.join(root, 'nas') } }, root, { retry: { attempts: 5, baseDelayMs: 1 } });
    const err = (await remote.download('snap-2001-01-01T00-00-00Z', path.join(root, 'dl')).catch((e: unknown) => e)) as RemoteError;
    expect(err.kind).toBe('not_found');
    expect(err.attempts).toBe(1);
  });

  it('a pause between attempts ends at once when the signal fires: cancelled, after one attempt', async () => {
    // An hour-long pause: only the abort can end this call.
    const remote = createRemote({ dir: { path: path.join(root, 'not-mounted') } }, root, { retry: { attempts: 3, baseDelayMs: 3_600_000 } });
    const stop = new AbortController();
    const listing = remote.list({ signal: stop.signal }).catch((e: unknown) => e);
    setImmediate(() => stop.abort());
    const err = (await listing) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.kind).toBe('cancelled');
    expect(err.attempts).toBe(1);
  });
});

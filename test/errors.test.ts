import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_SURFACES, EXIT, UNEXPECTED_ERROR, WbError, describeError, errorCode, errorHint, errorSurfaces, type WbErrorCode } from '../src/core/errors.js';
import { RemoteError } from '../src/remote/remote.js';
import { CLI, REPO_ROOT, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, startHttpServerProcess, type HttpServerProcess } from './support/mcp-client.js';
import { rejectionText, thrownText } from './support/errors.js';

/** Every code a `new WbError('<code>', …)` in the shipped sources throws. */
function codesThrownInSources(): Set<string> {
  const codes = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) for (const m of fs.readFileSync(p, 'utf8').matchAll(/new WbError\(\s*'([a-z_]+)'/g)) codes.add(m[1]!);
    }
  };
  for (const d of ['src', 'capabilities', 'health']) walk(path.join(REPO_ROOT, d));
  return codes;
}

const count = (text: string, part: string) => text.split(part).length - 1;

describe('the table from code to CLI exit status, HTTP status and MCP result', () => {
  it('has an entry for every code the sources throw, each in range', () => {
    const thrown = codesThrownInSources();
    expect(thrown.size).toBeGreaterThan(10);
    for (const code of thrown) expect(Object.keys(ERROR_SURFACES), `code ${code} has no entry`).toContain(code);
    for (const [code, s] of Object.entries(ERROR_SURFACES)) {
      expect(Object.values(EXIT), code).toContain(s.exit);
      expect(s.exit, code).not.toBe(EXIT.ok);
      expect(s.http, code).toBeGreaterThanOrEqual(400);
      expect(s.http, code).toBeLessThan(600);
      expect(typeof s.mcp.isError, code).toBe('boolean');
      expect(typeof s.mcp.input, code).toBe('boolean');
    }
  });

  it('keeps the statuses the CLI and the card API have always had', () => {
    expect(ERROR_SURFACES.busy).toMatchObject({ exit: 75, http: 409 });
    expect(ERROR_SURFACES.interrupted.exit).toBe(130);
    expect(ERROR_SURFACES.invalid_input).toMatchObject({ exit: 2, http: 400, mcp: { isError: true, input: true } });
    expect(ERROR_SURFACES.config_invalid).toMatchObject({ exit: 2, http: 400 });
    expect(ERROR_SURFACES.not_found).toMatchObject({ exit: 1, http: 404 });
    for (const code of ['snapshot_failed', 'restore_refused', 'swap_failed', 'recovery_needed', 'sync_failed'] as WbErrorCode[]) expect(ERROR_SURFACES[code].exit, code).toBe(1);
    // Every thrown WbError is an MCP error result: nothing that was asked was done.
    for (const [code, s] of Object.entries(ERROR_SURFACES)) expect(s.mcp.isError, code).toBe(true);
  });

  it('anything that is not a WbError is a plain failure coded internal', () => {
    expect(errorSurfaces(new Error('boom'))).toBe(UNEXPECTED_ERROR);
    expect(UNEXPECTED_ERROR).toMatchObject({ exit: 1, http: 500, mcp: { isError: true, input: false } });
    expect(errorCode(new Error('boom'))).toBe('internal');
    expect(errorSurfaces(new WbError('busy', 'x'))).toBe(ERROR_SURFACES.busy);
  });
});

describe('message and hint are fields, composed only when printed', () => {
  it('a WbError keeps them apart; describeError joins them once', () => {
    const err = new WbError('not_found', 'No snapshot with id "x" exists.', 'Use data_backup_list to see them all.');
    expect(err.message).toBe('No snapshot with id "x" exists.');
    expect(err.hint).toBe('Use data_backup_list to see them all.');
    expect(describeError(err)).toBe('No snapshot with id "x" exists. Use data_backup_list to see them all.');
    expect(describeError(new WbError('busy', 'Busy.'))).toBe('Busy.');
  });

  it('any error with a hint field prints the same way (RemoteError), others by message or as text', () => {
    const remote = new RemoteError('transient', 'GitHub could not be reached.', 'The next run tries again.');
    expect(describeError(remote)).toBe('GitHub could not be reached. The next run tries again.');
    expect(errorHint(remote)).toBe('The next run tries again.');
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('a string')).toBe('a string');
    expect(errorHint(new Error('plain'))).toBeUndefined();
  });

  it('the test helpers read the printed text and fail when nothing is thrown', async () => {
    expect(thrownText(() => { throw new WbError('invalid_input', 'Bad.', 'Do this.'); })).toBe('Bad. Do this.');
    expect(await rejectionText(Promise.reject(new WbError('invalid_input', 'Bad.', 'Do this.')))).toBe('Bad. Do this.');
    expect(() => thrownText(() => undefined)).toThrow(/expected a throw/);
    await expect(rejectionText(Promise.resolve(1))).rejects.toThrow(/expected a rejection/);
  });
});

describe('a WbError reaches every surface with its code, message and hint', () => {
  let root: string;
  let server: HttpServerProcess;
  const MESSAGE = 'There is no requirement "nope".';
  const HINT_START = 'Known: ';

  beforeAll(async () => {
    root = tempRoot();
    fs.mkdirSync(path.join(root, 'db'), { recursive: true });
    server = await startHttpServerProcess(root);
  });
  afterAll(async () => {
    await server?.stop();
    rmrf(root);
  });

  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });

  it('CLI: stderr says the message and the hint once each; the exit status is the table entry', () => {
    // An unknown requirement name is bad input (as `health disable <unknown>`): the usage exit status.
    const r = cli('--root', root, 'fix', 'nope');
    expect(r.status).toBe(ERROR_SURFACES.invalid_input.exit);
    expect(count(r.stderr, MESSAGE)).toBe(1);
    expect(count(r.stderr, HINT_START)).toBe(1);
    expect(r.stderr).toMatch(/There is no requirement "nope"\. Known: .*local_backups/);

    const missing = path.join(root, 'no-such-root');
    const usage = cli('--root', missing, 'list');
    expect(usage.status).toBe(ERROR_SURFACES.invalid_input.exit);
    expect(count(usage.stderr, `The data root ${missing} does not exist.`)).toBe(1);
    expect(count(usage.stderr, 'Check --root (or WB_BACKUP_HOME')).toBe(1);
  });

  it('MCP: the error result text carries the message and the hint once each', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const r = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'nope' } })) as { isError?: boolean; content: Array<{ text: string }> };
      expect(r.isError).toBe(ERROR_SURFACES.invalid_input.mcp.isError);
      const text = r.content[0]!.text;
      expect(text.startsWith(`${MESSAGE} ${HINT_START}`)).toBe(true);
      expect(count(text, MESSAGE)).toBe(1);
      expect(count(text, HINT_START)).toBe(1);
    } finally {
      await close();
    }
  });

  it('card API: the JSON carries code, message and hint as separate fields, with the table status', async () => {
    const res = await fetch(`${server.url}/api/health/fix/nope`, { method: 'POST', headers: { origin: server.url, 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(ERROR_SURFACES.invalid_input.http);
    const body = (await res.json()) as { error: { code: string; message: string; hint: string } };
    expect(body.error.code).toBe('invalid_input');
    expect(body.error.message).toBe(MESSAGE);
    expect(body.error.hint.startsWith(HINT_START)).toBe(true);
    expect(body.error.hint).toContain('local_backups');
  });
});

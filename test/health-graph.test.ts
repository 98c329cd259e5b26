import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '../src/root/config.js';
import { dependencyOrder, evaluateComponent } from '../src/health/evaluate.js';
import { judgeFreshness } from '../src/health/freshness.js';
import { ghInstallSteps } from '../src/health/os-steps.js';
import { defineComponent, type CheckResult, type HealthContext, type Requirement } from '../src/health/types.js';
import type { LastRun } from '../src/backup/last-run.js';
import { rmrf, tempRoot } from './support/fixtures.js';

const root = tempRoot('wb-health-unit-');
const ctx: HealthContext = { root, config: loadConfig(root), now: () => new Date('2026-11-22T12:00:00Z'), platform: 'linux' };
const noSchema = () => undefined;

function req(id: string, result: CheckResult | Error, dependsOn: string[] = [], calls: string[] = []): Requirement {
  return {
    id,
    title: id,
    dependsOn,
    async check() {
      calls.push(id);
      if (result instanceof Error) throw result;
      return result;
    },
  };
}

describe('health graph evaluation', () => {
  it('checks in dependency order, whatever the declaration order', async () => {
    const calls: string[] = [];
    const component = defineComponent({
      id: 'c', title: 'C', description: '', optIn: false, wanted: () => true, checks: [],
      requirements: [req('repo', { status: 'ok', detail: 'r' }, ['auth'], calls), req('auth', { status: 'ok', detail: 'a' }, ['cli'], calls), req('cli', { status: 'ok', detail: 'c' }, [], calls)],
    });
    const report = await evaluateComponent(component, ctx, noSchema);
    expect(calls).toEqual(['cli', 'auth', 'repo']);
    expect(report.requirements.map((r) => r.id)).toEqual(['c.repo', 'c.auth', 'c.cli']); // reported in declaration order
    expect(report.status).toBe('ok');
  });

  it('blocks (and does not check) everything downstream of a failure', async () => {
    const calls: string[] = [];
    const component = defineComponent({
      id: 'gh', title: 'GH', description: '', optIn: false, wanted: () => true, checks: [],
      requirements: [
        req('cli', { status: 'fail', detail: 'gh missing' }, [], calls),
        req('auth', { status: 'ok', detail: 'x' }, ['cli'], calls),
        req('repo', { status: 'ok', detail: 'x' }, ['auth'], calls),
        req('disk', { status: 'warn', detail: 'low' }, [], calls),
      ],
    });
    const report = await evaluateComponent(component, ctx, noSchema);
    expect(calls).toEqual(['cli', 'disk']);
    expect(report.requirements.map((r) => [r.id, r.status, r.detail])).toEqual([
      ['gh.cli', 'fail', 'gh missing'],
      ['gh.auth', 'blocked', 'blocked by gh.cli'],
      ['gh.repo', 'blocked', 'blocked by gh.auth'],
      ['gh.disk', 'warn', 'low'],
    ]);
    expect(report.status).toBe('fail');
  });

  it('a warning dependency does not block; the worst status wins', async () => {
    const component = defineComponent({
      id: 'w', title: 'W', description: '', optIn: false, wanted: () => true,
      requirements: [req('a', { status: 'warn', detail: 'meh' }), req('b', { status: 'ok', detail: 'fine' }, ['a'])],
      checks: [{ id: 'fresh', title: 'fresh', check: async () => ({ status: 'ok', detail: 'ok' }) }],
    });
    const report = await evaluateComponent(component, ctx, noSchema);
    expect(report.requirements.map((r) => r.status)).toEqual(['warn', 'ok']);
    expect(report.status).toBe('warn');
  });

  it('a check that throws is reported as fail with its message, and its dependents are blocked', async () => {
    const component = defineComponent({
      id: 't', title: 'T', description: '', optIn: false, wanted: () => true,
      requirements: [req('boom', new Error('gh exploded')), req('after', { status: 'ok', detail: '' }, ['boom'])],
      checks: [{ id: 'k', title: 'k', check: async () => { throw new Error('cannot read last_run.json'); } }],
    });
    const report = await evaluateComponent(component, ctx, noSchema);
    expect(report.requirements[0]).toMatchObject({ status: 'fail', detail: 'the check failed: gh exploded' });
    expect(report.requirements[1]).toMatchObject({ status: 'blocked' });
    expect(report.checks[0]).toMatchObject({ status: 'fail', detail: 'the check failed: cannot read last_run.json' });
  });

  it('an opt-in component the user has not enabled is "unwanted", not failing, and nothing is checked', async () => {
    const calls: string[] = [];
    const component = defineComponent({
      id: 'o', title: 'O', description: '', optIn: true, wanted: () => false, checks: [],
      requirements: [req('x', { status: 'fail', detail: 'would fail' }, [], calls)],
    });
    const report = await evaluateComponent(component, ctx, noSchema);
    expect(report.status).toBe('unwanted');
    expect(calls).toEqual([]);
    expect(report.requirements[0]!.detail).toMatch(/not enabled/);
  });

  it('reports input_required fixers with their input schema', async () => {
    const inputs = z.object({ repo: z.string() });
    const component = defineComponent({
      id: 'f', title: 'F', description: '', optIn: false, wanted: () => true, checks: [],
      requirements: [{ id: 'r', title: 'r', check: async () => ({ status: 'fail', detail: 'no' }), fixer: { kind: 'input_required', describe: 'pick', inputs, run: async () => ({ status: 'fixed', message: '' }) } }],
    });
    const report = await evaluateComponent(component, ctx, () => ({ type: 'object', properties: { repo: { type: 'string' } } }));
    expect(report.requirements[0]!.fixer).toEqual({ kind: 'input_required', describe: 'pick', inputs: { type: 'object', properties: { repo: { type: 'string' } } } });
  });

  it('refuses unknown dependencies and cycles', () => {
    expect(() => dependencyOrder([req('a', { status: 'ok', detail: '' }, ['nope'])])).toThrow(/unknown requirement nope/);
    expect(() => dependencyOrder([req('a', { status: 'ok', detail: '' }, ['b']), req('b', { status: 'ok', detail: '' }, ['a'])])).toThrow(/cycle/);
  });
});

describe('backup freshness', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  const run = (minutesAgo: number, extra: Partial<LastRun> = {}): LastRun => ({
    ok: true, snapshot_id: 'snap-x', manual: false, started_at: '', finished_at: new Date(now.getTime() - minutesAgo * 60_000).toISOString(),
    duration_ms: 1, archive_bytes: 1, databases_bytes: 1, databases: 1, skipped: [], error: null, remote: { status: 'pushed' }, ...extra,
  });
  it.each([
    [null, 'warn', /no backup has run yet/],
    [run(30), 'ok', /30 min ago/],
    [run(60), 'ok', /60 min ago/],
    [run(61), 'warn', /older than the 60-minute cadence/],
    [run(120), 'warn', /older than/],
    [run(121), 'fail', /more than twice/],
    [run(5, { ok: false, error: 'disk full' }), 'fail', /last backup failed: disk full/],
  ] as const)('local: %# -> %s', (last, status, detail) => {
    const r = judgeFreshness(last, now, 60, 'local');
    expect(r.status).toBe(status);
    expect(r.detail).toMatch(detail);
  });
  it('remote: a failed or skipped push is what counts', () => {
    expect(judgeFreshness(run(5, { remote: { status: 'failed', reason: '401' } }), now, 60, 'remote')).toMatchObject({ status: 'fail', detail: 'the last push failed: 401' });
    expect(judgeFreshness(run(5, { remote: { status: 'skipped', reason: 'no remote' } }), now, 60, 'remote').status).toBe('warn');
    expect(judgeFreshness(run(5), now, 60, 'remote').status).toBe('ok');
  });
});

describe('gh install steps by OS', () => {
  it('names the package manager of the platform', () => {
    expect(ghInstallSteps('darwin').join(' ')).toMatch(/brew install gh/);
    expect(ghInstallSteps('win32').join(' ')).toMatch(/winget install --id GitHub.cli/);
    expect(ghInstallSteps('linux', 'ID=debian\n').join(' ')).toMatch(/apt-get install -y gh/);
    expect(ghInstallSteps('linux', 'ID=ubuntu\nID_LIKE=debian\n').join(' ')).toMatch(/apt-get/);
    expect(ghInstallSteps('linux', 'ID="fedora"\n').join(' ')).toMatch(/dnf install/);
    expect(ghInstallSteps('linux', 'ID=arch\n').join(' ')).toMatch(/pacman -S github-cli/);
    expect(ghInstallSteps('linux', null).join(' ')).toMatch(/cli\/cli#installation/);
  });
});

process.on('exit', () => rmrf(root));

import type { LastRun } from '../backup/last-run.js';
import type { CheckResult } from './types.js';

function ago(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 90) return `${min} min ago`;
  const h = Math.round(min / 60);
  return h < 48 ? `${h} h ago` : `${Math.round(h / 24)} days ago`;
}

/**
 * Is the newest snapshot recent enough for the cadence? Pure: ok inside the cadence, warn past it,
 * fail past twice it or when the last run failed. `remote` judges the off-machine copy instead.
 */
export function judgeFreshness(last: LastRun | null, now: Date, cadenceMinutes: number, scope: 'local' | 'remote'): CheckResult {
  if (!last) return { status: 'warn', detail: 'no backup has run yet' };
  if (!last.ok) return { status: 'fail', detail: `the last backup failed: ${last.error ?? 'unknown error'}` };
  if (scope === 'remote') {
    if (!last.remote || last.remote.status === 'skipped') return { status: 'warn', detail: `the last backup was not pushed: ${last.remote?.reason ?? 'no remote result'}` };
    if (last.remote.status === 'failed') return { status: 'fail', detail: `the last push failed: ${last.remote.reason ?? 'unknown error'}` };
  }
  const age = now.getTime() - Date.parse(last.finished_at);
  const cadence = cadenceMinutes * 60_000;
  const what = `last ${scope === 'remote' ? 'pushed' : ''} snapshot ${last.snapshot_id} ${ago(age)}`.replace('  ', ' ');
  if (age <= cadence) return { status: 'ok', detail: what };
  if (age <= 2 * cadence) return { status: 'warn', detail: `${what}: older than the ${cadenceMinutes}-minute cadence` };
  return { status: 'fail', detail: `${what}: more than twice the ${cadenceMinutes}-minute cadence` };
}

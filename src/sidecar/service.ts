import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../root/config.js';
import { healthStatus } from '../health/service.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';
import { loadCapabilities } from '../capability/load.js';
import { parseSnapshotId } from '../snapshot/id.js';
import { listLocalSnapshots } from '../snapshot/store.js';
import { defaultJobsDir, loadJobs, type Job } from './jobs.js';
import { SidecarRunner, type JobRecord, type RunnerDeps } from './runner.js';

const HISTORY_LINES = 500;

/** Why the job's component says it should not run now, or null. */
export async function blockedReason(root: string, job: Job): Promise<string | null> {
  if (!job.requires) return null;
  const [component] = await healthStatus({ root, cacheMs: 0 }, job.requires);
  if (!component) return `component ${job.requires} does not exist`;
  if (component.status === 'unwanted') return `${component.title} is not enabled`;
  const unmet = component.requirements.filter((r) => r.status === 'fail' || r.status === 'blocked');
  return unmet.length ? `requirements not met: ${unmet.map((r) => `${r.id} (${r.detail})`).join('; ')}` : null;
}

function recordTo(root: string): (entry: JobRecord) => void {
  const file = path.join(rootLayout(root).backupsDir, 'sidecar-history.jsonl');
  return (entry) => {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
      const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
      if (lines.length > HISTORY_LINES * 2) fs.writeFileSync(file, `${lines.slice(-HISTORY_LINES).join('\n')}\n`);
    } catch {
      /* the history is a convenience; never fail a job over it */
    }
  };
}

export function runnerDeps(root: string): RunnerDeps {
  return {
    async run(job, signal) {
      const capability = (await loadCapabilities()).find((c) => c.name === job.capability);
      if (!capability) return { kind: 'failed', detail: `unknown capability ${job.capability}` };
      // Scheduled snapshots are routine (thinned hourly) unless the job file says otherwise; data_backup
      // itself defaults to a manual anchor, for snapshots an agent or a person asks for.
      const args = job.capability === 'data_backup' ? { manual: false, ...job.args } : job.args;
      const input = capability.input.parse(args);
      const { summary, isError } = await capability.run(input, { root, loadConfig: () => loadConfig(root), signal, progress: () => undefined });
      return { kind: isError ? 'failed' : 'ran', detail: summary };
    },
    blockedReason: (job) => blockedReason(root, job),
    newestAutomaticSnapshot() {
      const newest = listLocalSnapshots(root).find((s) => !s.manual);
      return newest ? (parseSnapshotId(newest.id)?.time ?? null) : null;
    },
    now: () => new Date(),
    record: recordTo(root),
  };
}

/** Load the job files and start them. Bad job files are logged with their name and field. */
export async function startSidecar(root: string, jobsDir = defaultJobsDir()): Promise<SidecarRunner> {
  const capabilities = (await loadCapabilities()).map((c) => c.name);
  const { jobs, problems } = loadJobs(jobsDir, capabilities);
  for (const p of problems) logger().error({ file: p.file, field: p.field }, `sidecar job file refused: ${p.message}`);
  const runner = new SidecarRunner(jobs, runnerDeps(root));
  runner.start();
  logger().info({ jobs: jobs.filter((j) => j.enabled).map((j) => `${j.name} (${j.schedule})`) }, 'sidecar started');
  return runner;
}

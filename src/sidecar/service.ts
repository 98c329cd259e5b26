import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../root/config.js';
import { healthStatus } from '../health/service.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';
import { loadCapabilities } from '../capability/load.js';
import { defaultJobsDir, loadJobs, type Job } from './jobs.js';
import { SidecarRunner, type JobRecord, type RunnerDeps } from './runner.js';

const HISTORY_LINES = 500;

/** Why the job's component says it should not run now, or null. */
export async function blockedReason(root: string, job: Job): Promise<string | null> {
  if (!job.requires) return null;
  // A mistyped name in health: is health_status's to report; the jobs run on meanwhile.
  const [component] = await healthStatus({ root, cacheMs: 0, checkNames: false }, job.requires);
  if (!component) return `component ${job.requires} does not exist`;
  if (component.status === 'unwanted') return `${component.title} is not enabled`;
  const unmet = component.requirements.filter((r) => r.status === 'fail' || r.status === 'blocked');
  return unmet.length ? `requirements not met: ${unmet.map((r) => `${r.id} (${r.detail})`).join('; ')}` : null;
}

function recordTo(root: string): (entry: JobRecord) => void {
  const file = historyFile(root);
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

/**
 * When the job's work was last done: what its capability says (data_backup: the newest routine
 * snapshot), else the job's newest successful run in sidecar-history.jsonl, else null.
 */
async function lastDoneAt(root: string, job: Job): Promise<Date | null> {
  const capability = (await loadCapabilities()).find((c) => c.name === job.capability);
  if (capability?.scheduled?.lastDoneAt) return capability.scheduled.lastDoneAt(root);
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(historyFile(root), 'utf8').trimEnd().split('\n');
  } catch {
    return null;
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const entry = JSON.parse(lines[i]!) as Partial<JobRecord>;
      if (entry.job === job.name && entry.outcome === 'ran' && typeof entry.at === 'string') return new Date(entry.at);
    } catch {
      /* a torn line from a crash: skip it */
    }
  }
  return null;
}

function historyFile(root: string): string {
  return rootLayout(root).sidecarHistory;
}

export function runnerDeps(root: string): RunnerDeps {
  return {
    async run(job, signal) {
      const capability = (await loadCapabilities()).find((c) => c.name === job.capability);
      if (!capability) return { kind: 'failed', detail: `unknown capability ${job.capability}` };
      const input = capability.input.parse({ ...capability.scheduled?.defaults, ...job.args });
      const { summary, isError } = await capability.run(input, { root, loadConfig: () => loadConfig(root), signal, progress: () => undefined });
      return { kind: isError ? 'failed' : 'ran', detail: summary };
    },
    async isDue(job) {
      const capability = (await loadCapabilities()).find((c) => c.name === job.capability);
      return capability?.scheduled?.due ? capability.scheduled.due(root, new Date()) : true;
    },
    blockedReason: (job) => blockedReason(root, job),
    lastDoneAt: (job) => lastDoneAt(root, job),
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

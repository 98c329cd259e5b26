import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import matter from 'gray-matter';
import cron from 'node-cron';
import { z } from 'zod';

export const JobFrontMatterSchema = z
  .object({
    schedule: z.string().refine((s) => cron.validate(s), 'not a valid cron expression (5 fields, or 6 with seconds first)'),
    capability: z.string().min(1),
    args: z.record(z.string(), z.unknown()).default({}),
    requires: z.string().nullable().default(null).describe('health component whose requirements must be met, or null'),
    enabled: z.boolean().default(true),
    catch_up: z.boolean().default(true).describe('run once at start when the last run is older than the cadence (a laptop that slept)'),
  })
  .strict();

export interface Job extends z.infer<typeof JobFrontMatterSchema> {
  name: string;
  file: string;
  description: string;
}

export interface JobProblem {
  file: string;
  field: string;
  message: string;
}

/** The folder of job files that ships with wb-backup (beside src/, and beside dist/src/ when built). */
export function defaultJobsDir(): string {
  const here = new URL('../..', import.meta.url);
  const candidates = [new URL('sidecar-jobs/', here), new URL('../sidecar-jobs/', here)];
  for (const c of candidates) if (fs.existsSync(c)) return fileURLToPath(c);
  return fileURLToPath(new URL('sidecar-jobs/', here));
}

/**
 * Every `*.md` job in `dir`, validated. A bad file is reported with its name and field and does
 * not stop the others.
 */
export function loadJobs(dir: string, knownCapabilities: readonly string[]): { jobs: Job[]; problems: JobProblem[] } {
  const jobs: Job[] = [];
  const problems: JobProblem[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort();
  } catch {
    problems.push({ file: dir, field: '(folder)', message: 'the sidecar-jobs folder cannot be read' });
  }
  for (const name of names) {
    const file = path.join(dir, name);
    let parsed: matter.GrayMatterFile<string>;
    try {
      parsed = matter(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push({ file: name, field: '(front matter)', message: `not valid YAML front matter: ${(err as Error).message}` });
      continue;
    }
    const fm = JobFrontMatterSchema.safeParse(parsed.data);
    if (!fm.success) {
      for (const issue of fm.error.issues) problems.push({ file: name, field: issue.path.join('.') || '(front matter)', message: issue.message });
      continue;
    }
    if (!knownCapabilities.includes(fm.data.capability)) {
      problems.push({ file: name, field: 'capability', message: `unknown capability "${fm.data.capability}" (known: ${knownCapabilities.join(', ')})` });
      continue;
    }
    jobs.push({ ...fm.data, name: name.replace(/\.md$/, ''), file, description: parsed.content.trim() });
  }
  return { jobs, problems };
}

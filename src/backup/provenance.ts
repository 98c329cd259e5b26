import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGit } from '../core/git.js';
import { packageRoot } from '../core/package-root.js';

export interface ToolProvenance {
  name: 'wb-backup';
  version: string;
  commit: string | null;
  branch: string | null;
  dirty: boolean | null;
}

export function toolVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

let cached: Promise<ToolProvenance> | undefined;

/** Version and git state of the code that wrote a snapshot: an audit trail, never a blocker. */
export function toolProvenance(): Promise<ToolProvenance> {
  cached ??= readProvenance();
  return cached;
}

async function readProvenance(): Promise<ToolProvenance> {
  const root = packageRoot();
  const base: ToolProvenance = { name: 'wb-backup', version: toolVersion(), commit: null, branch: null, dirty: null };
  if (!fs.existsSync(path.join(root, '.git'))) return base;
  try {
    const [commit, branch, status] = await Promise.all([
      runGit(['rev-parse', 'HEAD'], { cwd: root, timeoutMs: 5000 }),
      runGit(['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: root, timeoutMs: 5000 }),
      runGit(['status', '--porcelain', '--untracked-files=no'], { cwd: root, timeoutMs: 5000 }),
    ]);
    return {
      ...base,
      commit: commit.ok ? commit.stdout : null,
      branch: branch.ok ? branch.stdout : null,
      dirty: status.ok ? status.stdout.length > 0 : null,
    };
  } catch {
    return base; // git missing: provenance is optional
  }
}

export function hostName(): string {
  return os.hostname();
}

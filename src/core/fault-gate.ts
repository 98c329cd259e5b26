import path from 'node:path';

/**
 * The fault seam of filesystem steps (tests only), shared by restore's swap steps (restore/fs-steps.ts)
 * and the folder remote's deletes (remote/dir): `setFault({ op: 'any', n: 7, errno: 'ENOSPC' })`
 * in-process, or the env var `WB_BACKUP_FAULT="op:N:ERRNO"` for a real child process (`op` is one of
 * FsOp or `any`; `N` counts from 1 the calls of that op, or of every op for `any`; `N+` keeps failing
 * from the Nth call on). ERRNO `KILL` kills the process with SIGKILL just before that call instead
 * (a power cut between two steps).
 */
export type FsOp = 'rename' | 'unlink' | 'rmdir' | 'mkdir' | 'write' | 'fsync' | 'copy' | 'chmod' | 'chown';

export interface FaultPlan {
  op: FsOp | 'any';
  /** 1-based index of the call that fails */
  n: number;
  errno: string;
  /** keep failing every later call of that op as well */
  sticky?: boolean;
}

let plan: FaultPlan | null | undefined;
const counts = new Map<FsOp | 'any', number>();
let log: Array<{ op: FsOp; target: string }> | null = null;

/** In-process fault for tests; null clears it (and the env var's plan). Resets the call counts. */
export function setFault(next: FaultPlan | null): void {
  plan = next;
  counts.clear();
}

/** Start recording every operation (tests count the steps of a clean run); returns the live list. */
export function recordOps(): Array<{ op: FsOp; target: string }> {
  log = [];
  counts.clear();
  return log;
}

export function stopRecordingOps(): void {
  log = null;
}

function parseEnvFault(): FaultPlan | null {
  const raw = process.env.WB_BACKUP_FAULT;
  if (!raw) return null;
  const m = /^(any|rename|unlink|rmdir|mkdir|write|fsync|copy|chmod|chown):(\d+)(\+?):([A-Z]+)$/.exec(raw);
  if (!m) throw new Error(`WB_BACKUP_FAULT must look like op:N:ERRNO (got ${raw})`);
  return { op: m[1] as FsOp | 'any', n: Number(m[2]), sticky: m[3] === '+', errno: m[4]! };
}

const ERRNO_NUMBERS: Record<string, number> = { EPERM: 1, EIO: 5, EACCES: 13, EXDEV: 18, ENOSPC: 28, EROFS: 30 };

/** Count the call, and throw the planned fault when this is the call it names. */
export function gate(op: FsOp, target: string): void {
  log?.push({ op, target });
  if (plan === undefined) plan = parseEnvFault();
  if (!plan) return;
  const key = plan.op === 'any' ? 'any' : op;
  if (plan.op !== 'any' && plan.op !== op) return;
  const n = (counts.get(key) ?? 0) + 1;
  counts.set(key, n);
  if (n === plan.n || (plan.sticky && n > plan.n)) {
    if (plan.errno === 'KILL') process.kill(process.pid, 'SIGKILL');
    const err = new Error(`${plan.errno}: injected fault, ${op} '${path.basename(target)}'`) as NodeJS.ErrnoException;
    err.code = plan.errno;
    err.errno = -(ERRNO_NUMBERS[plan.errno] ?? 5);
    err.syscall = op;
    err.path = target;
    throw err;
  }
}


import { logger } from './log.js';

/**
 * Process-wide cancellation: SIGINT/SIGTERM abort this signal, running operations clean up
 * (no .partial left, lock released), shutdown hooks run, and only then does the process exit.
 */
const controller = new AbortController();
const running = new Set<Promise<unknown>>();
const hooks: Array<() => Promise<void>> = [];
let installed = false;

export const shutdownSignal: AbortSignal = controller.signal;

/** Track an operation so shutdown waits for its cleanup. */
export function track<T>(op: Promise<T>): Promise<T> {
  running.add(op);
  void op.finally(() => running.delete(op)).catch(() => undefined);
  return op;
}

/** Run before exit, after running operations have settled (close servers, transports). */
export function addShutdownHook(hook: () => Promise<void>): void {
  hooks.push(hook);
}

export function requestShutdown(reason: string, code: number): void {
  if (controller.signal.aborted) return; // already stopping: keep cleaning up
  logger().info({ reason, running: running.size }, 'stopping: cancelling running operations');
  controller.abort(new Error(reason));
  void Promise.allSettled([...running])
    .then(() => Promise.allSettled(hooks.map((h) => h())))
    .finally(() => process.exit(code));
}

export function installSignalHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', () => requestShutdown('received SIGINT', 130));
  process.on('SIGTERM', () => requestShutdown('received SIGTERM', 143));
}

import fs from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';

// Paths of fields that may carry secrets anywhere in a log object. pino drops them before writing.
const REDACT_PATHS = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'GH_TOKEN', '*.GH_TOKEN', 'GITHUB_TOKEN', '*.GITHUB_TOKEN', 'env.GH_TOKEN', 'env.GITHUB_TOKEN',
  'password', '*.password', 'secret', '*.secret', 'bearer', '*.bearer', 'http.token',
];

/**
 * Where log lines go. `stderr`: JSON lines on fd 2 (servers, and people who asked with -v or
 * WB_BACKUP_LOG_LEVEL). `file`: appended to a file (the CLI's default, so human output stays
 * clean). `none`: dropped.
 */
export type LogTarget = { kind: 'stderr' } | { kind: 'file'; file: string } | { kind: 'none' };

/** A log file larger than this (bytes) is moved to `<file>.1` before the next command appends. */
export const LOG_FILE_MAX_BYTES = 1024 * 1024;

let rootLogger: Logger | undefined;
let target: LogTarget = { kind: 'stderr' };
let levelOverride: string | undefined;

/**
 * Choose where logs go and at which pino level (default: WB_BACKUP_LOG_LEVEL, else "info").
 * Takes effect for every later logger() call; a logger made earlier is replaced.
 * Never writes to stdout: under stdio, stdout belongs to the MCP protocol.
 */
export function configureLogging(opts: { target: LogTarget; level?: string }): void {
  target = opts.target;
  levelOverride = opts.level;
  rootLogger = undefined;
}

function destination(): pino.DestinationStream {
  if (target.kind === 'file') {
    try {
      fs.mkdirSync(path.dirname(target.file), { recursive: true });
      // One old generation is kept: enough to look back at the last commands, bounded in size.
      if ((fs.statSync(target.file, { throwIfNoEntry: false })?.size ?? 0) > LOG_FILE_MAX_BYTES) fs.renameSync(target.file, `${target.file}.1`);
      return pino.destination({ dest: target.file, sync: true, append: true });
    } catch {
      // A log file that cannot be written must not stop a backup: the logs are dropped instead.
      return pino.destination({ dest: '/dev/null', sync: true });
    }
  }
  return pino.destination({ dest: 2, sync: true });
}

/**
 * The process logger. By default (servers, tests, library use) JSON lines on stderr at
 * WB_BACKUP_LOG_LEVEL (default "info"; "silent" in tests when wanted); the CLI redirects it with
 * configureLogging. Never log a user path or token (use displayPath; secrets are redacted).
 */
export function logger(): Logger {
  if (!rootLogger) {
    const options = { name: 'wb-backup', level: levelOverride ?? process.env.WB_BACKUP_LOG_LEVEL ?? 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
    rootLogger = target.kind === 'none' ? pino({ ...options, level: 'silent' }) : pino(options, destination());
  }
  return rootLogger;
}

/** Replace token-looking substrings in free text (gh/git stderr) before it is logged or returned. */
export function redactText(text: string): string {
  return text
    .replace(/\b(gh[pousr]_[A-Za-z0-9_]{16,})\b/g, '[redacted]')
    .replace(/\b(github_pat_[A-Za-z0-9_]{20,})\b/g, '[redacted]')
    .replace(/(authorization:\s*(?:token|bearer)\s+)\S+/gi, '$1[redacted]')
    .replace(/(https?:\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1[redacted]@');
}

import pino, { type Logger } from 'pino';

// Paths of fields that may carry secrets anywhere in a log object. pino drops them before writing.
const REDACT_PATHS = [
  'token', '*.token', 'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization',
  'GH_TOKEN', '*.GH_TOKEN', 'GITHUB_TOKEN', '*.GITHUB_TOKEN', 'env.GH_TOKEN', 'env.GITHUB_TOKEN',
  'password', '*.password', 'secret', '*.secret', 'bearer', '*.bearer', 'http.token',
];

let rootLogger: Logger | undefined;

/**
 * Logs go to stderr (fd 2) only: under stdio, stdout belongs to the MCP protocol.
 * Level from WB_BACKUP_LOG_LEVEL (default "info"; "silent" in tests when wanted).
 */
export function logger(): Logger {
  if (!rootLogger) {
    rootLogger = pino(
      {
        name: 'wb-backup',
        level: process.env.WB_BACKUP_LOG_LEVEL ?? 'info',
        redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      },
      pino.destination({ dest: 2, sync: true }),
    );
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

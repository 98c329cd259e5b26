import { redactText } from './log.js';

export interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
}

/**
 * The one place that runs git. Never through a shell; prompts disabled so a missing credential
 * fails instead of hanging a background job.
 */
export async function runGit(args: readonly string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number; input?: string }): Promise<GitResult> {
  // Loaded on first use: most commands (a local snapshot or restore) never run it, and it costs ~0.1 s to load.
  const { execa } = await import('execa');
  const result = await execa('git', [...args], {
    cwd: opts.cwd,
    reject: false,
    timeout: opts.timeoutMs ?? 120_000,
    // A given environment is complete (tests pass the emulator's): nothing of this process's leaks in.
    env: { ...opts.env, GIT_TERMINAL_PROMPT: '0' },
    extendEnv: !opts.env,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    stripFinalNewline: true,
  });
  return {
    ok: result.exitCode === 0,
    stdout: String(result.stdout ?? ''),
    stderr: redactText(String(result.stderr ?? '')),
    exitCode: result.exitCode,
  };
}

import readline from 'node:readline/promises';
import type { ConsentDecision } from '../restore/restore.js';

/** Ask on the terminal (stderr, so stdout stays machine-readable); only "y"/"yes" is a yes. */
export async function askYesNo(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

/** y/N on a terminal; --yes for scripts; never a silent yes. */
export async function confirmOnTerminal(question: string, yes: boolean): Promise<ConsentDecision> {
  if (yes) return { granted: true };
  if (!process.stdin.isTTY) return { granted: false, reason: 'there is no terminal to ask on; pass --yes to confirm in a script' };
  process.stderr.write(`${question}\n`);
  return (await askYesNo('Proceed? [y/N] ')) ? { granted: true } : { granted: false, reason: 'you answered no' };
}

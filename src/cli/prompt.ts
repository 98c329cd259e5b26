import readline from 'node:readline/promises';

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

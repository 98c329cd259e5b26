import { cliText } from './wording.js';

/** A line on stdout (the command's result, for people or as JSON). */
export function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/**
 * The data root of this run, once known: `<root>` in shared messages is replaced by it. An ESM
 * live binding: set it with setCurrentRoot (the preAction hook, `demo`), read it anywhere.
 */
export let currentRoot: string | undefined;

/** Records the data root this run acts on (see currentRoot). */
export function setCurrentRoot(root: string): void {
  currentRoot = root;
}

/** stderr, in the CLI's words. */
export function note(text: string): void {
  process.stderr.write(`wb-backup: ${cliText(text, currentRoot)}\n`);
}

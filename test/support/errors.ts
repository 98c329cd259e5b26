import { describeError } from '../../src/core/errors.js';

/**
 * The printed text of what `fn` throws: its message, then its hint (describeError), as every
 * surface shows it. A WbError keeps its hint apart from its message, so a test that reads what a
 * person sees matches this text; fails the test when `fn` does not throw.
 */
export function thrownText(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return describeError(err);
  }
  throw new Error('expected a throw, but nothing was thrown');
}

/** As thrownText, for a promise: the printed text of its rejection; fails when it resolves. */
export async function rejectionText(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return describeError(err);
  }
  throw new Error('expected a rejection, but the promise resolved');
}

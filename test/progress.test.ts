import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProgressReporter, monotonicSink } from '../src/core/progress.js';

type Sent = { done: number; total: number | undefined; message: string };
const MiB = 1024 * 1024;

/** A reporter on a clock the test moves by hand. */
function reporter(opts: { minIntervalMs?: number; pollMs?: number } = {}) {
  const sent: Sent[] = [];
  let now = 0;
  const r = new ProgressReporter((done, total, message) => sent.push({ done, total, message }), { ...opts, now: () => now });
  return { r, sent, tick: (ms: number) => (now += ms) };
}

afterEach(() => vi.useRealTimers());

describe('ProgressReporter', () => {
  it('sends only strictly increasing values, keeping the newest message for the next increase', () => {
    const { r, sent, tick } = reporter();
    r.report({ done: 10, total: 100, message: 'a' });
    tick(1000);
    r.report({ done: 10, total: 100, message: 'b' });
    r.report({ done: 5, total: 100, message: 'c' });
    expect(sent).toEqual([{ done: 10, total: 100, message: 'a' }]);
    r.flush();
    expect(sent).toHaveLength(1);
    r.report({ done: 20, total: 100, message: 'd' });
    expect(sent.map((s) => [s.done, s.message])).toEqual([
      [10, 'a'],
      [20, 'd'],
    ]);
  });

  it('rate-limits to one value per interval, unless the work advanced by a share of the total; flush sends the rest', () => {
    const { r, sent, tick } = reporter({ minIntervalMs: 250 });
    const total = 1024 * MiB;
    r.report({ done: 1, total, message: 'x' });
    for (let i = 2; i <= 100; i++) r.report({ done: i, total, message: 'x' });
    expect(sent).toHaveLength(1);
    tick(250);
    r.report({ done: 101, total, message: 'x' });
    expect(sent.map((s) => s.done)).toEqual([1, 101]);
    // 8 MiB at once is more than 1/128 of the total: sent inside the interval.
    r.report({ done: 101 + 8 * MiB, total, message: 'y' });
    expect(sent).toHaveLength(3);
    r.report({ done: 102 + 8 * MiB, total, message: 'z' });
    expect(sent).toHaveLength(3);
    r.flush();
    expect(sent.at(-1)).toEqual({ done: 102 + 8 * MiB, total, message: 'z' });
  });

  it('never sends a total below done (an estimate that proves low grows); a measurement without one sends none', () => {
    const { r, sent, tick } = reporter();
    r.report({ done: 150, total: 100, message: 'over' });
    tick(1000);
    r.report({ done: 160, message: 'no total' });
    expect(sent[0]).toEqual({ done: 150, total: 150, message: 'over' });
    expect(sent[1]).toEqual({ done: 160, total: undefined, message: 'no total' });
  });

  it('polls a sampler while it is set: a heartbeat with what was measured, nothing when nothing new was', () => {
    vi.useFakeTimers();
    const { r, sent, tick } = reporter({ pollMs: 250, minIntervalMs: 250 });
    let size = 0;
    r.measure(() => ({ done: size, total: 1000, message: 'copying big.db' }));
    for (let i = 0; i < 8; i++) {
      size += 100;
      tick(250);
      vi.advanceTimersByTime(250);
    }
    expect(sent.map((s) => s.done)).toEqual([100, 200, 300, 400, 500, 600, 700, 800]);
    // Nothing grew: no notification repeats a value.
    tick(1000);
    vi.advanceTimersByTime(1000);
    expect(sent).toHaveLength(8);
    // A sampler that throws (a file gone while measured) counts as nothing measured.
    r.measure(() => {
      throw new Error('gone');
    });
    vi.advanceTimersByTime(500);
    expect(sent).toHaveLength(8);
    r.stop();
    size += 100;
    vi.advanceTimersByTime(1000);
    expect(sent).toHaveLength(8);
  });
});

describe('monotonicSink', () => {
  it('drops every value that does not increase and lifts a total below done', () => {
    const got: Array<[number, number | undefined]> = [];
    const sink = monotonicSink((done, total) => got.push([done, total]));
    sink(1, 10, 'a');
    sink(1, 10, 'b');
    sink(0, 10, 'c');
    sink(12, 10, 'd');
    sink(Number.NaN, undefined, 'e');
    sink(13, undefined, 'f');
    expect(got).toEqual([
      [1, 10],
      [12, 12],
      [13, undefined],
    ]);
  });
});

import { describe, expect, it } from 'vitest';
import { chainOf, ChainPolicySchema, decideNext, DEFAULT_CHAIN_POLICY, protectChains, type ChainPolicy, type ChainSnapshot } from '../src/snapshot/chain.js';
import { Rng } from './support/sqlite-gen.js';

const H = 3600 * 1000;
const full = (id: string, at: number, bytes = 1000): ChainSnapshot => ({ id, kind: 'full', base: null, bytes, at });
const delta = (id: string, base: string, at: number, bytes = 10): ChainSnapshot => ({ id, kind: 'delta', base, bytes, at });

describe('the chain rule', () => {
  it('defaults: a full at least daily, at most 48 deltas, deltas up to half the full', () => {
    expect(DEFAULT_CHAIN_POLICY).toEqual({ maxFullAgeMs: 24 * H, maxDeltaShare: 1, maxDeltas: 48 });
  });

  it('starts with a full, then deltas on the newest snapshot', () => {
    expect(decideNext([], 0)).toEqual({ kind: 'full', reason: 'no_base' });
    const s = [full('a', 0)];
    expect(decideNext(s, H)).toEqual({ kind: 'delta', base: 'a', chainLength: 2 });
    s.push(delta('b', 'a', H));
    expect(decideNext(s, 2 * H)).toEqual({ kind: 'delta', base: 'b', chainLength: 3 });
  });

  it('takes a full when the full is a day old, when the deltas reach the share, or the chain its length', () => {
    const s = [full('a', 0, 1000), delta('b', 'a', H, 200)];
    expect(decideNext(s, 24 * H)).toEqual({ kind: 'full', reason: 'full_too_old' });
    // 200 + 800 bytes of deltas: the default share (1) of the full's 1000; one byte less is still a delta.
    expect(decideNext([...s, delta('c', 'b', 2 * H, 799)], 3 * H)).toMatchObject({ kind: 'delta', base: 'c' });
    expect(decideNext([...s, delta('c', 'b', 2 * H, 800)], 3 * H)).toEqual({ kind: 'full', reason: 'deltas_too_big' });
    const short: ChainPolicy = { ...DEFAULT_CHAIN_POLICY, maxDeltas: 1 };
    expect(decideNext(s, 2 * H, {}, short)).toEqual({ kind: 'full', reason: 'chain_too_long' });
  });

  it('takes a full after a vacuum, a page-size change, a replaced file, or when asked', () => {
    const s = [full('a', 0)];
    expect(decideNext(s, H, { vacuum: true })).toEqual({ kind: 'full', reason: 'vacuum' });
    expect(decideNext(s, H, { pageSizeChanged: true })).toEqual({ kind: 'full', reason: 'page_size_changed' });
    expect(decideNext(s, H, { fileReplaced: true })).toEqual({ kind: 'full', reason: 'file_replaced' });
    expect(decideNext(s, H, { forced: true })).toEqual({ kind: 'full', reason: 'forced' });
  });

  it('takes a full when the newest snapshot or any link of its chain is damaged or missing', () => {
    expect(decideNext([full('a', 0), { ...delta('b', 'a', H), intact: false }], 2 * H)).toEqual({ kind: 'full', reason: 'base_damaged' });
    expect(decideNext([{ ...full('a', 0), intact: false }, delta('b', 'a', H)], 2 * H)).toEqual({ kind: 'full', reason: 'base_damaged' });
    expect(decideNext([delta('b', 'a', H)], 2 * H)).toEqual({ kind: 'full', reason: 'base_damaged' });
    expect(chainOf([delta('b', 'a', H)], 'b')).toEqual({ ids: ['b'], complete: false, intact: false, missing: 'a' });
    // A loop of bases is not a chain.
    expect(chainOf([delta('x', 'y', 0), delta('y', 'x', 1)], 'x').complete).toBe(false);
  });

  it('retention keeps every snapshot a kept one depends on, and says which were kept for that', () => {
    const s = [full('a', 0), delta('b', 'a', H), delta('c', 'b', 2 * H), full('d', 3 * H), delta('e', 'd', 4 * H)];
    expect(protectChains(s, ['c', 'e'])).toEqual({ keep: ['a', 'b', 'c', 'd', 'e'], deletable: [], keptAsBase: ['a', 'b', 'd'] });
    expect(protectChains(s, ['a', 'd'])).toEqual({ keep: ['a', 'd'], deletable: ['b', 'c', 'e'], keptAsBase: [] });
    expect(protectChains(s, ['e', 'nope'])).toEqual({ keep: ['d', 'e'], deletable: ['a', 'b', 'c'], keptAsBase: ['d'] });
  });

  it('property: random sequences with events, damage and retention sweeps keep every kept chain complete and within 1 + maxDeltas archives and maxFullAgeMs', () => {
    let checked = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const rng = new Rng(seed);
      const policy = ChainPolicySchema.parse({ maxFullAgeMs: rng.pick([6, 24, 48]) * H, maxDeltaShare: rng.pick([0.2, 0.5, 1]), maxDeltas: rng.int(1, 30) });
      let kept: ChainSnapshot[] = [];
      let now = 0;
      let fulls = 0;
      const violations: string[] = [];
      for (let step = 0; step < 300; step++) {
        now += rng.int(5, 180) * 60_000;
        const events = { vacuum: rng.chance(0.01), pageSizeChanged: rng.chance(0.005), fileReplaced: rng.chance(0.005) };
        const next = decideNext(kept, now, events, policy);
        const id = `s${step}`;
        if (next.kind === 'full') {
          fulls++;
          kept.push(full(id, now, rng.int(500, 2000)));
        } else {
          const base = kept.find((s) => s.id === next.base)!;
          // The base is the newest kept snapshot and its whole chain is there and intact.
          if (Math.max(...kept.map((s) => s.at)) !== base.at) violations.push(`seed ${seed} step ${step}: base ${base.id} is not the newest`);
          const chain = chainOf(kept, base.id);
          if (!chain.complete || !chain.intact) violations.push(`seed ${seed} step ${step}: base ${base.id} has a broken chain`);
          kept.push(delta(id, next.base, now, rng.int(0, 200)));
          if (chainOf(kept, id).ids.length !== next.chainLength) violations.push(`seed ${seed} step ${step}: chain length`);
        }
        if (rng.chance(0.02)) {
          const victim = rng.pick(kept);
          victim.intact = false; // a damaged archive: no delta may build on its chain any more
        }
        if (rng.chance(0.15)) {
          // A retention sweep keeps the newest and a random share of the rest; chains widen it.
          const newest = kept[kept.length - 1]!.id;
          const asked = [newest, ...kept.filter(() => rng.chance(0.3)).map((s) => s.id)];
          const r = protectChains(kept, asked);
          if (!asked.every((id) => r.keep.includes(id))) violations.push(`seed ${seed} step ${step}: an asked-for snapshot was not kept`);
          if (r.keep.some((id) => r.deletable.includes(id))) violations.push(`seed ${seed} step ${step}: kept and deletable`);
          kept = kept.filter((s) => r.keep.includes(s.id));
        }
        // Every kept snapshot restores: complete chain, bounded length, a full not too old.
        const byId = new Map(kept.map((s) => [s.id, s]));
        for (const s of kept) {
          const c = chainOf(kept, s.id);
          const where = `seed ${seed} step ${step} ${s.id}`;
          if (!c.complete) violations.push(`${where}: chain incomplete`);
          else {
            if (c.ids.length > 1 + policy.maxDeltas) violations.push(`${where}: ${c.ids.length} archives`);
            if (s.at - byId.get(c.ids[0]!)!.at >= policy.maxFullAgeMs) violations.push(`${where}: full too old`);
            const fullBytes = byId.get(c.ids[0]!)!.bytes;
            const deltaBytes = c.ids.slice(1, -1).reduce((sum, d) => sum + byId.get(d)!.bytes, 0);
            // all but the last delta stayed under the share
            if (deltaBytes >= policy.maxDeltaShare * fullBytes) violations.push(`${where}: deltas ${deltaBytes} of ${fullBytes}`);
          }
        }
        checked += kept.length;
      }
      expect(violations).toEqual([]);
    }
    expect(checked).toBeGreaterThan(10_000);
  });
});

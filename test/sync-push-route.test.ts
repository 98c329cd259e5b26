import { describe, expect, it } from 'vitest';
import { routePush } from '../src/sync/push-route.js';

describe('routePush: where a sync goes, by mode and whether the remote moved since the last sync', () => {
  const golden = [
    ['direct', false, { kind: 'direct' }],
    ['direct', true, { kind: 'refuse_remote_changed' }],
    ['hybrid', false, { kind: 'direct' }],
    ['hybrid', true, { kind: 'pull_request', parent: 'last_synced' }],
    ['pr', false, { kind: 'pull_request', parent: 'remote_head' }],
    ['pr', true, { kind: 'pull_request', parent: 'last_synced' }],
  ] as const;
  for (const [mode, moved, expected] of golden) {
    it(`${mode}, remote ${moved ? 'moved' : 'unchanged'} -> ${JSON.stringify(expected)}`, () => {
      expect(routePush(mode, moved)).toEqual(expected);
    });
  }
});

// How the issues transport reads gh api's answers: status, headers, Link pages, rate-limit waits (pure).
import { describe, expect, it } from 'vitest';
import { nextLink, parseIncluded, rateLimitWait } from '../src/sync/issues/github-api.js';

describe('reading gh api -i answers', () => {
  it('splits the status, the headers (lower-case) and the JSON body', () => {
    const a = parseIncluded('HTTP/1.1 201 Created\nRetry-After: 3\nX-RateLimit-Remaining: 0\n\n{"number":4}');
    expect(a).toEqual({ status: 201, headers: { 'retry-after': '3', 'x-ratelimit-remaining': '0' }, body: { number: 4 } });
    expect(parseIncluded('HTTP/2.0 204 No Content\r\nDate: x\r\n\r\n')).toEqual({ status: 204, headers: { date: 'x' }, body: null });
    expect(parseIncluded('Post "http://api.github.localhost/...": EOF')).toBeNull();
  });

  it('follows rel="next" as a path gh api takes, and stops without one', () => {
    expect(nextLink('<http://api.github.localhost/repositories/9/issues?state=all&page=2>; rel="next", <http://api.github.localhost/repositories/9/issues?page=5>; rel="last"')).toBe('repositories/9/issues?state=all&page=2');
    expect(nextLink('<https://github.example/api/v3/repositories/9/issues?page=3>; rel="next"')).toBe('repositories/9/issues?page=3');
    expect(nextLink('<http://x/issues?page=1>; rel="prev"')).toBeNull();
    expect(nextLink(undefined)).toBeNull();
  });
});

describe('how long a rate-limit answer is waited out', () => {
  const now = 1_000_000;
  it('Retry-After wins; a spent primary quota waits until X-RateLimit-Reset', () => {
    expect(rateLimitWait({ status: 403, headers: { 'retry-after': '7' }, body: { message: 'You have exceeded a secondary rate limit.' } }, now, 0)).toEqual({ seconds: 7, kind: 'secondary' });
    expect(rateLimitWait({ status: 429, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + 30) }, body: {} }, now, 0)).toEqual({ seconds: 31, kind: 'primary' });
  });
  it('a secondary limit without Retry-After backs off from a minute, doubling', () => {
    const a = { status: 403, headers: { 'x-ratelimit-remaining': '4000' }, body: { message: 'You have exceeded a secondary rate limit. Please wait.' } };
    expect(rateLimitWait(a, now, 0)).toEqual({ seconds: 60, kind: 'secondary' });
    expect(rateLimitWait(a, now, 2)).toEqual({ seconds: 240, kind: 'secondary' });
  });
  it('other refusals are not rate limits', () => {
    expect(rateLimitWait({ status: 403, headers: { 'x-ratelimit-remaining': '4999' }, body: { message: 'Resource not accessible by integration' } }, now, 0)).toBeNull();
    expect(rateLimitWait({ status: 404, headers: {}, body: null }, now, 0)).toBeNull();
  });
});

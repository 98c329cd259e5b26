/**
 * Fault injection: a queue of faults, each with a matcher and a remaining count. A request takes
 * the first fault that matches it (insertion order), so tests can stack e.g. "drop once, then 502".
 */
import { STATUS_CODES } from 'node:http';
import { DOCS } from './hosts.js';
import type { Fault, FaultAction } from './types.js';

export interface FaultSubject {
  method: string;
  host: string;
  path: string;
  graphqlOperation?: string;
}

interface Pending {
  fault: Fault;
  remaining: number;
}

export class FaultQueue {
  private pending: Pending[] = [];

  add(fault: Fault): void {
    const times = fault.times ?? 1;
    if (!(times > 0)) throw new Error(`fault.times must be positive, got ${String(fault.times)}`);
    if (fault.kind === 'delay' && !(fault.ms >= 0)) throw new Error('delay fault needs ms >= 0');
    if (fault.kind === 'slow' && !(fault.bytesPerSecond > 0)) throw new Error('slow fault needs bytesPerSecond > 0');
    this.pending.push({ fault, remaining: times });
  }

  clear(): void {
    this.pending = [];
  }

  /** Consumes one use of the first matching fault. */
  take(s: FaultSubject): FaultAction | undefined {
    const i = this.pending.findIndex((p) => matches(p.fault, s));
    if (i < 0) return undefined;
    const p = this.pending[i]!;
    p.remaining -= 1; // Infinity stays Infinity
    if (p.remaining <= 0) this.pending.splice(i, 1);
    return p.fault;
  }
}

function matches(f: Fault, s: FaultSubject): boolean {
  const m = f.match;
  if (m.method !== undefined && m.method.toUpperCase() !== s.method.toUpperCase()) return false;
  if (m.host !== undefined && m.host.toLowerCase() !== s.host.toLowerCase()) return false;
  if (m.path !== undefined) {
    m.path.lastIndex = 0; // a /g regex would otherwise carry state between requests
    if (!m.path.test(s.path)) return false;
  }
  if (m.graphqlOperation !== undefined && m.graphqlOperation !== s.graphqlOperation) return false;
  return true;
}

/**
 * The body of a `status` fault. Without one: GitHub's edge answers 5xx with an HTML page (not
 * JSON), and 4xx with its usual JSON error.
 */
export function faultBody(status: number, body: unknown): { contentType: string; text: string } {
  if (typeof body === 'string') {
    return { contentType: body.trimStart().startsWith('<') ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8', text: body };
  }
  if (body !== undefined) return { contentType: 'application/json; charset=utf-8', text: JSON.stringify(body) };
  const reason = STATUS_CODES[status] ?? 'Error';
  if (status >= 500) {
    return {
      contentType: 'text/html; charset=utf-8',
      text: `<!DOCTYPE html>\n<html>\n  <head><title>${status} ${reason}</title></head>\n  <body>\n    <h1>${reason}</h1>\n    <p>We couldn't respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.</p>\n  </body>\n</html>\n`,
    };
  }
  return { contentType: 'application/json; charset=utf-8', text: JSON.stringify({ message: reason, documentation_url: DOCS, status: String(status) }) };
}

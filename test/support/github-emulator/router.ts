/**
 * A minimal method + path-template router. `:name` matches one segment, `:name+` the rest of the
 * path (tag names may contain slashes). HEAD is answered by the GET route: Node drops the body.
 */
import type { Ctx } from './http.js';

export type Params = Record<string, string>;
export type Handler = (ctx: Ctx, params: Params) => void | Promise<void>;

export interface Route {
  method: string;
  regex: RegExp;
  handler: Handler;
}

export function route(method: string, template: string, handler: Handler): Route {
  const source = template
    .split('/')
    .map((seg) => {
      const m = /^:(\w+)(\+)?$/.exec(seg);
      if (!m) return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return m[2] ? `(?<${m[1]}>.+)` : `(?<${m[1]}>[^/]+)`;
    })
    .join('/');
  return { method, regex: new RegExp(`^${source}/?$`), handler };
}

export interface RouteMatch {
  handler: Handler;
  params: Params;
}

export function match(routes: readonly Route[], method: string, path: string): RouteMatch | undefined {
  const want = method === 'HEAD' ? 'GET' : method;
  for (const r of routes) {
    if (r.method !== want) continue;
    const m = r.regex.exec(path);
    if (!m) continue;
    const params: Params = {};
    for (const [k, v] of Object.entries(m.groups ?? {})) params[k] = safeDecode(v);
    return { handler: r.handler, params };
  }
  return undefined;
}

function safeDecode(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

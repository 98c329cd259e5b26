/**
 * The host names the emulator answers for, and the absolute URLs it puts in its JSON.
 *
 * gh 2.23 treats `github.localhost` like github.com (its "localhost" development host): REST at
 * `http://api.github.localhost/`, GraphQL at `http://api.github.localhost/graphql`, plain http so
 * it goes through HTTP_PROXY. Release uploads go wherever the release's `upload_url` points; like
 * github.com we hand out `http://uploads.github.localhost/...`. Asset downloads redirect to
 * `objects.github.localhost`, standing in for GitHub's signed object-storage host.
 * The GHES layout (`github.localhost/api/v3`, `/api/graphql`, `/api/uploads`) is also accepted so a
 * different gh version that used it would still be answered. git's smart HTTP lives on the web host
 * too, over https only (see git-http.ts and tls.ts).
 */
export const WEB_HOST = 'github.localhost';
export const API_HOST = `api.${WEB_HOST}`;
export const UPLOADS_HOST = `uploads.${WEB_HOST}`;
export const OBJECTS_HOST = `objects.${WEB_HOST}`;

export const API_BASE = `http://${API_HOST}`;
export const WEB_BASE = `http://${WEB_HOST}`;
export const UPLOADS_BASE = `http://${UPLOADS_HOST}`;
export const OBJECTS_BASE = `http://${OBJECTS_HOST}`;

export type Surface = 'api' | 'uploads' | 'objects' | 'web';

/**
 * Which part of the emulator serves a request, and the path inside it (GHES prefixes removed).
 * Undefined for hosts the emulator does not know: those get a proxy-style 502 so a stray request
 * (say to github.com) is loud instead of silently answered.
 */
export function classify(host: string, path: string): { surface: Surface; path: string } | undefined {
  const h = host.toLowerCase().replace(/:\d+$/, '');
  if (h === API_HOST) return { surface: 'api', path };
  if (h === UPLOADS_HOST) return { surface: 'uploads', path };
  if (h === OBJECTS_HOST) return { surface: 'objects', path };
  if (h === WEB_HOST) {
    if (path.startsWith('/api/v3/') || path === '/api/v3') return { surface: 'api', path: path.slice('/api/v3'.length) || '/' };
    if (path.startsWith('/api/graphql')) return { surface: 'api', path: path.slice('/api'.length) };
    if (path.startsWith('/api/uploads/')) return { surface: 'uploads', path: path.slice('/api/uploads'.length) };
    return { surface: 'web', path };
  }
  return undefined;
}

export const DOCS = 'https://docs.github.com/rest';

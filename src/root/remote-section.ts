import { z } from 'zod';

/**
 * The `remote:` section of the config: `{ <backend>: { …that backend's settings } }` or null.
 * Only its outer shape is known here: the backends and their settings' schemas live in
 * src/remote/ (each backend folder owns its schema), a layer above this one, so the remote
 * registry installs its check with setRemoteSectionCheck() when it is loaded. Every program that
 * can use a remote loads the registry, so a bad backend entry fails at config load with
 * config_invalid naming the field; the registry checks the section again before it builds a remote.
 */
export interface RemoteSectionCheck {
  /** the backend names, in the order messages list them */
  backends: readonly string[];
  /** what is wrong with one backend's settings: paths relative to the backend's key */
  problems(backend: string, settings: unknown): Array<{ path: PropertyKey[]; message: string }>;
}

let installed: RemoteSectionCheck | null = null;

/** Install the remote registry's check of backend names and settings (src/remote/registry.ts does, once). */
export function setRemoteSectionCheck(check: RemoteSectionCheck): void {
  installed = check;
}

export const RemoteSectionSchema = z
  .record(z.string(), z.unknown())
  .superRefine((section, ctx) => {
    const keys = Object.keys(section);
    const known = installed ? ` (${installed.backends.join(' or ')})` : '';
    if (keys.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `expected exactly one backend${known}, got ${keys.length ? keys.join(', ') : 'none'}` });
      return;
    }
    const backend = keys[0]!;
    if (installed && !installed.backends.includes(backend)) {
      ctx.addIssue({ code: 'custom', path: [backend], message: `unknown backend "${backend}": expected ${installed.backends.join(' or ')}` });
      return;
    }
    const settings = section[backend];
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      ctx.addIssue({ code: 'custom', path: [backend], message: 'expected an object of settings' });
      return;
    }
    for (const p of installed?.problems(backend, settings) ?? []) ctx.addIssue({ code: 'custom', path: [backend, ...p.path], message: p.message });
  });
export type RemoteSection = z.infer<typeof RemoteSectionSchema>;

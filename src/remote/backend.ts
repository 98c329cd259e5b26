import type { z } from 'zod';
import type { Remote } from './remote.js';

/** What a backend's factory gets besides its own settings. */
export interface BackendContext {
  /** the data root: relative paths in settings are relative to it */
  root: string;
  /** environment for child programs such as gh (tests point it at the GitHub emulator) */
  ghEnv?: Record<string, string>;
}

/**
 * A remote backend: a folder under src/remote/ exporting one of these, listed once in
 * registry.ts. `schema` validates the settings under `remote.<name>` in wb-backup.yaml (strict
 * zod: an unknown field is an error); `create` builds one attempt per call Remote from them (the
 * registry adds retries).
 */
export interface RemoteBackend<S extends z.ZodType = z.ZodType> {
  schema: S;
  create(settings: z.infer<S>, ctx: BackendContext): Remote;
}

/** Declare a backend with its settings typed from its schema. */
export function defineBackend<S extends z.ZodType>(backend: RemoteBackend<S>): RemoteBackend<S> {
  return backend;
}

/** Archive part size setting shared by backends that split archives. */
export const PART_BYTES_DESCRIPTION = 'split archives larger than this many bytes into .partNNN files (default just under 2 GiB, the GitHub release-asset limit)';

import path from 'node:path';
import { z } from 'zod';
import { expandHome } from '../../root/paths.js';
import { defineBackend, PART_BYTES_DESCRIPTION } from '../backend.js';
import { DirRemote } from './dir-remote.js';

/** `remote: { dir: { path, part_bytes? } }`: a mounted folder (NAS, external disk). */
export const DirSettingsSchema = z
  .object({
    path: z.string().min(1).describe('the folder, absolute, ~/…, or relative to the data root'),
    part_bytes: z.number().int().min(1024).optional().describe(PART_BYTES_DESCRIPTION),
  })
  .strict();

export const dirBackend = defineBackend({
  schema: DirSettingsSchema,
  create: (settings, ctx) => new DirRemote(path.resolve(ctx.root, expandHome(settings.path)), settings.part_bytes),
});

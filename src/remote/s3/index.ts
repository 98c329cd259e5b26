import { z } from 'zod';
import { defineBackend } from '../backend.js';
import { S3Remote } from './s3-remote.js';

/**
 * `remote: { s3: { bucket, prefix?, region?, endpoint?, force_path_style?, profile?, checksums?, part_bytes? } }`:
 * an S3-compatible bucket (AWS S3, Cloudflare R2, Backblaze B2, MinIO). Credentials come only from
 * the standard AWS chain (environment, shared config/credentials files, `profile`): there is no
 * field for them, so they are never in wb-backup.yaml.
 */
export const S3SettingsSchema = z
  .object({
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)')
      .describe('the bucket, which must exist'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'expected a key prefix of letters, digits and !_.*\'()/- only')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'a prefix may not contain . or .. segments')
      .optional()
      .describe('folder-like key prefix under which snapshots are stored, e.g. "laptop/wb-backup" (default: the bucket root)'),
    region: z.string().regex(/^[a-z0-9-]+$/, 'expected a region such as "us-east-1" or "auto" (R2)').optional().describe('the region; default from AWS_REGION or the profile'),
    endpoint: z.string().url('expected a URL such as "https://<account>.r2.cloudflarestorage.com"').optional().describe('the S3 API endpoint of a non-AWS store (R2, B2, MinIO); default AWS'),
    force_path_style: z.boolean().optional().describe('address the bucket as <endpoint>/<bucket> instead of <bucket>.<endpoint> (MinIO and most self-hosted stores); default false'),
    profile: z.string().min(1).optional().describe('the AWS profile of ~/.aws/config and ~/.aws/credentials to take credentials from; default AWS_PROFILE or "default"'),
    checksums: z
      .enum(['when_required', 'when_supported'])
      .optional()
      .describe('when the SDK adds and checks CRC checksums: "when_required" (default; works on R2, B2, MinIO) or "when_supported" (AWS S3 only)'),
    part_bytes: z.number().int().min(1024).optional().describe('split archives larger than this many bytes into .partNNN objects (default: no split; each object goes up in multipart pieces anyway)'),
  })
  .strict();
export type S3Settings = z.infer<typeof S3SettingsSchema>;

export const s3Backend = defineBackend({
  schema: S3SettingsSchema,
  create: (settings) => new S3Remote(settings),
});

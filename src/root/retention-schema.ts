import { z } from 'zod';

/* The retention section of wb-backup.yaml; the policy itself (a pure function over ids) is
   src/snapshot/retention.ts. */

const cap = (fallback: number, what: string) =>
  z.number().int().min(0).default(fallback).describe(`keep the newest snapshot of each of the newest N ${what} that have one`);

/** `retention:` in wb-backup.yaml. Strict, so a misspelt cap fails loudly instead of silently using a default. */
export const RetentionPolicySchema = z
  .object({
    hourly: cap(24, 'hours'),
    daily: cap(7, 'days'),
    weekly: cap(4, 'ISO weeks'),
    monthly: cap(12, 'months'),
    annual: z
      .number()
      .int()
      .min(0)
      .nullable()
      .default(null)
      .describe('keep the newest snapshot of each of the newest N years that have one; null = every year'),
    manual: z.number().int().min(0).default(20).describe('keep the newest N manual snapshots'),
  })
  .strict();

export type RetentionPolicy = z.infer<typeof RetentionPolicySchema>;

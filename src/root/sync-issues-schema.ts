import { z } from 'zod';

/* The sync.issues section of wb-backup.yaml: task-shaped tables kept as GitHub issues. It sits in
   root/ beside sync-schema.ts because the config schema is read before any domain folder loads;
   what the transport does with it is in src/sync/issues/. */

const column = z.string().min(1);

/** One task table mirrored as issues: which columns become the issue's title, body, state and labels. */
export const IssueTableMappingSchema = z
  .object({
    title: column.describe('the column holding the issue title'),
    body: column.optional().describe('the column holding the issue body (Markdown)'),
    state: z
      .object({
        column,
        closed: z.array(z.string().min(1)).min(1).describe('values that mean done: the issue is closed; a closed issue maps back to the first'),
        reopened: z.string().min(1).default('open').describe('the value a reopened issue gets when its state label says closed'),
      })
      .strict()
      .optional()
      .describe('the state column: a state:<value> label, and a closed issue for closed values'),
    priority: column.optional().describe('a priority:<value> label'),
    type: column.optional().describe('a type:<value> label'),
    labels: column.optional().describe('a comma-separated list of plain labels'),
    comments: z
      .object({
        table: column.describe('the child table holding comments or log entries'),
        parent: column.describe("its column referring to the task's (single-column) primary key"),
        body: column.describe('its column holding the comment text'),
      })
      .strict()
      .optional()
      .describe('child rows as issue comments'),
  })
  .strict();
export type IssueTableMapping = z.infer<typeof IssueTableMappingSchema>;

/** `sync.issues` in wb-backup.yaml. */
export const IssuesSyncSchema = z
  .object({
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected "owner/name"').describe('the GitHub repository holding the issues (through gh)'),
    tables: z
      .record(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected "db.table"'), IssueTableMappingSchema)
      .refine((t) => Object.keys(t).length > 0, { message: 'map at least one "db.table"' })
      .describe('"db.table" -> its mapping: one issue per row'),
    max_wait_seconds: z.number().int().min(0).max(3600).default(120).describe('the longest a rate-limit answer is waited out before the sync stops (resumable)'),
    parallel: z.number().int().min(1).max(8).default(1).describe('requests in flight at once (GitHub asks for 1: serial requests avoid its secondary limits)'),
  })
  .strict();
export type IssuesSyncConfig = z.infer<typeof IssuesSyncSchema>;

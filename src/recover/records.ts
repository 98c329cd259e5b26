import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Config } from '../root/config.js';
import { describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';
import { writeFileDurable } from '../restore/fs-steps.js';
import { keyFromJson, keyToJson, type KeyJson } from '../inspect/values.js';
import { hashRows, RowReader, tableShape, type Row, type SqlValue } from './rows.js';

/**
 * The durable records of row recoveries under <root>/recovered/: written "pending" right before
 * the transaction commits and rewritten "completed" after it, so a crash between the two leaves a
 * record that says it may not have happened. The next recovery resolves such a record by looking
 * at the live rows it lists (resolvePendingRecords).
 */

/** What a pending record means to whoever reads it. */
export const PENDING_MEANS =
  'written before the transaction committed: a crash (kill -9, power loss) may have come before or after the commit, so the rows listed may or may not be live; the next data_recover_rows checks them and marks the record completed or not_applied, and data_snapshot_diff from snapshot_id to "live" shows them meanwhile';

/** One written row as a record keeps it for the check: its exact key and the sha256 of its values. */
export interface RecordCheck {
  table: string;
  key: KeyJson;
  sha256: string;
}

export function recordCheck(row: Row): RecordCheck {
  return { table: row.table, key: keyToJson(row.id), sha256: hashRows([row]) };
}

/**
 * Resolves every record still "pending" (a crash came between it and its commit, or marking it
 * completed failed): all its rows live with the snapshot's values → "completed"; none → "not_applied"
 * (the transaction was rolled back); some → it stays pending with what was found (the live data
 * changed since). Each resolved record is rewritten atomically. Runs under the root lock, before a
 * recovery. Never throws: a record that cannot be checked stays pending (logged).
 * @returns how many records were rewritten
 */
export function resolvePendingRecords(config: Config): number {
  const dir = rootLayout(config.root).recoveredDir;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return 0;
  }
  let resolved = 0;
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      if (record.status !== 'pending' || !Array.isArray(record.check)) continue;
      const target = config.databases.find((d) => d.name === record.database)?.path;
      if (!target || !fs.existsSync(target)) continue;
      const live = countLive(target, record.check as RecordCheck[]);
      const total = (record.check as RecordCheck[]).length;
      const at = new Date().toISOString();
      let next: Record<string, unknown>;
      if (live === total) next = { ...record, status: 'completed', pending_means: undefined, resolved_at: at, resolved: `found pending after a crash; all ${total} row(s) it lists are live with the snapshot's values: the transaction had committed` };
      else if (live === 0) next = { ...record, status: 'not_applied', pending_means: undefined, resolved_at: at, resolved: `found pending after a crash; none of the ${total} row(s) it lists is live with the snapshot's values: the transaction had not committed, nothing was recovered` };
      else {
        if (record.checked === `${live}/${total}`) continue;
        next = { ...record, checked: `${live}/${total}`, checked_at: at, check_note: `${live} of the ${total} row(s) are live with the snapshot's values: the live data changed since; compare with data_snapshot_diff` };
      }
      writeFileDurable(file, `${JSON.stringify(next, null, 2)}\n`);
      resolved++;
    } catch (err) {
      logger().warn({ record: name, err: describeError(err) }, 'a pending recovery record could not be checked; it stays pending');
    }
  }
  return resolved;
}

/** How many of the rows are in the live file with exactly these values. */
function countLive(target: string, checks: readonly RecordCheck[]): number {
  // Not readonly: after a crash the file may have a hot journal, which only a connection that may
  // write rolls back (as the recovery's own connection would next). Only reads are made.
  const db = new Database(target, { fileMustExist: true, timeout: 10_000 });
  try {
    const reader = new RowReader(db);
    const shapes = new Map<string, ReturnType<typeof tableShape>>();
    let n = 0;
    for (const c of checks) {
      if (!shapes.has(c.table)) shapes.set(c.table, tableShape(db, c.table));
      const shape = shapes.get(c.table);
      if (!shape) continue;
      const row = reader.byId(shape, keyFromJson(c.key) as SqlValue[]);
      if (row && hashRows([{ ...row, table: c.table }]) === c.sha256) n++;
    }
    return n;
  } finally {
    db.close();
  }
}

import Database from 'better-sqlite3';

/** integrity_check and foreign_key_check; returns the problems found (empty = healthy). */
export function healthProblems(db: Database.Database): string[] {
  const problems: string[] = [];
  let integrity: string[];
  try {
    integrity = (db.pragma('integrity_check', { simple: false }) as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
  } catch (err) {
    return [`integrity_check could not run: ${(err as Error).message}`];
  }
  if (!(integrity.length === 1 && integrity[0] === 'ok')) problems.push(`integrity_check: ${integrity.slice(0, 5).join('; ')}${integrity.length > 5 ? '; …' : ''}`);
  try {
    const fk = db.pragma('foreign_key_check') as Array<{ table: string; rowid: number | null; parent: string }>;
    if (fk.length) {
      const sample = fk.slice(0, 5).map((r) => `${r.table} row ${r.rowid ?? '?'} -> ${r.parent}`);
      problems.push(`foreign_key_check: ${fk.length} violation(s): ${sample.join('; ')}`);
    }
  } catch (err) {
    problems.push(`foreign_key_check could not run: ${(err as Error).message}`);
  }
  return problems;
}

export function openStaged(file: string): Database.Database {
  // No mmap: mapped pages count as the process's resident memory, which must stay small.
  return new Database(file, { fileMustExist: true });
}

/** Pure comparisons of row counts: the archive must hold exactly what the manifest says. */
export function rowCountProblems(expected: Record<string, number>, actual: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const [table, n] of Object.entries(expected)) {
    const got = actual[table];
    if (got === undefined) problems.push(`table ${table} is missing (manifest: ${n} rows)`);
    else if (got !== n) problems.push(`table ${table} has ${got} rows, the manifest says ${n}`);
  }
  for (const table of Object.keys(actual)) {
    if (!(table in expected)) problems.push(`table ${table} is not in the manifest`);
  }
  return problems;
}

/** After migrations: they may add tables and rows, never take rows away. */
export function migrationLossProblems(before: Record<string, number>, after: Record<string, number>): string[] {
  const problems: string[] = [];
  for (const [table, n] of Object.entries(before)) {
    const got = after[table];
    if (got === undefined) problems.push(`the migrations dropped table ${table} (${n} rows)`);
    else if (got < n) problems.push(`the migrations removed ${n - got} rows from ${table}`);
  }
  return problems;
}

/**
 * Orders strings by UTF-16 code unit, the same on every machine. localeCompare depends on the
 * user's locale (and its first call loads ICU's collator, ~10-30 ms of every CLI start); names
 * that end up in snapshots and in the synced repository must sort the same everywhere.
 */
export function byCodeUnit(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

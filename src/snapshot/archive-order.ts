/**
 * The order databases go into a snapshot archive, chosen for the restore. A restore unpacks the
 * archive as one stream and checks each database (integrity_check, foreign keys, row counts) on a
 * worker as soon as it is unpacked: a two-stage flow shop, for which Johnson's rule gives the order
 * that finishes soonest. Databases whose check outlasts their unpacking (many small rows: index
 * lookups dominate) go first, shortest unpacking first; the rest follow, longest check first, so
 * the database unpacked last is quick to check.
 *
 * The costs are estimates from this machine's measurements (bench/restore); only their proportions
 * matter. Rows come from the previous snapshot's manifest; a database never snapshotted counts by
 * size alone.
 */
export interface ArchiveCandidate {
  name: string;
  bytes: number;
  /** total rows in the previous snapshot, when there was one */
  rows?: number | undefined;
}

const UNPACK_MS_PER_MB = 1.8;
const CHECK_MS_PER_MB = 0.65;
const CHECK_MS_PER_ROW = 0.00028;

export function unpackCost(c: ArchiveCandidate): number {
  return (c.bytes / 1e6) * UNPACK_MS_PER_MB;
}

export function checkCost(c: ArchiveCandidate): number {
  return (c.bytes / 1e6) * CHECK_MS_PER_MB + (c.rows ?? 0) * CHECK_MS_PER_ROW;
}

/** Names in archive order (ties broken by name, so the order is stable). */
export function restoreFriendlyOrder(candidates: readonly ArchiveCandidate[]): string[] {
  const byName = (a: ArchiveCandidate, b: ArchiveCandidate) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const checkBound = candidates.filter((c) => unpackCost(c) < checkCost(c));
  const unpackBound = candidates.filter((c) => unpackCost(c) >= checkCost(c));
  checkBound.sort((a, b) => unpackCost(a) - unpackCost(b) || byName(a, b));
  unpackBound.sort((a, b) => checkCost(b) - checkCost(a) || byName(a, b));
  return [...checkBound, ...unpackBound].map((c) => c.name);
}

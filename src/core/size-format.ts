import fs from 'node:fs';
/**
 * The one way sizes are written for people, everywhere (CLI, tool summaries, health details,
 * messages, the card): IEC binary units, B / KiB / MiB / GiB / TiB, powers of 1024, one decimal
 * (none for bytes). Examples: 512 -> "512 B", 103100 -> "100.7 KiB", 5 * 1024 ** 3 -> "5.0 GiB".
 * @param bytes a byte count (non-negative; negative values are written with a minus sign)
 */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  if (n < 1024) return `${sign}${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let unit = -1;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": move it up a unit instead.
  if (n.toFixed(1) === '1024.0' && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${sign}${n.toFixed(1)} ${units[unit]}`;
}

/** A transfer rate for progress output, e.g. "12.3 MiB/s"; bytes per second in. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** " (N free)" for the disk holding `dir`, for disk_full messages; '' when it cannot be read. */
export function freeSpaceNote(dir: string): string {
  try {
    const s = fs.statfsSync(dir);
    return ` (${formatBytes(Number(s.bavail) * Number(s.bsize))} free)`;
  } catch {
    return '';
  }
}

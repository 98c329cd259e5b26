import fs from 'node:fs';
import path from 'node:path';

/** Every file under `dir`, as '/'-separated paths relative to it (none when it does not exist). */
export function listFiles(dir: string, prefix = ''): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

/** Whether `b` exists with exactly the bytes of `a`. */
export function sameBytes(a: string, b: string): boolean {
  if (!fs.existsSync(b)) return false;
  if (fs.statSync(a).size !== fs.statSync(b).size) return false;
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

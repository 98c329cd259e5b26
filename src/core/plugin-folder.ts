import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Loads every module of a plug-in folder (capabilities/, health/, ...) beside src/ (or beside
 * dist/src/ when built): the list of files IS the registry, so adding a plug-in is adding a file.
 * Each module must `export default` something `isValid` accepts; otherwise this throws an Error
 * naming the file and `expected`. Files load in name order.
 */
export async function loadPluginFolder<T>(folder: string, expected: string, isValid: (m: unknown) => m is T): Promise<T[]> {
  const dir = pluginFolder(folder);
  const loaded: T[] = [];
  for (const file of moduleFiles(dir)) {
    const mod = (await import(pathToFileURL(path.join(dir, file)).href)) as { default?: unknown };
    if (!isValid(mod.default)) throw new Error(`${folder}/${file} must export a default ${expected}`);
    loaded.push(mod.default);
  }
  return loaded;
}

/** <package>/<folder> in source (this file is src/core/), dist/<folder> when built (dist/src/core/). */
function pluginFolder(folder: string): string {
  return fileURLToPath(new URL(`../../${folder}/`, import.meta.url));
}

function moduleFiles(dir: string): string[] {
  const names = fs.readdirSync(dir);
  const js = names.filter((n) => n.endsWith('.js'));
  // Under vitest the sources are loaded directly; built code has only .js.
  const chosen = js.length ? js : names.filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts'));
  return chosen.sort();
}

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Capability } from './capability.js';
import type { Component } from './health/types.js';

/**
 * The plug-in folders sit beside src/ (and beside dist/src/ when built). The list of files IS the
 * registry: adding a capability is adding a file.
 */
function pluginDir(folder: 'capabilities' | 'health'): URL {
  return new URL(`../${folder}/`, import.meta.url);
}

function moduleFiles(dir: URL): string[] {
  const names = fs.readdirSync(fileURLToPath(dir));
  const js = names.filter((n) => n.endsWith('.js'));
  // Under vitest the sources are loaded directly; built code has only .js.
  const chosen = js.length ? js : names.filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts'));
  return chosen.sort();
}

async function loadDefaults<T>(folder: 'capabilities' | 'health', isValid: (m: unknown) => m is T): Promise<T[]> {
  const dir = pluginDir(folder);
  const loaded: T[] = [];
  for (const file of moduleFiles(dir)) {
    const mod = (await import(new URL(file, dir).href)) as { default?: unknown };
    if (!isValid(mod.default)) throw new Error(`${folder}/${file} must export a default ${folder === 'capabilities' ? 'defineCapability(...)' : 'component'}`);
    loaded.push(mod.default);
  }
  return loaded;
}

function isCapability(m: unknown): m is Capability {
  const c = m as Partial<Capability> | undefined;
  return !!c && typeof c.name === 'string' && typeof c.run === 'function' && typeof c.input === 'object';
}

let capabilities: Promise<Capability[]> | undefined;

export function loadCapabilities(): Promise<Capability[]> {
  capabilities ??= loadDefaults('capabilities', isCapability);
  return capabilities;
}

function isComponent(m: unknown): m is Component {
  const c = m as Partial<Component> | undefined;
  return !!c && typeof c.id === 'string' && Array.isArray(c.requirements) && typeof c.wanted === 'function';
}

let components: Promise<Component[]> | undefined;

/** Every health Component in health/, one per file. */
export function loadComponents(): Promise<Component[]> {
  components ??= loadDefaults('health', isComponent);
  return components;
}

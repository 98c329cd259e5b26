import { loadPluginFolder } from '../core/plugin-folder.js';
import type { Component } from './types.js';

function isComponent(m: unknown): m is Component {
  const c = m as Partial<Component> | undefined;
  return !!c && typeof c.id === 'string' && Array.isArray(c.requirements) && typeof c.wanted === 'function';
}

let components: Promise<Component[]> | undefined;

/** Every health Component in the health/ plug-in folder, one per file, in file-name order. */
export function loadComponents(): Promise<Component[]> {
  components ??= loadPluginFolder('health', 'component', isComponent);
  return components;
}

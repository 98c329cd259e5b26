import { loadPluginFolder } from '../core/plugin-folder.js';
import type { Capability } from './capability.js';

function isCapability(m: unknown): m is Capability {
  const c = m as Partial<Capability> | undefined;
  return !!c && typeof c.name === 'string' && typeof c.run === 'function' && typeof c.input === 'object';
}

let capabilities: Promise<Capability[]> | undefined;

/** Every capability (MCP tool) in the capabilities/ plug-in folder, one per file, in file-name order. */
export function loadCapabilities(): Promise<Capability[]> {
  capabilities ??= loadPluginFolder('capabilities', 'defineCapability(...)', isCapability);
  return capabilities;
}

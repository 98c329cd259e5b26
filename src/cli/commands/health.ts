import type { Command } from 'commander';
import type { ComponentReport } from '../../health/evaluate.js';
import { rootOf } from '../root.js';
import { cliText } from '../wording.js';

const ICON: Record<string, string> = { ok: '✓', warn: '!', fail: '✗', blocked: '·', unwanted: '–' };

function print(reports: ComponentReport[], root: string): string {
  const lines: string[] = [];
  for (const c of reports) {
    lines.push(`${ICON[c.status]} ${c.title} [${c.id}]: ${c.status}`);
    if (c.status === 'unwanted') {
      lines.push(c.disabled ? `    turned off — turn on again with: wb-backup health enable ${c.id}` : `    not enabled — enable with: wb-backup fix ${c.id}`);
      continue;
    }
    if (c.opt_in) lines.push(`    (turn off with: wb-backup health disable ${c.id})`);
    for (const r of c.requirements) {
      lines.push(`  ${ICON[r.status]} ${r.title}: ${cliText(r.detail, root)}`);
      if (r.status !== 'ok' && r.status !== 'blocked' && r.fixer) lines.push(`      fix: wb-backup fix ${r.id}${r.fixer.kind === 'input_required' ? ' --input <name>=<value>' : ''}  (${cliText(r.fixer.describe, root)})`);
    }
    for (const k of c.checks) lines.push(`  ${ICON[k.status]} ${k.title}: ${cliText(k.detail, root)}`);
  }
  return lines.join('\n');
}

/** The inputs a fixer asks for, as the --input flags to pass (from its JSON schema). */
function describeInputs(id: string, schema: Record<string, unknown>): string {
  const props = (schema.properties ?? {}) as Record<string, { type?: string; description?: string }>;
  const required = new Set((schema.required ?? []) as string[]);
  const lines = Object.entries(props).map(([name, p]) => `    --input ${name}=<${p.type ?? 'value'}>${required.has(name) ? '' : ' (optional)'}${p.description ? `  ${p.description}` : ''}`);
  return `  inputs:\n${lines.join('\n')}\n  e.g.: wb-backup fix ${id} ${Object.keys(props).filter((n) => required.has(n)).map((n) => `--input ${n}=...`).join(' ')}\n`;
}

/** `wb-backup health` and `wb-backup fix`: the health graph for people in a terminal. */
export function registerHealthCommands(program: Command): void {
  const health = program
    .command('health')
    .description('show what the backups need and whether it is in place; `health disable <component>` turns one off')
    .option('--component <id>', 'only this component')
    .option('--json', 'print the graph as JSON')
    .action(async (opts: { component?: string; json?: boolean }, cmd: Command) => {
      const { healthStatus } = await import('../../health/service.js');
      const reports = await healthStatus({ root: rootOf(cmd), cacheMs: 0 }, opts.component);
      process.stdout.write(`${opts.json ? JSON.stringify({ components: reports }, null, 2) : print(reports, rootOf(cmd))}\n`);
      if (reports.some((c) => c.status === 'fail')) process.exitCode = 1;
    });

  // Turning an opt-in component off (enabled by mistake, or paused) and on again.
  for (const [word, enabled] of [['enable', true], ['disable', false]] as const) {
    health
      .command(word)
      .description(
        enabled
          ? 'turn an opt-in component on again (e.g. github_sync)'
          : 'turn an opt-in component off: no longer checked, its work stops; its settings and data are kept (e.g. github_sync)',
      )
      .argument('<component>', 'an opt-in component id, e.g. github_backups or github_sync')
      .option('--json', 'print the result as JSON')
      .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        const { setComponentEnabled } = await import('../../health/service.js');
        const result = await setComponentEnabled({ root: rootOf(cmd) }, id, enabled);
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${result.enabled ? 'on' : 'off'}${result.changed ? '' : ' (unchanged)'}: ${cliText(result.message, rootOf(cmd))}\n`);
      });
  }

  program
    .command('fix')
    .description('run the fixer of a requirement (or enable an opt-in component)')
    .argument('<requirement>', 'e.g. github_backups.repo-configured, or github_backups to enable it')
    .option('--input <name=value...>', 'inputs a fixer asks for, e.g. --input repo=me/backups')
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: { input?: string[]; json?: boolean }, cmd: Command) => {
      const inputs = opts.input ? Object.fromEntries(opts.input.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : undefined;
      const { runFix } = await import('../../health/service.js');
      const result = await runFix({ root: rootOf(cmd) }, id, inputs);
      if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        process.stdout.write(`${result.status}: ${cliText(result.message, rootOf(cmd))}\n`);
        result.handoff?.steps.forEach((s, i) => process.stdout.write(`  ${i + 1}. ${cliText(s, rootOf(cmd))}\n`));
        if (result.handoff) process.stdout.write(`  verify: ${cliText(result.handoff.verify, rootOf(cmd))}\n`);
        if (result.inputs_schema) process.stdout.write(describeInputs(id, result.inputs_schema));
      }
      if (result.status === 'failed' || result.status === 'needs_input' || result.status === 'blocked') process.exitCode = 1;
    });
}

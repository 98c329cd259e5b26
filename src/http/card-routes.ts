import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { runBackup } from '../backup/pipeline.js';
import { loadConfig } from '../root/config.js';
import { WbError, describeError, errorCode, errorHint, errorSurfaces } from '../core/errors.js';
import { blockerIn, describeBlocker, healthStatus, invalidateHealth, runFix, setComponentEnabled } from '../health/service.js';
import { readLastRun } from '../backup/last-run.js';
import { track, shutdownSignal } from '../core/shutdown.js';
import { listSnapshots } from '../backup/list.js';
import { snapshotDiff } from '../inspect/diff.js';
import { diffCounts, snapshotTimeline } from '../inspect/timeline.js';
import { CARD_CSS, CARD_HTML, CARD_JS } from './card-assets.js';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function send(res: Response, type: string, body: string): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.type(type).send(body);
}

/**
 * An error as JSON: `{error: {code, message, hint?}}`, the fields kept apart (the page joins
 * message and hint when it shows them), with the HTTP status of the code's entry in the table of
 * src/core/errors.ts (500 for anything that is not a WbError).
 */
function fail(res: Response, err: unknown): void {
  const hint = errorHint(err);
  const message = err instanceof Error ? err.message : describeError(err);
  res.status(errorSurfaces(err).http).json({ error: { code: errorCode(err), message, ...(hint ? { hint } : {}) } });
}

/**
 * Why the fixer of `id` must not run yet, in titles a person knows, or null when it may run.
 * A blocked requirement's fixer would only fail with a raw tool error (gh says "not logged in"),
 * so the card is told which requirement to fix first. Evaluated fresh: a stale cache must not
 * refuse a fix whose blocker was just repaired in a terminal.
 */
async function blockedReason(root: string, id: string): Promise<string | null> {
  const [componentId, ...rest] = id.split('.');
  if (!componentId || !rest.length) return null; // a bare component id enables it: never blocked
  let components;
  try {
    components = await healthStatus({ root, cacheMs: 0 }, componentId);
  } catch {
    return null; // unknown component: runFix says so in its own words
  }
  const component = components[0];
  const target = component?.requirements.find((r) => r.id === id);
  if (!component || !target || target.status !== 'blocked') return null;
  if (component.status === 'unwanted') return `“${target.title}” is not checked because ${component.title} is ${component.disabled ? 'turned off' : 'not enabled'}: ${component.disabled ? 'turn it on' : 'enable it'} first.`;
  const blocker = blockerIn(component, id);
  return blocker ? describeBlocker(blocker, false) : null;
}

/**
 * State-changing requests must come from this page: a JSON body (a form on another site cannot
 * send one without a preflight) and an Origin (or Sec-Fetch-Site) proving same origin.
 */
function sameOriginJson(ownOrigins: () => Set<string>) {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    const sameSite = req.headers['sec-fetch-site'] === 'same-origin';
    if (!(origin ? ownOrigins().has(origin) : sameSite)) {
      res.status(403).json({ error: { code: 'forbidden_origin', message: 'This action is only accepted from the wb-backup page itself.' } });
      return;
    }
    if (!req.is('application/json')) {
      res.status(415).json({ error: { code: 'json_required', message: 'Send a JSON body (Content-Type: application/json).' } });
      return;
    }
    next();
  };
}

/** The page needs no secret to load; everything under /api/ goes through the bearer check when one is set. */
export function mountHealthCard(app: Express, opts: { root: string; ownOrigins: () => Set<string> }): { publicPaths: Set<string> } {
  const { root } = opts;
  app.get('/', (_req, res) => send(res, 'html', CARD_HTML));
  app.get('/card.js', (_req, res) => send(res, 'application/javascript', CARD_JS));
  app.get('/card.css', (_req, res) => send(res, 'css', CARD_CSS));
  app.get('/favicon.ico', (_req, res) => res.status(204).end());

  // The snapshot list asks the remote (gh): refreshing the card every 15 s must not do that each time.
  let cachedList: { at: number; list: Promise<Awaited<ReturnType<typeof listSnapshots>>> } | null = null;
  const snapshotList = () => {
    if (!cachedList || Date.now() - cachedList.at > 30_000) cachedList = { at: Date.now(), list: listSnapshots(loadConfig(root), 'all') };
    cachedList.list.catch(() => (cachedList = null));
    return cachedList.list;
  };
  app.get('/api/health', async (_req, res) => {
    try {
      const [components, list] = await Promise.all([healthStatus({ root }), snapshotList()]);
      res.json({ components, snapshots: list.snapshots, remote: list.remote, totals: list.totals, last_run: readLastRun(root) });
    } catch (err) {
      fail(res, err);
    }
  });

  // The snapshot timeline and the counts of a diff between two of them: read-only (recovering rows
  // goes through the CLI or an agent, with consent).
  app.get('/api/timeline', (_req, res) => {
    try {
      res.json(snapshotTimeline(loadConfig(root)));
    } catch (err) {
      fail(res, err);
    }
  });
  app.get('/api/diff', async (req, res) => {
    try {
      const from = typeof req.query.from === 'string' ? req.query.from : '';
      const to = typeof req.query.to === 'string' ? req.query.to : '';
      if (!from || !to) throw new WbError('invalid_input', 'Pick two snapshots to compare (from and to).');
      const d = await track(snapshotDiff(loadConfig(root), { from, to, sample: 1, signal: shutdownSignal }));
      res.json(diffCounts(d));
    } catch (err) {
      fail(res, err);
    }
  });

  const guard = sameOriginJson(opts.ownOrigins);
  app.post('/api/health/fix/:id', guard, express.json(), async (req, res) => {
    try {
      const body = (req.body ?? {}) as { inputs?: Record<string, unknown> };
      const blocked = await blockedReason(root, String(req.params.id));
      if (blocked) {
        res.status(409).json({ error: { code: 'blocked', message: blocked } });
        return;
      }
      const fixed = await runFix({ root }, String(req.params.id), body.inputs);
      cachedList = null; // a fixer may have configured the remote
      res.json(fixed);
    } catch (err) {
      fail(res, err);
    }
  });

  // Turn an opt-in component off or on again ({ enabled: boolean }); the answer says what stops and what is kept.
  app.post('/api/health/component/:id', guard, express.json(), async (req, res) => {
    try {
      const body = (req.body ?? {}) as { enabled?: unknown };
      if (typeof body.enabled !== 'boolean') throw new WbError('invalid_input', 'Send { "enabled": true } or { "enabled": false }.');
      const result = await setComponentEnabled({ root }, String(req.params.id), body.enabled);
      cachedList = null; // the next refresh reads the list again, as after any change made here
      res.json(result);
    } catch (err) {
      fail(res, err);
    }
  });

  app.post('/api/backup', guard, express.json(), async (_req, res) => {
    try {
      const result = await track(runBackup(loadConfig(root), { manual: true, signal: shutdownSignal }));
      invalidateHealth(root);
      cachedList = null;
      res.json(result);
    } catch (err) {
      fail(res, err);
    }
  });
  return { publicPaths: new Set(['/', '/card.js', '/card.css', '/favicon.ico']) };
}

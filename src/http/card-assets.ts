// The settings-tab health card: a static page plus one script and one stylesheet. No inline script
// or style (the CSP forbids them) and no secret in the page: a configured bearer token is typed in
// by the user and kept in sessionStorage only.
//
// The page refreshes every 15 s by updating what it shows in place, never by rebuilding it: an
// open "How to fix" panel, text typed into a fix form and the focus all survive a refresh.

import { formatBytes } from '../core/size-format.js';

export const CARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wb-backup · health</title>
<link rel="stylesheet" href="/card.css">
<script src="/card.js" defer></script>
</head>
<body>
<main>
  <header>
    <h1>Backups</h1>
    <span id="refreshed" class="muted"></span>
  </header>
  <p id="message" class="status" role="status" aria-live="polite" hidden></p>
  <form id="token-box" class="card token" hidden>
    <h2>Access token needed</h2>
    <p id="token-why" class="detail"></p>
    <div class="fields">
      <input id="token" type="password" autocomplete="off" aria-label="Access token" placeholder="access token" required>
      <button id="token-save" type="submit" class="primary">Use token</button>
    </div>
  </form>
  <section id="snapshots" class="card">
    <div class="row">
      <div class="grow">
        <h2>Snapshots</h2>
        <div id="last-snapshot" class="muted">loading…</div>
        <div id="stored" class="muted" hidden></div>
      </div>
      <button id="backup-now" type="button">Back up now</button>
    </div>
    <ul id="snapshot-list"></ul>
  </section>
  <section id="timeline" class="card">
    <h2>Timeline</h2>
    <p class="muted">Pick two snapshots to see what changed between them. This page only reads: putting rows back goes through <code>wb-backup recover</code> or your agent.</p>
    <ol id="timeline-list" class="timeline"></ol>
    <div class="fields">
      <label>From <select id="diff-from" aria-label="Older snapshot"></select></label>
      <label>To <select id="diff-to" aria-label="Newer snapshot"></select></label>
      <button id="diff-run" type="button">Compare</button>
    </div>
    <div id="diff-result" aria-live="polite"></div>
  </section>
  <div id="components"></div>
</main>
</body>
</html>
`;

export const CARD_CSS = `
:root { font-family: system-ui, sans-serif; color: #1d232a; background: #f4f6f8; }
body { margin: 0; }
main { max-width: 760px; margin: 24px auto; padding: 0 16px; }
.timeline { list-style: none; padding: 0; margin: 8px 0; max-height: 260px; overflow-y: auto; }
.timeline li { display: flex; flex-wrap: wrap; gap: 4px 10px; padding: 4px 0; border-bottom: 1px solid #e6e9ed; font-size: .9rem; overflow-wrap: anywhere; }
.timeline .tier { font-size: .75rem; padding: 0 6px; border-radius: 8px; background: #e8eef6; }
#diff-result table { border-collapse: collapse; width: 100%; font-size: .9rem; margin-top: 8px; }
#diff-result td, #diff-result th { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eef0f3; overflow-wrap: anywhere; }
select { max-width: 100%; }
header { display: flex; align-items: baseline; justify-content: space-between; gap: 12px; }
h1 { font-size: 1.4rem; margin: 0 0 12px; } h2 { font-size: 1.05rem; margin: 0 0 4px; } h3 { font-size: .95rem; margin: 0 0 4px; }
.card { background: #fff; border-radius: 10px; padding: 14px 16px; margin: 0 0 14px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.row { display: flex; align-items: center; justify-content: space-between; gap: 12px; }
.grow { flex: 1 1 auto; min-width: 0; }
.muted { color: #6b7785; font-size: .9rem; }
.badge { flex: none; font-size: .75rem; font-weight: 600; padding: 2px 8px; border-radius: 999px; text-transform: uppercase; letter-spacing: .03em; }
.ok { background: #e3f6e8; color: #17692f; } .warn { background: #fff4d6; color: #7a5600; }
.fail { background: #fde5e5; color: #9b1c1c; } .blocked { background: #eceff3; color: #56606b; } .unwanted { background: #eceff3; color: #56606b; }
ul { list-style: none; padding: 0; margin: 8px 0 0; }
li.req { border-top: 1px solid #eef1f4; padding: 8px 0; }
li.req .row { align-items: flex-start; }
.detail { font-size: .88rem; color: #4a5561; overflow-wrap: anywhere; }
.detail.blocked-by { color: #56606b; font-style: italic; }
button { font: inherit; padding: 6px 12px; border-radius: 7px; border: 1px solid #c3ccd6; background: #fff; cursor: pointer; flex: none; white-space: nowrap; }
button.primary, #backup-now { background: #1f6feb; color: #fff; border-color: #1f6feb; }
button:disabled { opacity: .6; cursor: default; }
.fixer { margin-top: 6px; }
form.fix, .fields { display: flex; gap: 8px; margin-top: 6px; flex-wrap: wrap; }
label.field { display: flex; flex-direction: column; gap: 3px; flex: 1 1 220px; min-width: 0; }
form.fix button { align-self: flex-end; }
form.fix input, .fields input { font: inherit; padding: 5px 8px; border: 1px solid #c3ccd6; border-radius: 6px; min-width: 0; }
.fields input { flex: 1 1 220px; }
.result { font-size: .88rem; margin-top: 6px; padding: 4px 8px; border-radius: 6px; overflow-wrap: anywhere; }
.result.error { background: #fde5e5; color: #9b1c1c; } .result.ok { background: #e3f6e8; color: #17692f; } .result.info { background: #e8f0fe; color: #1a3e7a; }
.steps-panel { margin-top: 8px; padding: 10px 12px; background: #f6f8fb; border: 1px solid #dfe5ec; border-radius: 8px; }
ol.steps { margin: 6px 0 6px 18px; padding: 0; font-size: .88rem; overflow-wrap: anywhere; }
ol.steps li { margin: 3px 0; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; margin-top: 8px; }
.status { position: sticky; top: 0; z-index: 5; margin: 0 0 12px; padding: 8px 12px; border-radius: 8px; font-size: .9rem; box-shadow: 0 1px 4px rgba(0,0,0,.12); overflow-wrap: anywhere; }
.status.info { background: #e8f0fe; color: #1a3e7a; } .status.ok { background: #e3f6e8; color: #17692f; } .status.error { background: #fde5e5; color: #9b1c1c; }
.token { border: 2px solid #1f6feb; }
[hidden] { display: none !important; }
`;

export const CARD_JS = `
'use strict';
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else if (k.includes('-')) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const REFRESH_MS = 15000;
const TOKEN_KEY = 'wb-backup-token';
const token = () => sessionStorage.getItem(TOKEN_KEY);
const quote = (text) => '\\u201c' + text + '\\u201d';

/** Thrown when the server wants a (different) access token; the token box is already showing. */
class TokenNeeded extends Error { constructor(message, rejected) { super(message); this.rejected = rejected; } }

async function api(path, body) {
  const headers = { accept: 'application/json' };
  const sent = token();
  if (sent) headers.authorization = 'Bearer ' + sent;
  const init = body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  let res;
  try { res = await fetch(path, init); }
  catch { throw new Error('Cannot reach the wb-backup server: is it still running? This page tries again every 15 seconds.'); }
  if (res.status === 401) {
    if (sent) sessionStorage.removeItem(TOKEN_KEY);
    askForToken(Boolean(sent));
    throw new TokenNeeded(sent ? 'That access token was not accepted: paste the right one into the box at the top of the page.' : 'This server needs its access token: paste it into the box at the top of the page.', Boolean(sent));
  }
  let data = null;
  try { data = await res.json(); } catch { /* not JSON: reported below */ }
  if (!res.ok || data === null) throw new Error((data && data.error && describeError(data.error)) || ('The server answered HTTP ' + res.status + '.'));
  return data;
}

/** An API error's text: its message, then its hint (the server keeps them apart; src/core/errors.ts). */
function describeError(error) {
  return error.message ? (error.hint ? error.message + ' ' + error.hint : error.message) : '';
}

/** The status line sits at the top and sticks there while scrolling, so it is seen on a phone too. */
function say(text, kind) {
  const m = $('#message');
  m.textContent = text || '';
  m.className = 'status ' + (kind || 'info');
  m.hidden = !text;
}

function askForToken(rejected) {
  $('#token-why').textContent = rejected
    ? 'That token was not accepted. Paste the exact value of WB_BACKUP_HTTP_TOKEN that the server was started with.'
    : 'This server is protected by an access token: paste the value of WB_BACKUP_HTTP_TOKEN that it was started with. It is kept in this browser tab only.';
  if (!loaded) $('#last-snapshot').textContent = 'Waiting for the access token (see above).';
  $('#backup-now').disabled = true;
  const box = $('#token-box');
  if (box.hidden) { box.hidden = false; $('#token').focus(); }
}

// The browser's copy of src/size-format.ts formatBytes (IEC units, one decimal), the unit system used everywhere.
const size = ${formatBytes.toString()};
function setBadge(node, status) { node.className = 'badge ' + status; node.setAttribute('data-status', status); node.textContent = status; }

/** "Blocked by ..." in titles, following the chain down to the requirement that actually fails. */
function blockedText(r, byId) {
  const chain = [];
  const seen = new Set([r.id]);
  let current = r;
  for (;;) {
    const dep = current.depends_on.map((d) => byId.get(d)).find((d) => d && (d.status === 'fail' || d.status === 'blocked'));
    if (!dep || seen.has(dep.id)) break;
    seen.add(dep.id);
    chain.push(dep);
    if (dep.status !== 'blocked') break;
    current = dep;
  }
  if (!chain.length) return 'Blocked: fix the requirements above it first.';
  const cause = quote(chain[chain.length - 1].title);
  return chain.length === 1 ? 'Blocked by ' + cause + ': fix that first.' : 'Blocked by ' + quote(chain[0].title) + ', which waits for ' + cause + ': fix ' + cause + ' first.';
}

// ---- views: built once per component / requirement, then updated in place ----
const views = new Map();
let loaded = false;
let backingUp = false;

/** Put children in order without moving nodes already in place (moving a node drops its focus). */
function arrange(parent, nodes) {
  nodes.forEach((node, i) => { if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null); });
  while (parent.children.length > nodes.length) parent.lastChild.remove();
}

function showResult(v, text, kind) {
  if (!v) return;
  v.result.textContent = text;
  v.result.className = 'result ' + kind;
  v.result.hidden = !text;
}

function showSteps(v, handoff) {
  const hide = el('button', { type: 'button', 'data-hide-steps': v.id }, 'Hide steps');
  hide.addEventListener('click', () => { v.steps.hidden = true; v.steps.replaceChildren(); });
  const again = el('button', { type: 'button', class: 'primary', 'data-check-again': v.id }, 'Check again');
  again.addEventListener('click', () => refresh());
  v.stepsState = el('p', { class: 'detail' });
  v.steps.replaceChildren(
    el('h3', {}, 'How to fix ' + quote(v.req.title)),
    el('ol', { class: 'steps' }, ...handoff.steps.map((s) => el('li', {}, s))),
    el('p', { class: 'detail' }, 'Then check: ' + cardVerify(handoff.verify)),
    v.stepsState,
    el('div', { class: 'actions' }, again, hide),
  );
  v.steps.hidden = false;
  updateStepsState(v);
}
/** Verify texts also address agents ("call health_status: <id> should be ok"); a person presses Check again. */
function cardVerify(text) {
  return text.replace(/,? *then call health_status.*$/i, ', then press Check again.').replace(/^call health_status.*$/i, 'Press Check again.');
}
function updateStepsState(v) {
  if (v.stepsState) v.stepsState.textContent = v.req.status === 'ok' ? 'Done: ' + quote(v.req.title) + ' is ok now.' : '';
}

/** Needs-input answers are written for agents; on the card the form is what needs correcting. */
function needsInputText(result) {
  const problems = result.input_problems || [];
  return problems.length ? 'Check the form: ' + problems.join('; ') + '.' : result.message;
}

async function runFix(id, label, inputs, v, button) {
  if (button) button.disabled = true;
  if (v) v.busy = true;
  say('Fixing ' + quote(label) + '…', 'info');
  showResult(v, '', 'info');
  try {
    const result = await api('/api/health/fix/' + encodeURIComponent(id), inputs ? { inputs } : {});
    let text = result.message;
    let kind = result.status === 'failed' || result.status === 'needs_input' || result.status === 'blocked' ? 'error' : 'ok';
    if (result.status === 'needs_input') text = needsInputText(result);
    if (result.handoff && v) {
      // The steps panel under the requirement is the answer; the status line points to it.
      showSteps(v, result.handoff);
      say('How to fix ' + quote(label) + ': follow the steps shown under it.', 'info');
    } else {
      say(text, kind);
      showResult(v, text, kind);
    }
  } catch (err) {
    say(err.message, 'error');
    showResult(v, err.message, 'error');
  } finally {
    if (button) button.disabled = false;
    if (v) v.busy = false;
  }
  await refresh();
}

/** Turn an opt-in component off or on; the server's answer (what stops, what is kept) is shown as it is. */
async function setEnabled(c, enabled, button) {
  button.disabled = true;
  say((enabled ? 'Turning on ' : 'Turning off ') + quote(c.title) + '…', 'info');
  try {
    const result = await api('/api/health/component/' + encodeURIComponent(c.id), { enabled });
    say(result.message, 'ok');
  } catch (err) {
    say(err.message, 'error');
  } finally {
    button.disabled = false;
  }
  await refresh();
}

function fixControls(v, r) {
  const f = r.fixer;
  if (f.kind === 'input_required') {
    const form = el('form', { class: 'fix', 'data-fix': r.id });
    const schema = f.inputs || {};
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const input = el('input', { name, placeholder: name, required: required.has(name), 'data-input': name });
      form.append(el('label', { class: 'field' }, el('span', { class: 'detail' }, prop.description || name), input));
    }
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Fix');
    form.append(submit);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      // A field left empty is not given (optional inputs: "repo or remote_url").
      runFix(v.id, v.req.title, Object.fromEntries([...new FormData(form).entries()].filter(([, value]) => value !== '')), v, submit);
    });
    return [el('div', { class: 'detail' }, f.describe), form];
  }
  const button = el('button', { type: 'button', 'data-fix': r.id }, f.kind === 'agent_handoff' ? 'How to fix' : 'Fix');
  button.addEventListener('click', () => runFix(v.id, v.req.title, undefined, v, button));
  return [button];
}

function requirementView(r) {
  const v = { id: r.id, req: r, fixKey: null, busy: false, stepsState: null };
  v.title = el('strong');
  v.detail = el('div', { class: 'detail' });
  v.badge = el('span', { class: 'badge' });
  v.fixer = el('div', { class: 'fixer', hidden: true });
  v.result = el('div', { class: 'result', hidden: true });
  v.steps = el('div', { class: 'steps-panel', hidden: true, 'data-steps': r.id });
  v.node = el('li', { class: 'req', 'data-requirement': r.id }, el('div', { class: 'row' }, el('div', { class: 'grow' }, v.title, v.detail), v.badge), v.fixer, v.result, v.steps);
  return v;
}

function updateRequirement(v, r, byId) {
  v.req = r;
  v.title.textContent = r.title;
  setBadge(v.badge, r.status);
  const blocked = r.status === 'blocked';
  v.detail.textContent = blocked ? blockedText(r, byId) : r.detail;
  v.detail.className = blocked ? 'detail blocked-by' : 'detail';
  updateStepsState(v);
  // While the user is in the form (focus) or a fix runs, leave the controls exactly as they are.
  if (v.busy || v.fixer.contains(document.activeElement)) return;
  // A blocked requirement offers no fix: its fixer could only fail; the detail names the blocker.
  const offer = Boolean(r.fixer) && r.status !== 'ok' && !blocked;
  const key = offer ? JSON.stringify(r.fixer) : v.fixKey;
  // Rebuilt only when the fixer itself changes; hiding keeps typed text for when it is offered again.
  if (offer && key !== v.fixKey) { v.fixer.replaceChildren(...fixControls(v, r)); v.fixKey = key; }
  v.fixer.hidden = !offer;
}

function checkView(k) {
  const v = { id: k.id, title: el('strong'), detail: el('div', { class: 'detail' }), badge: el('span', { class: 'badge' }) };
  v.node = el('li', { class: 'req', 'data-check': k.id }, el('div', { class: 'row' }, el('div', { class: 'grow' }, v.title, v.detail), v.badge));
  return v;
}

function componentView(c) {
  const v = { id: c.id, mode: null, rows: new Map() };
  v.title = el('h2');
  v.description = el('div', { class: 'muted' });
  v.badge = el('span', { class: 'badge' });
  v.body = el('div');
  v.node = el('section', { class: 'card component', 'data-component': c.id }, el('div', { class: 'row' }, el('div', { class: 'grow' }, v.title, v.description), v.badge), v.body);
  return v;
}

function updateComponent(v, c) {
  v.title.textContent = c.title;
  v.description.textContent = c.description;
  setBadge(v.badge, c.status);
  const mode = c.status !== 'unwanted' ? 'wanted' : c.disabled ? 'disabled' : 'unwanted';
  if (v.mode !== mode || v.optIn !== c.opt_in) {
    v.mode = mode;
    v.optIn = c.opt_in;
    v.rows = new Map();
    if (mode === 'unwanted') {
      const enable = el('button', { type: 'button', class: 'primary', 'data-enable': c.id }, 'Enable');
      enable.addEventListener('click', () => runFix(c.id, c.title, undefined, null, enable));
      v.body.replaceChildren(el('p', { class: 'muted' }, 'Not enabled.'), enable);
    } else if (mode === 'disabled') {
      const on = el('button', { type: 'button', class: 'primary', 'data-turn-on': c.id }, 'Turn on');
      on.addEventListener('click', () => setEnabled(c, true, on));
      v.body.replaceChildren(el('p', { class: 'muted' }, 'Turned off: not checked, and its work is paused. Its settings are kept.'), on);
    } else {
      v.list = el('ul');
      const parts = [v.list];
      if (c.opt_in) {
        // Enabled by mistake, or to pause: off keeps the settings and the data, and the answer says so.
        const off = el('button', { type: 'button', 'data-turn-off': c.id }, 'Turn off');
        off.addEventListener('click', () => setEnabled(c, false, off));
        parts.push(el('div', { class: 'actions' }, off));
      }
      v.body.replaceChildren(...parts);
    }
  }
  if (mode !== 'wanted') return;
  const byId = new Map(c.requirements.map((r) => [r.id, r]));
  const rows = [];
  for (const r of c.requirements) {
    let row = v.rows.get('r:' + r.id);
    if (!row) { row = requirementView(r); v.rows.set('r:' + r.id, row); }
    updateRequirement(row, r, byId);
    rows.push(row.node);
  }
  for (const k of c.checks) {
    let row = v.rows.get('c:' + k.id);
    if (!row) { row = checkView(k); v.rows.set('c:' + k.id, row); }
    row.title.textContent = k.title;
    row.detail.textContent = k.detail;
    setBadge(row.badge, k.status);
    rows.push(row.node);
  }
  arrange(v.list, rows);
}

function render(data) {
  const nodes = [];
  const present = new Set();
  for (const c of data.components) {
    let v = views.get(c.id);
    if (!v) { v = componentView(c); views.set(c.id, v); }
    updateComponent(v, c);
    present.add(c.id);
    nodes.push(v.node);
  }
  for (const id of [...views.keys()]) if (!present.has(id)) views.delete(id);
  arrange($('#components'), nodes);
  const newest = data.snapshots[0];
  $('#last-snapshot').textContent = newest ? ('Last snapshot ' + newest.id + ' · ' + size(newest.bytes) + (newest.remote ? ' · on the remote' : '')) : 'No snapshot yet.';
  // Bytes stored on each side (deltas count what they store); the remote's only once it was listed.
  const totals = data.totals || {};
  const stored = [];
  if (typeof totals.local_bytes === 'number') stored.push(size(totals.local_bytes) + ' stored locally');
  if (typeof totals.remote_bytes === 'number') stored.push(size(totals.remote_bytes) + ' on the remote');
  $('#stored').textContent = stored.join(' · ');
  $('#stored').hidden = stored.length === 0 || data.snapshots.length === 0;
  const list = $('#snapshot-list');
  const shown = data.snapshots.slice(0, 5);
  const signature = shown.map((s) => s.id + (s.manual ? '+' : '') + (s.kind || '')).join(' ');
  if (list.getAttribute('data-shown') !== signature) {
    list.replaceChildren(...shown.map((s) => el('li', { class: 'muted', 'data-snapshot': s.id }, s.id + (s.manual ? ' (manual)' : '') + (s.kind === 'delta' ? ' · delta' : s.kind === 'full' ? ' · full' : ''))));
    list.setAttribute('data-shown', signature);
  }
}

// One refresh at a time; data-refreshes counts finished ones (tests wait on it instead of the clock).
let inflight = null;
let refreshes = 0;
let loadFailed = false;
function refresh() {
  if (!inflight) {
    document.body.setAttribute('data-refreshing', '1');
    inflight = load().finally(() => { inflight = null; document.body.removeAttribute('data-refreshing'); document.body.setAttribute('data-refreshes', String(++refreshes)); });
  }
  return inflight;
}
async function load() {
  try {
    const data = await api('/api/health');
    $('#token-box').hidden = true;
    render(data);
    await loadTimeline(data.snapshots.filter((x) => x.local).map((x) => x.id).join(' '));
    loaded = true;
    if (!backingUp) $('#backup-now').disabled = false;
    $('#refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
    if (loadFailed) { loadFailed = false; say('', 'info'); }
  } catch (err) {
    loadFailed = true;
    // On first load the token box itself asks; the status line would only repeat it.
    if (err instanceof TokenNeeded && !err.rejected && !loaded) say('', 'info'); else say(err.message, 'error');
    if (!loaded && !(err instanceof TokenNeeded)) $('#last-snapshot').textContent = 'Could not load the status: ' + err.message;
  }
}

// The timeline is read when the list of snapshots changes, not on every refresh.
let timelineSignature = null;
async function loadTimeline(signature) {
  if (signature === timelineSignature) return;
  const data = await api('/api/timeline');
  timelineSignature = signature;
  const items = data.snapshots.map((s) => el('li', { 'data-timeline-snapshot': s.id },
    el('span', {}, s.id),
    el('span', { class: 'muted' }, size(s.bytes) + (s.kind ? ' · ' + s.kind : '') + (s.host ? ' · ' + s.host : '')),
    ...(s.tiers.length ? s.tiers : ['pruned next']).map((t) => el('span', { class: 'tier' }, t))));
  $('#timeline-list').replaceChildren(...items);
  for (const [sel, pick] of [['#diff-from', 1], ['#diff-to', 0]]) {
    const box = $(sel);
    const was = box.value;
    box.replaceChildren(...data.snapshots.map((s) => el('option', { value: s.id }, s.id)));
    if (was && data.snapshots.some((s) => s.id === was)) box.value = was; else if (data.snapshots[pick]) box.value = data.snapshots[pick].id;
  }
  $('#diff-run').disabled = data.snapshots.length === 0;
}

function showDiff(d) {
  const t = d.totals;
  const head = el('p', { 'data-totals': '' }, d.from + ' \u2192 ' + d.to + ': ' + t.rows_added + ' added, ' + t.rows_deleted + ' deleted, ' + t.rows_changed + ' changed row(s); ' + t.schema_changes + ' schema change(s)');
  const rows = [];
  for (const db of d.databases) {
    if (db.status !== 'compared') { rows.push(el('tr', {}, el('td', {}, db.name), el('td', { colSpan: 3 }, db.status.replace(/_/g, ' ')))); continue; }
    for (const tb of db.tables) rows.push(el('tr', { 'data-table': db.name + '.' + tb.table }, el('td', {}, db.name + '.' + tb.table), el('td', {}, '+' + tb.added), el('td', {}, '\u2212' + tb.deleted), el('td', {}, '~' + tb.changed)));
    if (db.more_tables) rows.push(el('tr', {}, el('td', { colSpan: 4, class: 'muted' }, '\u2026 and ' + db.more_tables + ' more table(s)')));
  }
  const table = rows.length ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'table'), el('th', {}, 'added'), el('th', {}, 'deleted'), el('th', {}, 'changed'))), el('tbody', {}, ...rows)) : el('p', { class: 'muted' }, 'The same rows in every table.');
  $('#diff-result').replaceChildren(head, table);
}

document.addEventListener('DOMContentLoaded', () => {
  $('#diff-run').addEventListener('click', async (e) => {
    const b = e.currentTarget; b.disabled = true;
    $('#diff-result').replaceChildren(el('p', { class: 'muted' }, 'Comparing\u2026 (the first time, both snapshots are rebuilt and verified)'));
    try { showDiff(await api('/api/diff?from=' + encodeURIComponent($('#diff-from').value) + '&to=' + encodeURIComponent($('#diff-to').value))); }
    catch (err) { $('#diff-result').replaceChildren(el('p', { class: 'error' }, err.message)); }
    finally { b.disabled = false; }
  });
  $('#backup-now').addEventListener('click', async (e) => {
    const b = e.currentTarget; b.disabled = true; backingUp = true; say('Backing up…', 'info');
    try { const r = await api('/api/backup', {}); say('Snapshot ' + r.snapshot_id + ' saved.', 'ok'); }
    catch (err) { say(err.message, 'error'); } finally { backingUp = false; b.disabled = false; }
    await refresh();
  });
  $('#token-box').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = $('#token').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('#token').value = '';
    $('#token-box').hidden = true;
    say('Checking the token…', 'info');
    refresh();
  });
  refresh();
  // Nothing to poll while the page waits for a token or is not visible.
  setInterval(() => { if (!document.hidden && $('#token-box').hidden) refresh(); }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden && $('#token-box').hidden) refresh(); });
});
`;

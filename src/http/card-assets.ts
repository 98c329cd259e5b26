// The settings-tab health card: a static page plus one script and one stylesheet. No inline script
// or style (the CSP forbids them) and no secret in the page: a configured bearer token is typed in
// by the user and kept in sessionStorage only.

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
  <section id="token-box" hidden>
    <label>Access token <input id="token" type="password" autocomplete="off"></label>
    <button id="token-save" type="button">Use token</button>
  </section>
  <section id="snapshots" class="card">
    <div class="row">
      <div>
        <h2>Snapshots</h2>
        <div id="last-snapshot" class="muted">loading…</div>
      </div>
      <button id="backup-now" type="button">Back up now</button>
    </div>
    <ul id="snapshot-list"></ul>
  </section>
  <div id="components"></div>
  <p id="message" role="status"></p>
</main>
</body>
</html>
`;

export const CARD_CSS = `
:root { font-family: system-ui, sans-serif; color: #1d232a; background: #f4f6f8; }
main { max-width: 760px; margin: 24px auto; padding: 0 16px; }
header { display: flex; align-items: baseline; justify-content: space-between; }
h1 { font-size: 1.4rem; margin: 0 0 12px; } h2 { font-size: 1.05rem; margin: 0 0 4px; }
.card { background: #fff; border-radius: 10px; padding: 14px 16px; margin: 0 0 14px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.row { display: flex; align-items: center; justify-content: space-between; gap: 12px; }
.muted { color: #6b7785; font-size: .9rem; }
.badge { font-size: .75rem; font-weight: 600; padding: 2px 8px; border-radius: 999px; text-transform: uppercase; letter-spacing: .03em; }
.ok { background: #e3f6e8; color: #17692f; } .warn { background: #fff4d6; color: #7a5600; }
.fail { background: #fde5e5; color: #9b1c1c; } .blocked { background: #eceff3; color: #56606b; } .unwanted { background: #eceff3; color: #56606b; }
ul { list-style: none; padding: 0; margin: 8px 0 0; }
li.req { border-top: 1px solid #eef1f4; padding: 8px 0; }
li.req .row { align-items: flex-start; }
.detail { font-size: .88rem; color: #4a5561; }
button { font: inherit; padding: 6px 12px; border-radius: 7px; border: 1px solid #c3ccd6; background: #fff; cursor: pointer; }
button.primary, #backup-now { background: #1f6feb; color: #fff; border-color: #1f6feb; }
button:disabled { opacity: .6; cursor: default; }
form.fix { display: flex; gap: 8px; margin-top: 6px; flex-wrap: wrap; }
form.fix input { font: inherit; padding: 5px 8px; border: 1px solid #c3ccd6; border-radius: 6px; min-width: 220px; }
ol.steps { margin: 6px 0 0 18px; padding: 0; font-size: .88rem; }
#message { min-height: 1.2em; font-size: .9rem; }
#message.error { color: #9b1c1c; }
`;

export const CARD_JS = `
'use strict';
const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else if (k.startsWith('data-')) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const token = () => sessionStorage.getItem('wb-backup-token');
async function api(path, body) {
  const headers = { accept: 'application/json' };
  if (token()) headers.authorization = 'Bearer ' + token();
  const init = body === undefined ? { headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  if (res.status === 401) { $('#token-box').hidden = false; throw new Error('This server needs an access token.'); }
  const data = await res.json();
  if (!res.ok) throw new Error((data.error && data.error.message) || ('HTTP ' + res.status));
  return data;
}
function say(text, isError) { const m = $('#message'); m.textContent = text; m.className = isError ? 'error' : ''; }
const size = (n) => n < 1e6 ? (n / 1e3).toFixed(1) + ' kB' : (n / 1e6).toFixed(1) + ' MB';
const badge = (status) => el('span', { class: 'badge ' + status, 'data-status': status }, status);

function fixControls(req, after) {
  const f = req.fixer;
  if (!f || req.status === 'ok') return null;
  const box = el('div', { class: 'fixer' });
  if (f.kind === 'input_required') {
    const form = el('form', { class: 'fix', 'data-fix': req.id });
    const props = (f.inputs && f.inputs.properties) || {};
    for (const [name, schema] of Object.entries(props)) {
      form.append(el('input', { name, placeholder: schema.description || name, required: true, 'data-input': name }));
    }
    form.append(el('button', { type: 'submit', class: 'primary' }, 'Fix'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const inputs = Object.fromEntries(new FormData(form).entries());
      await runFix(req.id, inputs, box, after);
    });
    box.append(el('div', { class: 'detail' }, f.describe), form);
  } else {
    const button = el('button', { type: 'button', 'data-fix': req.id }, f.kind === 'agent_handoff' ? 'How to fix' : 'Fix');
    button.addEventListener('click', () => runFix(req.id, undefined, box, after));
    box.append(button);
  }
  return box;
}

async function runFix(id, inputs, box, after) {
  say('Fixing ' + id + '…');
  try {
    const result = await api('/api/health/fix/' + encodeURIComponent(id), inputs ? { inputs } : {});
    say(result.message, result.status === 'failed');
    if (result.handoff) {
      box.append(el('ol', { class: 'steps' }, ...result.handoff.steps.map((s) => el('li', {}, s))), el('div', { class: 'detail' }, 'Verify: ' + result.handoff.verify));
    }
    await after();
  } catch (err) { say(err.message, true); }
}

function renderComponent(c, after) {
  const head = el('div', { class: 'row' }, el('div', {}, el('h2', {}, c.title), el('div', { class: 'muted' }, c.description)), badge(c.status));
  const card = el('section', { class: 'card component', 'data-component': c.id }, head);
  if (c.status === 'unwanted') {
    const enable = el('button', { type: 'button', class: 'primary', 'data-enable': c.id }, 'Enable');
    enable.addEventListener('click', () => runFix(c.id, undefined, card, after));
    card.append(el('p', { class: 'muted' }, 'Not enabled.'), enable);
    return card;
  }
  const list = el('ul');
  for (const r of c.requirements) {
    const chain = r.status === 'blocked' ? el('div', { class: 'detail' }, r.detail) : el('div', { class: 'detail' }, r.detail);
    list.append(el('li', { class: 'req', 'data-requirement': r.id }, el('div', { class: 'row' }, el('div', {}, el('strong', {}, r.title), chain), badge(r.status)), fixControls(r, after)));
  }
  for (const k of c.checks) {
    list.append(el('li', { class: 'req', 'data-check': k.id }, el('div', { class: 'row' }, el('div', {}, el('strong', {}, k.title), el('div', { class: 'detail' }, k.detail)), badge(k.status))));
  }
  card.append(list);
  return card;
}

async function refresh() {
  try {
    const data = await api('/api/health');
    const root = $('#components');
    root.replaceChildren(...data.components.map((c) => renderComponent(c, refresh)));
    const newest = data.snapshots[0];
    $('#last-snapshot').textContent = newest ? ('Last snapshot ' + newest.id + ' · ' + size(newest.bytes) + (newest.remote ? ' · on the remote' : '')) : 'No snapshot yet.';
    $('#snapshot-list').replaceChildren(...data.snapshots.slice(0, 5).map((s) => el('li', { class: 'muted', 'data-snapshot': s.id }, s.id + (s.manual ? ' (manual)' : ''))));
    $('#refreshed').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) { say(err.message, true); }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#backup-now').addEventListener('click', async (e) => {
    const b = e.currentTarget; b.disabled = true; say('Backing up…');
    try { const r = await api('/api/backup', {}); say('Snapshot ' + r.snapshot_id + ' saved.'); await refresh(); }
    catch (err) { say(err.message, true); } finally { b.disabled = false; }
  });
  $('#token-save').addEventListener('click', () => { sessionStorage.setItem('wb-backup-token', $('#token').value); $('#token-box').hidden = true; refresh(); });
  refresh();
  setInterval(refresh, 15000);
});
`;

// keyline bunker operator page. Plain JS, no dependencies, no inline code (CSP default-src 'self').
// Every state-changing call is JSON with the X-Keyline-Operator header; the session is an
// HttpOnly cookie set by POST /api/login.
'use strict';

const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const init = { method, headers: {}, credentials: 'same-origin' };
  if (method !== 'GET') {
    init.headers['X-Keyline-Operator'] = '1';
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) throw Object.assign(new Error('login required'), { status: 401 });
  if (!res.ok) throw Object.assign(new Error(data.message || `HTTP ${res.status}`), { status: res.status });
  return data;
}

function text(value) {
  return value === null || value === undefined ? '—' : typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** Renders an array of objects as a table; `actions(row)` may return buttons for a row. */
function table(rows, actions) {
  if (!Array.isArray(rows) || rows.length === 0) {
    const p = document.createElement('p');
    p.textContent = 'none';
    return p;
  }
  const t = document.createElement('table');
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = t.createTHead().insertRow();
  for (const c of cols) head.insertCell().textContent = c;
  if (actions) head.insertCell().textContent = '';
  const body = t.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const c of cols) tr.insertCell().textContent = text(r[c]);
    if (actions) {
      const cell = tr.insertCell();
      for (const b of actions(r)) cell.append(b);
    }
  }
  return t;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

function show(id) {
  for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== id;
}

async function showLogin(message) {
  $('nav').hidden = true;
  show('login');
  $('login-error').textContent = message ?? '';
}

async function loadSection(name) {
  const body = $(`${name}-body`);
  body.replaceChildren();
  if (name === 'keys') {
    const keys = await api('GET', '/api/keys');
    body.append(table(keys.keys ?? keys));
  } else if (name === 'connections') {
    const c = await api('GET', '/api/connections');
    body.append(
      table(c.connections ?? c, (row) => {
        const client = row.client_pubkey ?? row.client;
        const edit = button('Edit grants', () => editGrants(client, row.grants ?? []));
        edit.dataset.client = client;
        edit.className = 'edit-grants';
        return [
          edit,
          button('Revoke', async () => {
            await api('DELETE', `/api/connections/${encodeURIComponent(client)}`);
            await loadSection('connections');
          }),
        ];
      }),
    );
  } else if (name === 'approvals') {
    const a = await api('GET', '/api/approvals');
    body.append(
      table(a.approvals ?? a, (row) => {
        const link = document.createElement('a');
        link.href = `/approve/${encodeURIComponent(row.approval_id ?? row.id)}`;
        link.textContent = 'Open';
        return [link];
      }),
    );
  } else if (name === 'audit') {
    const a = await api('GET', '/api/audit?limit=200');
    body.append(table(a.entries ?? a));
  }
}

/** Shows the grants editor for one client; saving replaces its grants. */
function editGrants(client, grants) {
  $('grants-editor').hidden = false;
  $('grants-client').textContent = client;
  $('grants-json').value = JSON.stringify(grants, null, 2);
  $('grants-status').textContent = '';
  $('grants-save').onclick = async () => {
    let parsed;
    try {
      parsed = JSON.parse($('grants-json').value);
    } catch (e) {
      $('grants-status').textContent = `not JSON: ${e.message}`;
      return;
    }
    try {
      await api('PUT', `/api/connections/${encodeURIComponent(client)}/grants`, parsed);
      $('grants-status').textContent = 'saved';
      await loadSection('connections');
    } catch (e) {
      $('grants-status').textContent = `failed: ${e.message}`;
    }
  };
}

let countdown = null;

async function showApproval(id) {
  show('approve');
  const a = await api('GET', `/api/approvals/${encodeURIComponent(id)}`);
  const dl = $('approval-details');
  dl.replaceChildren();
  for (const [k, v] of Object.entries(a)) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = text(v);
    dl.append(dt, dd);
  }
  const pending = !a.decision && !a.decided_at;
  $('approval-buttons').hidden = !pending;
  $('approval-status').textContent = pending ? '' : `decided: ${text(a.decision)}`;
  clearInterval(countdown);
  const expires = Number(a.expires_at ?? 0);
  const tick = () => {
    const left = Math.max(0, Math.round(expires - Date.now() / 1000));
    $('approval-time-left').textContent = expires ? `${left} s` : '—';
  };
  tick();
  countdown = setInterval(tick, 1000);
  const decide = (decision, duration) => async () => {
    try {
      await api('POST', `/api/approvals/${encodeURIComponent(id)}`, { decision, duration });
      $('approval-buttons').hidden = true;
      $('approval-status').textContent = `decided: ${decision}`;
    } catch (e) {
      $('approval-status').textContent = `failed: ${e.message}`;
    }
  };
  $('allow-once').onclick = decide('allow_once');
  $('allow-always').onclick = decide('allow_always');
  $('allow-hour').onclick = decide('allow_for', 3600);
  $('deny').onclick = decide('deny');
}

async function route() {
  try {
    const m = location.pathname.match(/^\/approve\/([A-Za-z0-9_-]+)$/);
    if (m) {
      $('nav').hidden = false;
      await showApproval(m[1]);
      return;
    }
    const name = (location.hash || '#approvals').slice(1);
    if (!['keys', 'connections', 'approvals', 'audit'].includes(name)) return;
    await loadSection(name);
    $('nav').hidden = false;
    show(name);
  } catch (e) {
    if (e.status === 401) await showLogin();
    else document.body.append(Object.assign(document.createElement('p'), { textContent: `error: ${e.message}` }));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/login', { token: $('token').value });
      $('token').value = '';
      await route();
    } catch (e) {
      await showLogin(e.status === 401 ? 'wrong token' : e.message);
    }
  });
  $('logout').addEventListener('click', async () => {
    await api('POST', '/api/logout').catch(() => {});
    await showLogin('logged out');
  });
  $('mint').addEventListener('click', async () => {
    const r = await api('POST', '/api/bunker-uris');
    $('minted').textContent = r.bunker_uri;
  });
  window.addEventListener('hashchange', route);
  route();
});

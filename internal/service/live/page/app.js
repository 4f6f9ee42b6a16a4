// Live events: logs in to the admin API, lets the operator pick an
// integration, and shows each event's steps as the WebSocket streams them.
// Event data is hostile: it only ever reaches the page through textContent,
// text nodes, attributes set one by one and new Option(text, value).
'use strict';
(function () {
  const MAX_ROWS = 500;
  const MAX_ATTEMPTS_SHOWN = 10;
  const MAX_TEXT = 65536;
  const TOKENS_KEY = 'blueprint.live.tokens';
  const FILTER_KEY = 'blueprint.live.integration';
  const COLS = ['received', 'event', 'integration', 'decision', 'request', 'attempts', 'status', 'final'];
  const GOOD = new Set(['deliver', 'delivered', 'duplicate']);
  const BAD = new Set(['reject', 'failed', 'dead']);

  const $ = (id) => document.getElementById(id);
  const tbody = $('rows');
  const picker = $('integration');

  let tokens = null; // {access, refresh, expiresAt (ms)}
  let refreshTimer = 0;
  let refreshing = null;
  let ws = null;
  let wsWanted = false;
  let failures = 0;
  let reconnectTimer = 0;
  let noticeTimer = 0;
  const rows = new Map(); // key(event_id, integration_id) -> row
  const byEvent = new Map(); // event_id -> [row]
  const received = new Map(); // event_id -> {at, name}
  const integrations = new Map(); // integration id -> label

  // ---- small helpers

  function str(v) {
    if (v === undefined || v === null) return '';
    const s = typeof v === 'string' ? v : String(v);
    return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) + '…' : s;
  }
  function list(v) {
    return Array.isArray(v) ? v.map(str).filter(Boolean) : [];
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== '') e.textContent = text;
    return e;
  }
  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }
  function badge(outcome) {
    const cls = GOOD.has(outcome) ? 'good' : BAD.has(outcome) ? 'bad' : 'neutral';
    return el('span', 'badge ' + cls, outcome || '?');
  }
  function pad(n, w) {
    return String(n).padStart(w || 2, '0');
  }
  function fmtTime(s) {
    const d = new Date(s);
    if (isNaN(d.getTime())) return '';
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }
  function notice(text) {
    const n = $('notice');
    n.textContent = text;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { n.hidden = true; }, 15000);
  }

  // ---- tokens: kept in memory; parked in sessionStorage only while the
  // page is away (a reload), so that a duplicated tab never shares a
  // refresh token (a reused refresh token revokes the whole session).

  function takeStoredTokens() {
    try {
      const t = JSON.parse(sessionStorage.getItem(TOKENS_KEY) || 'null');
      sessionStorage.removeItem(TOKENS_KEY);
      return t && typeof t.access === 'string' && t.access ? t : null;
    } catch (e) {
      return null;
    }
  }
  window.addEventListener('pagehide', () => {
    try {
      if (tokens) sessionStorage.setItem(TOKENS_KEY, JSON.stringify(tokens));
    } catch (e) { /* storage unavailable: log in again after a reload */ }
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) takeStoredTokens(); // back from the bfcache: the memory copy is current
  });

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function call(method, path, body, auth) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth) headers.Authorization = 'Bearer ' + tokens.access;
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store', credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'NETWORK', 'cannot reach the server');
    }
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(res.status, str(err.code) || 'HTTP_' + res.status, str(err.message) || res.statusText || 'request failed');
    }
    return data;
  }

  function acceptTokens(data) {
    if (!data || typeof data.access_token !== 'string' || !data.access_token) {
      throw new ApiError(0, 'BAD_ANSWER', 'the server answered without an access token');
    }
    const ttl = Number(data.expires_in) > 0 ? Number(data.expires_in) : 900;
    tokens = { access: data.access_token, refresh: str(data.refresh_token), expiresAt: Date.now() + ttl * 1000 };
    scheduleRefresh();
  }

  function scheduleRefresh(delay) {
    clearTimeout(refreshTimer);
    if (!tokens) return;
    if (delay === undefined) {
      const left = tokens.expiresAt - Date.now();
      delay = left > 120000 ? left - 60000 : Math.max(1000, left / 2);
    }
    refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, delay);
  }

  // refresh rotates the tokens; concurrent callers share one request.
  function refresh() {
    if (refreshing) return refreshing;
    if (!tokens || !tokens.refresh) {
      logout('Your session has ended: log in again.');
      return Promise.reject(new ApiError(401, 'NO_SESSION', 'not logged in'));
    }
    refreshing = call('POST', '/v1/admin/auth/refresh', { refresh_token: tokens.refresh }, false)
      .then(acceptTokens)
      .catch((e) => {
        if (e.status >= 400 && e.status < 500 && e.status !== 429) {
          logout('Your session has ended: log in again.');
        } else {
          scheduleRefresh(10000); // the server is away or busy: try again soon
        }
        throw e;
      })
      .finally(() => { refreshing = null; });
    return refreshing;
  }

  // authed calls the admin API with the access token, refreshing it when it
  // is about to expire or the server says it has.
  async function authed(method, path, body) {
    if (!tokens) throw new ApiError(401, 'NO_SESSION', 'not logged in');
    if (tokens.expiresAt - Date.now() < 10000) await refresh();
    try {
      return await call(method, path, body, true);
    } catch (e) {
      if (e.status === 401 && e.code === 'EXPIRED_TOKEN') {
        await refresh();
        return call(method, path, body, true);
      }
      if (e.status === 401) logout('Your session has ended: log in again.');
      throw e;
    }
  }

  // ---- integrations

  function labelOf(it) {
    let s = str(it.name) || str(it.id);
    const extra = [str(it.vendor), str(it.variant)].filter(Boolean).join(' · ');
    if (extra) s += ' (' + extra + ')';
    if (it.enabled === false) s += ' [disabled]';
    return s;
  }

  async function loadIntegrations() {
    const found = [];
    let cursor = '';
    for (let page = 0; page < 50; page++) {
      const data = await authed('GET', '/v1/admin/integrations?limit=100' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      if (data && Array.isArray(data.data)) found.push(...data.data);
      if (!data || !data.has_more || typeof data.next_cursor !== 'string' || !data.next_cursor) break;
      cursor = data.next_cursor;
    }
    const want = picker.value || sessionStorage.getItem(FILTER_KEY) || '';
    integrations.clear();
    while (picker.options.length > 1) picker.remove(1);
    for (const it of found) {
      if (!it || typeof it.id !== 'string' || !it.id) continue;
      const label = labelOf(it);
      integrations.set(it.id, label);
      picker.add(new Option(label, it.id));
    }
    picker.value = integrations.has(want) ? want : '';
    for (const row of rows.values()) showIntegration(row);
  }

  // ---- the WebSocket

  function setConn(state, text) {
    const c = $('conn');
    c.dataset.state = state;
    c.textContent = text;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (!tokens) return;
    wsWanted = true;
    let url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host +
      '/v1/admin/live?access_token=' + encodeURIComponent(tokens.access);
    if (picker.value) url += '&integration_id=' + encodeURIComponent(picker.value);
    setConn('connecting', 'connecting…');
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      failures++;
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = () => {
      if (ws !== sock) return;
      failures = 0;
      setConn('open', 'live');
    };
    sock.onmessage = (ev) => {
      if (ws !== sock) return;
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m && typeof m === 'object') handle(m);
    };
    sock.onerror = () => { /* onclose follows */ };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (!wsWanted) return;
      failures++;
      scheduleReconnect();
    };
  }

  function disconnect() {
    wsWanted = false;
    clearTimeout(reconnectTimer);
    if (ws) {
      const s = ws;
      ws = null;
      try { s.close(1000); } catch (e) { /* closed already */ }
    }
    setConn('closed', 'disconnected');
  }

  function scheduleReconnect() {
    const delay = Math.min(30000, 1000 * Math.pow(2, Math.min(failures - 1, 5))) * (0.75 + Math.random() * 0.5);
    setConn('waiting', 'reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s');
    reconnectTimer = setTimeout(async () => {
      try {
        if (tokens && tokens.expiresAt - Date.now() < 30000) {
          await refresh();
        } else if (failures >= 2) {
          // A refused upgrade looks like any other failure to a browser:
          // ask the API, which says whether the token is expired or revoked.
          await authed('GET', '/v1/admin/integrations?limit=1');
        }
      } catch (e) { /* logout() has run if the session is over */ }
      if (wsWanted && tokens) connect();
    }, delay);
  }

  // ---- rows

  function key(eventId, integrationId) {
    return eventId + '\u0000' + integrationId;
  }

  function newRow(eventId, integrationId) {
    const tr = el('tr', 'event-row');
    tr.dataset.eventId = eventId;
    tr.dataset.integrationId = integrationId;
    const cells = {};
    for (const col of COLS) {
      const td = el('td');
      td.dataset.col = col;
      tr.appendChild(td);
      cells[col] = td;
    }
    const row = { tr, cells, eventId, integrationId, key: key(eventId, integrationId), name: '', reject: false, lastFailed: false, final: '' };
    rows.set(row.key, row);
    const same = byEvent.get(eventId);
    if (same) same.push(row); else byEvent.set(eventId, [row]);
    tbody.insertBefore(tr, tbody.firstChild);
    $('empty').hidden = true;
    while (rows.size > MAX_ROWS && tbody.lastElementChild) dropRow(tbody.lastElementChild);
    showReceived(row);
    showIntegration(row);
    return row;
  }

  function dropRow(tr) {
    const row = rows.get(key(tr.dataset.eventId, tr.dataset.integrationId));
    tbody.removeChild(tr);
    if (!row) return;
    rows.delete(row.key);
    const same = (byEvent.get(row.eventId) || []).filter((r) => r !== row);
    if (same.length) {
      byEvent.set(row.eventId, same);
    } else {
      byEvent.delete(row.eventId);
      received.delete(row.eventId);
    }
  }

  // rowFor finds the row of (event, integration); a row made when the event
  // was received, before any integration spoke, is taken over by the first.
  function rowFor(eventId, integrationId) {
    const row = rows.get(key(eventId, integrationId));
    if (row) return row;
    const waiting = integrationId ? rows.get(key(eventId, '')) : null;
    if (!waiting) return newRow(eventId, integrationId);
    rows.delete(waiting.key);
    waiting.integrationId = integrationId;
    waiting.key = key(eventId, integrationId);
    waiting.tr.dataset.integrationId = integrationId;
    rows.set(waiting.key, waiting);
    showIntegration(waiting);
    return waiting;
  }

  function showReceived(row) {
    const info = received.get(row.eventId);
    const td = row.cells.received;
    if (info) {
      td.textContent = fmtTime(info.at);
      td.title = str(info.at);
      if (info.name && !row.name) row.name = info.name;
    }
    showEvent(row);
  }

  function showEvent(row) {
    const td = row.cells.event;
    clear(td);
    td.appendChild(el('span', '', row.name || '(unnamed)'));
    td.appendChild(el('span', 'small mono', row.eventId));
  }

  function showIntegration(row) {
    const td = row.cells.integration;
    if (!row.integrationId) {
      td.textContent = 'awaiting decision';
      td.className = 'pending';
      return;
    }
    td.className = '';
    td.textContent = integrations.get(row.integrationId) || row.integrationId;
    td.title = row.integrationId;
    if (!integrations.has(row.integrationId)) refreshIntegrationsSoon();
  }

  // An integration installed after the page loaded: list them again (at
  // most every 5 s), so that the picker and the rows name it.
  let refreshPending = false;
  function refreshIntegrationsSoon() {
    if (refreshPending) return;
    refreshPending = true;
    setTimeout(async () => {
      try {
        await loadIntegrations();
        for (const r of rows.values()) showIntegration(r);
      } catch (e) { /* the next message tries again */ }
      refreshPending = false;
    }, 5000);
  }

  function showDecision(row, m) {
    const td = row.cells.decision;
    clear(td);
    const outcome = str(m.outcome);
    td.appendChild(badge(outcome));
    if (m.reason) td.appendChild(el('span', 'small', str(m.reason)));
    const fields = list(m.fields);
    if (fields.length) td.appendChild(el('span', 'small', 'fields: ' + fields.join(', ')));
    for (const w of list(m.warnings)) td.appendChild(el('span', 'small', '⚠ ' + w));
    if (m.message) td.appendChild(el('span', 'small msg', str(m.message)));
    row.reject = outcome === 'reject';
    td.classList.toggle('failed', row.reject);
  }

  function showRequest(row, m) {
    const td = row.cells.request;
    clear(td);
    const line = [str(m.method), str(m.url)].filter(Boolean).join(' ') || 'request';
    const text = str(m.request);
    if (!text) {
      td.appendChild(el('span', 'mono', line));
      return;
    }
    const details = el('details');
    details.appendChild(el('summary', 'mono', line));
    details.appendChild(el('pre', '', text));
    td.appendChild(details);
  }

  function addAttempt(row, m) {
    const td = row.cells.attempts;
    let ol = td.querySelector('ol.attempts');
    if (!ol) {
      ol = el('ol', 'attempts');
      td.insertBefore(ol, td.firstChild);
    }
    const status = Number(m.status) || 0;
    const outcome = str(m.outcome);
    const failed = !GOOD.has(outcome) && (outcome === 'failed' || outcome === 'retry' || status >= 400);
    const li = el('li', failed ? 'failed' : '');
    const n = Number(m.attempt) || 0;
    if (n > 0) li.value = n;
    const parts = [status ? String(status) : 'no answer'];
    if (m.duration_ms !== undefined && m.duration_ms !== null) parts.push(Number(m.duration_ms) + ' ms');
    if (outcome) parts.push(outcome);
    li.appendChild(el('span', '', parts.join(' · ')));
    if (m.message) li.appendChild(el('span', 'small msg', str(m.message)));
    if (m.body_excerpt) li.appendChild(el('span', 'small mono', str(m.body_excerpt)));
    ol.appendChild(li);
    while (ol.children.length > MAX_ATTEMPTS_SHOWN) ol.removeChild(ol.firstChild);

    row.lastFailed = failed;
    const st = row.cells.status;
    st.textContent = status ? String(status) : '—';
    st.title = str(m.message);
    st.classList.toggle('failed', failed);
  }

  function showFinal(row, m) {
    const outcome = str(m.outcome);
    row.final = outcome;
    const td = row.cells.final;
    td.textContent = outcome;
    td.title = str(m.message);
    td.classList.toggle('failed', BAD.has(outcome));
    td.classList.toggle('good', outcome === 'delivered');
    const at = row.cells.attempts;
    const old = at.querySelector('.final-msg');
    if (old) at.removeChild(old);
    if (m.message) at.appendChild(el('span', 'small msg final-msg', outcome + ': ' + str(m.message)));
  }

  function markFailed(row) {
    const settledWell = row.final === 'delivered' || row.final === 'skipped';
    const failed = row.reject || BAD.has(row.final) || (!settledWell && row.lastFailed);
    row.tr.classList.toggle('failed', failed);
  }

  function handle(m) {
    const type = str(m.type);
    if (type === 'dropped') {
      notice(str(m.message) || 'Some messages were dropped: the page was too slow.');
      return;
    }
    const eventId = str(m.event_id);
    if (!eventId) return;
    if (type === 'received') {
      received.set(eventId, { at: str(m.at), name: str(m.event_name) });
      while (received.size > 2 * MAX_ROWS) received.delete(received.keys().next().value);
      const same = byEvent.get(eventId);
      if (same) same.forEach(showReceived); else newRow(eventId, str(m.integration_id));
      return;
    }
    if (type !== 'decision' && type !== 'request' && type !== 'attempt' && type !== 'final') return;
    const row = rowFor(eventId, str(m.integration_id));
    if (m.event_name && !row.name) {
      row.name = str(m.event_name);
      showEvent(row);
    }
    if (!row.cells.received.textContent && m.at) {
      row.cells.received.textContent = fmtTime(m.at);
      row.cells.received.title = str(m.at);
    }
    if (type === 'decision') showDecision(row, m);
    else if (type === 'request') showRequest(row, m);
    else if (type === 'attempt') addAttempt(row, m);
    else showFinal(row, m);
    markFailed(row);
  }

  function clearRows() {
    clear(tbody);
    rows.clear();
    byEvent.clear();
    received.clear();
    $('empty').hidden = false;
  }

  // ---- screens

  function showLogin(message) {
    $('live').hidden = true;
    $('session').hidden = true;
    $('login').hidden = false;
    const err = $('login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('email').focus();
  }

  async function start() {
    $('login').hidden = true;
    $('live').hidden = false;
    $('session').hidden = false;
    try {
      await loadIntegrations();
    } catch (e) {
      if (!tokens) return; // the session is over: logout() showed the form
      notice('Cannot list the integrations: ' + e.message);
    }
    connect();
  }

  function logout(message) {
    disconnect();
    clearTimeout(refreshTimer);
    tokens = null;
    try { sessionStorage.removeItem(TOKENS_KEY); } catch (e) { /* nothing stored */ }
    clearRows();
    showLogin(message);
  }

  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = $('login-submit');
    button.disabled = true;
    $('login-error').hidden = true;
    try {
      const data = await call('POST', '/v1/admin/auth/login', { email: $('email').value.trim(), password: $('password').value }, false);
      acceptTokens(data);
      $('password').value = '';
      await start();
    } catch (e) {
      showLogin(e.code === 'INVALID_CREDENTIALS' ? 'Wrong email or password.' : e.message);
    } finally {
      button.disabled = false;
    }
  });
  // Opening the picker lists the integrations again (one installed since
  // the page loaded shows up).
  picker.addEventListener('focus', () => { loadIntegrations().catch(() => {}); });
  picker.addEventListener('change', () => {
    try { sessionStorage.setItem(FILTER_KEY, picker.value); } catch (e) { /* not kept */ }
    clearRows();
    disconnect();
    failures = 0;
    connect();
  });
  $('clear').addEventListener('click', clearRows);
  $('logout').addEventListener('click', () => logout(''));

  tokens = takeStoredTokens();
  if (tokens) {
    scheduleRefresh();
    start();
  } else {
    showLogin('');
  }
})();

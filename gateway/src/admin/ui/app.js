// dyegate's live view: reads the admin API of the address it was served from, once a second,
// and draws what it reads. Every text that comes from the API (route names, tags, reasons,
// errors) is put in the page as text (createTextNode / textContent), never parsed as HTML.
// Every change it asks for carries the X-Dyegate-Ui header (the API refuses a browser's POST
// without it) and the token, when there is one, as an Authorization header.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 1000;
const state = { token: null, role: null, identity: null, view: 'overview', timer: null, busy: false };
const panels = new Map(); // route -> rollout panel (kept across refreshes: its buttons stay put)

// ---- the DOM, as text only ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c) e.appendChild(c);
  return e;
}

const $ = (id) => document.getElementById(id);
const pct = (x) => (x === null || x === undefined ? '–' : (100 * x).toFixed(x < 0.01 && x > 0 ? 2 : 1) + '%');
const num = (x, d = 1) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const text = (v) => (v === null || v === undefined ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function dl(pairs) {
  return el('dl', {}, pairs.filter(Boolean).map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v instanceof Node ? v : text(v))]));
}

function table(head, rows, attrs) {
  return el('table', attrs || {},
    el('thead', {}, el('tr', {}, head.map((h) => el('th', { text: h })))),
    el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c instanceof Node ? c : text(c)))))));
}

function showError(message) {
  $('error').textContent = message || '';
}

// ---- the API ----

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  if (method !== 'GET') {
    headers['X-Dyegate-Ui'] = '1';
    headers['Content-Type'] = 'application/json';
  }
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit', cache: 'no-store', redirect: 'error',
  });
  let json = null;
  try { json = await resp.json(); } catch (_) { json = null; }
  if (!resp.ok) {
    const message = json && typeof json.error === 'string' ? json.error : resp.status + ' ' + resp.statusText;
    throw new ApiError(resp.status, message);
  }
  return json;
}

// ---- signing in ----

// Whether the page may show the API: without a token it asks whether one is needed (no
// identity then); a wrong token is refused.
async function identify() {
  try {
    const who = await api('GET', '/identity');
    if (!who.identity) return false;
    state.role = who.role;
    state.identity = who.identity;
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

function showLogin(message) {
  stop();
  $('app').hidden = true;
  $('tabs').hidden = true;
  $('forget').hidden = true;
  $('who').textContent = '';
  $('login').hidden = false;
  showError(message || '');
  $('token').focus();
}

function showApp() {
  $('login').hidden = true;
  $('app').hidden = false;
  $('tabs').hidden = false;
  $('forget').hidden = !state.token;
  $('who').textContent = state.identity + ' (' + state.role + ')';
  select(location.hash.slice(1) || 'overview');
}

async function start() {
  state.token = sessionStorage.getItem('dyegate-token');
  try {
    if (await identify()) return showApp();
    state.token = null;
    sessionStorage.removeItem('dyegate-token');
    showLogin('');
  } catch (e) {
    showLogin(e.message);
  }
}

async function login(ev) {
  ev.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  state.token = t;
  try {
    if (await identify()) {
      sessionStorage.setItem('dyegate-token', t);
      $('token').value = '';
      showError('');
      return showApp();
    }
    state.token = null;
    showLogin('This token is not known to the gateway.');
  } catch (e) {
    state.token = null;
    showLogin(e.message);
  }
}

// ---- views ----

const VIEWS = { overview: renderOverview, routes: renderRoutes, rollouts: renderRollouts, versions: renderVersions, explain: null };

function select(view) {
  if (!(view in VIEWS)) view = 'overview';
  state.view = view;
  if (location.hash !== '#' + view) history.replaceState(null, '', '#' + view);
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === view);
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== 'view-' + view;
  stop();
  refresh();
}

function stop() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
}

async function refresh() {
  stop();
  const render = VIEWS[state.view];
  if (!render) {
    document.body.dataset.rendered = state.view; // a form: nothing to read
    return;
  }
  const view = state.view;
  try {
    await render($('view-' + view));
    // Another tab was chosen while this view's answers were awaited: that view says what is
    // rendered (and has its own timer); this late one must not write over it.
    if (state.view !== view) return;
    if (!state.busy) showError('');
    document.body.dataset.rendered = view;
  } catch (e) {
    if (state.view !== view) return;
    if (e.status === 401) return showLogin('The token was refused: ' + e.message);
    showError(e.message);
  }
  if (state.view === view) state.timer = setTimeout(refresh, REFRESH_MS);
}

function canWrite() {
  return state.role === 'write';
}

// Overview: version, source, listeners, TLS, the last reload, each route's rates.
async function renderOverview(root) {
  const [status, traffic] = await Promise.all([api('GET', '/status'), api('GET', '/traffic')]);
  const last = status.last_error;
  const version = el('div', { class: 'card' }, el('h2', { text: 'Routing table' }), dl([
    ['version', status.version + (status.local ? '.' + status.local : '')],
    ['loaded at', status.loaded_at],
    ['trigger', status.trigger],
    ['routes', status.routes],
    ['upstream groups', status.upstreams],
    ['sha256', status.sha256],
  ]));
  const source = el('div', { class: 'card' }, el('h2', { text: 'Source' }), dl([
    ['routes file', status.routes_file],
    ['matches the file', status.matches_file],
    status.source !== undefined ? ['source', status.source] : null,
    status.divergent !== undefined ? ['divergent', status.divergent] : null,
    status.etcd !== undefined ? ['etcd', status.etcd] : null,
    ['reload in progress', status.reload_in_progress],
    ['reloads', status.reloads],
  ]));
  const reload = el('div', { class: 'card' }, el('h2', { text: 'Last reload' }),
    last ? el('div', {}, el('p', { class: 'bad', text: 'failed' }), dl(Object.entries(last)))
      : el('p', { class: 'ok', text: 'no failed reload' }));
  const process = el('div', { class: 'card' }, el('h2', { text: 'Process' }), dl([
    ['pid', status.pid],
    ['draining', status.draining],
    ['in flight', status.in_flight],
    status.process ? ['lineage', status.process] : null,
    status.listeners ? ['listeners', 'proxy ' + (status.listeners.proxy || []).join(', ') + '; admin ' + location.host] : null,
  ]));
  const tls = el('div', { class: 'card' }, el('h2', { text: 'TLS' }), status.tls ? tlsTable(status.tls) : el('p', { class: 'muted', text: 'no HTTPS listener' }));
  const routes = Object.entries(traffic.routes || {});
  const rates = el('div', { class: 'card' }, el('h2', { text: 'Traffic, last ' + traffic.rate_seconds + ' s' }),
    routes.length ? table(['route', 'requests/s', 'error rate'], routes.map(([name, r]) => [name, num(r.requests_per_second), pct(r.error_rate)]), { id: 'overview-traffic' })
      : el('p', { class: 'muted', text: 'no traffic yet' }));
  root.replaceChildren(el('div', { class: 'grid' }, version, source, reload, process, tls), rates);
}

function tlsTable(tls) {
  const certs = Array.isArray(tls.certificates) ? tls.certificates : null;
  if (!certs) return dl(Object.entries(tls));
  return table(['certificate', 'names', 'expires'], certs.map((c) => [c.file || c.name || '', text(c.names || c.sni), text(c.not_after || c.expires)]));
}

// Routes: matchers, tags, weights, the realised share per group, the targets' health.
async function renderRoutes(root) {
  const [routes, upstreams, traffic] = await Promise.all([api('GET', '/routes'), api('GET', '/upstreams'), api('GET', '/traffic')]);
  const cards = (routes.routes || []).map((r) => {
    const seen = (traffic.routes || {})[r.name] || { groups: {} };
    const m = r.match || {};
    const matchers = [
      m.host ? ['host', m.host] : null,
      m.path_prefix ? ['path prefix', m.path_prefix] : null,
      m.methods ? ['methods', m.methods.join(', ')] : null,
      Object.keys(m.headers || {}).length ? ['headers', Object.entries(m.headers).map(([k, v]) => k + ': ' + v.join(' | ')).join('; ')] : null,
      r.sticky ? ['sticky', r.sticky] : null,
    ];
    const tags = Object.entries((r.dye || {}).tags || {});
    const split = (r.split || []).map((s, i) => {
      const g = seen.groups[s.upstream] || {};
      return [el('span', { class: 'group g' + (i % 4) }, s.upstream), s.weight, pct(g.share), text(g.requests)];
    });
    return el('div', { class: 'card route', 'data-route': r.name },
      el('h2', {}, el('span', { class: 'route-name', text: r.name })),
      dl(matchers.filter(Boolean).length ? matchers : [['matches', 'every request']]),
      el('h3', { text: 'Tags (header ' + ((r.dye || {}).header || '') + ')' }),
      tags.length ? table(['tag', 'group'], tags) : el('p', { class: 'muted', text: 'no tag' }),
      el('h3', { text: 'Split: weight and realised share of the last ' + traffic.share_seconds + ' s' }),
      shareBar(r.split || [], seen.groups),
      table(['group', 'weight', 'realised', 'requests'], split, { class: 'split' }));
  });
  const groups = (upstreams.groups || []).map((g) => [g.name, g]);
  const health = el('div', { class: 'card' }, el('h2', { text: 'Upstream groups' }),
    groups.map(([name, g]) => el('div', { class: 'group-health', 'data-group': name },
      el('h3', { text: name + (g.outlier ? ' (outlier ejection)' : '') + (g.health_check ? ' (health checks)' : '') }),
      table(['target', 'state', 'ejected until', 'failures', 'in flight'], (g.targets || []).map((t) => [
        t.addr + (t.name ? ' (' + t.name + ')' : ''), healthText(t), text(t.ejected_until), t.failures, t.in_flight,
      ])))));
  root.replaceChildren(...cards, health);
}

function healthText(t) {
  const s = text(t.state);
  return el('span', { class: s === 'healthy' ? 'ok' : 'bad' }, s);
}

function shareBar(split, groups) {
  const total = split.reduce((a, s) => a + ((groups[s.upstream] || {}).requests || 0), 0);
  const bar = svg('svg', { class: 'chart share', viewBox: '0 0 300 10', preserveAspectRatio: 'none', role: 'img' });
  let x = 0;
  split.forEach((s, i) => {
    const n = (groups[s.upstream] || {}).requests || 0;
    const w = total ? (300 * n) / total : 0;
    bar.appendChild(svg('rect', { x, y: 0, width: w, height: 10, class: 'g' + (i % 4) },
      svg('title', { text: s.upstream + ': ' + pct(total ? n / total : null) })));
    x += w;
  });
  return bar;
}

// Rollouts: one panel per rollout; its buttons are made once and only enabled or not.
async function renderRollouts(root) {
  let list;
  try {
    list = (await api('GET', '/rollouts')).rollouts || [];
  } catch (e) {
    if (e.status === 404) {
      root.replaceChildren(el('p', { class: 'muted', text: e.message }));
      return;
    }
    throw e;
  }
  // Each panel keeps the points it has; only the newer ones are asked for.
  const series = await Promise.all(list.map((r) => {
    const kept = panels.get(r.route);
    const last = kept && kept.points.length ? kept.points[kept.points.length - 1].t : null;
    const query = last === null ? '' : '?since=' + last;
    return api('GET', '/rollouts/' + encodeURIComponent(r.route) + '/series' + query).catch(() => null);
  }));
  const seen = new Set();
  list.forEach((r, i) => {
    seen.add(r.route);
    let p = panels.get(r.route);
    if (!p) {
      p = rolloutPanel(r.route);
      panels.set(r.route, p);
    }
    fillPanel(p, r, series[i]);
  });
  for (const [route, p] of panels) if (!seen.has(route)) { p.root.remove(); panels.delete(route); }
  const wanted = list.map((r) => panels.get(r.route).root);
  if (wanted.length === 0) {
    root.replaceChildren(el('p', { class: 'muted', text: 'No route has a rollout.' }));
  } else if (wanted.some((n, i) => root.children[i] !== n) || root.children.length !== wanted.length) {
    root.replaceChildren(...wanted);
  }
}

const CONTROLS = [
  { action: 'pause', label: 'Pause' },
  { action: 'resume', label: 'Resume' },
  { action: 'promote', label: 'Promote', confirm: (r) => 'Promote the canary of ' + r + ' to its next step now, without waiting for the gates?' },
  { action: 'abort', label: 'Abort', danger: true, confirm: (r) => 'Abort the rollout of ' + r + '? The canary goes back to 0%.' },
];

function rolloutPanel(route) {
  const root = el('div', { class: 'card rollout', 'data-route': route });
  const title = el('h2', {}, el('span', { class: 'route-name', text: route }));
  const info = el('div', { class: 'info' });
  const charts = el('div', { class: 'charts' });
  const buttons = CONTROLS.map((c) => el('button', {
    type: 'button', class: c.danger ? 'danger' : '', 'data-action': c.action,
    on: { click: () => control(route, c) },
  }, c.label));
  root.append(title, info, charts, el('div', { class: 'controls' }, buttons));
  return { root, info, charts, buttons, points: [] };
}

function fillPanel(p, r, series) {
  const steps = r.steps || [];
  const evaluation = r.last_evaluation || {};
  const since = Date.parse(r.since);
  const onStep = Number.isFinite(since) ? Math.max(0, Math.round((Date.now() - since) / 1000)) + ' s' : '–';
  const gates = (evaluation.gates || []).map((g) => [g.gate, num(g.value, 4), num(g.limit, 4), el('span', { class: g.ok ? 'ok' : 'bad' }, g.ok ? 'holds' : 'breached')]);
  const groups = (evaluation.groups || []).map((g) => [g.group + (g.canary ? ' (canary)' : ''), g.requests, g.errors, pct(g.error_rate), text(g.latency_ms)]);
  // Step n (1-based) is steps[n - 1]; step 0 is the file's own weights.
  const staircase = el('ol', { class: 'steps' }, steps.map((s, i) => el('li', {
    class: i + 1 < r.step ? 'done' : i + 1 === r.step ? 'current' : '', 'data-step': i + 1,
  }, s + '%')));
  p.info.replaceChildren(
    dl([
      ['state', el('span', { class: 'state', 'data-field': 'state' }, r.state)],
      ['step', el('span', { 'data-field': 'step' }, String(r.step))],
      ['canary', r.canary],
      ['canary share', el('span', { 'data-field': 'canary-share' }, r.canary_share === null || r.canary_share === undefined ? '–' : r.canary_share + '%')],
      ['since', (r.since || '') + ' (' + onStep + ')'],
      ['moved by', r.moved_by],
      ['judged at', evaluation.at],
      ['enough traffic', evaluation.enough_traffic],
    ]),
    staircase,
    el('h3', { text: 'Gates over the last ' + (evaluation.window_ms ? evaluation.window_ms / 1000 + ' s' : 'window') }),
    gates.length ? table(['gate', 'value', 'limit', 'verdict'], gates, { class: 'gates' }) : el('p', { class: 'muted', text: 'not judged yet' }),
    groups.length ? table(['group', 'requests', 'errors', 'error rate', 'p' + (evaluation.latency_percentile || '') + ' ms'], groups, { class: 'figures' }) : null,
  );
  if (series) {
    const fresh = series.points || [];
    if (fresh.length) {
      const first = fresh[0].t, newest = fresh[fresh.length - 1].t;
      const span = series.capacity || 900;
      p.points = p.points.filter((x) => x.t < first && x.t > newest - span).concat(fresh);
    }
    p.charts.replaceChildren(...rolloutCharts(Object.assign({}, series, { points: p.points })));
  }
  const write = canWrite();
  const final = ['succeeded', 'failed', 'aborted'].includes(r.state);
  for (const b of p.buttons) {
    const a = b.dataset.action;
    const possible = !final && (a !== 'pause' || r.state !== 'paused') && (a !== 'resume' || r.state === 'paused');
    b.disabled = !write || !possible;
    b.title = write ? '' : 'needs a token with role write';
  }
}

async function control(route, c) {
  if (!canWrite()) return;
  if (c.confirm && !(await confirmed(c.confirm(route)))) return;
  state.busy = true;
  try {
    await api('POST', '/rollouts/' + encodeURIComponent(route) + '/' + c.action);
    showError('');
  } catch (e) {
    showError(c.action + ' ' + route + ': ' + e.message);
  } finally {
    state.busy = false;
    refresh();
  }
}

function confirmed(message) {
  const d = $('confirm');
  $('confirm-text').textContent = message;
  return new Promise((resolve) => {
    const done = (v) => () => {
      $('confirm-ok').onclick = null;
      $('confirm-cancel').onclick = null;
      d.close();
      resolve(v);
    };
    $('confirm-ok').onclick = done(true);
    $('confirm-cancel').onclick = done(false);
    d.showModal();
  });
}

// The two charts of a rollout over 15 minutes: error rate and latency, canary against the
// other groups, the gates' limits dashed, every step and abort marked.
function rolloutCharts(s) {
  const pts = s.points || [];
  const now = pts.length ? pts[pts.length - 1].t : Math.floor(Date.now() / 1000);
  const from = now - (s.capacity || 900);
  const limits = s.limits || {};
  const q = limits.latency_percentile || 99;
  const errors = chart({
    title: 'error rate', from, to: now, marks: s.marks || [], format: pct,
    lines: [
      { cls: 'others', label: 'others', values: pts.map((p) => [p.t, p.others_requests ? p.others_error_rate : null]) },
      { cls: 'canary', label: 'canary', values: pts.map((p) => [p.t, p.canary_requests ? p.canary_error_rate : null]) },
    ],
    limit: limits.max_error_rate,
  });
  const latency = chart({
    title: 'p' + q + ' latency, ms', from, to: now, marks: s.marks || [], format: (v) => num(v, 0),
    lines: [
      { cls: 'others', label: 'others', values: pts.map((p) => [p.t, p.others_latency_ms]) },
      { cls: 'canary', label: 'canary', values: pts.map((p) => [p.t, p.canary_latency_ms]) },
    ],
    limit: limits.max_latency_ms,
  });
  return [errors, latency];
}

function chart(c) {
  const W = 600, H = 180, L = 48, R = 8, T = 8, B = 22;
  const all = c.lines.flatMap((l) => l.values.map((v) => v[1])).filter((v) => v !== null && v !== undefined);
  let max = Math.max(0, ...all, c.limit || 0);
  if (max === 0) max = c.limit || 1;
  max *= 1.1;
  const x = (t) => L + ((t - c.from) / Math.max(1, c.to - c.from)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const g = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': c.title });
  g.appendChild(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  g.appendChild(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  for (const v of [0, max / 2, max / 1.1]) {
    g.appendChild(svg('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end', text: c.format(v) }));
  }
  for (const m of [15, 10, 5, 0]) {
    g.appendChild(svg('text', { x: x(c.to - m * 60), y: H - 6, 'text-anchor': 'middle', text: m ? '-' + m + ' min' : 'now' }));
  }
  if (c.limit !== null && c.limit !== undefined) {
    g.appendChild(svg('line', { class: 'limit', x1: L, y1: y(c.limit), x2: W - R, y2: y(c.limit) }, svg('title', { text: 'limit ' + c.format(c.limit) })));
  }
  for (const m of c.marks) {
    const abort = m.state === 'aborted' || m.state === 'failed';
    g.appendChild(svg('line', { class: 'mark' + (abort ? ' abort' : ''), x1: x(m.t), y1: T, x2: x(m.t), y2: H - B },
      svg('title', { text: m.state + ' at step ' + m.step })));
  }
  for (const l of c.lines) {
    let d = '';
    let pen = false;
    for (const [t, v] of l.values) {
      if (v === null || v === undefined) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      pen = true;
    }
    if (d) g.appendChild(svg('path', { class: l.cls, d }));
  }
  return el('figure', { class: 'chart-box' },
    el('figcaption', {}, el('span', { text: c.title + ' ' }),
      el('span', { class: 'legend' }, el('span', { class: 'canary', text: '— canary' }), el('span', { class: 'others', text: '— others' }),
        c.limit !== null && c.limit !== undefined ? el('span', { class: 'limit', text: '- - limit' }) : null)),
    g);
}

// Versions: the history, newest first, who and when, a diff against the previous on demand,
// a rollback with confirmation.
async function renderVersions(root) {
  const v = await api('GET', '/versions');
  const list = (v.versions || []).slice().reverse();
  const key = list.map((x) => x.version + '.' + (x.local || 0) + (x.active ? '*' : '')).join(',') + state.role;
  if (root.dataset.key === key) return; // unchanged: keep the opened diffs
  root.dataset.key = key;
  const rows = list.map((x, i) => {
    const id = x.version + (x.local ? '.' + x.local : '');
    const prev = list[i + 1];
    const prevId = prev ? prev.version + (prev.local ? '.' + prev.local : '') : null;
    const out = el('div', { class: 'diff-out' });
    const diffButton = el('button', { type: 'button', disabled: !prevId, on: { click: () => showDiff(out, id, prevId, x, prev) } }, 'Diff');
    const rollback = el('button', {
      type: 'button', class: 'danger', 'data-action': 'rollback', disabled: x.active || !canWrite(),
      title: canWrite() ? '' : 'needs a token with role write',
      on: { click: () => rollbackTo(id) },
    }, 'Roll back to ' + id);
    return el('div', { class: 'card version', 'data-version': id },
      el('h2', { text: 'version ' + id + (x.active ? ' (active)' : '') }),
      dl([
        ['trigger', triggerText(x)],
        ['who', x.identity ? x.identity + (x.client ? ' from ' + x.client : '') : (x.client || 'the gateway')],
        ['when', x.loaded_at],
        ['sha256', x.sha256],
        x.overrides && Object.keys(x.overrides).length ? ['rollout weights', x.overrides] : null,
      ]),
      el('div', { class: 'controls' }, diffButton, rollback), out);
  });
  root.replaceChildren(...rows);
}

function triggerText(x) {
  switch (x.trigger) {
    case 'rollback': return 'rollback to ' + x.rollback_to + (x.rollback_from ? ' (from ' + x.rollback_from + ')' : '');
    case 'rollout': return 'rollout of ' + x.route + ', step ' + x.step;
    case 'etcd': return 'etcd revision ' + x.revision;
    default: return x.trigger;
  }
}

async function showDiff(out, id, prevId, x, prev) {
  try {
    const [a, b] = await Promise.all([api('GET', '/versions/' + prevId), api('GET', '/versions/' + id)]);
    const lines = diffLines((a.source || '').split('\n'), (b.source || '').split('\n'));
    const pre = el('pre', { class: 'diff' });
    if (!lines) pre.appendChild(el('span', { text: 'too large to compare here: use dyegate versions / the audit log' }));
    else if (!lines.some((l) => l[0] !== ' ')) {
      const before = JSON.stringify(prev.overrides || {}), after = JSON.stringify(x.overrides || {});
      pre.appendChild(el('span', { text: 'same text' + (before !== after ? '; rollout weights ' + before + ' → ' + after : '') }));
    }
    else for (const l of lines) pre.appendChild(el('span', { class: l[0] === '+' ? 'add' : l[0] === '-' ? 'del' : '', text: l + '\n' }));
    out.replaceChildren(el('h3', { text: 'version ' + prevId + ' → ' + id }), pre);
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error', text: e.message }));
  }
}

// A line diff (longest common subsequence), with 2 lines of context; null past ~4M cells.
function diffLines(a, b) {
  const n = a.length, m = b.length;
  if (n * m > 4e6) return null;
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const all = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { all.push('  ' + a[i]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { all.push('+ ' + b[j]); j++; }
    else { all.push('- ' + a[i]); i++; }
  }
  const keep = all.map((l, k) => l[0] !== ' ' || all.slice(Math.max(0, k - 2), k + 3).some((x) => x[0] !== ' '));
  const out = [];
  all.forEach((l, k) => { if (keep[k]) out.push(l); else if (out[out.length - 1] !== '  …') out.push('  …'); });
  return out;
}

async function rollbackTo(id) {
  if (!canWrite()) return;
  if (!(await confirmed('Roll back the routing table to version ' + id + '?'))) return;
  try {
    await api('POST', '/rollback', { to: Number.isInteger(Number(id)) ? Number(id) : id });
    showError('');
  } catch (e) {
    showError('rollback to ' + id + ': ' + e.message);
  }
  $('view-versions').dataset.key = '';
  refresh();
}

// Explain: what the proxy would decide for a request, from POST /explain (the proxy's own
// decision code; nothing is sent to an upstream).
function pairs(textArea, sep) {
  const out = [];
  for (const line of textArea.value.split('\n')) {
    const at = line.indexOf(sep);
    if (at <= 0) continue;
    out.push([line.slice(0, at).trim(), line.slice(at + 1).trim()]);
  }
  return out;
}

async function explain(ev) {
  ev.preventDefault();
  // The request's Host: as `curl localhost:8080/` sends it when none is given.
  const headers = [['host', $('explain-host').value.trim() || 'localhost'], ...pairs($('explain-headers'), ':')];
  const body = {
    url: $('explain-path').value.trim() || '/',
    method: $('explain-method').value.trim() || 'GET',
    headers,
    cookies: pairs($('explain-cookies'), '='),
    query: pairs($('explain-query'), '='),
  };
  const ip = $('explain-client-ip').value.trim();
  if (ip) body.ip = ip;
  const out = $('explain-answer');
  try {
    const answer = await api('POST', '/explain', body);
    out.replaceChildren(el('div', { class: 'card', id: 'explain-result' }, el('h2', { text: 'Decision' }), answerList(answer)));
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error', text: e.message }));
  }
}

function answerList(v) {
  if (v === null || typeof v !== 'object') return el('span', { text: text(v) });
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
  return el('dl', {}, entries.map(([k, x]) => [el('dt', { text: k }), el('dd', { 'data-field': k }, answerList(x))]));
}

// ---- wiring ----

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('explain-form').addEventListener('submit', explain);
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem('dyegate-token');
    state.token = null;
    showLogin('');
  });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => select(b.dataset.view));
  window.addEventListener('hashchange', () => { if (!$('app').hidden) select(location.hash.slice(1)); });
  start();
});

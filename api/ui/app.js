// netwarden dashboard: plain JavaScript over the JSON API, no build step.
// Every value from the server or the user is put into the page as text
// (textContent / attributes), never as HTML.
'use strict';

let csrf = '';

// extraPages are pages other scripts (outages.js) register: {name, match(path), render(path)}.
const extraPages = [];

// h builds an element: h('td', {class: 'mono'}, 'text', child, ...).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}

function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

class APIError extends Error {
  constructor(status, msg, body) { super(msg); this.status = status; this.body = body; }
}

// api calls the JSON API with the session cookie; non-GET requests carry
// the CSRF token. body: a string is sent as text/plain, anything else as JSON.
async function api(method, path, body) {
  const opts = {method, credentials: 'same-origin', headers: {}};
  if (method !== 'GET' && method !== 'HEAD') opts.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    if (typeof body === 'string') {
      opts.headers['Content-Type'] = 'text/plain; charset=utf-8';
      opts.body = body;
    } else {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
  }
  const resp = await fetch(path, opts);
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: text}; }
  if (!resp.ok) {
    if (resp.status === 401 && !path.startsWith('/ui/')) { showLogin('Your session ended: sign in again.'); }
    throw new APIError(resp.status, (data && data.error) || resp.statusText, data);
  }
  return data;
}

const main = () => document.getElementById('main');

function msg(el, text, isErr) {
  el.replaceChildren(text ? h('div', {class: isErr ? 'msg err' : 'msg', role: 'status'}, text) : '');
}

function fmtTime(v) {
  if (v === undefined || v === null || v === '') return '';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  if (isNaN(d)) return String(v);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fmtNum(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : String(n ?? '');
}

function meter(used, limit) {
  const pct = typeof used === 'number' && limit > 0 ? Math.min(100, 100 * used / limit) : 0;
  const bar = h('div');
  bar.style.width = pct.toFixed(1) + '%';
  return h('div', {class: pct >= 80 ? 'meter high' : 'meter', title: pct.toFixed(1) + '%'}, bar);
}

// ---- sign-in ---------------------------------------------------------

function showLogin(note) {
  document.getElementById('nav').hidden = true;
  const out = h('div');
  const key = h('input', {id: 'key', name: 'key', type: 'password', autocomplete: 'off', placeholder: 'nwk_…', required: true});
  const form = h('form', {id: 'login', class: 'card login', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/ui/login', {key: key.value});
      csrf = r.csrf;
      location.reload();
    } catch (e) { msg(out, e.message, true); }
  }},
  h('h1', {}, 'Sign in'),
  h('p', {class: 'muted'}, 'Sign in with an API key (netwarden account create, or the key `make demo` printed).'),
  key, h('button', {class: 'primary', type: 'submit'}, 'Sign in'), out);
  const sec = h('section', {class: 'card login'}, form);
  main().replaceChildren(sec);
  if (note) msg(out, note, true);
  key.focus();
}

// ---- overview --------------------------------------------------------

function usageCard(title, used, limit, unit) {
  return h('div', {class: 'usage'},
    h('div', {class: 'muted'}, title),
    h('div', {class: 'big'}, fmtNum(used), h('span', {class: 'muted'}, ' / ' + fmtNum(limit) + (unit ? ' ' + unit : ''))),
    meter(used, limit));
}

// pair reads a used/limit pair from /v1/account's usage (null when the
// server keeps no watchlists).
function pair(acc, name, fallbackLimit) {
  const u = acc.usage || {};
  return [u[name] ?? null, u[name + '_limit'] ?? fallbackLimit];
}

async function overview() {
  const acc = await api('GET', '/v1/account');
  const lim = acc.limits || {};
  const [watched, wlimit] = pair(acc, 'watched', lim.watched);
  const [recips, rlimit] = pair(acc, 'recipients', lim.recipients);
  const [mutes, mlimit] = pair(acc, 'mutes', undefined);
  const u = acc.usage || {};
  const cards = h('div', {class: 'grid'},
    usageCard('Watched addresses', watched ?? '–', wlimit, ''),
    usageCard('Alert recipients', recips ?? '–', rlimit, ''),
    mutes !== null ? usageCard('Muted entries', mutes, mlimit, '') : '',
    u.subscriptions !== undefined ? usageCard('Outage subscriptions', u.subscriptions, u.subscriptions_limit, '') : '',
    usageCard('API hits today (UTC)', u.hits_today, u.hits_quota, ''));
  main().replaceChildren(
    h('h1', {}, 'Overview'),
    h('section', {class: 'card', id: 'account'},
      h('h2', {}, 'Account'),
      h('table', {}, h('tbody', {},
        h('tr', {}, h('th', {}, 'E-mail'), h('td', {id: 'acct-email'}, acc.account.email)),
        h('tr', {}, h('th', {}, 'Plan'), h('td', {id: 'acct-plan'}, acc.account.plan)),
        h('tr', {}, h('th', {}, 'Account id'), h('td', {class: 'mono'}, acc.account.id)),
        h('tr', {}, h('th', {}, 'Key'), h('td', {class: 'mono'}, acc.key.id + ' (' + (acc.key.scopes || []).join(', ') + ')')),
        h('tr', {}, h('th', {}, 'Quota resets'), h('td', {}, fmtTime(u.hits_reset)))))),
    h('section', {class: 'card', id: 'limits'}, h('h2', {}, 'Limits and consumption'), cards,
      h('p', {class: 'muted'}, 'Watched addresses count IPv4 addresses and IPv6 /64 blocks; overlapping entries count once.')));
}

// ---- alerts ----------------------------------------------------------

async function alertsPage() {
  main().replaceChildren(
    h('h1', {}, 'Alerts'),
    h('section', {class: 'card', id: 'activity'}, h('h2', {}, 'Activity'), h('div', {id: 'activity-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'settings'}, h('h2', {}, 'Notifications'), h('div', {id: 'settings-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'import'}, h('h2', {}, 'Import addresses to watch'), importBox()),
    h('section', {class: 'card', id: 'watched'}, h('h2', {}, 'Watched'), h('div', {id: 'watched-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'mutes'}, h('h2', {}, 'Muted'), h('div', {id: 'mutes-body'}, 'Loading…')));
  await Promise.all([loadSettings(), loadWatched(), loadActivity(), loadMutes()]);
}

async function section(id, fn) {
  const el = document.getElementById(id);
  try { await fn(el); } catch (e) { if (!(e instanceof APIError && e.status === 401)) msg(el, e.message, true); }
}

function loadSettings() {
  return section('settings-body', async (el) => {
    const st = await api('GET', '/v1/alerts/settings');
    const out = h('div');
    const email = h('input', {type: 'checkbox', id: 'email-enabled', checked: !!st.email_enabled});
    const cleared = h('input', {type: 'checkbox', id: 'notify-cleared', checked: !!st.notify_cleared});
    const recips = h('input', {id: 'recipients', size: 60, value: (st.recipients || []).join(', '), placeholder: 'a@example.com, b@example.com'});
    const hook = h('input', {id: 'webhook-url', size: 60, value: st.webhook_url || '', placeholder: 'https://example.com/hook'});
    const save = async (ev) => {
      ev.preventDefault();
      try {
        const body = {email_enabled: email.checked, notify_cleared: cleared.checked,
          recipients: recips.value.split(',').map(s => s.trim()).filter(Boolean), webhook_url: hook.value.trim()};
        const r = await api('PUT', '/v1/alerts/settings', body);
        recips.value = (r.recipients || body.recipients).join(', ');
        msg(out, 'Saved.');
      } catch (e) { msg(out, e.message, true); }
    };
    const test = async () => {
      try {
        const r = await api('POST', '/v1/alerts/test-email');
        msg(out, 'Test e-mail sent' + (r && r.sent_to ? ' to ' + [].concat(r.sent_to).join(', ') : '') + '.');
      } catch (e) { msg(out, e.message, true); }
    };
    el.replaceChildren(h('form', {id: 'settings-form', onsubmit: save},
      h('div', {class: 'row'}, h('label', {}, email, ' E-mail alerts'), h('label', {}, cleared, ' Also when an address leaves its last list')),
      h('div', {class: 'row'}, h('label', {for: 'recipients'}, 'Recipients'), recips, h('button', {class: 'primary', type: 'submit', id: 'save-settings'}, 'Save')),
      h('div', {class: 'row'}, h('label', {for: 'webhook-url'}, 'Webhook'), hook),
      st.webhook_secret ? h('div', {class: 'row muted'}, 'Webhook signing secret: ', h('span', {class: 'mono'}, st.webhook_secret)) : '',
      h('div', {class: 'row'}, h('button', {type: 'button', id: 'test-email', onclick: test}, 'Send a test e-mail'))), out);
  });
}

function importBox() {
  const out = h('div', {id: 'import-result'});
  const box = h('textarea', {id: 'import-text', rows: 6, placeholder: '# one IP or CIDR per line, IPv4 and IPv6\n192.0.2.0/24\n2001:db8::/48'});
  return h('form', {id: 'import-form', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/v1/alerts/watchlist', box.value);
      const rejected = r.rejected || [];
      // Rejected lines stay in the box for fixing; accepted ones leave it.
      box.value = rejected.map(x => x.line).join('\n');
      const parts = [h('div', {class: 'msg'}, `Imported ${fmtNum(r.imported)}; watching ${fmtNum(r.watched)} of ${fmtNum(r.limit)} addresses.`)];
      if (rejected.length) {
        parts.push(h('div', {class: 'msg err'}, `${rejected.length} line(s) rejected — they stay in the box:`),
          h('table', {id: 'rejected'}, h('thead', {}, h('tr', {}, h('th', {}, 'Line'), h('th', {}, 'Reason'))),
            h('tbody', {}, rejected.map(x => h('tr', {}, h('td', {class: 'mono'}, x.line), h('td', {}, x.reason))))));
      }
      out.replaceChildren(...parts);
      loadWatched();
      loadActivity();
    } catch (e) { msg(out, e.message, true); }
  }}, box, h('div', {class: 'row'}, h('button', {class: 'primary', type: 'submit', id: 'import-submit'}, 'Import')), out);
}

// short shows a single address without its /32 or /128.
const short = (p) => String(p).replace(/^([0-9.]+)\/32$|^([0-9a-fA-F:.]*:[0-9a-fA-F:.]*)\/128$/, (m, a, b) => a || b);

function loadWatched() {
  return section('watched-body', async (el) => {
    const r = await api('GET', '/v1/alerts/watchlist?items=200');
    const rows = r.entries, total = r.total;
    el.replaceChildren(h('p', {class: 'muted'}, `${fmtNum(total)} entries`, total > rows.length ? ` (the first ${rows.length} shown)` : ''),
      rows.length === 0 ? h('p', {class: 'muted'}, 'Nothing watched yet: import addresses above.') :
        h('table', {id: 'watched-table'}, h('thead', {}, h('tr', {}, h('th', {}, 'Entry'), h('th', {}, 'Added'), h('th', {}, ''))),
          h('tbody', {}, rows.map(e => {
            const ent = e.entry;
            return h('tr', {'data-entry': ent}, h('td', {class: 'mono'}, h('a', {href: '/ui/ip/' + short(ent)}, short(ent))), h('td', {}, fmtTime(e.added)),
              h('td', {}, h('button', {type: 'button', class: 'remove', onclick: async () => {
                try { await api('DELETE', '/v1/alerts/watchlist/' + ent); loadWatched(); } catch (err) { msg(el, err.message, true); }
              }}, 'Remove')));
          }))));
  });
}

function loadMutes() {
  return section('mutes-body', async (el) => {
    const r = await api('GET', '/v1/alerts/mutes?items=200');
    const rows = r.entries;
    el.replaceChildren(rows.length === 0 ? h('p', {class: 'muted'}, 'Nothing muted. Mute an address from the activity table.') :
      h('table', {id: 'mutes-table'}, h('tbody', {}, rows.map(e => {
        const ent = e.entry;
        return h('tr', {'data-entry': ent}, h('td', {class: 'mono'}, short(ent)), h('td', {}, h('button', {type: 'button', onclick: async () => {
          try { await api('DELETE', '/v1/alerts/mutes/' + ent); loadMutes(); } catch (err) { msg(el, err.message, true); }
        }}, 'Unmute')));
      }))));
  });
}

// activityType is the Activity table's type filter ('' = all).
let activityType = '';

function loadActivity() {
  return section('activity-body', async (el) => {
    const r = await api('GET', '/v1/alerts?items=50' + (activityType ? '&type=' + activityType : ''));
    const rows = r.alerts;
    const filter = h('select', {id: 'activity-type', 'aria-label': 'Alert type', onchange: (ev) => { activityType = ev.target.value; loadActivity(); }},
      [['', 'All alerts'], ['blocklist', 'Blocklist'], ['outage', 'Outages']].map(([v, t]) => h('option', {value: v, selected: v === activityType}, t)));
    el.replaceChildren(h('div', {class: 'row'}, filter),
      rows.length === 0 ? h('p', {class: 'muted'}, 'No alerts yet.') :
      h('table', {id: 'activity-table'}, h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Resource', 'Watched', 'List / signal', 'Details', 'Status', ''].map(t => h('th', {}, t)))),
        h('tbody', {}, rows.map(a => h('tr', {'data-id': a.id, 'data-status': a.status, 'data-type': a.type},
          h('td', {}, fmtTime(a.created)),
          a.outage ? h('td', {}, h('span', {class: 'badge outage ' + a.outage.level}, a.outage.level === 'normal' ? 'recovered' : 'outage ' + a.outage.level))
            : h('td', {}, h('span', {class: 'badge ' + a.kind}, a.kind)),
          a.outage ? h('td', {}, h('a', {href: '/ui/entity/' + a.outage.entity_type + '/' + encodeURIComponent(a.outage.entity_code)}, a.outage.entity_name),
            h('span', {class: 'muted'}, ' ' + a.resource))
            : h('td', {class: 'mono'}, h('a', {href: '/ui/ip/' + short(a.resource)}, short(a.resource))),
          h('td', {class: 'mono'}, short(a.watched)),
          h('td', {}, a.list),
          a.outage ? h('td', {class: 'outage-detail'}, 'value ' + fmtNum(a.outage.value) + ' ' + a.outage.condition + ', historical ' + fmtNum(a.outage.historyValue))
            : h('td', {}, (a.lists || []).join(', ')),
          h('td', {}, h('span', {class: 'badge status ' + a.status}, a.status)),
          h('td', {},
            a.status !== 'acknowledged' ? h('button', {type: 'button', class: 'ack', onclick: async () => {
              try { await api('POST', `/v1/alerts/${a.id}/ack`); loadActivity(); } catch (err) { msg(el, err.message, true); }
            }}, 'Acknowledge') : '',
            ' ',
            a.outage ? '' : h('button', {type: 'button', class: 'mute', onclick: async () => {
              try { await api('POST', '/v1/alerts/mutes', a.resource); loadMutes(); loadActivity(); } catch (err) { msg(el, err.message, true); }
            }}, 'Mute')))))));
  });
}

// ---- subscriptions ---------------------------------------------------

async function subscriptionsPage() {
  const out = h('div', {id: 'subscribe-msg'});
  const typ = h('select', {id: 'sub-type', 'aria-label': 'Entity type'},
    [['country', 'Country (ISO code, e.g. US)'], ['asn', 'AS number (e.g. 3307)'], ['region', 'Region (geoname id or ISO 3166-2, e.g. GB-ENG)']].map(([v, t]) => h('option', {value: v}, t)));
  const code = h('input', {id: 'sub-code', placeholder: 'US', 'aria-label': 'Entity code', size: 16, required: true});
  const form = h('form', {id: 'subscribe', class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    msg(out, '');
    try {
      const r = await api('POST', '/v1/subscriptions', {entity_type: typ.value, entity_code: code.value.trim()});
      msg(out, 'Subscribed to ' + r.entity_name + ' (' + r.entity_type + ' ' + r.entity_code + ').');
      code.value = '';
      loadSubscriptions();
    } catch (err) { msg(out, err.message, true); }
  }}, typ, code, h('button', {class: 'primary', type: 'submit'}, 'Subscribe'));
  main().replaceChildren(
    h('h1', {}, 'Outage subscriptions'),
    h('section', {class: 'card', id: 'subscribe-card'}, h('h2', {}, 'Subscribe'),
      h('p', {class: 'muted'}, 'Outage alerts of the countries, regions and networks you subscribe to join your alert activity, digest e-mails and webhook.'),
      form, out),
    h('section', {class: 'card', id: 'subscriptions'}, h('h2', {}, 'Subscribed'), h('div', {id: 'subscriptions-body'}, 'Loading…')));
  await loadSubscriptions();
}

function loadSubscriptions() {
  return section('subscriptions-body', async (el) => {
    const r = await api('GET', '/v1/subscriptions');
    el.replaceChildren(
      h('p', {class: 'muted', id: 'subscriptions-count'}, fmtNum(r.count) + ' of ' + fmtNum(r.limit) + ' subscriptions your plan allows'),
      meter(r.count, r.limit),
      r.subscriptions.length === 0 ? h('p', {class: 'muted'}, 'No subscriptions yet.') :
      h('table', {id: 'subscriptions-table'}, h('thead', {}, h('tr', {}, ['Type', 'Code', 'Name', 'Since', ''].map(t => h('th', {}, t)))),
        h('tbody', {}, r.subscriptions.map(sub => h('tr', {'data-entity': sub.entity_type + '/' + sub.entity_code},
          h('td', {}, sub.entity_type),
          h('td', {class: 'mono'}, sub.entity_code),
          h('td', {}, h('a', {href: '/ui/entity/' + sub.entity_type + '/' + encodeURIComponent(sub.entity_code)}, sub.entity_name),
            sub.known ? '' : h('span', {class: 'muted'}, ' (no metadata)')),
          h('td', {}, fmtTime(sub.created)),
          h('td', {}, h('button', {type: 'button', class: 'unsubscribe', onclick: async () => {
            try { await api('DELETE', '/v1/subscriptions/' + sub.entity_type + '/' + encodeURIComponent(sub.entity_code)); loadSubscriptions(); } catch (err) { msg(el, err.message, true); }
          }}, 'Unsubscribe')))))));
  });
}

// ---- IP page ---------------------------------------------------------

async function ipPage(ip) {
  main().replaceChildren(h('h1', {}, ip),
    h('section', {class: 'card', id: 'current'}, h('h2', {}, 'Listed now'), h('div', {id: 'current-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'chart'}, h('h2', {}, 'Lists over time'), h('div', {id: 'chart-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'history'}, h('h2', {}, 'History'), h('div', {id: 'history-body'}, 'Loading…')));
  await section('current-body', async (el) => {
    let r = {};
    try { r = await api('GET', '/badip/' + ip); } catch (e) { if (e.status !== 404) throw e; }
    const lists = r.response || [], inside = r.inside || [];
    el.replaceChildren(lists.length === 0 ? h('p', {id: 'clean'}, inside.length ? 'The range itself is on no list.' : 'On no list.') :
      h('ul', {id: 'current-lists'}, lists.map(l => h('li', {}, String(l)))),
      inside.length === 0 ? '' : h('div', {id: 'inside'},
        h('p', {class: 'muted'}, `Listed inside the range: ${fmtNum(r.inside_total ?? inside.length)}` + (r.inside_total > inside.length ? ` (the first ${inside.length} shown)` : '')),
        h('table', {}, h('tbody', {}, inside.map(x => h('tr', {},
          h('td', {class: 'mono'}, h('a', {href: '/ui/ip/' + x.ip}, x.ip)), h('td', {}, (x.blacklists || []).join(', '))))))));
  });
  const items = [];
  await section('history-body', async (el) => {
    for (let page = 1; page <= 5; page++) {
      const r = await api('GET', `/metadata/changes/ip/${ip}?items=200&page=${page}`);
      const got = r.changes_ip || [];
      items.push(...got);
      if (got.length < 200) break;
    }
    el.replaceChildren(items.length === 0 ? h('p', {class: 'muted'}, 'No recorded change.') :
      h('ul', {class: 'timeline', id: 'timeline'}, items.map(it => h('li', {class: it.command === 'add' ? 'add' : 'del'},
        h('span', {class: 'muted'}, fmtTime(it.timestamp)), ' ',
        h('strong', {}, it.command === 'add' ? 'added to ' : 'removed from '), it.blacklist_change,
        it.resource && it.resource !== ip ? h('span', {class: 'mono'}, ` (${it.inside ? 'inside' : 'as'} ${it.resource})`) : '',
        h('div', {class: 'muted'}, 'on: ' + (it.blacklists ? it.blacklists.split(',').join(', ') : 'no list'))))));
  });
  await section('chart-body', async (el) => el.replaceChildren(chart(items)));
}

// chart draws how many lists the resource was on over time (a step line),
// from the history items (newest first, each with the lists after it).
function chart(items) {
  if (items.length === 0) return h('p', {class: 'muted'}, 'No data.');
  const pts = items.slice().reverse().filter(it => !it.inside).map(it => [it.timestamp, it.blacklists ? it.blacklists.split(',').length : 0]);
  if (pts.length === 0) return h('p', {class: 'muted'}, 'Only changes inside the range: no chart.');
  const now = Math.floor(Date.now() / 1000);
  pts.push([Math.max(now, pts[pts.length - 1][0]), pts[pts.length - 1][1]]);
  const W = 800, H = 140, L = 30, B = 20, T = 8;
  const t0 = pts[0][0], t1 = Math.max(pts[pts.length - 1][0], t0 + 1);
  const ymax = Math.max(1, ...pts.map(p => p[1]));
  const x = t => L + (W - L - 8) * (t - t0) / (t1 - t0);
  const y = v => H - B - (H - B - T) * v / ymax;
  // a step line: the value holds until the next change
  let d = `M${x(pts[0][0]).toFixed(1)},${y(pts[0][1]).toFixed(1)}`;
  for (let i = 1; i < pts.length; i++) d += `H${x(pts[i][0]).toFixed(1)}V${y(pts[i][1]).toFixed(1)}`;
  const s = svg('svg', {class: 'chart', id: 'listings-chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'number of lists over time'});
  s.append(svg('path', {class: 'area', d: d + `V${y(0)}H${x(pts[0][0])}Z`}), svg('path', {class: 'line', d}),
    svg('line', {class: 'axis', x1: L, y1: H - B, x2: W - 8, y2: H - B}), svg('line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}));
  const label = (tx, ty, text, anchor) => { const e = svg('text', {x: tx, y: ty, 'text-anchor': anchor || 'start'}); e.textContent = text; return e; };
  s.append(label(L - 4, y(ymax) + 4, String(ymax), 'end'), label(L - 4, y(0), '0', 'end'),
    label(L, H - 5, fmtTime(t0).slice(0, 10)), label(W - 8, H - 5, fmtTime(t1).slice(0, 10), 'end'));
  return s;
}

// ---- boot ------------------------------------------------------------

async function boot() {
  document.getElementById('ipform').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = document.getElementById('ipq').value.trim();
    if (q) location.href = '/ui/ip/' + q;
  });
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/ui/logout'); } finally { location.href = '/ui/'; }
  });
  let sess;
  try {
    sess = await api('GET', '/ui/session');
  } catch (e) {
    showLogin();
    return;
  }
  csrf = sess.csrf;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').textContent = sess.account.email + ' · ' + sess.account.plan;
  const p = location.pathname;
  let page = 'overview';
  try {
    if (p === '/ui/alerts') { page = 'alerts'; await alertsPage(); }
    else if (p === '/ui/subscriptions') { page = 'subscriptions'; await subscriptionsPage(); }
    else if (p.startsWith('/ui/ip/')) { page = 'ip'; await ipPage(decodeURIComponent(p.slice('/ui/ip/'.length))); }
    else if (extraPages.some(x => x.match(p))) { const x = extraPages.find(x => x.match(p)); page = x.name; await x.render(p); }
    else await overview();
  } catch (e) {
    if (!(e instanceof APIError && e.status === 401)) main().replaceChildren(h('div', {class: 'msg err'}, e.message));
  }
  for (const a of document.querySelectorAll('nav a[data-page]')) a.classList.toggle('active', a.dataset.page === page);
  document.body.dataset.ready = page;
}

document.addEventListener('DOMContentLoaded', boot);

// netwarden dashboard, outage pages: /ui/outages (current and recent outage events) and
// /ui/entity/{type}/{code} (each datasource's signal with the detector's baseline and the
// alerts marked). Uses h, svg, api, section, fmtTime, fmtNum from app.js; the charts are
// hand-written SVG. Every value from the server goes into the page as text.
'use strict';

const DAY = 86400;
const dsNames = {bgp: 'BGP (visible /24s)', 'ping-slash24': 'Active probing (responsive /24s)', 'ucsd-nt': 'Telescope (unique sources)'};

// iodaData unwraps an IODA v2 envelope.
function iodaData(r) { return (r && r.data) || []; }

// evEntity reads a summary's entity object or an event's "type/code" location.
function evEntity(e) {
  if (e.entity && typeof e.entity === 'object') return {type: e.entity.type, code: e.entity.code, name: e.entity.name || e.entity.code};
  if (typeof e.location === 'string' && e.location.includes('/')) {
    const [type, code] = e.location.split('/');
    return {type, code, name: e.location_name || code};
  }
  return {type: '', code: '', name: ''};
}

const entityHref = (en) => `/ui/entity/${encodeURIComponent(en.type)}/${encodeURIComponent(en.code)}`;

function fmtDuration(s) {
  s = Math.max(0, Math.round(s || 0));
  if (s < 3600) return Math.round(s / 60) + ' min';
  if (s < 2 * DAY) return (s / 3600).toFixed(1).replace(/\.0$/, '') + ' h';
  return (s / DAY).toFixed(1).replace(/\.0$/, '') + ' d';
}

function levelBadge(level) {
  const l = String(level || 'normal');
  return h('span', {class: 'badge level ' + l}, l);
}

// ---- outages page ----------------------------------------------------

async function outagesPage() {
  const until = Math.floor(Date.now() / 1000), from = until - 7 * DAY;
  main().replaceChildren(h('h1', {}, 'Outages'),
    h('section', {class: 'card', id: 'ongoing'}, h('h2', {}, 'Ongoing'), h('div', {id: 'ongoing-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'recent'}, h('h2', {}, 'Ended in the last 7 days'), h('div', {id: 'recent-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'most'}, h('h2', {}, 'Most affected in the last 7 days'), h('div', {id: 'most-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'find'}, h('h2', {}, 'Find a country, region or AS'), entitySearch()));
  let events = [];
  await section('ongoing-body', async (el) => {
    events = iodaData(await api('GET', `/v2/outages/events?from=${from}&until=${until}`));
    const ongoing = events.filter(e => e.ongoing).sort((a, b) => (b.score || 0) - (a.score || 0));
    el.replaceChildren(ongoing.length === 0 ? h('p', {class: 'muted', id: 'no-ongoing'}, 'No ongoing outage.') :
      h('div', {}, shown(ongoing), eventTable('ongoing-table', ongoing.slice(0, maxRows), true)));
  });
  await section('recent-body', async (el) => {
    const ended = events.filter(e => !e.ongoing).sort((a, b) => (b.start || 0) - (a.start || 0));
    el.replaceChildren(ended.length === 0 ? h('p', {class: 'muted'}, 'No outage ended in the last 7 days.') :
      h('div', {}, shown(ended), eventTable('recent-table', ended.slice(0, maxRows), false)));
  });
  await section('most-body', async (el) => {
    const sum = iodaData(await api('GET', `/v2/outages/summary?from=${from}&until=${until}&limit=10`));
    el.replaceChildren(sum.length === 0 ? h('p', {class: 'muted'}, 'No outage in the last 7 days.') :
      h('table', {id: 'summary-table'}, h('thead', {}, h('tr', {}, ['Entity', 'Type', 'Events', 'Worst', 'Score', 'By signal'].map(t => h('th', {}, t)))),
        h('tbody', {}, sum.map(x => {
          const en = evEntity(x), sc = x.scores || {};
          return h('tr', {'data-entity': en.type + '/' + en.code},
            h('td', {}, h('a', {href: entityHref(en)}, en.name)), h('td', {}, en.type), h('td', {}, fmtNum(x.event_cnt)),
            h('td', {}, levelBadge(x.level)), h('td', {}, fmtNum(Math.round(sc.overall || 0))),
            h('td', {class: 'muted'}, Object.keys(sc).filter(k => k !== 'overall').sort().map(k => `${k} ${fmtNum(Math.round(sc[k]))}`).join(' · ')));
        }))));
  });
}

// maxRows bounds each events table; shown says how many there are.
const maxRows = 100;
const shown = (list) => h('p', {class: 'muted'}, `${fmtNum(list.length)} event${list.length === 1 ? '' : 's'}` + (list.length > maxRows ? ` (the first ${maxRows} shown)` : ''));

function eventTable(id, events, ongoing) {
  return h('table', {id}, h('thead', {}, h('tr', {}, ['Entity', 'Type', 'Level', 'Start', ongoing ? 'For' : 'Duration', 'Signals', 'Score'].map(t => h('th', {}, t)))),
    h('tbody', {}, events.map(e => {
      const en = evEntity(e);
      return h('tr', {'data-entity': en.type + '/' + en.code},
        h('td', {}, h('a', {href: entityHref(en)}, en.name)),
        h('td', {}, en.type),
        h('td', {}, levelBadge(e.level)),
        h('td', {}, fmtTime(e.start)),
        h('td', {}, fmtDuration(e.duration), e.ongoing && !ongoing ? [' ', h('span', {class: 'badge level critical'}, 'ongoing')] : ''),
        h('td', {}, (e.datasources || []).join(', ')),
        h('td', {}, fmtNum(Math.round(e.score || 0))));
    })));
}

function entitySearch() {
  const out = h('div', {id: 'search-results'});
  const q = h('input', {id: 'entity-q', placeholder: 'name, country code or AS number', size: 30});
  return h('form', {id: 'entity-search', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = iodaData(await api('GET', '/v2/entities/query?limit=20&search=' + encodeURIComponent(q.value.trim())));
      out.replaceChildren(r.length === 0 ? h('p', {class: 'muted'}, 'Nothing found.') :
        h('ul', {}, r.map(e => h('li', {}, h('a', {href: entityHref(e)}, e.name), h('span', {class: 'muted'}, ` ${e.type} ${e.code}`)))));
    } catch (e) { msg(out, e.message, true); }
  }}, h('div', {class: 'row'}, q, h('button', {type: 'submit'}, 'Search')), out);
}

// ---- entity page -----------------------------------------------------

const ranges = {'24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY};

async function entityPage(type, code) {
  const sel = new URLSearchParams(location.search).get('range');
  const span = ranges[sel] || ranges['7d'];
  const until = Math.floor(Date.now() / 1000), from = until - span;
  const title = h('h1', {id: 'entity-title'}, code);
  main().replaceChildren(title,
    h('p', {class: 'row', id: 'entity-meta'}, h('span', {class: 'muted'}, type)),
    h('p', {class: 'row', id: 'range'}, Object.keys(ranges).map(k =>
      h('a', {href: `?range=${k}`, class: ranges[k] === span ? 'badge active' : 'badge'}, k))),
    h('section', {class: 'card', id: 'signals'}, h('h2', {}, 'Signals'), h('div', {id: 'signals-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'entity-events'}, h('h2', {}, 'Outage events'), h('div', {id: 'entity-events-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'entity-alerts'}, h('h2', {}, 'Alerts'), h('div', {id: 'entity-alerts-body'}, 'Loading…')),
    h('section', {class: 'card', id: 'related'}, h('h2', {}, 'Related'), h('div', {id: 'related-body'}, 'Loading…')));
  const ent = `entityType=${encodeURIComponent(type)}&entityCode=${encodeURIComponent(code)}`;
  try {
    const info = iodaData(await api('GET', '/v2/entities/query?' + ent))[0];
    if (info) {
      title.textContent = info.name;
      const a = info.attrs || {};
      document.getElementById('entity-meta').replaceChildren(h('span', {class: 'muted'}, `${info.type} ${info.code}`),
        a.continent_name ? h('span', {}, a.continent_name) : '', a.org ? h('span', {}, a.org) : '',
        a.note ? h('span', {class: 'muted'}, a.note) : '');
    }
  } catch (e) { /* the name is a nicety; the signals say what is wrong */ }
  let alerts = [];
  await section('entity-alerts-body', async (el) => {
    alerts = iodaData(await api('GET', `/v2/outages/alerts?${ent}&from=${from}&until=${until}`)).sort((a, b) => a.time - b.time);
    el.replaceChildren(alerts.length === 0 ? h('p', {class: 'muted'}, 'No alert in this period.') : h('div', {},
      alerts.length > 2 * maxRows ? h('p', {class: 'muted'}, `${fmtNum(alerts.length)} alerts (the latest ${2 * maxRows} shown)`) : '',
      h('table', {id: 'alerts-table'}, h('thead', {}, h('tr', {}, ['Time', 'Signal', 'Level', 'Condition', 'Value', 'Baseline'].map(t => h('th', {}, t)))),
        h('tbody', {}, alerts.slice().reverse().slice(0, 2 * maxRows).map(a => h('tr', {},
          h('td', {}, fmtTime(a.time)), h('td', {}, a.datasource), h('td', {}, levelBadge(a.level)),
          h('td', {class: 'mono'}, a.condition || ''), h('td', {}, fmtNum(round2(a.value))), h('td', {}, fmtNum(round2(a.historyValue)))))))));
  });
  await section('signals-body', async (el) => {
    const groups = iodaData(await api('GET', `/v2/signals/raw/${encodeURIComponent(type)}/${encodeURIComponent(code)}?from=${from}&until=${until}`));
    const sigs = [].concat(...groups.map(g => Array.isArray(g) ? g : [g]));
    // The charts share one time axis, starting where the first signal has data.
    let first = until;
    for (const s of sigs) {
      const i = (s.values || []).findIndex(v => typeof v === 'number');
      if (i >= 0) first = Math.min(first, s.from + i * s.step);
    }
    const x0 = first < until ? Math.max(from, first) : from;
    el.replaceChildren(sigs.length === 0 ? h('p', {class: 'muted', id: 'no-signals'}, 'No signal recorded for this entity in this period.') :
      h('div', {}, legend(), sigs.map(s => h('figure', {class: 'signal', 'data-datasource': s.datasource},
        h('figcaption', {}, dsNames[s.datasource] || s.datasource),
        signalChart(s, alerts.filter(a => a.datasource === s.datasource), x0, until)))));
  });
  await section('entity-events-body', async (el) => {
    const evs = iodaData(await api('GET', `/v2/outages/events?${ent}&from=${from}&until=${until}`)).sort((a, b) => b.start - a.start);
    el.replaceChildren(evs.length === 0 ? h('p', {class: 'muted'}, 'No outage event in this period.') : eventTable('entity-events-table', evs, false));
  });
  await section('related-body', async (el) => {
    const rel = iodaData(await api('GET', `/v2/entities/query?relatedTo=${encodeURIComponent(type + '/' + code)}&limit=12`));
    el.replaceChildren(rel.length === 0 ? h('p', {class: 'muted'}, 'Nothing related is known.') :
      h('ul', {class: 'related'}, rel.map(e => h('li', {}, h('a', {href: entityHref(e)}, e.name), h('span', {class: 'muted'}, ` ${e.type}`),
        e.attrs && e.attrs.ip_count ? h('span', {class: 'muted'}, ` · ${fmtNum(Number(e.attrs.ip_count))} IPv4 addresses`) : ''))));
  });
}

const round2 = (v) => typeof v === 'number' ? Math.round(v * 100) / 100 : v;

function legend() {
  const item = (cls, text) => h('span', {class: 'legend-item'}, h('span', {class: 'swatch ' + cls}), text);
  return h('div', {class: 'legend'}, item('value', 'signal'), item('baseline', 'baseline (moving median)'),
    item('warning', 'warning'), item('critical', 'critical'));
}

// levelSpans turns a signal's per-bin levels (the detector's state after each bin) into
// periods out of normal. A bin without a verdict (null: no point) leaves the state as it
// was, so a missing bin does not cut a period; the last period ends with the last verdict.
function levelSpans(s) {
  const out = [];
  let open = null, last = 0;
  (s.levels || []).forEach((l, i) => {
    if (!l) return;
    const t = s.from + i * s.step;
    last = t + s.step;
    if (open && l !== open.level) { open.end = t; out.push(open); open = null; }
    if (!open && l !== 'normal') open = {start: t, level: l};
  });
  if (open) { open.end = last; out.push(open); }
  return out;
}

// spans turns a datasource's alerts (time order) into periods out of normal.
function spans(alerts, until) {
  const out = [];
  let open = null;
  for (const a of alerts) {
    if (open) { open.end = a.time; out.push(open); open = null; }
    if (a.level && a.level !== 'normal') open = {start: a.time, level: a.level};
  }
  if (open) { open.end = until; out.push(open); }
  return out;
}

// signalChart draws one signal: the value as a line (gaps where no bin was recorded), the
// baseline dashed, periods out of normal shaded by level (from the per-bin levels, else from
// the alerts), and a mark at every alert.
function signalChart(s, alerts, from, until) {
  const W = 1000, H = 190, L = 56, R = 10, T = 14, B = 22;
  const step = s.step || 300;
  const t0 = s.from ?? from;
  const vals = s.values || [], base = s.baseline || [];
  const ymax = Math.max(1, ...vals.filter(v => typeof v === 'number'), ...base.filter(v => typeof v === 'number')) * 1.08;
  const x = t => L + (W - L - R) * (t - from) / Math.max(1, until - from);
  const y = v => H - B - (H - B - T) * v / ymax;
  // A bin between two missing ones is a zero-length segment: a dot (round caps), not nothing.
  const path = (series) => {
    let d = '', run = 0;
    const end = () => { if (run === 1) d += 'h0'; run = 0; };
    series.forEach((v, i) => {
      if (typeof v !== 'number') { end(); return; }
      const px = x(t0 + i * step + step / 2).toFixed(1), py = y(v).toFixed(1);
      d += (run ? 'L' : 'M') + px + ',' + py;
      run++;
    });
    end();
    return d;
  };
  const g = svg('svg', {class: 'chart signal', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${s.datasource} signal with baseline`});
  const periods = Array.isArray(s.levels) && s.levels.some(l => l) ? levelSpans(s) : spans(alerts, until);
  for (const sp of periods) {
    const x0 = Math.max(L, x(sp.start)), x1 = Math.min(W - R, x(sp.end));
    if (x1 > x0) g.append(svg('rect', {class: 'span ' + sp.level, x: x0.toFixed(1), y: T, width: (x1 - x0).toFixed(1), height: H - B - T}));
  }
  // grid and labels
  const label = (tx, ty, text, anchor) => { const e = svg('text', {x: tx, y: ty, 'text-anchor': anchor || 'start'}); e.textContent = text; return e; };
  for (const f of [0, 0.5, 1]) {
    const v = ymax / 1.08 * f;
    g.append(svg('line', {class: 'grid', x1: L, x2: W - R, y1: y(v).toFixed(1), y2: y(v).toFixed(1)}),
      label(L - 6, y(v) + 3, fmtNum(Math.round(v)), 'end'));
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const t = from + (until - from) * i / ticks;
    const txt = until - from <= DAY ? fmtTime(t).slice(11, 16) : until - from <= 4 * DAY ? fmtTime(t).slice(5, 16) : fmtTime(t).slice(5, 10);
    g.append(label(x(t), H - 6, txt, i === 0 ? 'start' : i === ticks ? 'end' : 'middle'));
  }
  g.append(svg('path', {class: 'baseline', d: path(base)}), svg('path', {class: 'value', d: path(vals)}));
  for (const a of alerts) {
    const ax = x(a.time);
    if (ax < L || ax > W - R) continue;
    const m = svg('g', {class: 'alert-mark ' + (a.level || 'normal')});
    const title = svg('title', {});
    title.textContent = `${fmtTime(a.time)} ${a.level}: ${a.condition || ''} (value ${round2(a.value)}, baseline ${round2(a.historyValue)})`;
    m.append(title, svg('line', {x1: ax.toFixed(1), x2: ax.toFixed(1), y1: T, y2: H - B}),
      svg('path', {d: `M${(ax - 5).toFixed(1)},${T - 10}L${(ax + 5).toFixed(1)},${T - 10}L${ax.toFixed(1)},${T}Z`}));
    g.append(m);
  }
  g.append(svg('line', {class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B}));
  return g;
}

extraPages.push(
  {name: 'outages', match: (p) => p === '/ui/outages', render: () => outagesPage()},
  {name: 'entity', match: (p) => /^\/ui\/entity\/[^/]+\/[^/]+$/.test(p), render: (p) => {
    const [, , , type, code] = p.split('/');
    return entityPage(decodeURIComponent(type), decodeURIComponent(code));
  }});

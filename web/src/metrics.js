// @ts-check
// Why this file exists: the live view of the cluster. Polls /api/metrics every 2 s and
// draws throughput, latency, success rate, energy and view changes with uPlot (served by
// the node, no CDN), plus the status of each replica. A node without metrics gets a
// clear "metrics unavailable" message instead of broken charts.

import { get } from './api.js';
import { h, put, card, badge, button, notice, loading, table, pageTitle, fmtNumber } from './ui.js';

const POLL_MS = 2000;

const CHARTS = [
  {
    id: 'chart-throughput', title: 'Throughput', unit: 'records/s',
    series: [{ label: 'Committed records/s', key: 'committed_records_per_s', stroke: '#0f766e', fill: 'rgba(15,118,110,0.08)' }],
  },
  {
    id: 'chart-latency', title: 'Commit latency', unit: 'ms',
    series: [
      { label: 'p50 (ms)', key: 'p50_ms', stroke: '#0369a1' },
      { label: 'p99 (ms)', key: 'p99_ms', stroke: '#b45309' },
    ],
  },
  {
    id: 'chart-success', title: 'Success rate', unit: '%', range: (u, min) => [Math.min(90, Math.floor(min ?? 90)), 100],
    series: [{ label: 'Success (%)', key: 'success_rate', stroke: '#15803d', map: pct }],
  },
  {
    id: 'chart-energy', title: 'Energy', unit: 'J',
    series: [
      { label: 'Energy (J)', key: 'energy_joules', stroke: '#7c3aed' },
      { label: 'Records per joule', key: 'records_per_joule', stroke: '#be123c', scale: 'rpj' },
    ],
  },
  {
    id: 'chart-views', title: 'View changes', unit: 'count', integer: true,
    series: [{ label: 'View changes', key: 'view_changes', stroke: '#334155', stepped: true }],
  },
];

/** A fraction (0..1) as a percentage; values above 1 are taken as percentages already. */
function pct(v) {
  if (v === null || v === undefined) return null;
  return v <= 1 ? v * 100 : v;
}

export function render(main) {
  let timer = 0;
  let stopped = false;
  const charts = new Map();
  const status = notice();
  const summary = h('div', { id: 'metrics-summary', class: 'grid grid-cols-2 gap-4 sm:grid-cols-3 xl:grid-cols-5' });
  const peersBox = h('div', { id: 'peers' }, loading());
  const chartsGrid = h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-2', id: 'charts' });
  const body = h('div', { id: 'metrics-body', class: 'space-y-6' }, loading('Loading metrics…'));
  const subtitle = h('p', { class: 'mt-1 text-slate-600' }, 'Live figures from this replica, refreshed every 2 seconds.');

  main.append(pageTitle('Cluster metrics', subtitle), status.el, h('div', { class: 'mt-4' }, body));

  function layout() {
    put(body,
      h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
        h('div', { class: 'lg:col-span-2' }, card('Now', summary)),
        card('Replicas', peersBox)),
      chartsGrid);
    put(chartsGrid, CHARTS.map((c) => {
      const box = h('div', { id: c.id, class: 'min-h-[220px] w-full', role: 'img', 'aria-label': `${c.title} over time` });
      return card(c.title, box);
    }));
  }

  function unavailable(text) {
    put(body, card('Metrics unavailable',
      h('p', { id: 'metrics-unavailable', class: 'text-slate-700' }, text),
      h('div', { class: 'mt-4' }, button('Try again', { variant: 'secondary', onClick: () => { put(body, loading('Loading metrics…')); poll(); } }))));
  }

  function stat(label, value) {
    return h('div', { class: 'rounded-md bg-slate-50 p-3 ring-1 ring-inset ring-slate-200' },
      h('p', { class: 'text-xs font-medium uppercase tracking-wide text-slate-600' }, label),
      h('p', { class: 'mt-1 text-xl font-semibold text-slate-900' }, value));
  }

  function draw(m) {
    if (!main.querySelector('#charts')) {
      layout();
    }
    subtitle.textContent = `Live figures from replica ${m.replica}, refreshed every 2 seconds.`;
    const s = m.series || [];
    const last = s[s.length - 1] || {};
    put(summary,
      stat('Throughput', `${fmtNumber(last.committed_records_per_s, 1)} rec/s`),
      stat('Latency p50', `${fmtNumber(last.p50_ms, 1)} ms`),
      stat('Latency p99', `${fmtNumber(last.p99_ms, 1)} ms`),
      stat('Success rate', `${fmtNumber(pct(last.success_rate), 1)} %`),
      stat('Records per joule', fmtNumber(last.records_per_joule, 2)));

    const peers = m.peers || [];
    put(peersBox, peers.length
      ? table('Replica status', [
        ['Replica', (p) => h('span', { class: 'font-medium' }, `R${p.replica}${p.replica === m.replica ? ' (this node)' : ''}`)],
        ['Status', (p) => (p.up ? badge('Up', 'green') : badge('Down', 'red'))],
        ['Height', (p) => (p.height === null || p.height === undefined ? '—' : String(p.height))],
        ['View', (p) => (p.view === null || p.view === undefined ? '—' : String(p.view))],
      ], peers)
      : h('p', { class: 'text-sm text-slate-600' }, 'No replica status reported.'));

    const xs = s.map((p) => p.t_ms / 1000);
    for (const c of CHARTS) {
      const data = [xs, ...c.series.map((ser) => s.map((p) => {
        const v = p[ser.key];
        return ser.map ? ser.map(v) : (v === undefined ? null : v);
      }))];
      const box = main.querySelector(`#${c.id}`);
      if (!box) continue;
      let u = charts.get(c.id);
      if (!u) {
        if (typeof window.uPlot !== 'function') {
          put(box, h('p', { class: 'text-sm text-slate-600' }, 'The chart library did not load.'));
          continue;
        }
        u = new window.uPlot(chartOptions(c, box.clientWidth || 480), data, box);
        charts.set(c.id, u);
      } else {
        u.setData(data);
      }
    }
  }

  function chartOptions(c, width) {
    const axes = [
      { stroke: '#334155', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } },
      { stroke: '#334155', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, label: c.unit, size: 56 },
    ];
    if (c.integer) axes[1].incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
    const scales = { x: { time: true } };
    if (c.range) scales.y = { range: c.range };
    if (c.series.some((s) => s.scale)) {
      axes.push({ scale: 'rpj', side: 1, stroke: '#be123c', grid: { show: false }, label: 'rec/J', size: 56 });
      scales.rpj = { auto: true };
    }
    return {
      width,
      height: 200,
      scales,
      axes,
      legend: { live: false },
      series: [
        {},
        ...c.series.map((s) => {
          // uPlot takes a key set to undefined as a value: only set what is given.
          const o = { label: s.label, stroke: s.stroke, width: 2 };
          if (s.fill) o.fill = s.fill;
          if (s.scale) o.scale = s.scale;
          if (s.stepped && window.uPlot.paths && window.uPlot.paths.stepped) o.paths = window.uPlot.paths.stepped({ align: 1 });
          return o;
        }),
      ],
    };
  }

  function resize() {
    for (const [id, u] of charts) {
      const box = main.querySelector(`#${id}`);
      if (box && box.clientWidth) u.setSize({ width: box.clientWidth, height: 200 });
    }
  }
  window.addEventListener('resize', resize);

  async function poll() {
    clearTimeout(timer);
    try {
      const m = await get('/api/metrics');
      if (stopped) return;
      status.clear();
      draw(m);
    } catch (e) {
      if (stopped || e.expired) return;
      if ([403, 404, 405, 501].includes(e.status)) {
        for (const u of charts.values()) u.destroy();
        charts.clear();
        unavailable(e.status === 403
          ? `Metrics unavailable: ${e.message}`
          : 'This node does not publish metrics yet, so there is nothing to chart. The rest of MedChain works as usual.');
        return; // no more polling until "Try again"
      }
      if (!charts.size) {
        unavailable(`Metrics unavailable: ${e.message}`);
      } else {
        status.show('warning', `Could not refresh the metrics: ${e.message}. Retrying…`);
      }
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener('resize', resize);
    for (const u of charts.values()) u.destroy();
    charts.clear();
  };
}

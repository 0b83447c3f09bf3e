// @ts-check
// Why this file exists: the live view of the cluster. Polls /api/metrics every 2 s and
// draws throughput, latency, success rate, energy and view changes with uPlot (served by
// the node, no CDN), plus the status of each replica. A node without metrics gets a
// clear "metrics unavailable" message instead of broken charts.

import { ApiError, get } from './api.js';
import { h, put, card, badge, button, notice, loading, table, pageTitle, fmtNumber } from './ui.js';

/** @typedef {import('uplot')} UPlot */
/** @typedef {import('./api.js').MetricsPoint} MetricsPoint */
/** @typedef {import('./api.js').MetricsSnapshot} MetricsSnapshot */

/**
 * One line of a chart: a figure of the time series.
 * @typedef {object} ChartSeries
 * @property {string} label
 * @property {Exclude<keyof MetricsPoint, 't_ms'>} key
 * @property {string} stroke
 * @property {string} [fill]
 * @property {string} [scale] a second y scale (drawn on the right)
 * @property {(v: number | null) => number | null} [map]
 * @property {boolean} [stepped]
 */

/**
 * @typedef {object} Chart
 * @property {string} id the chart box's element id
 * @property {string} title
 * @property {string} unit
 * @property {ChartSeries[]} series
 * @property {import('uplot').Range.Function} [range] of the y scale
 * @property {boolean} [integer] whole numbers only on the y axis
 */

const POLL_MS = 2000;

/** @type {Chart[]} */
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
    id: 'chart-success', title: 'Success rate', unit: '%', range: (_u, min) => [Math.min(90, Math.floor(min ?? 90)), 100],
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

/**
 * A fraction (0..1) as a percentage; values above 1 are taken as percentages already.
 * @param {number | null | undefined} v
 */
function pct(v) {
  if (v === null || v === undefined) return null;
  return v <= 1 ? v * 100 : v;
}

/**
 * The parts of the page that each poll redraws, and the charts drawn so far (by box id).
 * @typedef {object} MetricsView
 * @property {HTMLElement} main
 * @property {HTMLElement} body
 * @property {HTMLElement} summary
 * @property {HTMLElement} peersBox
 * @property {HTMLElement} chartsGrid
 * @property {HTMLElement} subtitle
 * @property {Map<string, UPlot>} charts
 */

/** @param {HTMLElement} main */
export function render(main) {
  let timer = 0;
  let stopped = false;
  const status = notice();
  /** @type {MetricsView} */
  const view = {
    main,
    body: h('div', { id: 'metrics-body', class: 'space-y-6' }, loading('Loading metrics…')),
    summary: h('div', { id: 'metrics-summary', class: 'grid grid-cols-2 gap-4 sm:grid-cols-3 xl:grid-cols-5' }),
    peersBox: h('div', { id: 'peers' }, loading()),
    chartsGrid: h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-2', id: 'charts' }),
    subtitle: h('p', { class: 'mt-1 text-slate-600' }, 'Live figures from this replica, refreshed every 2 seconds.'),
    charts: new Map(),
  };
  main.append(pageTitle('Cluster metrics', view.subtitle), status.el, h('div', { class: 'mt-4' }, view.body));
  const destroyCharts = () => {
    for (const u of view.charts.values()) u.destroy();
    view.charts.clear();
  };
  /** @param {string} text */
  const unavailable = (text) => put(view.body, card('Metrics unavailable',
    h('p', { id: 'metrics-unavailable', class: 'text-slate-700' }, text),
    h('div', { class: 'mt-4' }, button('Try again', { variant: 'secondary', onClick: () => { put(view.body, loading('Loading metrics…')); poll(); } }))));

  async function poll() {
    clearTimeout(timer);
    try {
      /** @type {MetricsSnapshot} */
      const m = await get('/api/metrics');
      if (stopped) return;
      status.clear();
      draw(view, m);
    } catch (e) {
      if (stopped || (e instanceof ApiError && e.expired)) return;
      const message = e instanceof Error ? e.message : String(e);
      const httpStatus = e instanceof ApiError ? e.status : 0;
      if ([403, 404, 405, 501].includes(httpStatus)) {
        destroyCharts();
        unavailable(httpStatus === 403
          ? `Metrics unavailable: ${message}`
          : 'This node does not publish metrics yet, so there is nothing to chart. The rest of MedChain works as usual.');
        return; // no more polling until "Try again"
      }
      if (!view.charts.size) unavailable(`Metrics unavailable: ${message}`);
      else status.show('warning', `Could not refresh the metrics: ${message}. Retrying…`);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  const resize = () => resizeCharts(view);
  window.addEventListener('resize', resize);
  poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener('resize', resize);
    destroyCharts();
  };
}

/**
 * The page's parts once there are metrics to show: figures now, replicas, a box per chart.
 * @param {MetricsView} view
 */
function layout(view) {
  put(view.body,
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      h('div', { class: 'lg:col-span-2' }, card('Now', view.summary)),
      card('Replicas', view.peersBox)),
    view.chartsGrid);
  put(view.chartsGrid, CHARTS.map((c) => {
    const box = h('div', { id: c.id, class: 'min-h-[220px] w-full', role: 'img', 'aria-label': `${c.title} over time` });
    return card(c.title, box);
  }));
}

/**
 * Draw one answer of /api/metrics: the latest figures, the replicas and the charts.
 * @param {MetricsView} view
 * @param {MetricsSnapshot} m
 */
function draw(view, m) {
  if (!view.main.querySelector('#charts')) layout(view);
  view.subtitle.textContent = `Live figures from replica ${m.replica}, refreshed every 2 seconds.`;
  const s = m.series || [];
  /** @type {Partial<MetricsPoint>} */
  const last = s[s.length - 1] || {};
  put(view.summary,
    stat('Throughput', `${fmtNumber(last.committed_records_per_s, 1)} rec/s`),
    stat('Latency p50', `${fmtNumber(last.p50_ms, 1)} ms`),
    stat('Latency p99', `${fmtNumber(last.p99_ms, 1)} ms`),
    stat('Success rate', `${fmtNumber(pct(last.success_rate), 1)} %`),
    stat('Records per joule', fmtNumber(last.records_per_joule, 2)));
  const peers = m.peers || [];
  put(view.peersBox, peers.length
    ? table('Replica status', [
      ['Replica', (p) => h('span', { class: 'font-medium' }, `R${p.replica}${p.replica === m.replica ? ' (this node)' : ''}`)],
      ['Status', (p) => (p.up ? badge('Up', 'green') : badge('Down', 'red'))],
      ['Height', (p) => (p.height === null || p.height === undefined ? '—' : String(p.height))],
      ['View', (p) => (p.view === null || p.view === undefined ? '—' : String(p.view))],
    ], peers)
    : h('p', { class: 'text-sm text-slate-600' }, 'No replica status reported.'));
  drawCharts(view, s);
}

/**
 * @param {string} label
 * @param {string} value
 */
function stat(label, value) {
  return h('div', { class: 'rounded-md bg-slate-50 p-3 ring-1 ring-inset ring-slate-200' },
    h('p', { class: 'text-xs font-medium uppercase tracking-wide text-slate-600' }, label),
    h('p', { class: 'mt-1 text-xl font-semibold text-slate-900' }, value));
}

/**
 * Create each chart on the first answer, then only give it the new data.
 * @param {MetricsView} view
 * @param {MetricsPoint[]} s
 */
function drawCharts(view, s) {
  const xs = s.map((p) => p.t_ms / 1000);
  for (const c of CHARTS) {
    /** @type {import('uplot').AlignedData} */
    const data = [xs, ...c.series.map((ser) => s.map((p) => {
      const v = p[ser.key];
      return ser.map ? ser.map(v) : (v === undefined ? null : v);
    }))];
    const box = view.main.querySelector(`#${c.id}`);
    if (!(box instanceof HTMLElement)) continue;
    const u = view.charts.get(c.id);
    if (u) {
      u.setData(data);
    } else if (typeof window.uPlot !== 'function') {
      put(box, h('p', { class: 'text-sm text-slate-600' }, 'The chart library did not load.'));
    } else {
      view.charts.set(c.id, new window.uPlot(chartOptions(c, box.clientWidth || 480, window.uPlot), data, box));
    }
  }
}

/**
 * @param {Chart} c
 * @param {number} width
 * @param {typeof import('uplot')} uPlot the library, loaded by index.html's script tag
 * @returns {import('uplot').Options}
 */
function chartOptions(c, width, uPlot) {
  /** @type {import('uplot').Axis[]} */
  const axes = [
    { stroke: '#334155', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } },
    { stroke: '#334155', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, label: c.unit, size: 56 },
  ];
  if (c.integer) axes[1].incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  /** @type {import('uplot').Scales} */
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
        /** @type {import('uplot').Series} */
        const o = { label: s.label, stroke: s.stroke, width: 2 };
        if (s.fill) o.fill = s.fill;
        if (s.scale) o.scale = s.scale;
        if (s.stepped && uPlot.paths && uPlot.paths.stepped) o.paths = uPlot.paths.stepped({ align: 1 });
        return o;
      }),
    ],
  };
}

/** @param {MetricsView} view */
function resizeCharts(view) {
  for (const [id, u] of view.charts) {
    const box = view.main.querySelector(`#${id}`);
    if (box && box.clientWidth) u.setSize({ width: box.clientWidth, height: 200 });
  }
}

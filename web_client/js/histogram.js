// Histograms of the area ROIs compared in one chart (R35), in the side panel: one curve per
// circle, rectangle or ellipse mark, in the mark's colour, over a common value axis in the ROIs'
// units (HU, SUVbw; ROIs of different units get a chart each). Every ROI is measured again with
// POST /api/measure on the view and shape it was drawn with, with the same `bins` and `range`
// (all the ROIs' min…max, rounded outward to round numbers), so bins line up across curves; y is
// the fraction of the ROI's pixels in a bin, so ROIs of different size compare. What is drawn is
// mirrored in `window.voxcast.histograms` (per mark id: edges, counts, range, …).
import { vox, on, recordError, setPressed } from './app.js';
import { api } from './api.js';
import { annotations, AREA_KINDS } from './annotations.js';
import { svgEl, fmtNum } from './viewport.js';
import { t, defineStrings } from './i18n.js';

defineStrings({
  zh: { histogram: '直方图', histTitle: 'ROI直方图', histValue: '值', histFraction: '像素占比 (%)',
    histEmpty: '画出圆形、矩形或椭圆ROI后，此处比较它们的直方图。' },
  en: { histogram: 'Histogram', histTitle: 'ROI histograms', histValue: 'Value', histFraction: 'Pixels (%)',
    histEmpty: 'Draw circle, rectangle or ellipse ROIs to compare their histograms here.' },
});

const BINS_TARGET = 64;
const KIND_LABEL = { circle: 'toolCircle', rectangle: 'toolRect', ellipse: 'toolEllipse' };
const CHART = { w: 340, h: 250, left: 46, right: 18, top: 10, bottom: 38 };

const $ = (sel) => document.querySelector(sel);
vox.histograms = {};

// ---- the common axis ---------------------------------------------------------------------

/** 1, 2 or 5 × 10^k: the round step nearest above `raw` (> 0). */
export function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

const decimals = (step) => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
const roundTo = (v, step) => +v.toFixed(decimals(step) + 2);

/**
 * The value axis of ROIs whose values span [min, max]: `range` [lo, hi] rounded outward to
 * multiples of a round unit (a twentieth to an eighth of the span); `bins`, a multiple of the
 * units in it (about 64), so bin edges fall on round values; `step`, a round tick spacing
 * (three to seven ticks).
 */
export function commonAxis(min, max) {
  const span = max > min ? max - min : Math.max(Math.abs(max), 1);
  const unit = niceStep(span / 20);
  const lo = roundTo(Math.floor(min / unit) * unit, unit);
  let hi = roundTo(Math.ceil(max / unit) * unit, unit);
  if (!(hi > lo)) hi = roundTo(lo + unit, unit);
  const units = Math.round((hi - lo) / unit);
  return { range: [lo, hi], step: niceStep((hi - lo) / 6), bins: units * Math.max(1, Math.round(BINS_TARGET / units)) };
}

// ---- measuring ---------------------------------------------------------------------------

let generation = 0;
const cache = new Map();  // `${id}|lo|hi|bins` → the ROI's result with that histogram

function areaMarks() {
  return annotations.filter((m) => AREA_KINDS.has(m.kind) && m.result && m.result.count > 0);
}

/** The ROIs grouped by units, each group with its common axis: [{units, axis, marks}]. */
function groups() {
  const byUnits = new Map();
  for (const m of areaMarks()) {
    const key = m.units || '';
    if (!byUnits.has(key)) byUnits.set(key, []);
    byUnits.get(key).push(m);
  }
  return [...byUnits].map(([units, marks]) => ({
    units, marks,
    axis: commonAxis(Math.min(...marks.map((m) => m.result.min)), Math.max(...marks.map((m) => m.result.max))),
  }));
}

/** Measure every ROI of `list` with `axis`: one POST /api/measure per view they share. */
async function measureAll(list) {
  const todo = new Map();  // JSON view → [{mark, key, shape}]
  for (const { marks, axis } of list) {
    for (const m of marks) {
      const key = `${m.id}|${axis.range.join('|')}|${axis.bins}`;
      if (cache.has(key)) continue;
      const view = JSON.stringify(m.view);
      if (!todo.has(view)) todo.set(view, []);
      todo.get(view).push({ key, shape: { ...m.shape, bins: axis.bins, range: axis.range } });
    }
  }
  await Promise.all([...todo].map(async ([view, items]) => {
    try {
      const resp = await api('/api/measure', { method: 'POST', body: { view: JSON.parse(view), shapes: items.map((x) => x.shape) } });
      items.forEach((x, i) => cache.set(x.key, { ...resp.results[i], units: resp.units }));
    } catch (err) {
      recordError({ code: 'histogram', message: err.message });
    }
  }));
}

async function update() {
  const gen = ++generation;
  const section = $('[data-testid="histogram-panel"]');
  if (!section || section.hidden) {  // nothing drawn: forget the curves of removed marks only
    vox.histograms = Object.fromEntries(Object.entries(vox.histograms).filter(([id]) => annotations.some((m) => String(m.id) === id)));
    return;
  }
  const list = groups();
  section.dataset.state = 'loading';
  await measureAll(list);
  if (gen !== generation) return;  // newer marks came in meanwhile: that update draws
  const keep = new Set();
  const drawn = {};
  const charts = list.map(({ units, marks, axis }) => {
    const curves = [];
    for (const m of marks) {
      const key = `${m.id}|${axis.range.join('|')}|${axis.bins}`;
      const r = cache.get(key);
      if (!r?.histogram) continue;
      keep.add(key);
      const h = r.histogram;
      drawn[m.id] = { edges: h.edges, counts: h.counts, below: h.below, above: h.above, range: axis.range, bins: axis.bins,
        count: r.count, units, kind: m.kind, colour: m.colour, mean: r.mean, std: r.std, viewport: m.vpId };
      curves.push({ mark: m, result: r });
    }
    return { units, axis, curves };
  });
  for (const key of [...cache.keys()]) if (!keep.has(key)) cache.delete(key);
  vox.histograms = drawn;
  lastCharts = charts;
  draw();
  section.dataset.state = 'ready';
  section.dataset.generation = String(gen);
}

// ---- drawing -----------------------------------------------------------------------------

let lastCharts = [];

function chart({ units, axis, curves }) {
  const { w, h, left, right, top, bottom } = CHART;
  const pw = w - left - right, ph = h - top - bottom;
  const [lo, hi] = axis.range;
  const fractions = curves.map(({ result }) => result.histogram.counts.map((c) => (100 * c) / result.count));
  const yMax = Math.max(...fractions.flat(), 1e-9);
  const yStep = niceStep(yMax / 4);
  const yTop = Math.ceil(yMax / yStep - 1e-9) * yStep;
  const X = (v) => left + ((v - lo) / (hi - lo)) * pw;
  const Y = (f) => top + ph - (f / yTop) * ph;

  const svg = svgEl('svg', { class: 'hist-chart', viewBox: `0 0 ${w} ${h}`, 'data-testid': 'histogram-chart', 'data-units': units });
  const axes = svgEl('g', { class: 'hist-axes' });
  axes.append(svgEl('line', { x1: left, y1: top + ph, x2: left + pw, y2: top + ph }), svgEl('line', { x1: left, y1: top, x2: left, y2: top + ph }));
  const text = (x, y, s, attrs = {}) => { const el = svgEl('text', { x, y, ...attrs }); el.textContent = s; axes.append(el); return el; };
  const first = Math.ceil(lo / axis.step - 1e-9), last = Math.floor(hi / axis.step + 1e-9);
  for (let k = first; k <= last; k += 1) {
    const v = k * axis.step, x = X(v);
    axes.append(svgEl('line', { x1: x, y1: top + ph, x2: x, y2: top + ph + 4 }));
    if (x > left + 1) axes.append(svgEl('line', { x1: x, y1: top, x2: x, y2: top + ph, class: 'grid' }));
    text(x, top + ph + 15, (k * axis.step).toFixed(decimals(axis.step)).replace(/^-(0\.?0*)$/, '$1'), { 'text-anchor': 'middle', class: 'tick' });
  }
  for (let k = 0; k * yStep <= yTop + 1e-9; k += 1) {
    const f = k * yStep, y = Y(f);
    axes.append(svgEl('line', { x1: left - 4, y1: y, x2: left, y2: y }));
    if (k > 0) axes.append(svgEl('line', { x1: left, y1: y, x2: left + pw, y2: y, class: 'grid' }));
    text(left - 6, y + 4, f.toFixed(decimals(yStep)), { 'text-anchor': 'end', class: 'tick' });
  }
  text(left + pw / 2, h - 4, `${t('histValue')}${units ? ` (${units})` : ''}`, { 'text-anchor': 'middle', class: 'axis-label', 'data-axis': 'x' });
  text(12, top + ph / 2, t('histFraction'), { 'text-anchor': 'middle', class: 'axis-label', 'data-axis': 'y', transform: `rotate(-90 12 ${top + ph / 2})` });
  svg.append(axes);
  curves.forEach(({ mark, result }, i) => {
    const e = result.histogram.edges;
    const pts = fractions[i].map((f, j) => `${X((e[j] + e[j + 1]) / 2).toFixed(1)},${Y(f).toFixed(1)}`);
    svg.append(svgEl('polyline', { points: pts.join(' '), class: 'hist-curve', stroke: mark.colour, 'data-mark-id': mark.id }));
  });

  const legend = document.createElement('ul');
  legend.className = 'hist-legend';
  for (const { mark, result } of curves) {
    const li = document.createElement('li');
    li.dataset.markId = mark.id;
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = mark.colour;
    const name = document.createElement('b');
    name.textContent = `#${mark.id} ${t(KIND_LABEL[mark.kind])}`;
    const stats = document.createElement('span');
    stats.textContent = `${fmtNum(result.mean)} ± ${fmtNum(result.std)}${units ? ` ${units}` : ''}`;
    li.append(sw, name, stats);
    legend.append(li);
  }
  const fig = document.createElement('figure');
  fig.className = 'hist-figure';
  fig.append(svg, legend);
  return fig;
}

function draw() {
  const body = $('[data-testid="histogram-panel"] .hist-body');
  if (!body) return;
  const charts = lastCharts.filter((c) => c.curves.length);
  if (!charts.length) {
    const p = document.createElement('p');
    p.className = 'muted hist-empty';
    p.textContent = t('histEmpty');
    body.replaceChildren(p);
    return;
  }
  body.replaceChildren(...charts.map(chart));
}

// ---- the panel ---------------------------------------------------------------------------

function buildPanel() {
  const side = $('#side-panel');
  if (!side) return null;
  const section = document.createElement('section');
  section.className = 'histogram-panel';
  section.setAttribute('data-testid', 'histogram-panel');
  section.hidden = true;
  const title = document.createElement('h3');
  title.dataset.i18n = 'histTitle';
  title.textContent = t('histTitle');
  const body = document.createElement('div');
  body.className = 'hist-body';
  section.append(title, body);
  side.append(section);
  return section;
}

function setOpen(open) {
  const section = $('[data-testid="histogram-panel"]') || buildPanel();
  const button = $('[data-testid="histogram-toggle"]');
  if (!section) return;
  section.hidden = !open;
  const side = $('#side-panel');
  side.hidden = ![...side.children].some((c) => !c.hidden);
  setPressed(button, open);
  vox.histogramOpen = open;
  if (open) update();
}

buildPanel();
$('[data-testid="histogram-toggle"]')?.addEventListener('click', () => setOpen(!!$('[data-testid="histogram-panel"]')?.hidden));
on('annotations', () => { update().catch((err) => recordError({ code: 'histogram', message: String(err) })); });
on('lang', draw);

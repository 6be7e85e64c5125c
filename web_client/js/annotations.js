// Measurements (R19, R38): length, angle, point value, circle, rectangle and ellipse ROIs. A
// mark is kept in patient space (LPS mm) on the plane it was drawn on, so it stays on the
// anatomy under zoom, pan and rotation and shows again when paging returns to its slice. Its
// numbers come from the server (`measure` → `measurement`, the values of POST /api/measure:
// HU, SUVbw, mm, mm², never display pixels).
import { app, vox, emit, on, request, recordError } from './app.js';
import { defineTool } from './tools.js';
import { defineLayer, svgEl, fmtNum } from './viewport.js';
import { t, defineStrings } from './i18n.js';
import { normalOf, dot } from './geometry.js';

defineStrings({
  zh: { toolLength: '长度', toolAngle: '角度', toolPoint: '点CT值', toolCircle: '圆形ROI', toolRect: '矩形ROI', toolEllipse: '椭圆ROI',
    clearMarks: '清除标注', median: '中位数', value: '值', length: '长度', angle: '角度', count: '像素数' },
  en: { toolLength: 'Length', toolAngle: 'Angle', toolPoint: 'Point value', toolCircle: 'Circle ROI', toolRect: 'Rectangle ROI', toolEllipse: 'Ellipse ROI',
    clearMarks: 'Clear marks', median: 'Median', value: 'Value', length: 'Length', angle: 'Angle', count: 'Pixels' },
});

export const AREA_KINDS = new Set(['circle', 'rectangle', 'ellipse']);
const COLOURS = ['#4cff7a', '#ffd24c', '#4cc9ff', '#ff7ad9', '#ff9f4c', '#b48cff', '#7affef', '#ff5c5c'];

/** Every mark of the session: {id, vpId, kind, series_uid, normal, lps: {...}, shape, view, result, colour}. */
export const annotations = [];
let nextId = 1;

const r2 = (v) => Math.round(v * 100) / 100;
const px = (p) => p.map(r2);

/** The shape in output px of the viewport's current plane (POST /api/measure's `shapes`). */
function shapeOf(kind, pts) {
  switch (kind) {
    case 'point': return { type: 'point', at_px: px(pts[0]) };
    case 'length': return { type: 'line', from_px: px(pts[0]), to_px: px(pts[1]) };
    case 'angle': return { type: 'angle', a_px: px(pts[0]), vertex_px: px(pts[1]), b_px: px(pts[2]) };
    case 'rectangle': return { type: 'rectangle', from_px: px(pts[0]), to_px: px(pts[1]) };
    case 'circle': return { type: 'circle', center_px: px(pts[0]), radius_px: r2(Math.hypot(pts[1][0] - pts[0][0], pts[1][1] - pts[0][1])) };
    case 'ellipse': {
      const [a, b] = pts;
      return { type: 'ellipse', center_px: px([(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]), radii_px: px([Math.abs(b[0] - a[0]) / 2, Math.abs(b[1] - a[1]) / 2]) };
    }
    default: throw new Error(`unknown mark ${kind}`);
  }
}

/** The outline of a mark as patient points (ROIs as polygons), for drawing on any later view. */
function outlineLps(vp, kind, shape) {
  const P = (x, y) => vp.pxToLps(x, y);
  if (kind === 'rectangle') {
    const [x0, y0] = shape.from_px, [x1, y1] = shape.to_px;
    return [P(x0, y0), P(x1, y0), P(x1, y1), P(x0, y1)];
  }
  if (kind === 'circle' || kind === 'ellipse') {
    const [cx, cy] = shape.center_px;
    const [rx, ry] = kind === 'circle' ? [shape.radius_px, shape.radius_px] : shape.radii_px;
    return Array.from({ length: 72 }, (_, i) => {
      const a = (i / 72) * 2 * Math.PI;
      return P(cx + rx * Math.cos(a), cy + ry * Math.sin(a));
    });
  }
  return null;
}

async function commit(vp, kind, pts) {
  const shape = shapeOf(kind, pts);
  if (AREA_KINDS.has(kind)) {
    const size = kind === 'circle' ? shape.radius_px : Math.min(...(shape.radii_px || shape.to_px.map((v, i) => Math.abs(v - shape.from_px[i]))));
    if (!(size >= 1)) { vp.renderOverlay(); return null; }
  }
  const plane = vp.plane;
  const mark = {
    id: nextId++, vpId: vp.id, kind, series_uid: vp.view.series_uid, normal: normalOf(plane),
    points_lps: pts.map((p) => vp.pxToLps(...p)), outline_lps: outlineLps(vp, kind, shape),
    shape, view: vp.view, units: vp.state.units, result: null, colour: COLOURS[(nextId - 2) % COLOURS.length],
  };
  annotations.push(mark);
  vox.annotations = annotations.map(publicMark);
  vp.renderOverlay();
  try {
    const ev = await request({ type: 'measure', viewport: vp.id, shapes: [shape] }, 'measurement');
    mark.result = ev.results[0];
    mark.units = ev.units;
    vox.measurements[vp.id] = { ...mark.result, units: ev.units, shape, view: mark.view, kind, id: mark.id };
  } catch (err) {
    mark.error = err.message;
    recordError({ code: 'measure', message: err.message });
  }
  vox.annotations = annotations.map(publicMark);
  emit('annotations', annotations, mark);
  showResult(mark);
  for (const v of app.viewports) v.renderOverlay();
  return mark;
}

function publicMark(m) {
  return { id: m.id, viewport: m.vpId, kind: m.kind, shape: m.shape, view: m.view, result: m.result, units: m.units, points_lps: m.points_lps };
}

export function removeMark(id) {
  const i = annotations.findIndex((m) => m.id === id);
  if (i >= 0) annotations.splice(i, 1);
  vox.annotations = annotations.map(publicMark);
  emit('annotations', annotations, null);
  for (const v of app.viewports) v.renderOverlay();
}

export function clearMarks() {
  annotations.length = 0;
  vox.annotations = [];
  vox.measurements = {};
  showResult(null);
  emit('annotations', annotations, null);
  emit('marks-cleared');
  for (const v of app.viewports) v.renderOverlay();
}

// ---- the result box ----------------------------------------------------------------------

let shown = null;

/** One line of a mark's numbers, e.g. "Mean 41.2 HU · SD 9.8 HU · … · Area 312 mm²". */
export function resultParts(m) {
  const r = m.result;
  if (!r) return [];
  const u = m.units ? ` ${m.units}` : '';
  switch (m.kind) {
    case 'point': return [[t('value'), `${fmtNum(r.value)}${u}`]];
    case 'length': return [[t('length'), `${fmtNum(r.length_mm)} mm`]];
    case 'angle': return [[t('angle'), `${fmtNum(r.angle_deg, 1)}°`]];
    default: return [[t('mean'), `${fmtNum(r.mean)}${u}`], [t('std'), `${fmtNum(r.std)}${u}`],
      [t('min'), `${fmtNum(r.min)}${u}`], [t('max'), `${fmtNum(r.max)}${u}`], [t('area'), `${fmtNum(r.area_mm2)} mm²`]];
  }
}

export function showResult(m) {
  shown = m;
  const box = document.querySelector('[data-testid="measurement"]');
  if (!box) return;
  for (const k of Object.keys(box.dataset)) if (k !== 'testid') delete box.dataset[k];
  if (!m || !m.result) { box.hidden = true; box.textContent = ''; return; }
  const parts = resultParts(m);
  box.replaceChildren(...parts.flatMap(([k, v], i) => {
    const b = document.createElement('b');
    b.textContent = `${k} `;
    const s = document.createElement('span');
    s.textContent = v + (i < parts.length - 1 ? ' · ' : '');
    return [b, s];
  }));
  const r = m.result;
  Object.assign(box.dataset, { kind: m.kind, markId: m.id });
  for (const [k, key] of [['mean', 'mean'], ['std', 'std'], ['min', 'min'], ['max', 'max'], ['area_mm2', 'area'], ['value', 'value'], ['length_mm', 'length'], ['angle_deg', 'angle']]) {
    if (r[k] !== undefined && r[k] !== null) box.dataset[key] = r[k];
  }
  box.hidden = false;
  emit('result', m, box);  // other modules add their controls (e.g. the ROI's auto W/L)
}

on('lang', () => showResult(shown));

// ---- drawing -----------------------------------------------------------------------------

function label(svg, x, y, lines, colour) {
  const text = svgEl('text', { x, y, class: 'mark-label', 'font-size': 12, style: `fill: ${colour}` });
  lines.forEach((line, i) => {
    const ts = svgEl('tspan', { x, y: y + i * 14 });
    ts.textContent = line;
    text.append(ts);
  });
  svg.append(text);
}

function drawMark(vp, svg, m, { draft = false } = {}) {
  const pts = m.points_lps.map((q) => vp.lpsToCss(q));
  const cls = `mark ${m.kind}${draft ? ' draft' : ''}`;
  const g = svgEl('g', { class: cls, 'data-mark-id': m.id ?? 'draft', stroke: m.colour, 'data-kind': m.kind });
  const poly = (list, closed) => g.append(svgEl(closed ? 'polygon' : 'polyline', { points: list.map((p) => p.join(',')).join(' '), fill: 'none' }));
  if (m.outline_lps) poly(m.outline_lps.map((q) => vp.lpsToCss(q)), true);
  else if (m.kind === 'point') {
    const [x, y] = pts[0];
    g.append(svgEl('line', { x1: x - 6, y1: y, x2: x + 6, y2: y }), svgEl('line', { x1: x, y1: y - 6, x2: x, y2: y + 6 }));
  } else poly(pts, false);
  for (const p of pts) if (m.kind !== 'point' && !m.outline_lps) g.append(svgEl('circle', { cx: p[0], cy: p[1], r: 2.5, class: 'handle' }));
  svg.append(g);
  if (draft || !m.result || !app.overlays) return;
  const lines = resultParts(m).slice(0, AREA_KINDS.has(m.kind) ? 2 : 1).map(([k, v]) => `${k} ${v}`);
  const anchor = m.outline_lps ? m.outline_lps.map((q) => vp.lpsToCss(q)).reduce((a, p) => (p[0] > a[0] ? p : a)) : pts[pts.length - 1];
  label(svg, anchor[0] + 8, anchor[1], lines, m.colour);
}

defineLayer(20, (vp, svg) => {
  if (!vp.isPlanar) return;
  const normal = normalOf(vp.plane);
  for (const m of annotations) {
    if (m.series_uid !== vp.view.series_uid && !(vp.view.layers || []).some((l) => l.series_uid === m.series_uid)) continue;
    if (Math.abs(dot(m.normal, normal)) < 0.999 || !m.points_lps.every((q) => vp.showsPoint(q))) continue;
    drawMark(vp, svg, m);
  }
  if (vp.draft) {
    const d = vp.draft;
    const shape = AREA_KINDS.has(d.kind) && d.points.length >= 2 ? shapeOf(d.kind, d.points) : null;  // an open angle has 2 points
    const mark = { kind: d.kind, colour: COLOURS[(nextId - 1) % COLOURS.length], points_lps: d.points.map((p) => vp.pxToLps(...p)),
      outline_lps: shape && AREA_KINDS.has(d.kind) ? outlineLps(vp, d.kind, shape) : null };
    drawMark(vp, svg, mark, { draft: true });
  }
});

// ---- the tools ---------------------------------------------------------------------------

/** A tool that drags out a two-point mark (from press to release). */
function dragMark(name, kind, label, key) {
  defineTool({
    name, label, group: 'measure', key,
    applies: (vp) => vp.isPlanar,
    down(vp, ptr) { if (vp.isPlanar) { vp.draft = { kind, points: [ptr.out, ptr.out] }; vp.renderOverlay(); } },
    move(vp, ptr) { if (vp.draft?.kind === kind) { vp.draft.points[1] = ptr.out; vp.renderOverlay(); } },
    up(vp, ptr) {
      const d = vp.draft;
      if (d?.kind !== kind) return;
      vp.draft = null;
      d.points[1] = ptr.out;
      const [a, b] = d.points;
      if (Math.hypot(b[0] - a[0], b[1] - a[1]) < 2) { vp.renderOverlay(); return; }
      commit(vp, kind, d.points);
    },
    cancel(vp) { vp.draft = null; vp.renderOverlay(); },
  });
}

dragMark('length', 'length', 'toolLength', 'l');
dragMark('circle', 'circle', 'toolCircle', 'c');
dragMark('rectangle', 'rectangle', 'toolRect', 'x');
dragMark('ellipse', 'ellipse', 'toolEllipse', 'e');

defineTool({
  name: 'point', label: 'toolPoint', group: 'measure', key: '.',
  applies: (vp) => vp.isPlanar,
  up(vp, ptr) { if (vp.isPlanar && ptr.moved < 6) commit(vp, 'point', [ptr.out]); },
});

// Angle: drag the first arm (from its end to the vertex), then click the end of the second arm.
defineTool({
  name: 'angle', label: 'toolAngle', group: 'measure', key: 'a',
  applies: (vp) => vp.isPlanar,
  down(vp, ptr) {
    if (!vp.isPlanar) return;
    if (vp.draft?.kind === 'angle' && vp.draft.points.length === 3) return;
    vp.draft = { kind: 'angle', points: [ptr.out, ptr.out] };
    vp.renderOverlay();
  },
  move(vp, ptr) {
    const d = vp.draft;
    if (d?.kind !== 'angle') return;
    d.points[d.points.length - 1] = ptr.out;
    vp.renderOverlay();
  },
  up(vp, ptr) {
    const d = vp.draft;
    if (d?.kind !== 'angle') return;
    if (d.points.length === 2) {
      const [a, b] = d.points;
      if (Math.hypot(b[0] - a[0], b[1] - a[1]) < 2) { vp.draft = null; vp.renderOverlay(); return; }
      d.points.push(ptr.out);  // the second arm follows the pointer until the next click
      return;
    }
    vp.draft = null;
    d.points[2] = ptr.out;
    commit(vp, 'angle', d.points);
  },
  cancel(vp) { vp.draft = null; vp.renderOverlay(); },
});

// While the second arm of an angle is open, it follows the mouse.
on('hover', (vp, pos) => {
  const d = vp.draft;
  if (d?.kind === 'angle' && d.points.length === 3 && pos) { d.points[2] = vp.cssToOut(...pos); vp.renderOverlay(); }
});

export { commit as commitMark };

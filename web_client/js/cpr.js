// Curved planar reformation (R19): click points along a vessel or a tooth arch on any planar
// view (paging between clicks follows it through the slices; points are patient coordinates,
// so they may come from several viewports), then double-click, press Enter or the "CPR" button:
// a viewport shows the straightened (or stretched) CPR along a spline through the points. Paging
// the CPR turns the cut about the centreline. The centreline stays drawn on the planar views.
import { app, vox, on, send } from './app.js';
import { defineTool } from './tools.js';
import { defineLayer, svgEl } from './viewport.js';
import { defineStrings } from './i18n.js';
import { sub, norm } from './geometry.js';

defineStrings({
  zh: { toolCpr: '曲面CPR', cprHint: '依次点击中心线上的点，双击或回车完成' },
  en: { toolCpr: 'CPR', cprHint: 'Click points along the centreline; double-click or Enter to finish' },
});

/** The centreline being clicked: {series_uid, points_lps, vpId}; finished ones are in app.cprPaths. */
let draft = null;
app.cprPaths = [];

function publish() {
  vox.cpr = { draft: draft ? draft.points_lps : null, paths: app.cprPaths.map((p) => ({ target: p.target, points_lps: p.points_lps })) };
  for (const v of app.viewports) v.renderOverlay();
}

function pathLength(points) {
  let s = 0;
  for (let i = 1; i < points.length; i += 1) s += norm(sub(points[i], points[i - 1]));
  return s;
}

/** Where the CPR goes: the 3D viewport of an MPR layout, else the next viewport, else this one. */
function targetFor(vp) {
  const i = app.viewports.indexOf(vp);
  const threeD = app.viewports.find((v) => v.view?.render3d && v !== vp);
  if (threeD) return threeD;
  return app.viewports.length > 1 ? app.viewports[(i + 1) % app.viewports.length] : vp;
}

export function finishCpr(mode = 'straightened') {
  if (!draft || draft.points_lps.length < 2) return false;
  const source = app.byId.get(draft.vpId) || app.selected;
  const target = targetFor(source);
  const points = draft.points_lps;
  const [w, h] = target.outSize();
  const length = pathLength(points);
  const spacing = Math.max(0.2, Math.min(4, length / (h * 0.92)));
  const view = source.view;
  const cpr = { path: { points_lps: points.map((p) => p.map((v) => Math.round(v * 1000) / 1000)), kind: points.length > 2 ? 'spline' : 'polyline' },
    mode, rotation_deg: 0, pixel_spacing_mm: Math.round(spacing * 1000) / 1000, width_px: Math.max(16, Math.min(2048, Math.round(w))) };
  send({ type: 'view', viewport: target.id, set: { series_uid: view.series_uid, cpr, render3d: null, slab: null, layers: view.layers || [],
    window: view.window, preset: view.preset, invert: view.invert, colormap: view.colormap, zoom: 1, pan_px: [0, 0], rotation_deg: 0, orbit_deg: [0, 0] } });
  app.cprPaths.push({ series_uid: view.series_uid, points_lps: points, target: target.id });
  draft = null;
  publish();
  return true;
}

defineTool({
  name: 'cpr', label: 'toolCpr', group: 'mpr', key: 'q',
  applies: (vp) => vp.isPlanar,
  up(vp, ptr) {
    if (!vp.isPlanar || ptr.moved > 6) return;
    const q = vp.cssToLps(...ptr.pos);
    if (!draft || draft.series_uid !== vp.view.series_uid) draft = { series_uid: vp.view.series_uid, points_lps: [], vpId: vp.id };
    const last = draft.points_lps[draft.points_lps.length - 1];
    if (!last || norm(sub(q, last)) > 0.5) draft.points_lps.push(q);  // a double-click's second click adds nothing
    draft.vpId = vp.id;
    publish();
  },
  cancel() { },
});

on('dblclick', () => { if (app.tool === 'cpr') finishCpr(); });
window.addEventListener('keydown', (e) => {
  if (app.tool !== 'cpr' || e.target.closest('input, select, textarea')) return;
  if (e.key === 'Enter') finishCpr(e.shiftKey ? 'stretched' : 'straightened');
  else if (e.key === 'Escape') { draft = null; publish(); } else if (e.key === 'Backspace' && draft) { draft.points_lps.pop(); publish(); }
});
on('tool', (name) => { if (name !== 'cpr' && draft) { draft = null; publish(); } });
on('session', () => { draft = null; app.cprPaths = []; publish(); });
on('marks-cleared', () => { draft = null; app.cprPaths = []; publish(); });

// Centrelines on planar views of their series: points near this plane solid, the rest faded.
defineLayer(18, (vp, svg) => {
  if (!vp.isPlanar) return;
  const paths = [...app.cprPaths, ...(draft ? [{ ...draft, draft: true }] : [])].filter((p) => p.series_uid === vp.view.series_uid
    || (vp.view.layers || []).some((l) => l.series_uid === p.series_uid));
  for (const p of paths) {
    const css = p.points_lps.map((q) => vp.lpsToCss(q));
    const g = svgEl('g', { class: `centreline${p.draft ? ' draft' : ''}`, 'data-testid': p.draft ? 'cpr-draft' : 'cpr-path' });
    if (css.length > 1) g.append(svgEl('polyline', { points: css.map((c) => c.join(',')).join(' ') }));
    p.points_lps.forEach((q, i) => g.append(svgEl('circle', { cx: css[i][0], cy: css[i][1], r: 3.5, class: vp.showsPoint(q) ? 'on' : 'off' })));
    svg.append(g);
  }
});

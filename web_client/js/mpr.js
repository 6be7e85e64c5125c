// MPR reference lines, the lesion-sync crosshair (R32) and oblique MPR by rotating the lines
// (R29). Each planar viewport shows where the other planar viewports' planes (same frame of
// reference, not parallel) cut it, in that viewport's colour. With the crosshair tool:
// - a click (or drag) sets the point: the server moves every planar viewport of the frame of
//   reference through it (`crosshair`), and the point is marked wherever it is on the plane;
// - dragging a line away from the centre turns that viewport's plane about this viewport's
//   normal through the crosshair (an explicit plane in patient space, `view` → `plane`).
import { app, vox, on, send, frameOfReference } from './app.js';
import { defineTool } from './tools.js';
import { defineLayer, svgEl } from './viewport.js';
import { defineStrings } from './i18n.js';
import { intersection, normalOf, rotate, sub, add, dot, parallel } from './geometry.js';

defineStrings({
  zh: { toolCrosshair: '十字定位' },
  en: { toolCrosshair: 'Crosshair' },
});

export const VIEWPORT_COLOURS = ['#ff5c5c', '#4cd964', '#4ca6ff', '#ffcc33', '#d97aff', '#33e0e0', '#ff9f40', '#a0a0ff', '#ff7ab6'];
const changedAt = new Map();  // viewport → performance.now() of its last plane change
const HIT_PX = 8;          // how close to a line a press grabs it
const CENTRE_PX = 18;      // presses this close to the crosshair centre move the point

export function colourOf(vp) { return VIEWPORT_COLOURS[app.viewports.indexOf(vp) % VIEWPORT_COLOURS.length]; }


/** Planar viewports other than vp in its frame of reference, one per distinct plane. */
function others(vp) {
  const out = [];
  for (const o of app.viewports) {
    if (o === vp || !o.isPlanar || frameOfReference(o) !== frameOfReference(vp) || parallel(o.plane, vp.plane)) continue;
    const dup = out.find((x) => parallel(x.plane, o.plane) && Math.abs(dot(sub(x.plane.center_lps, o.plane.center_lps), normalOf(o.plane))) < 0.01);
    if (!dup) out.push(o);
  }
  return out;
}

/** The line where `o`'s plane cuts vp's, in vp's CSS px: {a, b, o} two far points, or null. */
function lineIn(vp, o) {
  const cut = intersection(vp.plane, o.plane);
  if (!cut) return null;
  const far = 4000;
  const a = vp.lpsToCss(add(cut.point, cut.dir.map((v) => v * far)));
  const b = vp.lpsToCss(add(cut.point, cut.dir.map((v) => -v * far)));
  return { a, b, o, cut };
}

/** The crosshair centre in vp (CSS px): the lesion-sync point if it lies on the plane, else where two lines cross. */
function centreIn(vp, lines) {
  const p = app.crosshair?.point_lps;
  if (p && vp.showsPoint(p)) return vp.lpsToCss(p);
  if (lines.length >= 2) {
    const [l1, l2] = lines;
    const d1 = sub2(l1.b, l1.a), d2 = sub2(l2.b, l2.a);
    const den = d1[0] * d2[1] - d1[1] * d2[0];
    if (Math.abs(den) > 1e-9) {
      const s = ((l2.a[0] - l1.a[0]) * d2[1] - (l2.a[1] - l1.a[1]) * d2[0]) / den;
      return [l1.a[0] + s * d1[0], l1.a[1] + s * d1[1]];
    }
  }
  return null;
}

const sub2 = (a, b) => [a[0] - b[0], a[1] - b[1]];

function distToSegment(p, a, b) {
  const d = sub2(b, a), len2 = d[0] * d[0] + d[1] * d[1];
  const s = len2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * d[0] + (p[1] - a[1]) * d[1]) / len2)) : 0;
  return Math.hypot(p[0] - a[0] - s * d[0], p[1] - a[1] - s * d[1]);
}

export function referenceLines(vp) {
  if (!vp.isPlanar) return [];
  return others(vp).map((o) => lineIn(vp, o)).filter(Boolean);
}

defineLayer(15, (vp, svg, f) => {
  if (!vp.isPlanar) return;
  const lines = referenceLines(vp);
  const centre = centreIn(vp, lines);
  for (const l of lines) {
    const colour = colourOf(l.o);
    const g = svgEl('g', { class: 'refline', 'data-target': l.o.id, stroke: colour });
    g.append(svgEl('line', { x1: l.a[0], y1: l.a[1], x2: l.b[0], y2: l.b[1], 'stroke-dasharray': l.o.view?.slab ? '6 4' : 'none' }));
    if (centre && app.tool === 'crosshair') {
      // rotation handles on both arms
      const d = sub2(l.b, l.a), len = Math.hypot(d[0], d[1]) || 1, u = [d[0] / len, d[1] / len];
      const r = Math.min(f.cw, f.ch) * 0.3;
      for (const k of [-1, 1]) g.append(svgEl('circle', { cx: centre[0] + k * r * u[0], cy: centre[1] + k * r * u[1], r: 5, class: 'rot-handle', fill: colour }));
    }
    svg.append(g);
  }
  const p = app.crosshair?.point_lps;
  if (p && vp.showsPoint(p)) {
    const [x, y] = vp.lpsToCss(p);
    const g = svgEl('g', { class: 'crosshair-point', 'data-testid': 'crosshair-point' });
    g.append(svgEl('circle', { cx: x, cy: y, r: 7 }), svgEl('line', { x1: x - 12, y1: y, x2: x - 4, y2: y }), svgEl('line', { x1: x + 4, y1: y, x2: x + 12, y2: y }),
      svgEl('line', { x1: x, y1: y - 12, x2: x, y2: y - 4 }), svgEl('line', { x1: x, y1: y + 4, x2: x, y2: y + 12 }));
    svg.append(g);
  }
});

// The colour tab of each viewport, matching its reference lines in the others.
on('grid', (viewports) => { for (const vp of viewports) vp.el.style.setProperty('--vp-colour', colourOf(vp)); });

on('ev:crosshair', (ev) => {
  app.crosshair = { point_lps: ev.point_lps, viewports: ev.viewports };
  vox.crosshair = app.crosshair;
  for (const v of app.viewports) v.renderOverlay();
});
on('session', () => { app.crosshair = null; vox.crosshair = null; changedAt.clear(); });

// ---- the tool ----------------------------------------------------------------------------

function setPoint(vp, css) {
  send({ type: 'crosshair', viewport: vp.id, at_px: vp.cssToOut(...css).map((v) => Math.round(v * 100) / 100) });
}

/** The plane of `o` turned by `deg` about vp's normal through `pivot` (patient space). */
function turned(o, vp, pivot, deg) {
  const n = normalOf(vp.plane), p = o.rotStart;
  return {
    center_lps: add(rotate(sub(p.center_lps, pivot), n, deg), pivot),
    row_dir: rotate(p.row_dir, n, deg), col_dir: rotate(p.col_dir, n, deg),
    pixel_spacing_mm: p.pixel_spacing_mm, size_px: p.size_px,
  };
}

defineTool({
  name: 'crosshair', label: 'toolCrosshair', group: 'mpr', key: 'k',
  applies: (vp) => vp.isPlanar,
  down(vp, ptr) {
    if (!vp.isPlanar) return;
    const lines = referenceLines(vp);
    const centre = centreIn(vp, lines);
    ptr.mode = 'point';
    if (centre && Math.hypot(ptr.pos[0] - centre[0], ptr.pos[1] - centre[1]) > CENTRE_PX) {
      const hit = lines.find((l) => distToSegment(ptr.pos, l.a, l.b) <= HIT_PX);
      if (hit) {
        ptr.mode = 'rotate';
        ptr.target = hit.o;
        ptr.centre = centre;
        ptr.pivot = vp.cssToLps(...centre);
        ptr.angle0 = Math.atan2(ptr.pos[1] - centre[1], ptr.pos[0] - centre[0]);
        hit.o.rotStart = hit.o.plane;
        return;
      }
    }
    setPoint(vp, ptr.pos);
  },
  move(vp, ptr) {
    if (ptr.mode === 'point') { setPoint(vp, ptr.pos); return; }
    if (ptr.mode !== 'rotate') return;
    let deg = ((Math.atan2(ptr.pos[1] - ptr.centre[1], ptr.pos[0] - ptr.centre[0]) - ptr.angle0) * 180) / Math.PI;
    deg = ((deg + 540) % 360) - 180;
    ptr.deg = deg;
    const o = ptr.target;
    if (!o.rotRaf) {
      o.rotRaf = requestAnimationFrame(() => {
        o.rotRaf = 0;
        send({ type: 'view', viewport: o.id, set: { plane: turned(o, vp, ptr.pivot, ptr.deg), orbit_deg: [0, 0], rotation_deg: 0,
          flip_horizontal: false, flip_vertical: false, zoom: 1, pan_px: [0, 0] } });
      });
    }
  },
});


// Reference lines in a viewport depend on the other viewports' planes: once per animation
// frame, redraw the viewports drawn before another viewport's plane last changed.
let redraw = 0;
on('state', (vp, ev, before) => {
  if (ev.unchanged || !vp.isPlanar || JSON.stringify(ev.geometry?.plane) === JSON.stringify(before?.geometry?.plane)) return;
  changedAt.set(vp, performance.now());
  if (redraw) return;
  redraw = requestAnimationFrame(() => {
    redraw = 0;
    for (const v of app.viewports) {
      const newest = Math.max(-Infinity, ...[...changedAt].filter(([o]) => o !== v && app.viewports.includes(o)).map(([, t]) => t));
      if (newest > (v.overlayAt || 0)) v.renderOverlay();
    }
  });
});

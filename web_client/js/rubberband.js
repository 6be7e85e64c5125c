// Rubber bands: the temporary rectangle or ellipse that a drag tool shows while the user drags
// it out (ROI auto window, occlusion masks). It lives on the viewport as `vp.rubber`, in output
// pixels from corner to corner, is drawn as SVG, and goes away when the tool is done with it;
// nothing of it reaches the server until the tool's `done()`.
import { app, on, recordError } from './app.js';
import { defineTool } from './tools.js';
import { defineLayer, svgEl } from './viewport.js';

const r2 = (v) => Math.round(v * 100) / 100;

/**
 * The dragged box in output px: {shape, from, to, center, half} (x = column, y = row; `half`
 * the half extents). A rectangle covers the pixel centres between `from` and `to`; an ellipse is
 * the one inscribed in that box.
 */
export function boxOf(rubber) {
  const [ax, ay] = rubber.a, [bx, by] = rubber.b;
  const from = [Math.min(ax, bx), Math.min(ay, by)], to = [Math.max(ax, bx), Math.max(ay, by)];
  return {
    shape: rubber.shape, from: from.map(r2), to: to.map(r2),
    center: [r2((from[0] + to[0]) / 2), r2((from[1] + to[1]) / 2)],
    half: [r2((to[0] - from[0]) / 2), r2((to[1] - from[1]) / 2)],
  };
}

function clear(vp, rubber = vp.rubber) {
  if (rubber && vp.rubber === rubber) { vp.rubber = null; vp.renderOverlay(); }
}

/**
 * A tool that drags out a rectangle or an ellipse and hands it to `done(vp, box)` (which may
 * return a promise; the rubber band stays until it settles). Boxes under 2 output px a side are
 * dropped. spec: {name, label, group, shape: 'rectangle' | 'ellipse', kind (CSS class),
 * applies(vp), done(vp, box)}.
 */
export function dragShapeTool({ name, label, group, shape, kind, applies, done }) {
  return defineTool({
    name, label, group, applies,
    down(vp, ptr) {
      if (!applies(vp)) return;
      vp.rubber = { tool: name, shape, kind, a: ptr.out, b: ptr.out, busy: false };
      vp.renderOverlay();
    },
    move(vp, ptr) {
      const r = vp.rubber;
      if (r?.tool !== name || r.busy) return;
      r.b = ptr.out;
      vp.renderOverlay();
    },
    up(vp, ptr) {
      const r = vp.rubber;
      if (r?.tool !== name || r.busy) return;
      r.b = ptr.out;
      const box = boxOf(r);
      if (box.half[0] < 1 || box.half[1] < 1) { clear(vp, r); return; }
      r.busy = true;
      vp.renderOverlay();
      Promise.resolve().then(() => done(vp, box)).catch((err) => recordError({ code: name, message: String(err?.message || err) })).finally(() => clear(vp, r));
    },
    cancel(vp) { if (!vp.rubber?.busy) clear(vp); },
  });
}

defineLayer(30, (vp, svg) => {
  const r = vp.rubber;
  if (!r) return;
  const box = boxOf(r);
  const [x0, y0] = vp.outToCss(...box.from), [x1, y1] = vp.outToCss(...box.to);
  const cls = `rubber ${r.kind || ''}${r.busy ? ' busy' : ''}`;
  const attrs = r.shape === 'ellipse'
    ? { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, rx: (x1 - x0) / 2, ry: (y1 - y0) / 2 }
    : { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  svg.append(svgEl(r.shape === 'ellipse' ? 'ellipse' : 'rect', { ...attrs, class: cls, 'data-testid': 'rubber-band' }));
});

// Another tool, or Escape, drops a rubber band that is still being dragged.
const dropAll = () => { for (const vp of app.viewports) if (vp.rubber && !vp.rubber.busy) clear(vp); };
on('tool', dropAll);
window.addEventListener('keydown', (e) => { if (e.key === 'Escape') dropAll(); });

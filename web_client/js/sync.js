// Scroll sync and the paging scrollbar.
//
// Sync (toggle, key S; on by itself when a prior sharing the frame of reference is opened for
// comparison): when the selected viewport moves through its volume, every other planar viewport
// with a parallel plane follows. In the same frame of reference it goes to the same patient
// position (`page` → `position_mm` along its own normal), so the same anatomy shows; across
// frames of reference (a prior study not registered to this one) it moves by the same number of
// slices.
//
// The scrollbar on the right edge of every planar viewport shows the slice of total (the
// `slice` of the state event) and pages when dragged or clicked.
import { app, on, send, frameOfReference } from './app.js';
import { dot, normalOf, parallel } from './geometry.js';


on('state', (vp, ev, before) => {
  if (!app.sync || vp !== app.selected || ev.unchanged || !vp.isPlanar || !before?.geometry?.plane) return;
  const plane = ev.geometry.plane, prev = before.geometry.plane;
  if (!parallel(plane, prev)) return;
  const n = normalOf(plane);
  const moved = dot(plane.center_lps, n) - dot(prev.center_lps, n);
  if (Math.abs(moved) < 1e-3) return;
  const slices = ev.slice && before.slice ? ev.slice.index - before.slice.index : Math.round(moved / (ev.slice?.spacing_mm || 1));
  for (const o of app.viewports) {
    if (o === vp || !o.isPlanar || !parallel(o.plane, plane)) continue;
    const no = normalOf(o.plane);
    if (frameOfReference(o) && frameOfReference(o) === frameOfReference(vp)) {
      const target = dot(plane.center_lps, no);
      if (Math.abs(target - dot(o.plane.center_lps, no)) > 1e-3) send({ type: 'page', viewport: o.id, position_mm: Math.round(target * 1000) / 1000 });
    } else if (slices) {
      send({ type: 'page', viewport: o.id, delta: slices * Math.sign(dot(n, no)) });
    }
  }
});

// ---- the scrollbar -----------------------------------------------------------------------

function pageTo(vp, index) {
  const s = vp.state?.slice;
  if (!s) return;
  const i = Math.max(0, Math.min(s.count - 1, Math.round(index)));
  if (i === s.index) return;
  send({ type: 'page', viewport: vp.id, position_mm: Math.round((s.position_mm + (i - s.index) * s.spacing_mm) * 1000) / 1000 });
}

function bar(vp) {
  const el = document.createElement('div');
  el.className = 'scrollbar';
  el.setAttribute('data-testid', 'scrollbar');
  const thumb = document.createElement('div');
  thumb.className = 'thumb';
  el.append(thumb);
  const at = (e) => {
    const r = el.getBoundingClientRect();
    const s = vp.state?.slice;
    if (!s) return;
    pageTo(vp, ((e.clientY - r.top) / r.height) * s.count - 0.5);
  };
  el.addEventListener('pointerdown', (e) => {
    e.stopPropagation();
    app.selected !== vp && vp.hooks.onSelect(vp);
    el.setPointerCapture(e.pointerId);
    el.dataset.drag = '1';
    at(e);
  });
  el.addEventListener('pointermove', (e) => { if (el.dataset.drag) { e.stopPropagation(); at(e); } });
  const end = (e) => { e.stopPropagation(); delete el.dataset.drag; };
  el.addEventListener('pointerup', end);
  el.addEventListener('pointercancel', end);
  el.addEventListener('wheel', (e) => e.stopPropagation(), { passive: true });
  vp.el.append(el);
  vp.scrollbar = { el, thumb };
}

function update(vp) {
  const sb = vp.scrollbar;
  const s = vp.state?.slice;
  if (!sb) return;
  sb.el.hidden = !s || !vp.isPlanar || s.count < 2;
  if (sb.el.hidden) return;
  const h = Math.max(100 / s.count, 3);
  sb.thumb.style.height = `${h}%`;
  sb.thumb.style.top = `${(s.index / Math.max(1, s.count - 1)) * (100 - h)}%`;
  sb.el.title = `${s.index + 1} / ${s.count}`;
  sb.el.dataset.index = s.index;
  sb.el.dataset.count = s.count;
}

on('grid', (viewports) => { for (const vp of viewports) { bar(vp); update(vp); } });
on('state', (vp) => update(vp));

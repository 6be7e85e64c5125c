// One viewport: a <canvas> showing the server's frames (scaled to the viewport, keeping the
// aspect) under an <svg> overlay drawn from the plane geometry of the latest `state` event, so
// annotations stay put under zoom and pan. Pointer, wheel and touch input become protocol
// messages, throttled to one per animation frame.
import { t, fmtDate, fmtTime, fmtSex } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const MAX_SIDE = 1024;

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

function svgEl(name, attrs = {}) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (digits === 0) return String(Math.round(v));
  return v.toFixed(Math.abs(v) >= 100 ? 1 : digits);
}

function ageAt(birth, date) {
  if (!birth || birth.length < 8 || !date || date.length < 8) return '';
  let age = +date.slice(0, 4) - +birth.slice(0, 4);
  if (date.slice(4, 8) < birth.slice(4, 8)) age -= 1;
  return age >= 0 ? t('ageY', { n: age }) : '';
}

export class Viewport {
  /**
   * @param {string} id            the session's viewport id (v0, v1, …)
   * @param {object} hooks         send(msg), onSelect(vp), onMeasure(vp, shape), onFrameDrawn(vp, header),
   *                               getTool(), getInfo() → {study, seriesByUid}, overlaysVisible()
   */
  constructor(id, hooks) {
    this.id = id;
    this.hooks = hooks;
    this.state = null;
    this.lastSeq = -1;
    this.roi = null;          // {center_lps, radii_mm, normal, result}
    this.draft = null;        // ellipse being drawn, in output px
    this.pending = null;
    this.rafId = 0;
    this.pointers = new Map();
    this.lastTap = 0;

    this.el = document.createElement('div');
    this.el.className = 'viewport';
    this.el.setAttribute('data-testid', 'viewport');
    this.el.dataset.viewportId = id;
    this.canvas = document.createElement('canvas');
    this.canvas.width = 16; this.canvas.height = 16;
    this.svg = svgEl('svg', { class: 'overlay' });
    this.el.append(this.canvas, this.svg);
    this.ctx = this.canvas.getContext('2d');
    this.bindInput();
  }

  // ---- geometry ---------------------------------------------------------------------------

  /** The output size: the viewport's CSS size × devicePixelRatio, the longer side at most 1024. */
  wantedSize() {
    const r = this.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    let w = Math.max(16, r.width * dpr), h = Math.max(16, r.height * dpr);
    const k = Math.min(1, MAX_SIDE / Math.max(w, h));
    w = Math.max(16, Math.round(w * k)); h = Math.max(16, Math.round(h * k));
    return [w, h];
  }

  outSize() {
    const p = this.state?.geometry?.plane;
    if (p?.size_px) return p.size_px;
    if (this.state?.view?.size_px) return this.state.view.size_px;
    return [this.canvas.width, this.canvas.height];
  }

  /** How output pixels map to CSS pixels in this element: {s, ox, oy, cw, ch}. */
  fit() {
    const cw = this.el.clientWidth, ch = this.el.clientHeight;
    const [W, H] = this.outSize();
    const s = Math.min(cw / W, ch / H) || 1;
    return { s, ox: (cw - W * s) / 2, oy: (ch - H * s) / 2, cw, ch, W, H };
  }

  cssToOut(x, y) {
    const f = this.fit();
    return [(x - f.ox) / f.s - 0.5, (y - f.oy) / f.s - 0.5];
  }

  outToCss(x, y) {
    const f = this.fit();
    return [(x + 0.5) * f.s + f.ox, (y + 0.5) * f.s + f.oy];
  }

  pxToLps(x, y) {
    const p = this.state.geometry.plane;
    const [w, h] = p.size_px;
    const a = (x - (w - 1) / 2) * p.pixel_spacing_mm, b = (y - (h - 1) / 2) * p.pixel_spacing_mm;
    return [0, 1, 2].map((k) => p.center_lps[k] + a * p.row_dir[k] + b * p.col_dir[k]);
  }

  lpsToPx(q) {
    const p = this.state.geometry.plane;
    const [w, h] = p.size_px;
    const d = sub(q, p.center_lps);
    return [dot(d, p.row_dir) / p.pixel_spacing_mm + (w - 1) / 2, dot(d, p.col_dir) / p.pixel_spacing_mm + (h - 1) / 2];
  }

  // ---- server input -----------------------------------------------------------------------

  setState(ev) {
    if (ev.unchanged && this.state) { this.state = { ...this.state, seq: ev.seq }; return; }
    this.state = ev;
    this.renderOverlay();
  }

  drawFrame(header, image) {
    if (header.frame_seq <= this.lastSeq) return Promise.resolve();
    const type = header.encoding === 'png' ? 'image/png' : 'image/jpeg';
    return createImageBitmap(new Blob([image], { type })).then((bmp) => {
      if (header.frame_seq <= this.lastSeq) { bmp.close(); return; }
      this.lastSeq = header.frame_seq;
      const W = header.view_width || header.width, H = header.view_height || header.height;
      if (this.canvas.width !== W || this.canvas.height !== H) { this.canvas.width = W; this.canvas.height = H; }
      this.ctx.imageSmoothingEnabled = true;
      this.ctx.drawImage(bmp, 0, 0, W, H);
      bmp.close();
      this.el.classList.add('has-frame');
      this.hooks.onFrameDrawn(this, header);
      this.renderOverlay();
    });
  }

  setMeasurement(result) {
    if (this.roi) { this.roi.result = result; this.renderOverlay(); }
  }

  setSelected(on) { this.el.classList.toggle('selected', on); }

  // ---- overlay ----------------------------------------------------------------------------

  renderOverlay() {
    const svg = this.svg;
    svg.replaceChildren();
    const st = this.state;
    const f = this.fit();
    svg.setAttribute('width', f.cw); svg.setAttribute('height', f.ch);
    svg.setAttribute('viewBox', `0 0 ${f.cw} ${f.ch}`);
    // the ROI and the shape being drawn (always shown: they are the user's own marks)
    if (st?.geometry?.plane) this.drawRoi(svg, f);
    if (!this.hooks.overlaysVisible() || !st) return;
    const plane = st.geometry?.plane;
    const view = st.view || {};
    const { study, seriesByUid } = this.hooks.getInfo();
    const series = seriesByUid[view.series_uid] || {};
    const small = f.cw < 260;
    const lh = small ? 12 : 15;

    const tl = [], tr = [], bl = [], br = [];
    if (study) {
      tl.push(study.patient_name || '');
      tl.push(study.patient_id || '');
      tl.push([fmtSex(study.patient_sex), ageAt(study.patient_birth_date, study.study_date)].filter(Boolean).join(' '));
      tr.push(study.study_description || '');
      tr.push(`${fmtDate(study.study_date)} ${fmtTime(study.study_time)}`.trim());
      tr.push([series.modality, ...(view.layers || []).map((l) => seriesByUid[l.series_uid]?.modality)].filter(Boolean).join(' + '));
    }
    const layerDesc = (view.layers || []).map((l) => seriesByUid[l.series_uid]?.series_description).filter(Boolean);
    bl.push(`${t('series')} ${series.series_number ?? ''} ${series.series_description || ''}${layerDesc.length ? ' + ' + layerDesc.join(', ') : ''}`.trim());
    if (plane && !view.render3d) {
      const normal = cross(plane.row_dir, plane.col_dir);
      bl.push(`${t('slicePos')}: ${fmtNum(dot(plane.center_lps, normal), 1)} mm`);
      const thick = view.slab?.thickness_mm;
      if (thick) bl.push(`${t('thickness')}: ${fmtNum(thick, 1)} mm ${view.slab.mode?.toUpperCase() || ''}`);
    } else if (view.render3d) {
      bl.push(`3D ${(view.render3d.method || '').toUpperCase()}`);
    }
    const wl = (v) => (Math.abs(v) >= 20 ? String(Math.round(v)) : fmtNum(v, Number.isInteger(v) ? 0 : 2));
    if (st.window) br.push(`W: ${wl(st.window.width)} L: ${wl(st.window.center)}${st.units ? ' ' + st.units : ''}`);
    br.push(`${t('zoom')}: ${fmtNum((view.zoom || 1) * 100, 0)}%`);

    const corner = (lines, x, y, anchor, up) => {
      const text = svgEl('text', { x, y, 'text-anchor': anchor, class: 'corner', 'font-size': small ? 10 : 13 });
      lines.filter((l) => l).forEach((line, i, arr) => {
        const ts = svgEl('tspan', { x, y: up ? y - (arr.length - 1 - i) * lh : y + i * lh });
        ts.textContent = line;
        text.append(ts);
      });
      svg.append(text);
    };
    corner(tl, 6, lh, 'start', false);
    corner(tr, f.cw - 6, lh, 'end', false);
    corner(bl, 6, f.ch - 6, 'start', true);
    corner(br, f.cw - 6, f.ch - 6, 'end', true);

    const edges = st.geometry?.edges;
    if (edges) {
      const fs = small ? 12 : 16;
      const x0 = Math.max(f.ox, 0), x1 = Math.min(f.ox + f.W * f.s, f.cw);
      const y0 = Math.max(f.oy, 0), y1 = Math.min(f.oy + f.H * f.s, f.ch);
      const mk = (label, x, y, anchor) => {
        if (!label) return;
        const el = svgEl('text', { x, y, 'text-anchor': anchor, class: 'orient', 'font-size': fs, 'dominant-baseline': 'middle' });
        el.textContent = label;
        svg.append(el);
      };
      mk(edges.left, x0 + 6, (y0 + y1) / 2, 'start');
      mk(edges.right, x1 - 6, (y0 + y1) / 2, 'end');
      mk(edges.top, (x0 + x1) / 2, y0 + fs, 'middle');
      mk(edges.bottom, (x0 + x1) / 2, y1 - fs * (small ? 1.5 : 2.2), 'middle');
    }

    if (plane?.pixel_spacing_mm > 0) {
      const cssPerMm = f.s / plane.pixel_spacing_mm;
      let mm = 50;
      if (mm * cssPerMm > f.cw * 0.35) mm = 10;
      if (mm * cssPerMm > f.cw * 0.35) mm = 1;
      const len = mm * cssPerMm;
      const x = f.cw - 12, yMid = Math.max(f.ch * 0.7, len / 2 + 30);
      const g = svgEl('g', { class: 'scalebar', 'data-testid': 'scalebar', 'data-mm': mm });
      g.append(svgEl('line', { x1: x, y1: yMid - len / 2, x2: x, y2: yMid + len / 2 }));
      for (let i = 0; i <= 10; i += (mm === 50 ? 2 : 10)) {
        const y = yMid - len / 2 + (len * i) / 10;
        g.append(svgEl('line', { x1: x - (i % 10 === 0 ? 8 : 4), y1: y, x2: x, y2: y }));
      }
      const label = svgEl('text', { x: x - 10, y: yMid + len / 2, 'text-anchor': 'end', class: 'corner', 'font-size': small ? 10 : 12 });
      label.textContent = `${mm} mm`;
      g.append(label);
      svg.append(g);
    }
  }

  drawRoi(svg, f) {
    const ellipse = (cx, cy, rx, ry, cls) => {
      const [x, y] = this.outToCss(cx, cy);
      svg.append(svgEl('ellipse', { cx: x, cy: y, rx: Math.max(rx * f.s, 0.5), ry: Math.max(ry * f.s, 0.5), class: cls }));
      return [x, y];
    };
    if (this.draft) ellipse(...this.draft.center, ...this.draft.radii, 'roi draft');
    const roi = this.roi;
    if (!roi) return;
    const plane = this.state.geometry.plane;
    const normal = cross(plane.row_dir, plane.col_dir);
    // hide the ROI when the plane has moved off it (paging) or turned (a different orientation)
    const off = Math.abs(dot(sub(roi.center_lps, plane.center_lps), normal));
    if (off > 0.5 || Math.abs(dot(normal, roi.normal)) < 0.999) return;
    const [cx, cy] = this.lpsToPx(roi.center_lps);
    const sp = plane.pixel_spacing_mm;
    const [x, y] = ellipse(cx, cy, roi.radii_mm[0] / sp, roi.radii_mm[1] / sp, 'roi');
    if (roi.result && this.hooks.overlaysVisible()) {
      const r = roi.result;
      const text = svgEl('text', { x: x + (roi.radii_mm[0] / sp) * f.s + 6, y, class: 'roi-label', 'font-size': 12 });
      [`${t('mean')} ${fmtNum(r.mean)}`, `${t('std')} ${fmtNum(r.std)}`].forEach((line, i) => {
        const ts = svgEl('tspan', { x: text.getAttribute('x'), y: y + i * 14 });
        ts.textContent = line;
        text.append(ts);
      });
      svg.append(text);
    }
  }

  // ---- input ------------------------------------------------------------------------------

  queue(kind, value) {
    const p = this.pending || (this.pending = { page: 0, wl: [0, 0], zoom: 1, zoomAt: null, pan: [0, 0] });
    if (kind === 'page') p.page += value;
    else if (kind === 'wl') { p.wl[0] += value[0]; p.wl[1] += value[1]; }
    else if (kind === 'zoom') { p.zoom *= value.factor; p.zoomAt = value.at; }
    else if (kind === 'pan') { p.pan[0] += value[0]; p.pan[1] += value[1]; }
    if (!this.rafId) this.rafId = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.rafId = 0;
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    const send = this.hooks.send;
    const whole = Math.trunc(p.page);
    if (whole) send({ type: 'page', viewport: this.id, delta: whole });
    if (p.page - whole) this.queueRemainder = (this.queueRemainder || 0) + (p.page - whole);
    if (Math.abs(this.queueRemainder || 0) >= 1) {
      const r = Math.trunc(this.queueRemainder);
      this.queueRemainder -= r;
      send({ type: 'page', viewport: this.id, delta: r });
    }
    if (p.wl[0] || p.wl[1]) send({ type: 'window', viewport: this.id, drag_px: p.wl });
    if (p.zoom !== 1) {
      const msg = { type: 'zoom', viewport: this.id, factor: p.zoom };
      if (p.zoomAt) msg.at_px = p.zoomAt.map((v) => Math.round(v * 10) / 10);
      send(msg);
    }
    if (p.pan[0] || p.pan[1]) send({ type: 'pan', viewport: this.id, delta_px: p.pan.map((v) => Math.round(v * 100) / 100) });
  }

  local(ev) {
    const r = this.el.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  /** Apply a drag of (dx, dy) CSS px with a tool. */
  dragTool(tool, dx, dy, start) {
    const f = this.fit();
    if (tool === 'page') this.queue('page', dy / 6);
    else if (tool === 'wl') this.queue('wl', [dx, dy]);
    else if (tool === 'zoom') this.queue('zoom', { factor: Math.exp(-dy / 150), at: this.cssToOut(...start) });
    else if (tool === 'pan') this.queue('pan', [dx / f.s, dy / f.s]);
  }

  bindInput() {
    const el = this.el;
    el.addEventListener('contextmenu', (e) => e.preventDefault());
    el.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.hooks.onSelect(this);
      const unit = e.deltaMode === 1 ? 3 : e.deltaMode === 2 ? 1 : 100;
      let d = e.deltaY / unit;
      if (Math.abs(d) >= 0.5 && Math.abs(d) < 1) d = Math.sign(d);
      this.queue('page', d);
    }, { passive: false });

    el.addEventListener('pointerdown', (e) => {
      this.hooks.onSelect(this);
      el.setPointerCapture(e.pointerId);
      const pos = this.local(e);
      let tool = this.hooks.getTool();
      if (e.pointerType === 'mouse') {
        if (e.button === 2) tool = 'zoom';
        else if (e.button === 1) { tool = 'pan'; e.preventDefault(); }
        else if (e.button !== 0) return;
      }
      this.pointers.set(e.pointerId, { pos, start: pos, tool, type: e.pointerType, t0: performance.now(), moved: 0 });
      if (this.pointers.size === 2) {
        this.draft = null;
        this.pinch = this.pinchState();
      } else if (tool === 'ellipse' && this.state?.geometry?.plane) {
        const o = this.cssToOut(...pos);
        this.draft = { start: o, center: o, radii: [0, 0] };
      }
    });

    el.addEventListener('pointermove', (e) => {
      const ptr = this.pointers.get(e.pointerId);
      if (!ptr) return;
      const pos = this.local(e);
      const dx = pos[0] - ptr.pos[0], dy = pos[1] - ptr.pos[1];
      ptr.pos = pos;
      ptr.moved += Math.abs(dx) + Math.abs(dy);
      if (this.pointers.size >= 2) {
        const now = this.pinchState();
        if (this.pinch && now.dist > 0 && this.pinch.dist > 0) {
          const f = this.fit();
          const factor = now.dist / this.pinch.dist;
          if (Math.abs(factor - 1) > 1e-3) this.queue('zoom', { factor, at: this.cssToOut(...now.center) });
          const pdx = now.center[0] - this.pinch.center[0], pdy = now.center[1] - this.pinch.center[1];
          if (pdx || pdy) this.queue('pan', [pdx / f.s, pdy / f.s]);
        }
        this.pinch = now;
        return;
      }
      if (ptr.tool === 'ellipse') {
        if (!this.draft) return;
        const o = this.cssToOut(...pos), s0 = this.draft.start;
        this.draft.center = [(o[0] + s0[0]) / 2, (o[1] + s0[1]) / 2];
        this.draft.radii = [Math.abs(o[0] - s0[0]) / 2, Math.abs(o[1] - s0[1]) / 2];
        this.renderOverlay();
        return;
      }
      this.dragTool(ptr.tool, dx, dy, ptr.start);
    });

    const end = (e) => {
      const ptr = this.pointers.get(e.pointerId);
      if (!ptr) return;
      this.pointers.delete(e.pointerId);
      if (this.pointers.size < 2) this.pinch = null;
      if (ptr.tool === 'ellipse' && this.draft) {
        const d = this.draft;
        this.draft = null;
        if (d.radii[0] >= 1 && d.radii[1] >= 1) this.commitEllipse(d.center, d.radii);
        else this.renderOverlay();
      }
      // double tap (touch) → reset
      if (ptr.type === 'touch' && e.type === 'pointerup' && ptr.moved < 10 && performance.now() - ptr.t0 < 300) {
        const now = performance.now();
        if (now - this.lastTap < 350) { this.lastTap = 0; this.hooks.send({ type: 'reset', viewport: this.id }); } else this.lastTap = now;
      }
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
  }

  pinchState() {
    const pts = [...this.pointers.values()].slice(0, 2).map((p) => p.pos);
    const center = [(pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2];
    return { center, dist: Math.hypot(pts[0][0] - pts[1][0], pts[0][1] - pts[1][1]) };
  }

  commitEllipse(center, radii) {
    const plane = this.state.geometry.plane;
    const sp = plane.pixel_spacing_mm;
    const shape = { type: 'ellipse', center_px: center.map((v) => Math.round(v * 100) / 100), radii_px: radii.map((v) => Math.round(v * 100) / 100) };
    this.roi = { center_lps: this.pxToLps(...center), radii_mm: [radii[0] * sp, radii[1] * sp], normal: cross(plane.row_dir, plane.col_dir), result: null, shape };
    this.renderOverlay();
    this.hooks.onMeasure(this, shape);
  }
}

// One viewport: a <canvas> showing the server's frames (scaled to the viewport, keeping the
// aspect) under an <svg> overlay drawn from the plane geometry of the latest `state` event, so
// annotations stay put under zoom and pan. Pointer, wheel and touch input go to the active tool
// (tools.js); drag input becomes protocol messages, coalesced to one per animation frame.
// Overlay layers (four corners, annotations, reference lines, …) register with defineLayer().
import { getTool } from './tools.js';
import { lpsToPx, pxToLps, normalOf, distanceFromPlane, dot } from './geometry.js';
import { emit } from './app.js';

const SVG = 'http://www.w3.org/2000/svg';
const MAX_SIDE = 1024;
const LONG_PRESS_MS = 550;
const IDLE_MS = 20;  // input this long after the last message is sent at once

export function svgEl(name, attrs = {}) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

export function fmtNum(v, digits = 2) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (digits === 0) return String(Math.round(v));
  return v.toFixed(Math.abs(v) >= 100 ? 1 : digits);
}

/** Output pixels for a box of CSS size (w, h): × devicePixelRatio, the longer side at most 1024. */
export function outputSize(cssW, cssH) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(16, cssW * dpr), h = Math.max(16, cssH * dpr);
  const k = Math.min(1, MAX_SIDE / Math.max(w, h));
  return [Math.max(16, Math.round(w * k)), Math.max(16, Math.round(h * k))];
}

const LAYERS = [];

/** Register an overlay layer: draw(vp, svg, fit) is called on every overlay render, by order. */
export function defineLayer(order, draw) {
  LAYERS.push({ order, draw });
  LAYERS.sort((a, b) => a.order - b.order);
}

export class Viewport {
  /**
   * @param {string} id     the session's viewport id (v0, v1, …)
   * @param {object} hooks  send(msg), onSelect(vp), onFrameDrawn(vp, header), getTool() → name,
   *                        overlaysVisible()
   */
  constructor(id, hooks) {
    this.id = id;
    this.hooks = hooks;
    this.state = null;
    this.lastSeq = -1;
    this.lastKind = null;
    this.pending = null;
    this.rafId = 0;
    this.pointers = new Map();
    this.lastTap = 0;
    this.pageRemainder = 0;
    this.lastFlush = 0;

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

  /** The output size: the viewport's content box × devicePixelRatio, the longer side at most 1024. */
  wantedSize() { return outputSize(this.el.clientWidth, this.el.clientHeight); }

  get plane() { return this.state?.geometry?.plane || null; }

  /** The view state shown: the latest `state` event's, or the session's first view until one came. */
  get view() { return this.state?.view || this.initialView || null; }

  /** A planar (MPR or slab) view, not 3D and not a CPR. */
  get isPlanar() { return !!this.plane && !this.view?.render3d; }

  outSize() {
    const p = this.plane;
    if (p?.size_px) return p.size_px;
    const c = this.state?.geometry?.cpr;
    if (c?.size_px) return c.size_px;
    if (this.view?.size_px) return this.view.size_px;
    return [this.canvas.width, this.canvas.height];
  }

  /** How output pixels map to CSS pixels in this element: {s, ox, oy, cw, ch, W, H}. */
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

  pxToLps(x, y) { return pxToLps(this.plane, x, y); }

  lpsToPx(q) { return lpsToPx(this.plane, q); }

  lpsToCss(q) { return this.outToCss(...this.lpsToPx(q)); }

  cssToLps(x, y) { return this.pxToLps(...this.cssToOut(x, y)); }

  /** Whether patient point q lies in the plane shown (within half a slice, or the slab). */
  showsPoint(q, normal = null) {
    const p = this.plane;
    if (!p || this.view?.render3d) return false;
    if (normal && Math.abs(dot(normal, normalOf(p))) < 0.999) return false;
    const tol = Math.max(0.5 * (this.state?.slice?.spacing_mm || 1), 0.5 * (this.view?.slab?.thickness_mm || 0), 0.05);
    return Math.abs(distanceFromPlane(p, q)) <= tol;
  }

  // ---- server input -----------------------------------------------------------------------

  setState(ev) {
    if (ev.unchanged && this.state) { this.state = { ...this.state, seq: ev.seq }; return; }
    this.state = ev;
    this.el.classList.toggle('is-3d', !!ev.view?.render3d);
    this.renderOverlay();
  }

  drawFrame(header, image) {
    if (header.frame_seq <= this.lastSeq) return Promise.resolve();
    const type = header.encoding === 'png' ? 'image/png' : 'image/jpeg';
    header.bytes = image.byteLength;
    return createImageBitmap(new Blob([image], { type })).then((bmp) => {
      if (header.frame_seq <= this.lastSeq) { bmp.close(); return; }
      this.lastSeq = header.frame_seq;
      const kindChanged = this.lastKind !== header.kind;
      this.lastKind = header.kind;
      // The canvas holds the view's full output size (the plane's, or a CPR's, whose height
      // follows the centreline's length); interactive frames may come smaller and are scaled.
      const [W, H] = this.state?.geometry ? this.outSize() : [header.view_width || header.width, header.view_height || header.height];
      const resized = this.canvas.width !== W || this.canvas.height !== H;
      if (resized) { this.canvas.width = W; this.canvas.height = H; }
      this.ctx.imageSmoothingEnabled = true;
      this.ctx.drawImage(bmp, 0, 0, W, H);
      bmp.close();
      this.el.classList.add('has-frame');
      this.el.dataset.frameKind = header.kind;
      this.hooks.onFrameDrawn(this, header);
      // the state event drew the overlay already; it changes with the frame only in the 'lossy'
      // mark and when the output size (and so the fit) changed
      if (kindChanged || resized || this.overlayState !== this.state) this.renderOverlay();
    });
  }

  setSelected(on) { this.el.classList.toggle('selected', on); }

  // ---- overlay ----------------------------------------------------------------------------

  renderOverlay() {
    this.overlayState = this.state;
    this.overlayAt = performance.now();
    const svg = this.svg;
    svg.replaceChildren();
    const f = this.fit();
    svg.setAttribute('width', f.cw); svg.setAttribute('height', f.ch);
    svg.setAttribute('viewBox', `0 0 ${f.cw} ${f.ch}`);
    if (!this.state) return;
    for (const layer of LAYERS) layer.draw(this, svg, f);
  }

  // ---- input ------------------------------------------------------------------------------

  /** Coalesce drag input; flushed once per animation frame as protocol messages. */
  queue(kind, value) {
    const p = this.pending || (this.pending = { page: 0, wl: [0, 0], zoom: 1, zoomAt: null, pan: [0, 0], orbit: [0, 0] });
    if (kind === 'page') p.page += value;
    else if (kind === 'wl') { p.wl[0] += value[0]; p.wl[1] += value[1]; }
    else if (kind === 'zoom') { p.zoom *= value.factor; p.zoomAt = value.at; }
    else if (kind === 'pan') { p.pan[0] += value[0]; p.pan[1] += value[1]; }
    else if (kind === 'orbit') { p.orbit[0] += value[0]; p.orbit[1] += value[1]; }
    if (this.rafId) return;
    // The first input after a pause goes out at once; a stream of them is coalesced to one
    // message per animation frame.
    if (performance.now() - this.lastFlush > IDLE_MS) this.flush();
    else this.rafId = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.rafId = 0;
    this.lastFlush = performance.now();
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    const send = this.hooks.send;
    this.pageRemainder += p.page;
    const whole = Math.trunc(this.pageRemainder);
    if (whole) {
      this.pageRemainder -= whole;
      send({ type: 'page', viewport: this.id, delta: whole });
      emit('paged', this, whole);
    }
    if (p.wl[0] || p.wl[1]) send({ type: 'window', viewport: this.id, drag_px: p.wl });
    if (p.zoom !== 1) {
      const msg = { type: 'zoom', viewport: this.id, factor: p.zoom };
      if (p.zoomAt) msg.at_px = p.zoomAt.map((v) => Math.round(v * 10) / 10);
      send(msg);
    }
    if (p.pan[0] || p.pan[1]) send({ type: 'pan', viewport: this.id, delta_px: p.pan.map((v) => Math.round(v * 100) / 100) });
    if (p.orbit[0] || p.orbit[1]) send({ type: 'orbit', viewport: this.id, delta_deg: p.orbit.map((v) => Math.round(v * 100) / 100) });
  }

  /** Event position in CSS px of the viewport's content box (where canvas and overlay lie). */
  local(ev) {
    const r = this.el.getBoundingClientRect();
    return [ev.clientX - r.left - this.el.clientLeft, ev.clientY - r.top - this.el.clientTop];
  }

  /** CSS px of the content box → page (client) coordinates. */
  toClient(pos) {
    const r = this.el.getBoundingClientRect();
    return [r.left + this.el.clientLeft + pos[0], r.top + this.el.clientTop + pos[1]];
  }

  pointer(e, ptr) {
    ptr.e = e;
    ptr.out = this.cssToOut(...ptr.pos);
    return ptr;
  }

  bindInput() {
    const el = this.el;
    el.addEventListener('contextmenu', (e) => e.preventDefault());
    el.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.hooks.onSelect(this);
      const unit = e.deltaMode === 1 ? 3 : e.deltaMode === 2 ? 1 : 100;
      let d = e.deltaY / unit;
      if (e.ctrlKey) { this.queue('zoom', { factor: Math.exp(-d * 0.15), at: this.cssToOut(...this.local(e)) }); return; }
      if (Math.abs(d) >= 0.5 && Math.abs(d) < 1) d = Math.sign(d);
      if (this.view?.render3d) this.queue('orbit', [d * 5, 0]);
      else this.queue('page', d);
    }, { passive: false });

    el.addEventListener('pointerdown', (e) => {
      this.hooks.onSelect(this);
      el.setPointerCapture(e.pointerId);
      const pos = this.local(e);
      let name = this.hooks.getTool();
      if (e.pointerType === 'mouse') {
        if (e.button === 2) name = 'zoom';
        else if (e.button === 1) { name = 'pan'; e.preventDefault(); }
        else if (e.button !== 0) return;
      }
      const ptr = { pos, start: pos, outStart: this.cssToOut(...pos), tool: getTool(name), type: e.pointerType, t0: performance.now(), moved: 0 };
      this.pointers.set(e.pointerId, ptr);
      clearTimeout(this.longPressTimer);
      if (this.pointers.size === 2) {
        for (const p of this.pointers.values()) if (p !== ptr && p.tool?.cancel) p.tool.cancel(this);
        this.pinch = this.pinchState();
        return;
      }
      if (e.pointerType === 'touch') {
        this.longPressTimer = setTimeout(() => {
          if (this.pointers.get(e.pointerId) === ptr && ptr.moved < 10) {
            ptr.tool?.cancel?.(this);
            ptr.tool = null;
            emit('longpress', this, pos);
          }
        }, LONG_PRESS_MS);
      }
      ptr.tool?.down?.(this, this.pointer(e, ptr));
    });

    el.addEventListener('pointermove', (e) => {
      const ptr = this.pointers.get(e.pointerId);
      if (!ptr) { emit('hover', this, this.local(e), e); return; }
      const pos = this.local(e);
      const dx = pos[0] - ptr.pos[0], dy = pos[1] - ptr.pos[1];
      ptr.pos = pos;
      ptr.moved += Math.abs(dx) + Math.abs(dy);
      if (ptr.moved >= 10) clearTimeout(this.longPressTimer);
      if (this.pointers.size >= 2) {
        // two fingers: pinch zooms about their midpoint, moving both pans
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
      ptr.tool?.move?.(this, this.pointer(e, ptr), dx, dy);
    });

    const end = (e) => {
      const ptr = this.pointers.get(e.pointerId);
      if (!ptr) return;
      clearTimeout(this.longPressTimer);
      const wasPinch = this.pointers.size >= 2 || this.pinch;
      this.pointers.delete(e.pointerId);
      if (this.pointers.size < 2) this.pinch = null;
      if (wasPinch) { for (const p of this.pointers.values()) p.tool = null; return; }
      if (e.type === 'pointercancel') ptr.tool?.cancel?.(this);
      else ptr.tool?.up?.(this, this.pointer(e, ptr));
      // double tap (touch) → reset
      if (ptr.type === 'touch' && e.type === 'pointerup' && ptr.moved < 10 && performance.now() - ptr.t0 < 300) {
        const now = performance.now();
        if (now - this.lastTap < 350) { this.lastTap = 0; this.hooks.send({ type: 'reset', viewport: this.id }); } else this.lastTap = now;
      }
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
    el.addEventListener('pointerleave', (e) => { if (!this.pointers.size) emit('hover', this, null, e); });
    el.addEventListener('dblclick', (e) => emit('dblclick', this, this.local(e), e));
  }

  pinchState() {
    const pts = [...this.pointers.values()].slice(0, 2).map((p) => p.pos);
    const center = [(pts[0][0] + pts[1][0]) / 2, (pts[0][1] + pts[1][1]) / 2];
    return { center, dist: Math.hypot(pts[0][0] - pts[1][0], pts[0][1] - pts[1][1]) };
  }
}

// The viewer's shared state and a small event bus, so that tools, panels and overlays stay in
// modules of their own: they read `app`, send protocol messages with `send()`, and listen to
// what the session reports (`on('state' | 'frame' | 'measurement' | 'crosshair' | 'session' |
// 'select' | 'tool' | 'overlays', fn)`). `window.voxcast` mirrors what tests and integrators
// may read (the latest state per viewport, the frames drawn, measurements, errors).

export const vox = window.voxcast = {
  sessionId: null, layout: null, states: {}, frames: {}, measurements: {}, annotations: [],
  errors: [], selected: null, status: 'connecting', tool: null, transport: 'websocket',
  // timing (ms since the page started): input seq → sent, frames drawn, the first frames
  sentAt: {}, drawn: [], firstFrameMs: null, firstLosslessMs: null,
};

export const app = {
  study: null,          // GET /api/studies/{uid} of the study opened
  studies: [],          // every study shown in this session (the current one first, then priors)
  seriesByUid: {},      // series UID → catalog series (with study_uid added)
  layouts: [],
  client: null,         // the SessionClient
  viewports: [],
  byId: new Map(),
  selected: null,
  tool: 'wl',
  overlays: true,
  sync: false,          // scroll sync between viewports
};

const listeners = new Map();

export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
  return () => listeners.get(name).delete(fn);
}

export function emit(name, ...args) {
  for (const fn of listeners.get(name) || []) {
    try { fn(...args); } catch (err) { recordError({ code: `listener:${name}`, message: String(err && err.stack || err) }); }
  }
}

export function recordError(e) {
  vox.errors.push(e);
  if (vox.errors.length > 100) vox.errors.shift();
}

const TIMING_LOG = 2000;

/** Send one protocol message over the session; its seq, or -1 when not connected. */
export function send(msg) {
  if (!app.client) return -1;
  const seq = app.client.send(msg);
  if (seq >= 0) {  // input → picture timing, for the benchmark and integrators' monitoring
    vox.sentAt[seq] = performance.now();
    delete vox.sentAt[seq - TIMING_LOG];
  }
  return seq;
}

/** Note a frame drawn (performance.now() ms), for input → picture timing. */
export function noteDrawn(viewport, header) {
  const t = performance.now();
  if (vox.firstFrameMs === null) vox.firstFrameMs = t;
  if (vox.firstLosslessMs === null && header.kind === 'lossless') vox.firstLosslessMs = t;
  vox.drawn.push({ viewport, t, input_seq: header.input_seq, kind: header.kind, width: header.width, bytes: header.bytes });
  if (vox.drawn.length > TIMING_LOG) vox.drawn.splice(0, vox.drawn.length - TIMING_LOG);
}

const waiting = new Map(); // seq → {resolve, reject, type}

/**
 * Send a message and resolve with the event of `type` that echoes its seq (e.g. `measure` →
 * `measurement`); rejects on an `error` event for that seq or after `timeoutMs`.
 */
export function request(msg, type, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const seq = send(msg);
    if (seq < 0) { reject(new Error('not connected')); return; }
    const timer = setTimeout(() => { waiting.delete(seq); reject(new Error(`${msg.type}: no answer`)); }, timeoutMs);
    waiting.set(seq, { type, resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
  });
}

/** Settle a pending request from an incoming event; true when one was waiting for it. */
export function answer(ev) {
  const w = ev.seq != null && waiting.get(ev.seq);
  if (!w) return false;
  if (ev.type === 'error') { waiting.delete(ev.seq); w.reject(Object.assign(new Error(ev.message), { code: ev.code })); return true; }
  if (ev.type === w.type) { waiting.delete(ev.seq); w.resolve(ev); return true; }
  return false;
}

export function selectedViewport() { return app.selected; }

/** The catalog series a viewport shows, or {}. */
export function seriesOf(vp) { return app.seriesByUid[vp?.state?.view?.series_uid] || {}; }

/** Show a toggle button's state (aria-pressed and the active look). */
export function setPressed(button, on) {
  if (!button) return;
  button.setAttribute('aria-pressed', String(on));
  button.classList.toggle('active', on);
}

/** The frame of reference UID of the series a viewport shows ('' when unknown). */
export function frameOfReference(vp) { return seriesOf(vp).frame_of_reference_uid || ''; }

export const isPhone = () => window.matchMedia('(pointer: coarse)').matches || window.innerWidth < 600;

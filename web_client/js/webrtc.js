// WebRTC video for the viewer. The session's WebSocket always brings the first frames, every
// `state` event and every lossless (PNG) settle frame. Once those first frames are drawn, this
// module offers the server one `recvonly` video transceiver per viewport (in viewport order) and
// the `control` data channel (POST /api/sessions/{id}/webrtc), and each viewport shows its track
// in a <video playsinline muted autoplay> under its canvas. While a viewport is interactive (a
// `state` newer than its last lossless frame) the video shows; when the settle frame of the
// latest state has been drawn, the canvas shows on top, so a still picture is always the
// lossless one. Once every video is flowing the WebSocket is told `{"type": "frames", "lossy":
// false}` (no more JPEG there). If ICE/DTLS or the first video frames take longer than
// CONNECT_TIMEOUT_MS, or a live connection fails (or stays disconnected for DROP_GRACE_MS), the
// connection is closed, the videos hidden and `{"lossy": true}` sent: the WebSocket JPEG path
// goes on as before. Each new session (layout change, reconnect) tries again once.
// `?transport=websocket` in the page URL, or a browser without RTCPeerConnection, never tries.
// `window.voxcast.transport` is 'webrtc' while video is live, else 'websocket';
// `window.voxcast.webrtc` = {state: 'off' | 'connecting' | 'live' | 'failed', reason}.
import { api } from './api.js';
import { app, vox, on, send } from './app.js';
import { t, defineStrings, onLangChange } from './i18n.js';

defineStrings({
  zh: { 'transport.webrtc': 'WebRTC 视频', 'transport.websocket': 'WebSocket 图像', 'transport.connecting': '正在连接视频…',
    'transport.hint': '操作时显示视频流，停止操作后显示无损图像' },
  en: { 'transport.webrtc': 'WebRTC video', 'transport.websocket': 'WebSocket frames', 'transport.connecting': 'Connecting video…',
    'transport.hint': 'Video while you interact, the lossless image when you stop' },
});

export const CONNECT_TIMEOUT_MS = 4000; // ICE + DTLS connected; then as long again for first frames
export const DROP_GRACE_MS = 3000;      // how long a live connection may stay 'disconnected'
const GATHER_TIMEOUT_MS = 1500;         // the server takes no trickled candidates: wait for them

const views = new WeakMap(); // Viewport → {video, stateSeq, losslessSeq}
let link = null;             // the VideoLink of the current session, if one was tried

function wanted() {
  return typeof window.RTCPeerConnection === 'function'
    && new URLSearchParams(location.search).get('transport') !== 'websocket';
}

// ---- the header label and window.voxcast ------------------------------------------------------

function publish(state, reason = null) {
  vox.webrtc = { state, reason };
  vox.transport = state === 'live' ? 'webrtc' : 'websocket';
  const el = document.getElementById('transport');
  if (!el) return;
  const key = state === 'connecting' ? 'connecting' : vox.transport;
  el.textContent = t(`transport.${key}`);
  el.title = t('transport.hint');
  el.dataset.transport = vox.transport;
  el.dataset.state = state;
}

// ---- one <video> per viewport -----------------------------------------------------------------

function makeVideo() {
  const video = document.createElement('video');
  // Attributes as well as properties: iOS Safari reads the attributes to allow inline autoplay.
  for (const name of ['playsinline', 'webkit-playsinline', 'muted', 'autoplay']) video.setAttribute(name, '');
  video.muted = true;
  video.defaultMuted = true;
  video.playsInline = true;
  video.autoplay = true;
  video.disablePictureInPicture = true;
  video.hidden = true;
  return video;
}

/** Show the video (interactive: a state newer than the last lossless frame) or the canvas. */
function update(vp) {
  const v = views.get(vp);
  if (!v) return;
  const mine = !!link && link.viewports.includes(vp);
  const live = mine && link.state === 'live' && v.stateSeq > v.losslessSeq;
  // Laid out (under the canvas) from the start: a video that is not displayed may not play.
  v.video.hidden = !(mine && (link.state === 'connecting' || link.state === 'live'));
  vp.el.classList.toggle('video-live', live);
  vp.el.dataset.picture = live ? 'video' : 'canvas';
}

function updateAll() { for (const vp of app.viewports) update(vp); }

/** Play `track` in `video`; resolves at its first decoded frame (never, if none comes). */
function play(video, track) {
  video.srcObject = new MediaStream([track]);
  const first = new Promise((resolve) => {
    if (typeof video.requestVideoFrameCallback === 'function') video.requestVideoFrameCallback(() => resolve());
    video.addEventListener('loadeddata', () => resolve(), { once: true });
  });
  const p = video.play();
  if (p && p.catch) p.catch(() => { /* autoplay refused or interrupted: the fallback timer decides */ });
  return first;
}

/** Resolves when ICE gathering is complete, or after `ms` (the offer then has what there is). */
function gathered(pc, ms) {
  return new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') { resolve(); return; }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() { if (pc.iceGatheringState === 'complete') done(); }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// ---- the connection ---------------------------------------------------------------------------

class VideoLink {
  constructor(client, sessionId, viewports) {
    this.client = client;       // the SessionClient this belongs to
    this.sessionId = sessionId;
    this.viewports = viewports; // in the session's viewport order
    this.state = 'connecting';
    this.pc = null;
    this.timers = new Set();
    this.dropTimer = 0;
  }

  /** Whether this is still the link of the session shown. */
  get current() { return link === this && app.client === this.client; }

  after(ms, fn) {
    const id = setTimeout(() => { this.timers.delete(id); fn(); }, ms);
    this.timers.add(id);
    return id;
  }

  async start() {
    publish('connecting');
    let receivers;
    try {
      const pc = this.pc = new RTCPeerConnection({ iceServers: [] }); // nothing outside is contacted
      receivers = this.viewports.map(() => pc.addTransceiver('video', { direction: 'recvonly' }).receiver);
      // The server expects this channel. Its events also come over the WebSocket, which brings
      // the lossless PNGs too: the channel is told not to repeat them (hundreds of KB a settle).
      this.channel = pc.createDataChannel('control');
      this.channel.onclose = () => this.fail('data channel closed');
      this.channel.onopen = () => this.channel.send(JSON.stringify({ type: 'frames', lossless: false, seq: 0 }));
      this.channel.onmessage = (ev) => { if (typeof ev.data !== 'string') vox.webrtcChannelFrameBytes = (vox.webrtcChannelFrameBytes || 0) + (ev.data.byteLength ?? ev.data.size ?? 0); };
      pc.onconnectionstatechange = () => this.onConnectionState();
      this.after(CONNECT_TIMEOUT_MS, () => {
        if (this.state === 'connecting' && pc.connectionState !== 'connected') this.fail('ICE/DTLS did not connect in time');
      });
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_TIMEOUT_MS);
      if (this.state !== 'connecting') return;
      if (!this.current) { this.fail('session replaced'); return; } // its session may be gone
      const answer = await api(`/api/sessions/${encodeURIComponent(this.sessionId)}/webrtc`, {
        method: 'POST', body: { sdp: pc.localDescription.sdp, type: 'offer' },
      });
      if (this.state !== 'connecting') return;
      await pc.setRemoteDescription(answer);
    } catch (err) {
      this.fail(`negotiation failed: ${err && err.message || err}`);
      return;
    }
    if (!this.current) { this.fail('session replaced'); return; }
    await Promise.all(this.viewports.map((vp, i) => play(views.get(vp).video, receivers[i].track)));
    if (this.state !== 'connecting') return;
    if (!this.current) { this.fail('session replaced'); return; }
    this.state = 'live';
    send({ type: 'frames', lossy: false });
    publish('live');
    updateAll();
  }

  onConnectionState() {
    if (this.state === 'closed' || this.state === 'failed') return;
    const s = this.pc.connectionState;
    if (s === 'failed' || s === 'closed') { this.fail(`connection ${s}`); return; }
    if (s === 'disconnected') {
      if (!this.dropTimer) this.dropTimer = this.after(DROP_GRACE_MS, () => this.fail('connection lost'));
      return;
    }
    if (this.dropTimer) { clearTimeout(this.dropTimer); this.timers.delete(this.dropTimer); this.dropTimer = 0; }
    if (s === 'connected' && this.state === 'connecting' && !this.connectedOnce) {
      this.connectedOnce = true;
      this.after(CONNECT_TIMEOUT_MS, () => { if (this.state === 'connecting') this.fail('no video frames'); });
    }
  }

  /** Give up on video: back to the WebSocket's JPEG frames (when this is still the session's). */
  fail(reason) {
    if (this.state === 'closed' || this.state === 'failed') return;
    const current = this.current;
    this.close();
    this.state = 'failed';
    if (!current) return;
    send({ type: 'frames', lossy: true });
    publish('failed', reason);
    updateAll();
  }

  close() {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.state = 'closed';
    for (const id of this.timers) clearTimeout(id);
    this.timers.clear();
    if (this.channel) this.channel.onclose = null;
    if (this.pc) {
      this.pc.onconnectionstatechange = null;
      try { this.pc.close(); } catch (_) { /* already closed */ }
    }
    for (const vp of this.viewports) {
      const v = views.get(vp);
      if (v) { v.video.pause(); v.video.srcObject = null; }
    }
  }
}

/** Start the session's link once its WebSocket is open and every viewport has a frame. */
function maybeStart() {
  if (link && link.client === app.client) return;
  const client = app.client;
  if (!client || !client.isOpen || !vox.sessionId) return;
  if (!app.viewports.length || !app.viewports.every((vp) => vp.lastSeq >= 0 && views.has(vp))) return;
  const next = link = new VideoLink(client, vox.sessionId, [...app.viewports]);
  updateAll();
  next.start().catch((err) => next.fail(String(err)));
}

// ---- what the viewer reports ------------------------------------------------------------------

on('grid', (viewports) => {
  for (const vp of viewports) {
    const video = makeVideo();
    vp.el.insertBefore(video, vp.canvas);
    views.set(vp, { video, stateSeq: -1, losslessSeq: -1 });
    update(vp);
  }
});

on('session', () => {
  if (link) { link.close(); link = null; }
  publish(wanted() ? 'connecting' : 'off');
  updateAll();
  maybeStart();
});

on('state', (vp, ev) => {
  const v = views.get(vp);
  if (!v || ev.unchanged) return;
  v.stateSeq = Math.max(v.stateSeq, ev.seq ?? 0);
  update(vp);
});

on('frame', (vp, header) => {
  const v = views.get(vp);
  if (v && header.kind === 'lossless') {
    v.losslessSeq = Math.max(v.losslessSeq, header.input_seq ?? 0);
    update(vp);
  }
  if (wanted()) maybeStart();
});

on('socket', (status) => {
  if (status !== 'open') return;
  if (link?.state === 'live' && link.current) send({ type: 'frames', lossy: false }); // a new socket starts lossy
  else if (wanted()) maybeStart();
});

onLangChange(() => publish(vox.webrtc?.state || 'off', vox.webrtc?.reason || null));
window.addEventListener('pagehide', () => { if (link) { link.close(); link = null; } });
publish(wanted() ? 'connecting' : 'off');

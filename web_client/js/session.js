// The render-session WebSocket client (protocol 1): sends JSON input messages with increasing
// seq numbers, parses binary frames (4-byte LE header length + JSON header + JPEG/PNG) and JSON
// events, and reconnects with backoff. When the session itself is gone (close code 4000, or the
// socket keeps failing) it calls onSessionLost so the viewer can open a new one.
import { wsUrl } from './api.js';

export function parseFrame(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  const image = new Uint8Array(buffer, 4 + n);
  return { header, image };
}

export class SessionClient {
  constructor(sessionId, { onFrame, onEvent, onStatus, onSessionLost }) {
    this.sessionId = sessionId;
    this.onFrame = onFrame;
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.onSessionLost = onSessionLost || (() => {});
    this.seq = 0;
    this.ws = null;
    this.closed = false;
    this.failures = 0;
    this.retryTimer = null;
    this.pingTimer = null;
  }

  connect() {
    if (this.closed) return;
    this.onStatus(this.failures ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(wsUrl(this.sessionId));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.failures = 0;
      this.onStatus('open');
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), 20000);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === 'string') {
        let msg;
        try { msg = JSON.parse(ev.data); } catch (_) { return; }
        this.onEvent(msg);
      } else {
        try { this.onFrame(parseFrame(ev.data)); } catch (err) { this.onEvent({ type: 'error', code: 'bad_frame', message: String(err) }); }
      }
    };
    ws.onclose = (ev) => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      if (ev.code === 4000 || ev.code === 4429) { this.onSessionLost(ev.code); return; }
      if (!opened) this.failures += 1;
      if (this.failures >= 4) { this.onSessionLost(ev.code); return; }
      this.onStatus('reconnecting');
      const delay = Math.min(4000, 400 * 2 ** this.failures);
      this.retryTimer = setTimeout(() => this.connect(), delay);
      this.failures += opened ? 1 : 0;
    };
  }

  get isOpen() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  /** Send one input message; returns its seq (or -1 when not connected). */
  send(msg) {
    if (!this.isOpen) return -1;
    this.seq += 1;
    this.ws.send(JSON.stringify({ ...msg, seq: this.seq }));
    return this.seq;
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    if (this.ws) { try { this.ws.close(1000); } catch (_) { /* */ } }
    this.ws = null;
  }
}

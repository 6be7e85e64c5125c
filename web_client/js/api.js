// Token handling and JSON API calls. The token arrives in the page URL (?token=…), is kept in
// sessionStorage, and is presented as `Authorization: Bearer` on fetch and as ?token= on links
// and WebSockets (where a header cannot be set).

const KEY = 'voxcast.token';

export function getToken() {
  const fromUrl = new URLSearchParams(location.search).get('token');
  if (fromUrl) {
    try { sessionStorage.setItem(KEY, fromUrl); } catch (_) { /* private mode */ }
    return fromUrl;
  }
  try { return sessionStorage.getItem(KEY) || ''; } catch (_) { return ''; }
}

/** `url` with the token appended as a query parameter. */
export function withToken(url) {
  const token = getToken();
  if (!token) return url;
  const u = new URL(url, location.origin);
  u.searchParams.set('token', token);
  return u.origin === location.origin ? u.pathname + u.search + u.hash : u.toString();
}

export class ApiError extends Error {
  /** kind: 'auth' (401), 'notfound' (404), 'unreachable' (network), 'server' (anything else) */
  constructor(kind, status, message) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

export async function api(path, { method = 'GET', body = undefined } = {}) {
  const headers = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError('unreachable', 0, String(err && err.message || err));
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (!resp.ok) {
    const msg = (data && data.error) || resp.statusText || `HTTP ${resp.status}`;
    const kind = resp.status === 401 ? 'auth' : resp.status === 404 ? 'notfound' : 'server';
    throw new ApiError(kind, resp.status, msg);
  }
  return data;
}

/** The WebSocket URL of a session, on this page's origin, with the token. */
export function wsUrl(sessionId) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = getToken();
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${proto}//${location.host}/api/sessions/${encodeURIComponent(sessionId)}/ws${q}`;
}

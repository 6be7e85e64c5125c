// The viewer page: opens a render session over one study, lays its viewports out in a CSS grid,
// and turns toolbar, keyboard, mouse and touch input into protocol messages for the selected
// viewport. The server renders; this page only draws frames and SVG overlays.
import { api, getToken, withToken } from './api.js';
import { SessionClient } from './session.js';
import { Viewport, fmtNum } from './viewport.js';
import { t, applyI18n, bindLangToggle, onLangChange } from './i18n.js';

const PRESETS = ['ct-lung', 'ct-mediastinum', 'ct-abdomen', 'ct-liver', 'ct-bone', 'ct-brain', 'ct-subdural', 'ct-stroke', 'pet-suv-0-5', 'pet-suv-0-10'];
const $ = (sel) => document.querySelector(sel);
const isPhone = () => window.matchMedia('(pointer: coarse)').matches || window.innerWidth < 600;

const vox = window.voxcast = { sessionId: null, layout: null, states: {}, frames: {}, measurements: {}, errors: [], selected: null, status: 'connecting' };

const app = {
  study: null,
  seriesByUid: {},
  layouts: [],
  client: null,
  viewports: [],
  byId: new Map(),
  selected: null,
  tool: isPhone() ? 'page' : 'wl',
  overlays: true,
  cine: {},        // viewport id → playing
  sentSize: {},    // viewport id → "w,h"
  statusKey: 'connecting',
  error: null,
};

// ---- status and errors -------------------------------------------------------------------

function setStatus(key) {
  app.statusKey = key;
  vox.status = key;
  const el = $('[data-testid="status"]');
  el.dataset.state = key;
  el.textContent = { connecting: t('statusConnecting'), loading: t('statusLoading'), ready: t('statusReady'),
    reconnecting: t('statusReconnecting'), error: t('statusError') }[key] || key;
}

function showError(err) {
  app.error = err;
  const box = $('[data-testid="error"]');
  if (!err) { box.hidden = true; return; }
  const key = { auth: 'errAuth', unreachable: 'errUnreachable', notfound: 'errNotFound', patient: 'errPatientNotFound', nostudy: 'errNoStudy' }[err.kind];
  box.textContent = key ? t(key) : t('errServer', { msg: err.message });
  box.hidden = false;
  setStatus('error');
}

function recordError(e) {
  vox.errors.push(e);
  if (vox.errors.length > 100) vox.errors.shift();
}

// ---- session -----------------------------------------------------------------------------

function send(msg) {
  if (!app.client) return -1;
  return app.client.send(msg);
}

function gridSize(columns, rows) {
  const g = $('#grid');
  const dpr = window.devicePixelRatio || 1;
  let w = (g.clientWidth / columns) * dpr, h = (g.clientHeight / rows) * dpr;
  const k = Math.min(1, 1024 / Math.max(w, h, 1));
  return [Math.max(16, Math.round(w * k)), Math.max(16, Math.round(h * k))];
}

async function openSession(layoutName) {
  const old = app.client;
  const oldId = vox.sessionId;
  if (old) old.close();
  if (oldId) api(`/api/sessions/${oldId}`, { method: 'DELETE' }).catch(() => {});
  app.client = null;
  setStatus('connecting');
  const lay = app.layouts.find((l) => l.name === layoutName) || { columns: 1, rows: 1 };
  let resp;
  try {
    resp = await api('/api/sessions', { method: 'POST', body: { study_uid: app.study.study_uid, layout: layoutName, viewport_size: gridSize(lay.columns, lay.rows) } });
  } catch (err) { showError(err); recordError({ code: 'session', message: err.message }); return; }
  showError(null);
  vox.sessionId = resp.session_id;
  vox.layout = resp.layout.name;
  vox.states = {}; vox.frames = {}; vox.measurements = {};
  buildGrid(resp.layout, resp.viewports);
  const client = new SessionClient(resp.session_id, {
    onFrame: onFrame,
    onEvent: onEvent,
    onStatus: (s) => {
      if (s === 'open') { app.sentSize = {}; sendSizes(); setStatus(allDrawn() ? 'ready' : 'loading'); } else setStatus(s);
    },
    onSessionLost: () => { if (app.client === client) { setStatus('reconnecting'); setTimeout(() => openSession(vox.layout), 500); } },
  });
  app.client = client;
  client.connect();
}

function buildGrid(layout, viewports) {
  const grid = $('#grid');
  grid.style.gridTemplateColumns = `repeat(${layout.columns}, minmax(0, 1fr))`;
  grid.style.gridTemplateRows = `repeat(${layout.rows}, minmax(0, 1fr))`;
  app.byId.clear();
  app.cine = {};
  setMeasurementText(null);
  app.viewports = viewports.map((v) => {
    const vp = new Viewport(v.id, {
      send,
      onSelect: select,
      onMeasure: (p, shape) => {
        setMeasurementText(null);
        send({ type: 'measure', viewport: p.id, shapes: [shape] });
      },
      onFrameDrawn: (p, h) => {
        vox.frames[p.id] = { seq: h.frame_seq, input_seq: h.input_seq, kind: h.kind, encoding: h.encoding, width: h.width, height: h.height, view_width: h.view_width, view_height: h.view_height };
        if (app.statusKey !== 'error' && app.statusKey !== 'reconnecting') setStatus(allDrawn() ? 'ready' : 'loading');
      },
      getTool: () => app.tool,
      getInfo: () => ({ study: app.study, seriesByUid: app.seriesByUid }),
      overlaysVisible: () => app.overlays,
    });
    app.byId.set(v.id, vp);
    return vp;
  });
  grid.replaceChildren(...app.viewports.map((v) => v.el));
  select(app.viewports[0]);
}

function allDrawn() { return app.viewports.length > 0 && app.viewports.every((v) => v.lastSeq >= 0); }

function sendSizes() {
  for (const vp of app.viewports) {
    const size = vp.wantedSize();
    const key = size.join(',');
    if (app.sentSize[vp.id] === key) continue;
    if (send({ type: 'size', viewport: vp.id, size_px: size }) >= 0) app.sentSize[vp.id] = key;
  }
}

function onFrame({ header, image }) {
  const vp = app.byId.get(header.viewport);
  if (vp) vp.drawFrame(header, image).catch((err) => recordError({ code: 'decode', message: String(err) }));
}

function onEvent(ev) {
  const vp = ev.viewport ? app.byId.get(ev.viewport) : null;
  switch (ev.type) {
    case 'state':
      if (vp) {
        vp.setState(ev);
        if (!ev.unchanged) vox.states[ev.viewport] = ev;
        if (vp === app.selected) syncControls();
      }
      break;
    case 'measurement': {
      const r = ev.results && ev.results[0];
      if (vp && r) { vp.setMeasurement(r); vox.measurements[ev.viewport] = { ...r, units: ev.units, shape: vp.roi?.shape, view: vox.states[ev.viewport]?.view }; }
      setMeasurementText(r ? { ...r, units: r.units || ev.units } : null);
      break;
    }
    case 'cine':
      if (vp) { app.cine[ev.viewport] = ev.playing ?? ev.state === 'playing' ?? ev.action === 'start'; syncControls(); }
      break;
    case 'error':
      recordError(ev);
      console.warn('voxcast:', ev.code, ev.message);
      break;
    case 'closing':
      setStatus('reconnecting');
      break;
    default:
      break;
  }
}

function setMeasurementText(r) {
  const box = $('[data-testid="measurement"]');
  app.lastMeasurement = r;
  if (!r) { box.hidden = true; box.textContent = ''; return; }
  const u = r.units ? ` ${r.units}` : '';
  const parts = [
    [t('mean'), `${fmtNum(r.mean)}${u}`], [t('std'), `${fmtNum(r.std)}${u}`],
    [t('min'), `${fmtNum(r.min)}${u}`], [t('max'), `${fmtNum(r.max)}${u}`],
    [t('area'), `${fmtNum(r.area_mm2)} mm²`],
  ];
  box.replaceChildren(...parts.flatMap(([k, v], i) => {
    const b = document.createElement('b');
    b.textContent = `${k} `;
    const s = document.createElement('span');
    s.textContent = v + (i < parts.length - 1 ? ' · ' : '');
    return [b, s];
  }));
  box.dataset.mean = r.mean; box.dataset.std = r.std; box.dataset.min = r.min; box.dataset.max = r.max; box.dataset.area = r.area_mm2;
  box.hidden = false;
}

// ---- selection and controls --------------------------------------------------------------

function select(vp) {
  if (!vp || app.selected === vp) return;
  app.selected = vp;
  vox.selected = vp.id;
  for (const v of app.viewports) v.setSelected(v === vp);
  syncControls();
}

function syncControls() {
  const vp = app.selected;
  const view = vp?.state?.view;
  $('#preset').value = view?.preset || '';
  if (view) {
    $('#slab').value = view.slab ? Math.round(view.slab.thickness_mm) : 0;
    if (view.slab) $('#slab-mode').value = view.slab.mode;
    $('#render').value = view.render3d ? view.render3d.method : 'mpr';
  }
  const playing = !!(vp && app.cine[vp.id]);
  const cine = $('#cine');
  cine.setAttribute('aria-pressed', String(playing));
  cine.textContent = playing ? t('cineStop') : t('cine');
}

function setTool(tool) {
  app.tool = tool;
  vox.tool = tool;
  for (const b of document.querySelectorAll('.tool')) b.classList.toggle('active', b.dataset.tool === tool);
}

function toggleCine() {
  const vp = app.selected;
  if (!vp) return;
  const playing = !app.cine[vp.id];
  const fps = Math.min(60, Math.max(0.5, +$('#fps').value || 10));
  send({ type: 'cine', viewport: vp.id, action: playing ? 'start' : 'stop', fps });
  app.cine[vp.id] = playing;
  syncControls();
}

function sendSlab() {
  const vp = app.selected;
  if (!vp) return;
  send({ type: 'slab', viewport: vp.id, thickness_mm: Math.max(0, +$('#slab').value || 0), mode: $('#slab-mode').value });
}

function fillLayouts() {
  const sel = $('#layout');
  const plain = document.createElement('optgroup');
  const petct = document.createElement('optgroup');
  plain.label = 'MPR / 1×N'; petct.label = 'PET-CT';
  for (const l of app.layouts) {
    const o = new Option(l.name, l.name);
    o.title = l.description;
    (l.petct ? petct : plain).append(o);
  }
  sel.replaceChildren(plain, petct);
}

function fillPresets() {
  const sel = $('#preset');
  const cur = sel.value;
  sel.replaceChildren(new Option(t('presetNone'), ''), ...PRESETS.map((p) => new Option(t(`preset.${p}`), p)));
  sel.value = cur;
}

function bindControls() {
  for (const b of document.querySelectorAll('.tool')) b.addEventListener('click', () => setTool(b.dataset.tool));
  $('#layout').addEventListener('change', (e) => openSession(e.target.value));
  $('#preset').addEventListener('change', (e) => {
    const vp = app.selected;
    if (!vp) return;
    if (e.target.value) send({ type: 'preset', viewport: vp.id, name: e.target.value });
    else send({ type: 'view', viewport: vp.id, set: { preset: null, window: null } });
  });
  const act = (msg) => () => { if (app.selected) send({ ...msg, viewport: app.selected.id }); };
  $('#reset').addEventListener('click', act({ type: 'reset' }));
  $('#invert').addEventListener('click', act({ type: 'invert' }));
  $('#flip').addEventListener('click', act({ type: 'flip', axis: 'horizontal' }));
  $('#rotate').addEventListener('click', act({ type: 'rotate', delta_deg: 90 }));
  $('#cine').addEventListener('click', toggleCine);
  $('#fps').addEventListener('change', () => {
    const vp = app.selected;
    if (vp && app.cine[vp.id]) send({ type: 'cine', viewport: vp.id, action: 'start', fps: Math.min(60, Math.max(0.5, +$('#fps').value || 10)) });
  });
  $('#slab').addEventListener('change', sendSlab);
  $('#slab-mode').addEventListener('change', sendSlab);
  $('#render').addEventListener('change', (e) => { if (app.selected) send({ type: 'mode', viewport: app.selected.id, render: e.target.value }); });
  $('#overlay').addEventListener('click', () => toggleOverlays());
  const bar = $('.viewer-bar');
  $('[data-testid="menu"]').addEventListener('click', () => {
    const open = bar.classList.toggle('open');
    $('[data-testid="menu"]').setAttribute('aria-expanded', String(open));
  });
  // close the phone menu after a choice so the image is visible again
  $('#toolbar').addEventListener('click', (e) => {
    if (e.target.closest('button') && !e.target.closest('[data-testid="lang"]') && window.innerWidth <= 900) bar.classList.remove('open');
  });

  window.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea')) return;
    const vp = app.selected;
    if (!vp) return;
    const page = (d) => { e.preventDefault(); send({ type: 'page', viewport: vp.id, delta: d }); };
    switch (e.key) {
      case 'ArrowUp': case 'ArrowLeft': page(-1); break;
      case 'ArrowDown': case 'ArrowRight': page(1); break;
      case 'PageUp': page(-10); break;
      case 'PageDown': page(10); break;
      case 'r': case 'R': send({ type: 'reset', viewport: vp.id }); break;
      case 'i': case 'I': send({ type: 'invert', viewport: vp.id }); break;
      case 'h': case 'H': send({ type: 'flip', viewport: vp.id, axis: 'horizontal' }); break;
      case 'o': case 'O': toggleOverlays(); break;
      case ' ': e.preventDefault(); toggleCine(); break;
      default: break;
    }
  });

  let resizeTimer = 0;
  new ResizeObserver(() => {
    for (const v of app.viewports) v.renderOverlay();
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(sendSizes, 120);
  }).observe($('#grid'));
}

function toggleOverlays() {
  app.overlays = !app.overlays;
  const b = $('#overlay');
  b.setAttribute('aria-pressed', String(app.overlays));
  b.classList.toggle('active', app.overlays);
  for (const v of app.viewports) v.renderOverlay();
}

// ---- start -------------------------------------------------------------------------------

async function resolveStudyUid(params) {
  const study = params.get('study');
  if (study) return study;
  const patient = params.get('patient');
  if (!patient) throw Object.assign(new Error('no study'), { kind: 'nostudy' });
  const list = await api(`/api/studies?PatientID=${encodeURIComponent(patient)}`);
  if (!list || !list.length) throw Object.assign(new Error('no studies'), { kind: 'patient' });
  list.sort((a, b) => `${b.study_date}${b.study_time}`.localeCompare(`${a.study_date}${a.study_time}`));
  return list[0].study_uid;
}

async function main() {
  applyI18n();
  bindLangToggle($('[data-testid="lang"]'));
  getToken();
  $('#back').href = withToken('/');
  fillPresets();
  setTool(app.tool);
  setStatus('connecting');
  bindControls();
  onLangChange(() => {
    fillPresets(); syncControls(); setStatus(app.statusKey);
    if (app.error) showError(app.error);
    if (app.lastMeasurement) setMeasurementText(app.lastMeasurement);
    for (const v of app.viewports) v.renderOverlay();
  });
  window.addEventListener('pagehide', () => {
    if (vox.sessionId) {
      app.client?.close();
      fetch(`/api/sessions/${vox.sessionId}`, { method: 'DELETE', keepalive: true, headers: { Authorization: `Bearer ${getToken()}` } }).catch(() => {});
    }
  });
  try {
    const params = new URLSearchParams(location.search);
    const uid = await resolveStudyUid(params);
    const [study, layouts] = await Promise.all([api(`/api/studies/${encodeURIComponent(uid)}`), api('/api/layouts')]);
    app.study = study;
    vox.study = { study_uid: study.study_uid, patient_id: study.patient_id };
    app.seriesByUid = Object.fromEntries((study.series || []).map((s) => [s.series_uid, s]));
    app.layouts = layouts;
    fillLayouts();
    const wanted = params.get('layout');
    const layout = layouts.some((l) => l.name === wanted) ? wanted : '1x1';
    $('#layout').value = layout;
    document.title = `${study.patient_name || study.patient_id || ''} — VoxCast`;
    await openSession(layout);
  } catch (err) {
    showError(err);
    recordError({ code: err.kind || 'startup', message: err.message });
  }
}

main();

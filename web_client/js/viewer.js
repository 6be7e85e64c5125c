// The viewer page: opens a render session over one study (and, for comparison, its priors), lays
// its viewports out in a CSS grid, and turns toolbar, keyboard, mouse and touch input into
// protocol messages for the selected viewport (R28). The server renders; this page only draws
// frames and SVG overlays. Tools, overlays and panels live in modules of their own (app.js
// explains how they talk).
import { api, getToken, withToken } from './api.js';
import { SessionClient } from './session.js';
import { Viewport, outputSize } from './viewport.js';
import { app, vox, on, emit, send, answer, recordError, isPhone, setPressed, noteDrawn } from './app.js';
import { allTools, getTool, GROUPS } from './tools.js';
import { t, applyI18n, bindLangToggle, onLangChange, defineStrings } from './i18n.js';
import './overlay.js';
import './mpr.js';
import './cpr.js';
import './magnifier.js';
import './series.js';
import './sync.js';
import './history.js';
import './shortcuts.js';
import { clearMarks, showResult } from './annotations.js';
import './roiwindow.js';
import './histogram.js';
import './masks.js';
import './webrtc.js';

defineStrings({
  zh: { flipV: '垂直翻转', vrPreset: 'VR预设', angle3d: '角度', fusionOpacity: '融合', fusionColormap: '伪彩', sync: '同步翻页',
    seriesPanel: '序列', history: '历史检查', resetHint: '恢复标准视图 (R)', toolMenu: '工具',
    'vr.ct-bone': '骨骼', 'vr.ct-soft-tissue': '软组织', 'vr.ct-vessels': '血管', 'vr.ct-lung': '肺', 'vr.pet': 'PET',
    'cmap.hot-iron': '热铁', 'cmap.pet': 'PET', 'cmap.hot-metal-blue': '热金属蓝', 'cmap.pet-20-step': 'PET 20阶', 'cmap.rainbow': '彩虹', 'cmap.jet': 'Jet', 'cmap.grey': '灰阶' },
  en: { flipV: 'Flip V', vrPreset: 'VR preset', angle3d: 'Angle', fusionOpacity: 'Fusion', fusionColormap: 'Colour map', sync: 'Sync scroll',
    seriesPanel: 'Series', history: 'History', resetHint: 'Back to the standard view (R)', toolMenu: 'Tools',
    'vr.ct-bone': 'Bone', 'vr.ct-soft-tissue': 'Soft tissue', 'vr.ct-vessels': 'Vessels', 'vr.ct-lung': 'Lung', 'vr.pet': 'PET',
    'cmap.hot-iron': 'Hot iron', 'cmap.pet': 'PET', 'cmap.hot-metal-blue': 'Hot metal blue', 'cmap.pet-20-step': 'PET 20 step', 'cmap.rainbow': 'Rainbow', 'cmap.jet': 'Jet', 'cmap.grey': 'Grey' },
});

const PRESETS = ['ct-lung', 'ct-mediastinum', 'ct-abdomen', 'ct-liver', 'ct-bone', 'ct-brain', 'ct-subdural', 'ct-stroke', 'pet-suv-0-5', 'pet-suv-0-10'];
const VR_PRESETS = ['ct-bone', 'ct-soft-tissue', 'ct-vessels', 'ct-lung', 'pet'];
const COLORMAPS = ['hot-iron', 'pet', 'hot-metal-blue', 'pet-20-step', 'rainbow', 'jet', 'grey'];
const $ = (sel) => document.querySelector(sel);

app.tool = isPhone() ? 'page' : 'wl';
app.cine = {};        // viewport id → playing
app.sentSize = {};    // viewport id → "w,h"
app.statusKey = 'connecting';
app.error = null;

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

// ---- session -----------------------------------------------------------------------------

function gridSize(columns, rows) {
  const g = $('#grid');
  return outputSize(g.clientWidth / columns, g.clientHeight / rows);
}

/** Series facts of the session (the server's list when it sends one), keyed by UID. */
function indexSeries(resp) {
  const byUid = {};
  for (const study of app.studies) for (const s of study.series || []) byUid[s.series_uid] = { ...s, study_uid: study.study_uid };
  for (const s of resp.series || []) byUid[s.series_uid] = { ...(byUid[s.series_uid] || {}), ...s };
  app.seriesByUid = byUid;
}

/**
 * Open a render session with `layoutName` over the current study and `priors` (study UIDs of
 * the same patient shown next to it). Replaces the session shown.
 */
export async function openSession(layoutName, { priors = app.priors || [] } = {}) {
  const old = app.client;
  const oldId = vox.sessionId;
  if (old) old.close();
  if (oldId) api(`/api/sessions/${oldId}`, { method: 'DELETE' }).catch(() => {});
  app.client = null;
  setStatus('connecting');
  const shape = gridShape(app.layouts.find((l) => l.name === layoutName) || { columns: 1, rows: 1 });
  let resp;
  const body = { study_uid: app.study.study_uid, layout: layoutName, viewport_size: gridSize(shape.columns, shape.rows) };
  if (priors.length) body.prior_study_uids = priors;
  try {
    resp = await api('/api/sessions', { method: 'POST', body });
  } catch (err) { showError(err); recordError({ code: 'session', message: err.message }); return; }
  showError(null);
  app.priors = priors;
  vox.sessionId = resp.session_id;
  vox.layout = resp.layout.name;
  vox.priors = priors;
  vox.states = {}; vox.frames = {};
  $('#layout').value = resp.layout.name;
  indexSeries(resp);
  buildGrid(resp.layout, resp.viewports);
  const client = new SessionClient(resp.session_id, {
    onFrame,
    onEvent,
    onStatus: (s) => {
      if (s === 'open') { app.sentSize = {}; sendSizes(); setStatus(allDrawn() ? 'ready' : 'loading'); } else setStatus(s);
      emit('socket', s);
    },
    onSessionLost: () => { if (app.client === client) { setStatus('reconnecting'); setTimeout(() => openSession(vox.layout), 500); } },
  });
  app.client = client;
  client.connect();
  emit('session', resp);
}

/**
 * The grid's shape on this screen: a layout wider than tall is transposed on a portrait screen
 * (a phone), filling columns first, so CT | PET | fusion stack up instead of becoming slivers.
 */
function gridShape(layout) {
  const g = $('#grid');
  if (layout.columns > layout.rows && g.clientHeight > g.clientWidth * 1.2) return { columns: layout.rows, rows: layout.columns, flow: 'column' };
  return { columns: layout.columns, rows: layout.rows, flow: 'row' };
}

function applyGridShape() {
  if (!app.layout) return;
  const grid = $('#grid');
  const shape = gridShape(app.layout);
  grid.style.gridTemplateColumns = `repeat(${shape.columns}, minmax(0, 1fr))`;
  grid.style.gridTemplateRows = `repeat(${shape.rows}, minmax(0, 1fr))`;
  grid.style.gridAutoFlow = shape.flow;
  vox.gridShape = shape;
}

function buildGrid(layout, viewports) {
  const grid = $('#grid');
  app.layout = layout;
  applyGridShape();
  app.byId.clear();
  app.cine = {};
  app.selected = null;
  app.viewports = viewports.map((v) => {
    const vp = new Viewport(v.id, {
      send,
      onSelect: select,
      onFrameDrawn: (p, h) => {
        vox.frames[p.id] = { seq: h.frame_seq, input_seq: h.input_seq, kind: h.kind, encoding: h.encoding, width: h.width, height: h.height, view_width: h.view_width, view_height: h.view_height };
        noteDrawn(p.id, h);
        if (app.statusKey !== 'error' && app.statusKey !== 'reconnecting') setStatus(allDrawn() ? 'ready' : 'loading');
        emit('frame', p, h);
      },
      getTool: () => app.tool,
    });
    vp.initialView = v.view;
    app.byId.set(v.id, vp);
    return vp;
  });
  grid.replaceChildren(...app.viewports.map((v) => v.el));
  select(app.viewports[0]);
  emit('grid', app.viewports);
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
  answer(ev);
  const vp = ev.viewport ? app.byId.get(ev.viewport) : null;
  switch (ev.type) {
    case 'hello':
      if (ev.series) indexSeries(ev);
      break;
    case 'state':
      if (vp) {
        const before = vp.state;
        vp.setState(ev);
        if (!ev.unchanged) vox.states[ev.viewport] = ev;
        if (vp === app.selected) syncControls();
        emit('state', vp, ev, before);
      }
      break;
    case 'cine':
      if (vp) { app.cine[ev.viewport] = ev.fps > 0; syncControls(); }
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
  emit(`ev:${ev.type}`, ev, vp);
}

// ---- selection and controls --------------------------------------------------------------

export function select(vp) {
  if (!vp || app.selected === vp) return;
  app.selected = vp;
  vox.selected = vp.id;
  for (const v of app.viewports) v.setSelected(v === vp);
  syncControls();
  emit('select', vp);
}

function syncControls() {
  const vp = app.selected;
  const view = vp?.state?.view;
  $('#preset').value = view?.preset || '';
  if (view) {
    $('#slab').value = view.slab ? Math.round(view.slab.thickness_mm) : 0;
    if (view.slab) $('#slab-mode').value = view.slab.mode;
    $('#render').value = view.render3d ? view.render3d.method : 'mpr';
    const vr = view.render3d?.method === 'vr';
    $('#vr-field').hidden = !vr;
    if (vr) $('#vr-preset').value = view.render3d.preset || (app.seriesByUid[view.series_uid]?.modality === 'PT' ? 'pet' : 'ct-bone');
    $('#angle-field').hidden = !view.render3d;
    if (view.render3d && document.activeElement !== $('#angle3d')) $('#angle3d').value = Math.round(view.orbit_deg?.[0] || 0) % 360;
    const layer = view.layers?.[0];
    $('#fusion-controls').hidden = !layer;
    if (layer) {
      if (document.activeElement !== $('#fusion-opacity')) $('#fusion-opacity').value = Math.round((layer.opacity ?? 0.5) * 100);
      $('#fusion-colormap').value = layer.colormap || 'hot-iron';
    }
  }
  const playing = !!(vp && app.cine[vp.id]);
  const cine = $('#cine');
  cine.setAttribute('aria-pressed', String(playing));
  cine.textContent = playing ? t('cineStop') : t('cine');
}

export function setTool(name) {
  if (!getTool(name)) return;
  app.tool = name;
  vox.tool = name;
  for (const b of document.querySelectorAll('[data-tool]')) b.classList.toggle('active', b.dataset.tool === name);
  for (const v of app.viewports) { if (v.draft) { v.draft = null; v.renderOverlay(); } }
  emit('tool', name);
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

/** Change the selected viewport's first fusion layer (opacity, colour map). */
function setLayer(changes) {
  const vp = app.selected;
  const layers = vp?.state?.view?.layers;
  if (!layers?.length) return;
  send({ type: 'view', viewport: vp.id, set: { layers: [{ ...layers[0], ...changes }, ...layers.slice(1)] } });
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

function fillSelects() {
  const fill = (sel, items, prefix, first) => {
    const cur = sel.value;
    sel.replaceChildren(...(first ? [first] : []), ...items.map((p) => new Option(t(`${prefix}${p}`), p)));
    sel.value = cur;
  };
  fill($('#preset'), PRESETS, 'preset.', new Option(t('presetNone'), ''));
  fill($('#vr-preset'), VR_PRESETS, 'vr.');
  fill($('#fusion-colormap'), COLORMAPS, 'cmap.');
}

function fillTools() {
  const box = $('#tools');
  const buttons = [];
  for (const group of GROUPS) {
    for (const tool of allTools().filter((x) => x.group === group)) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `btn tool group-${group}`;
      b.dataset.tool = tool.name;
      b.dataset.testid = `tool-${tool.name}`;
      b.setAttribute('data-testid', `tool-${tool.name}`);
      b.textContent = t(tool.label);
      b.title = tool.key ? `${t(tool.label)} (${tool.key.toUpperCase()})` : t(tool.label);
      b.addEventListener('click', () => setTool(tool.name));
      buttons.push(b);
    }
  }
  box.replaceChildren(...buttons);
  setTool(app.tool);
}

/** The phone's long-press menu: every tool, a tap picks it for the one-finger gesture. */
function openToolMenu(vp, pos) {
  const menu = $('#tool-menu');
  const [cx, cy] = vp.toClient(pos);
  menu.replaceChildren(...allTools().map((tool) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `btn${tool.name === app.tool ? ' active' : ''}`;
    b.dataset.tool = tool.name;
    b.textContent = t(tool.label);
    b.addEventListener('click', () => { setTool(tool.name); menu.hidden = true; });
    return b;
  }));
  menu.hidden = false;
  const w = menu.offsetWidth, h = menu.offsetHeight;
  menu.style.left = `${Math.max(4, Math.min(window.innerWidth - w - 4, cx - w / 2))}px`;
  menu.style.top = `${Math.max(4, Math.min(window.innerHeight - h - 4, cy - h / 2))}px`;
  vox.toolMenu = true;
}

function bindControls() {
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
  $('#flip-v').addEventListener('click', act({ type: 'flip', axis: 'vertical' }));
  $('#rotate').addEventListener('click', act({ type: 'rotate', delta_deg: 90 }));
  $('#cine').addEventListener('click', toggleCine);
  $('#fps').addEventListener('change', () => {
    const vp = app.selected;
    if (vp && app.cine[vp.id]) send({ type: 'cine', viewport: vp.id, action: 'start', fps: Math.min(60, Math.max(0.5, +$('#fps').value || 10)) });
  });
  $('#slab').addEventListener('change', sendSlab);
  $('#slab-mode').addEventListener('change', sendSlab);
  $('#render').addEventListener('change', (e) => { if (app.selected) send({ type: 'mode', viewport: app.selected.id, render: e.target.value }); });
  $('#vr-preset').addEventListener('change', (e) => { if (app.selected) send({ type: 'mode', viewport: app.selected.id, render: 'vr', preset: e.target.value }); });
  $('#angle3d').addEventListener('input', (e) => {
    const vp = app.selected;
    if (vp?.state?.view?.render3d) send({ type: 'orbit', viewport: vp.id, deg: [+e.target.value, vp.state.view.orbit_deg?.[1] || 0] });
  });
  $('#fusion-opacity').addEventListener('input', (e) => setLayer({ opacity: +e.target.value / 100 }));
  $('#fusion-colormap').addEventListener('change', (e) => setLayer({ colormap: e.target.value }));
  $('#overlay').addEventListener('click', () => toggleOverlays());
  $('#sync').addEventListener('click', () => setSync(!app.sync));
  $('#clear-marks').addEventListener('click', () => clearMarks());
  const bar = $('.viewer-bar');
  $('[data-testid="menu"]').addEventListener('click', () => {
    const open = bar.classList.toggle('open');
    $('[data-testid="menu"]').setAttribute('aria-expanded', String(open));
  });
  // close the phone menu after a choice so the image is visible again
  $('#toolbar').addEventListener('click', (e) => {
    if (e.target.closest('button') && !e.target.closest('[data-testid="lang"]') && window.innerWidth <= 900) bar.classList.remove('open');
  });
  on('longpress', openToolMenu);
  document.addEventListener('pointerdown', (e) => { if (!e.target.closest('#tool-menu')) { $('#tool-menu').hidden = true; vox.toolMenu = false; } }, true);

  window.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
    const vp = app.selected;
    if (!vp) return;
    const page = (d) => { e.preventDefault(); send({ type: 'page', viewport: vp.id, delta: d }); emit('paged', vp, d); };
    switch (e.key) {
      case 'ArrowUp': case 'ArrowLeft': page(-1); return;
      case 'ArrowDown': case 'ArrowRight': page(1); return;
      case 'PageUp': page(-10); return;
      case 'PageDown': page(10); return;
      case 'Home': e.preventDefault(); send({ type: 'page', viewport: vp.id, index: 0 }); return;
      case 'End': e.preventDefault(); send({ type: 'page', viewport: vp.id, index: 1e5 }); return;
      case 'r': case 'R': send({ type: 'reset', viewport: vp.id }); return;
      case 'i': case 'I': send({ type: 'invert', viewport: vp.id }); return;
      case 'h': case 'H': send({ type: 'flip', viewport: vp.id, axis: 'horizontal' }); return;
      case 'v': case 'V': send({ type: 'flip', viewport: vp.id, axis: 'vertical' }); return;
      case 'o': case 'O': toggleOverlays(); return;
      case 's': case 'S': setSync(!app.sync); return;
      case ' ': e.preventDefault(); toggleCine(); return;
      case 'Escape': for (const v of app.viewports) { v.draft = null; v.renderOverlay(); } return;
      case 'Tab': {
        e.preventDefault();
        const i = app.viewports.indexOf(vp);
        select(app.viewports[(i + (e.shiftKey ? app.viewports.length - 1 : 1)) % app.viewports.length]);
        return;
      }
      default: break;
    }
    if (/^[1-9]$/.test(e.key) && PRESETS[+e.key - 1]) { send({ type: 'preset', viewport: vp.id, name: PRESETS[+e.key - 1] }); return; }
    const tool = allTools().find((x) => x.key && x.key === e.key.toLowerCase());
    if (tool) setTool(tool.name);
  });

  let resizeTimer = 0;
  new ResizeObserver(() => {
    applyGridShape();
    for (const v of app.viewports) v.renderOverlay();
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(sendSizes, 120);
  }).observe($('#grid'));
}

function toggleOverlays() {
  app.overlays = !app.overlays;
  setPressed($('#overlay'), app.overlays);
  for (const v of app.viewports) v.renderOverlay();
  emit('overlays', app.overlays);
}

export function setSync(onOff) {
  app.sync = onOff;
  vox.sync = onOff;
  setPressed($('#sync'), onOff);
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

/** Load the catalog record of a study (cached in app.studies). */
export async function loadStudy(uid) {
  const known = app.studies.find((s) => s.study_uid === uid);
  if (known) return known;
  const study = await api(`/api/studies/${encodeURIComponent(uid)}`);
  app.studies.push(study);
  return study;
}

async function main() {
  applyI18n();
  bindLangToggle($('[data-testid="lang"]'));
  getToken();
  $('#back').href = withToken('/');
  fillSelects();
  fillTools();
  setStatus('connecting');
  bindControls();
  onLangChange(() => {
    fillSelects(); fillTools(); syncControls(); setStatus(app.statusKey);
    if (app.error) showError(app.error);
    emit('lang');
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
    app.studies = [study];
    vox.study = { study_uid: study.study_uid, patient_id: study.patient_id };
    app.seriesByUid = Object.fromEntries((study.series || []).map((s) => [s.series_uid, { ...s, study_uid: study.study_uid }]));
    app.layouts = layouts;
    fillLayouts();
    const wanted = params.get('layout');
    const layout = layouts.some((l) => l.name === wanted) ? wanted : '1x1';
    $('#layout').value = layout;
    document.title = `${study.patient_name || study.patient_id || ''} — VoxCast`;
    emit('study', study);
    await openSession(layout);
  } catch (err) {
    showError(err);
    recordError({ code: err.kind || 'startup', message: err.message });
  }
}

showResult(null);
main();

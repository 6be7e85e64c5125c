// The "holographic" history view (R36): all of the patient's studies on a timeline. Any prior
// opens next to the current study (a session over both: the current study's main series on
// the left, the prior's on the right), with synced paging where they share a frame of
// reference (same patient position); otherwise sync moves slice by slice. "Open" makes a study
// the current one (a new launch URL, so the browser's back button returns).
import { app, vox, on, send, frameOfReference, setPressed } from './app.js';
import { parallel, normalOf, dot } from './geometry.js';
import { api, withToken } from './api.js';
import { t, defineStrings, fmtDate } from './i18n.js';
import { openSession, loadStudy, setSync } from './viewer.js';

defineStrings({
  zh: { historyTitle: '历史检查（{n}）', compare: '对比', openStudy: '打开', current: '当前', closeCompare: '结束对比',
    sameFor: '同一参考坐标系：按位置同步翻页', otherFor: '参考坐标系不同：按层同步翻页', noPriors: '该患者没有其他检查' },
  en: { historyTitle: 'History ({n})', compare: 'Compare', openStudy: 'Open', current: 'Current', closeCompare: 'End comparison',
    sameFor: 'Shared frame of reference: paging synced by position', otherFor: 'Different frames of reference: paging synced slice by slice', noPriors: 'No other studies of this patient' },
});

const panel = () => document.getElementById('history-panel');
let studies = [];

async function load() {
  if (!app.study) return;
  try {
    studies = await api(`/api/studies?PatientID=${encodeURIComponent(app.study.patient_id)}`) || [];
  } catch (err) {
    studies = [];
  }
  studies.sort((a, b) => `${a.study_date}${a.study_time}`.localeCompare(`${b.study_date}${b.study_time}`));
  vox.history = studies.map((s) => ({ study_uid: s.study_uid, study_date: s.study_date, modalities: s.modalities }));
  render();
}

const dayNumber = (da) => (da && da.length >= 8 ? Date.UTC(+da.slice(0, 4), +da.slice(4, 6) - 1, +da.slice(6, 8)) / 864e5 : null);

function render() {
  const box = panel();
  if (!box) return;
  const head = document.createElement('div');
  head.className = 'history-head';
  const title = document.createElement('b');
  title.textContent = t('historyTitle', { n: studies.length });
  head.append(title);
  if (app.priors?.length) {
    const end = document.createElement('button');
    end.type = 'button';
    end.className = 'btn';
    end.setAttribute('data-testid', 'end-compare');
    end.textContent = t('closeCompare');
    end.addEventListener('click', () => { setSync(false); openSession('1x1', { priors: [] }); });
    const note = document.createElement('span');
    note.className = 'muted';
    note.setAttribute('data-testid', 'compare-note');
    note.textContent = sharedFrame() ? t('sameFor') : t('otherFor');
    head.append(end, note);
  }
  const line = document.createElement('div');
  line.className = 'timeline';
  const axis = document.createElement('div');
  axis.className = 'time-axis';
  axis.setAttribute('data-testid', 'time-axis');
  const days = studies.map((s) => dayNumber(s.study_date)).filter((d) => d !== null);
  const lo = Math.min(...days), hi = Math.max(...days);
  for (const s of studies) {
    const d = dayNumber(s.study_date);
    const card = document.createElement('div');
    const isCurrent = s.study_uid === app.study.study_uid;
    const isPrior = (app.priors || []).includes(s.study_uid);
    card.className = `study-card${isCurrent ? ' current' : ''}${isPrior ? ' compared' : ''}`;
    card.setAttribute('data-testid', 'history-study');
    card.dataset.studyUid = s.study_uid;
    // position on the time axis (cards keep their order; the axis is proportional when dates differ)
    const x = hi > lo && d !== null ? (d - lo) / (hi - lo) : 0.5;
    const dot = document.createElement('span');
    dot.className = `time-dot${isCurrent ? ' current' : ''}${isPrior ? ' compared' : ''}`;
    dot.style.left = `${(4 + x * 92).toFixed(2)}%`;
    dot.title = fmtDate(s.study_date);
    dot.dataset.label = (s.study_date || '').slice(0, 4);
    axis.append(dot);
    const date = document.createElement('b');
    date.textContent = fmtDate(s.study_date) || '—';
    const what = document.createElement('span');
    what.textContent = `${(s.modalities || []).join('/')} ${s.study_description || ''}`.trim();
    const count = document.createElement('small');
    count.textContent = `${s.series_count} ${t('series')} · ${s.instance_count} ${t('images')}`;
    card.append(date, what, count);
    if (isCurrent) {
      const tag = document.createElement('small');
      tag.className = 'tag';
      tag.textContent = t('current');
      card.append(tag);
    } else {
      const actions = document.createElement('div');
      const cmp = document.createElement('button');
      cmp.type = 'button';
      cmp.className = `btn${isPrior ? ' active' : ''}`;
      cmp.setAttribute('data-testid', 'compare');
      cmp.textContent = t('compare');
      cmp.addEventListener('click', () => compare(s.study_uid));
      const open = document.createElement('a');
      open.className = 'btn';
      open.textContent = t('openStudy');
      open.href = withToken(`/viewer?study=${encodeURIComponent(s.study_uid)}`);
      actions.append(cmp, open);
      card.append(actions);
    }
    line.append(card);
  }
  if (studies.length < 2) {
    const none = document.createElement('span');
    none.className = 'muted';
    none.textContent = t('noPriors');
    line.append(none);
  }
  box.replaceChildren(head, axis, line);
}

/** Whether the current study and the compared prior share a frame of reference. */
function sharedFrame() {
  const fors = (uid) => new Set(Object.values(app.seriesByUid).filter((s) => s.study_uid === uid && s.frame_of_reference_uid).map((s) => s.frame_of_reference_uid));
  const mine = fors(app.study.study_uid);
  return (app.priors || []).some((p) => [...fors(p)].some((f) => mine.has(f)));
}

/** Two planar viewports in one (known) frame of reference. */
const sameFrame = (a, b) => a?.isPlanar && b?.isPlanar && !!frameOfReference(a) && frameOfReference(a) === frameOfReference(b);

/** Resolves once `ready()` holds, checked now and after every state event. */
function when(ready) {
  return new Promise((resolve) => {
    const check = () => { if (ready()) { off(); resolve(); } };
    const off = on('state', check);
    check();
  });
}

/**
 * Show each prior's viewport in the current viewport's orientation when they share a frame of
 * reference but their planes are not parallel (e.g. a gantry-tilted prior): the same row and
 * column directions in patient space, through the prior viewport's own centre. Then the same
 * anatomy pages in step.
 */
function alignPriors() {
  const [first, ...rest] = app.viewports;
  const turned = [];
  for (const vp of rest) {
    if (!sameFrame(first, vp) || parallel(vp.plane, first.plane)) continue;
    send({ type: 'view', viewport: vp.id, set: { plane: { center_lps: vp.plane.center_lps, row_dir: first.plane.row_dir, col_dir: first.plane.col_dir,
      pixel_spacing_mm: vp.plane.pixel_spacing_mm, size_px: vp.plane.size_px }, orbit_deg: [0, 0], rotation_deg: 0, flip_horizontal: false,
    flip_vertical: false, zoom: 1, pan_px: [0, 0] } });
    turned.push(vp);
  }
  return when(() => turned.every((vp) => vp.plane && parallel(vp.plane, first.plane)));
}

/** Move each prior viewport in the current one's frame of reference to its patient position. */
function syncToCurrent() {
  const [first, ...rest] = app.viewports;
  for (const vp of rest) {
    if (!sameFrame(first, vp) || !parallel(vp.plane, first.plane)) continue;
    const n = normalOf(vp.plane);
    send({ type: 'page', viewport: vp.id, position_mm: Math.round(dot(first.plane.center_lps, n) * 1000) / 1000 });
  }
}

export async function compare(uid) {
  vox.compareAligned = false;
  await loadStudy(uid);
  await openSession(app.layouts.some((l) => l.name === '1x2') ? '1x2' : vox.layout, { priors: [uid] });
  setSync(true);
  render();
  await when(() => app.viewports.length > 0 && app.viewports.every((v) => v.plane || v.view?.render3d));
  await alignPriors();
  syncToCurrent();
  vox.compareAligned = true;
}

export function toggleHistory(show) {
  const box = panel();
  box.hidden = !show;
  setPressed(document.getElementById('history-toggle'), show);
  if (show) load();
}

document.getElementById('history-toggle')?.addEventListener('click', () => toggleHistory(panel().hidden));
on('study', () => { if (!panel().hidden) load(); });
on('session', () => { if (!panel().hidden) render(); });
on('lang', render);

// The series panel: a thumbnail per series of the studies shown (the current study, then any
// prior opened for comparison), rendered by the server (DICOMweb thumbnail). Click one to show
// it in the selected viewport, or drag it onto any viewport (`series` message: the series'
// first view, which becomes that viewport's reset view). Series without a volume (SEG, RWV,
// still building) are listed, greyed, with their state.
import { app, on, send, isPhone, setPressed } from './app.js';
import { withToken } from './api.js';
import { t, defineStrings, fmtDate } from './i18n.js';

defineStrings({
  zh: { imagesN: '{n} 幅', currentStudy: '当前检查', priorStudy: '既往检查', 'vstate.pending': '等待中', 'vstate.building': '重建中',
    'vstate.failed': '无法重建', 'vstate.not_volumetric': '非图像序列', dragHint: '单击显示在所选窗口，或拖到任一窗口' },
  en: { imagesN: '{n} images', currentStudy: 'Current study', priorStudy: 'Prior study', 'vstate.pending': 'pending', 'vstate.building': 'building',
    'vstate.failed': 'cannot be built', 'vstate.not_volumetric': 'not an image stack', dragHint: 'Click: show in the selected viewport; or drag onto a viewport' },
});

const MIME = 'application/x-voxcast-series';
const panel = () => document.getElementById('series-panel');

/** Whether the session can show this series (it has a volume). */
function showable(s) {
  if (app.sessionSeries) return app.sessionSeries.has(s.series_uid);
  return s.volume_state === 'ready';
}

export function showSeries(vp, uid) {
  if (!vp || !uid) return;
  send({ type: 'series', viewport: vp.id, series_uid: uid });
}

function item(study, s) {
  const ok = showable(s);
  const el = document.createElement('div');
  el.className = `series-item${ok ? '' : ' disabled'}`;
  el.setAttribute('data-testid', 'series-item');
  el.dataset.seriesUid = s.series_uid;
  el.title = ok ? t('dragHint') : t(`vstate.${s.volume_state}`);
  const img = document.createElement('img');
  img.loading = 'lazy';
  img.alt = '';
  img.draggable = false;
  if (ok) img.src = withToken(`/dicomweb/studies/${encodeURIComponent(study.study_uid)}/series/${encodeURIComponent(s.series_uid)}/thumbnail?viewport=96,96`);
  const text = document.createElement('div');
  text.className = 'series-text';
  const head = document.createElement('b');
  head.textContent = `${s.modality || '?'} ${s.series_number ?? ''}`.trim();
  const desc = document.createElement('span');
  desc.textContent = s.series_description || '';
  const count = document.createElement('small');
  count.textContent = ok ? t('imagesN', { n: s.instance_count }) : t(`vstate.${s.volume_state}`);
  text.append(head, desc, count);
  el.append(img, text);
  if (ok) {
    el.draggable = true;
    el.addEventListener('dragstart', (e) => { e.dataTransfer.setData(MIME, s.series_uid); e.dataTransfer.effectAllowed = 'copy'; });
    el.addEventListener('click', () => showSeries(app.selected, s.series_uid));
  }
  return el;
}

export function renderSeriesPanel() {
  const box = panel();
  if (!box) return;
  const groups = app.studies.map((study, i) => {
    const g = document.createElement('section');
    g.className = 'series-group';
    const h = document.createElement('h3');
    h.textContent = `${i === 0 ? t('currentStudy') : t('priorStudy')} ${fmtDate(study.study_date)}`;
    g.append(h, ...(study.series || []).map((s) => item(study, s)));
    return g;
  });
  box.replaceChildren(...groups);
  markShown();
}

/** Outline the series shown in the selected viewport. */
function markShown() {
  const uid = app.selected?.view?.series_uid;
  for (const el of document.querySelectorAll('.series-item')) el.classList.toggle('shown', el.dataset.seriesUid === uid);
}

on('session', (resp) => {
  app.sessionSeries = resp.series ? new Set(resp.series.map((s) => s.series_uid)) : null;
  renderSeriesPanel();
});
on('select', markShown);
on('state', (vp) => { if (vp === app.selected) markShown(); });
on('lang', renderSeriesPanel);

// every viewport takes a dropped series
on('grid', (viewports) => {
  for (const vp of viewports) {
    vp.el.addEventListener('dragover', (e) => { if (e.dataTransfer.types.includes(MIME)) { e.preventDefault(); vp.el.classList.add('drop'); } });
    vp.el.addEventListener('dragleave', () => vp.el.classList.remove('drop'));
    vp.el.addEventListener('drop', (e) => {
      vp.el.classList.remove('drop');
      const uid = e.dataTransfer.getData(MIME);
      if (!uid) return;
      e.preventDefault();
      showSeries(vp, uid);
    });
  }
});

export function toggleSeriesPanel(show) {
  const box = panel();
  box.hidden = !show;
  setPressed(document.getElementById('series-toggle'), show);
}

document.getElementById('series-toggle')?.addEventListener('click', () => toggleSeriesPanel(panel().hidden));
toggleSeriesPanel(!isPhone());

// The study list: patient ID searched on the server (QIDO-like ?PatientID=), name, date and
// modality filtered in the page. Each row links to the viewer with the token.
import { api, withToken, getToken } from './api.js';
import { t, applyI18n, bindLangToggle, onLangChange, fmtDate, fmtSex } from './i18n.js';

const form = document.getElementById('search');
const rows = document.getElementById('rows');
const errorBox = document.querySelector('[data-testid="error"]');
const countBox = document.getElementById('count');
let studies = [];
let lastError = null;

function showError(err) {
  lastError = err;
  if (!err) { errorBox.hidden = true; errorBox.textContent = ''; return; }
  const key = { auth: 'errAuth', unreachable: 'errUnreachable', notfound: 'errNotFound' }[err.kind];
  errorBox.textContent = key ? t(key) : t('errServer', { msg: err.message });
  errorBox.hidden = false;
}

function matches(s, f) {
  if (f.name && !(s.patient_name || '').toLowerCase().includes(f.name.toLowerCase())) return false;
  if (f.date && s.study_date !== f.date.replaceAll('-', '')) return false;
  if (f.modality && !(s.modalities || []).includes(f.modality)) return false;
  return true;
}

function render() {
  const f = Object.fromEntries(new FormData(form));
  const shown = studies.filter((s) => matches(s, f));
  rows.replaceChildren(...shown.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.testid = 'study-row';
    tr.setAttribute('data-testid', 'study-row');
    tr.dataset.studyUid = s.study_uid;
    const href = withToken(`/viewer?study=${encodeURIComponent(s.study_uid)}`);
    const cells = [s.patient_name, s.patient_id, fmtSex(s.patient_sex), fmtDate(s.study_date),
      s.study_description, (s.modalities || []).join(' / '), s.series_count, s.instance_count];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      if (i === 0) {
        const a = document.createElement('a');
        a.href = href;
        a.textContent = text || '—';
        td.append(a);
      } else td.textContent = text ?? '';
      tr.append(td);
    });
    tr.addEventListener('click', (e) => { if (e.target.tagName !== 'A') location.href = href; });
    return tr;
  }));
  if (!lastError) countBox.textContent = shown.length ? t('count', { n: shown.length }) : t('noStudies');
}

function fillModalities() {
  const select = form.elements.modality;
  const current = select.value;
  const all = [...new Set(studies.flatMap((s) => s.modalities || []))].sort();
  select.replaceChildren(select.options[0], ...all.map((m) => new Option(m, m)));
  select.value = all.includes(current) ? current : '';
}

async function load() {
  const pid = form.elements.pid.value.trim();
  countBox.textContent = t('loading');
  try {
    const q = pid ? `?PatientID=${encodeURIComponent(pid)}` : '';
    studies = await api(`/api/studies${q}`);
    studies.sort((a, b) => `${b.study_date}${b.study_time}`.localeCompare(`${a.study_date}${a.study_time}`));
    showError(null);
  } catch (err) {
    studies = [];
    showError(err);
    countBox.textContent = '';
  }
  fillModalities();
  render();
}

form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
form.elements.name.addEventListener('input', render);
form.elements.date.addEventListener('change', render);
form.elements.modality.addEventListener('change', render);
document.getElementById('clear').addEventListener('click', () => { form.reset(); load(); });

applyI18n();
bindLangToggle(document.querySelector('[data-testid="lang"]'));
onLangChange(() => { showError(lastError); render(); });
getToken();
load();

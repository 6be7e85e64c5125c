// The keyboard shortcut sheet: `?` (or the toolbar's "?" button) lists every key of the viewer,
// the tools' own keys from the registry included, in the current language.
import { allTools } from './tools.js';
import { on } from './app.js';
import { t, defineStrings } from './i18n.js';

defineStrings({
  zh: { shortcuts: '快捷键', 'key.page': '上一幅 / 下一幅', 'key.page10': '前后翻10幅', 'key.ends': '第一幅 / 最后一幅', 'key.reset': '重置',
    'key.invert': '反色', 'key.flipH': '水平翻转', 'key.flipV': '垂直翻转', 'key.overlay': '显示/隐藏信息', 'key.sync': '同步翻页',
    'key.cine': '播放 / 停止', 'key.presets': '预设窗 1–9', 'key.next': '下一个 / 上一个窗口', 'key.cancel': '取消正在画的标注',
    'key.cprDone': 'CPR：完成（Shift：伸展）', 'key.mouse': '右键拖动缩放，中键拖动平移，Ctrl+滚轮缩放', 'key.help': '本帮助', mouseKey: '鼠标' },
  en: { shortcuts: 'Keyboard shortcuts', 'key.page': 'previous / next image', 'key.page10': '10 images back / on', 'key.ends': 'first / last image', 'key.reset': 'reset',
    'key.invert': 'invert', 'key.flipH': 'flip horizontally', 'key.flipV': 'flip vertically', 'key.overlay': 'show / hide the overlay', 'key.sync': 'sync scroll',
    'key.cine': 'cine play / stop', 'key.presets': 'window presets 1–9', 'key.next': 'next / previous viewport', 'key.cancel': 'cancel the mark being drawn',
    'key.cprDone': 'CPR: finish (Shift: stretched)', 'key.mouse': 'right drag zooms, middle drag pans, Ctrl+wheel zooms', 'key.help': 'this help', mouseKey: 'Mouse' },
});

const KEYS = [['↑ ↓ ← →', 'key.page'], ['PgUp PgDn', 'key.page10'], ['Home End', 'key.ends'], ['R', 'key.reset'], ['I', 'key.invert'],
  ['H', 'key.flipH'], ['V', 'key.flipV'], ['O', 'key.overlay'], ['S', 'key.sync'], ['Space', 'key.cine'], ['1–9', 'key.presets'],
  ['Tab / Shift+Tab', 'key.next'], ['Esc', 'key.cancel'], ['Enter', 'key.cprDone'], ['mouse', 'key.mouse'], ['?', 'key.help']];

let sheet = null;

function render() {
  const rows = [...allTools().filter((x) => x.key).map((x) => [x.key.toUpperCase(), null, x.label]), ...KEYS];
  const table = document.createElement('table');
  for (const [key, text, label] of rows) {
    const tr = document.createElement('tr');
    const k = document.createElement('td');
    const kbd = document.createElement('kbd');
    kbd.textContent = key === 'mouse' ? t('mouseKey') : key;
    k.append(kbd);
    const d = document.createElement('td');
    d.textContent = label ? t(label) : t(text);
    tr.append(k, d);
    table.append(tr);
  }
  const h = document.createElement('h3');
  h.textContent = t('shortcuts');
  sheet.replaceChildren(h, table);
}

export function toggleShortcuts(show = !sheet || sheet.hidden) {
  if (!sheet) {
    sheet = document.createElement('div');
    sheet.className = 'shortcuts';
    sheet.setAttribute('data-testid', 'shortcuts');
    sheet.addEventListener('click', () => toggleShortcuts(false));
    document.body.append(sheet);
  }
  sheet.hidden = !show;
  if (show) render();
}

window.addEventListener('keydown', (e) => {
  if (e.target.closest('input, select, textarea')) return;
  if (e.key === '?') toggleShortcuts();
  else if (e.key === 'Escape' && sheet && !sheet.hidden) toggleShortcuts(false);
});
on('lang', () => { if (sheet && !sheet.hidden) render(); });
document.getElementById('help')?.addEventListener('click', () => toggleShortcuts());

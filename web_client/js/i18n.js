// Simplified Chinese (default) and English strings. Elements with data-i18n="key" get their
// text, data-i18n-title="key" their title, data-i18n-placeholder="key" their placeholder.
// Modules add their own strings with defineStrings({zh: {...}, en: {...}}).

const STRINGS = {
  zh: {
    appTitle: 'VoxCast 影像浏览',
    studies: '检查列表',
    patientId: '患者ID',
    patientName: '患者姓名',
    sex: '性别',
    studyDate: '检查日期',
    description: '检查描述',
    modality: '模态',
    series: '序列',
    images: '图像',
    search: '搜索',
    clear: '清除',
    allModalities: '全部模态',
    loading: '正在加载…',
    noStudies: '没有找到检查',
    count: '共 {n} 个检查',
    open: '打开',
    errAuth: '令牌已过期或无效，请从医院信息系统重新打开本页面。',
    errUnreachable: '无法连接服务器，请检查网络后重试。',
    errNotFound: '未找到该检查。',
    errPatientNotFound: '未找到该患者的检查。',
    errNoStudy: '未指定检查。',
    errServer: '服务器错误：{msg}',
    back: '检查列表',
    layout: '布局',
    preset: '预设窗',
    presetNone: '默认窗',
    toolPage: '翻页',
    toolWl: '窗宽窗位',
    toolZoom: '缩放',
    toolPan: '平移',
    toolEllipse: '椭圆ROI',
    reset: '重置',
    invert: '反色',
    flip: '翻转',
    rotate: '旋转',
    cine: '播放',
    cineStop: '停止',
    fps: '帧/秒',
    slab: '层厚(mm)',
    slabMode: '投影',
    render: '渲染',
    overlay: '信息',
    menu: '菜单',
    statusConnecting: '正在连接…',
    statusLoading: '正在加载影像…',
    statusReady: '就绪',
    statusReconnecting: '连接中断，正在重连…',
    statusError: '错误',
    mean: '均值', std: '标准差', min: '最小', max: '最大', area: '面积', pixels: '像素',
    male: '男', female: '女', other: '其他',
    ageY: '{n}岁', ageM: '{n}月', ageW: '{n}周', ageD: '{n}天',
    image: '图像', slabShort: '投影层厚', lossy: '有损', toolOrbit: '3D旋转',
    'cpr.straightened': '拉直', 'cpr.stretched': '伸展',
    zoom: '缩放',
    slicePos: '位置',
    thickness: '层厚',
    ct: 'CT', pet: 'PET',
    'preset.ct-lung': '肺窗', 'preset.ct-mediastinum': '纵隔窗', 'preset.ct-abdomen': '腹部窗',
    'preset.ct-liver': '肝脏窗', 'preset.ct-bone': '骨窗', 'preset.ct-brain': '脑窗',
    'preset.ct-subdural': '硬膜下窗', 'preset.ct-stroke': '卒中窗',
    'preset.pet-suv-0-5': 'PET SUV 0–5', 'preset.pet-suv-0-10': 'PET SUV 0–10（反色）',
    'render.mpr': '多平面(MPR)', 'render.mip': '最大密度投影(MIP)', 'render.minip': '最小密度投影(MinIP)',
    'render.avgip': '平均密度投影(AvgIP)', 'render.vr': '容积再现(VR)',
    'slab.mip': 'MIP', 'slab.minip': 'MinIP', 'slab.avgip': 'AvgIP',
  },
  en: {
    appTitle: 'VoxCast Viewer',
    studies: 'Studies',
    patientId: 'Patient ID',
    patientName: 'Patient name',
    sex: 'Sex',
    studyDate: 'Study date',
    description: 'Description',
    modality: 'Modality',
    series: 'Series',
    images: 'Images',
    search: 'Search',
    clear: 'Clear',
    allModalities: 'All modalities',
    loading: 'Loading…',
    noStudies: 'No studies found',
    count: '{n} studies',
    open: 'Open',
    errAuth: 'The token has expired or is invalid. Please open this page again from the hospital information system.',
    errUnreachable: 'The server cannot be reached. Check the network and try again.',
    errNotFound: 'Study not found.',
    errPatientNotFound: 'No studies found for this patient.',
    errNoStudy: 'No study given.',
    errServer: 'Server error: {msg}',
    back: 'Studies',
    layout: 'Layout',
    preset: 'Preset',
    presetNone: 'Default window',
    toolPage: 'Page',
    toolWl: 'W/L',
    toolZoom: 'Zoom',
    toolPan: 'Pan',
    toolEllipse: 'Ellipse ROI',
    reset: 'Reset',
    invert: 'Invert',
    flip: 'Flip',
    rotate: 'Rotate',
    cine: 'Cine',
    cineStop: 'Stop',
    fps: 'fps',
    slab: 'Slab (mm)',
    slabMode: 'Projection',
    render: 'Render',
    overlay: 'Overlay',
    menu: 'Menu',
    statusConnecting: 'Connecting…',
    statusLoading: 'Loading images…',
    statusReady: 'Ready',
    statusReconnecting: 'Connection lost, reconnecting…',
    statusError: 'Error',
    mean: 'Mean', std: 'SD', min: 'Min', max: 'Max', area: 'Area', pixels: 'px',
    male: 'M', female: 'F', other: 'O',
    ageY: '{n}Y', ageM: '{n}M', ageW: '{n}W', ageD: '{n}D',
    image: 'Im', slabShort: 'Slab', lossy: 'lossy', toolOrbit: 'Orbit',
    'cpr.straightened': 'straightened', 'cpr.stretched': 'stretched',
    zoom: 'Zoom',
    slicePos: 'Pos',
    thickness: 'Thk',
    ct: 'CT', pet: 'PET',
    'preset.ct-lung': 'CT lung', 'preset.ct-mediastinum': 'CT mediastinum', 'preset.ct-abdomen': 'CT abdomen',
    'preset.ct-liver': 'CT liver', 'preset.ct-bone': 'CT bone', 'preset.ct-brain': 'CT brain',
    'preset.ct-subdural': 'CT subdural', 'preset.ct-stroke': 'CT stroke',
    'preset.pet-suv-0-5': 'PET SUV 0–5', 'preset.pet-suv-0-10': 'PET SUV 0–10 (inverted)',
    'render.mpr': 'MPR', 'render.mip': 'MIP (3D)', 'render.minip': 'MinIP (3D)',
    'render.avgip': 'AvgIP (3D)', 'render.vr': 'Volume rendering',
    'slab.mip': 'MIP', 'slab.minip': 'MinIP', 'slab.avgip': 'AvgIP',
  },
};

const LANG_KEY = 'voxcast.lang';
let lang = (() => {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  if (fromUrl && STRINGS[fromUrl]) return fromUrl;
  try { const saved = localStorage.getItem(LANG_KEY); if (saved && STRINGS[saved]) return saved; } catch (_) { /* */ }
  return 'zh';
})();
const listeners = new Set();

export function getLang() { return lang; }

/** Add a module's strings: {zh: {key: text}, en: {key: text}}. */
export function defineStrings(table) {
  for (const [code, strings] of Object.entries(table)) Object.assign(STRINGS[code] || (STRINGS[code] = {}), strings);
}

export function t(key, params = {}) {
  let s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  for (const [k, v] of Object.entries(params)) s = s.replace(`{${k}}`, String(v));
  return s;
}

export function applyI18n(root = document) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}

export function setLang(next) {
  if (!STRINGS[next] || next === lang) return;
  lang = next;
  try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* */ }
  applyI18n();
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) { listeners.add(fn); }

/** Wire a toggle button: shows the other language's name, switches on click. */
export function bindLangToggle(button) {
  const label = () => { button.textContent = lang === 'zh' ? 'English' : '中文'; };
  label();
  button.addEventListener('click', () => { setLang(lang === 'zh' ? 'en' : 'zh'); label(); });
}

/** DICOM DA (YYYYMMDD) → YYYY-MM-DD; TM (HHMMSS) → HH:MM:SS. */
export function fmtDate(da) {
  if (!da || da.length < 8) return da || '';
  return `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}`;
}
export function fmtTime(tm) {
  if (!tm || tm.length < 4) return tm || '';
  const s = tm.length >= 6 ? `:${tm.slice(4, 6)}` : '';
  return `${tm.slice(0, 2)}:${tm.slice(2, 4)}${s}`;
}
export function fmtSex(sex) {
  return sex === 'M' ? t('male') : sex === 'F' ? t('female') : sex === 'O' ? t('other') : (sex || '');
}

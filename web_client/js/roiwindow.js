// ROI-driven auto window (R34). Drag a rectangle (`roi-window`) or an ellipse
// (`roi-window-ellipse`) on a planar view: the server measures the ROI (`measure`, the values of
// POST /api/measure) and its `window` — the 0.5th–99.5th percentile of the ROI's values, in HU /
// SUVbw — becomes the viewport's window (`{"type": "window", center, width}`). The rubber band
// shows while dragging and goes once the window is sent. The result box of any area ROI gets an
// "auto W/L" button that applies that ROI's window the same way.
import { app, vox, on, send, request, recordError } from './app.js';
import { dragShapeTool } from './rubberband.js';
import { AREA_KINDS } from './annotations.js';
import { t, defineStrings } from './i18n.js';

defineStrings({
  zh: { toolRoiWindow: '矩形自动窗', toolRoiWindowEllipse: '椭圆自动窗', autoWl: '自动窗', autoWlHint: '按此ROI的0.5–99.5%分位设定窗宽窗位' },
  en: { toolRoiWindow: 'Rect auto W/L', toolRoiWindowEllipse: 'Ellipse auto W/L', autoWl: 'Auto W/L', autoWlHint: "Window to this ROI's 0.5–99.5th percentile" },
});

/** Set a viewport's window; `vox.roiWindow` records what was applied (and from which ROI). */
function applyWindow(vp, window, origin) {
  const seq = send({ type: 'window', viewport: vp.id, center: window.center, width: window.width });
  vox.roiWindow = { viewport: vp.id, seq, window: { center: window.center, width: window.width }, ...origin };
  return seq;
}

async function roiWindow(vp, box) {
  const shape = box.shape === 'ellipse'
    ? { type: 'ellipse', center_px: box.center, radii_px: box.half }
    : { type: 'rectangle', from_px: box.from, to_px: box.to };
  const view = vp.view;
  const ev = await request({ type: 'measure', viewport: vp.id, shapes: [shape] }, 'measurement');
  const window = ev.results[0]?.window;
  if (!window) { recordError({ code: 'roi-window', message: 'the ROI holds no value inside the volume' }); return; }
  applyWindow(vp, window, { shape, view, units: ev.units, source: 'tool' });
}

const planar = (vp) => vp.isPlanar;
dragShapeTool({ name: 'roi-window', label: 'toolRoiWindow', group: 'measure', shape: 'rectangle', kind: 'roi-window', applies: planar, done: roiWindow });
dragShapeTool({ name: 'roi-window-ellipse', label: 'toolRoiWindowEllipse', group: 'measure', shape: 'ellipse', kind: 'roi-window', applies: planar, done: roiWindow });

// The result box of an area ROI: a button applying that ROI's window to the viewport it was
// drawn on (while that viewport still shows the ROI's series).
on('result', (m, box) => {
  const window = m?.result?.window;
  if (!AREA_KINDS.has(m?.kind) || !window) return;
  const vp = app.byId.get(m.vpId);
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'btn small auto-wl';
  b.setAttribute('data-testid', 'auto-wl');
  b.textContent = t('autoWl');
  b.title = t('autoWlHint');
  b.disabled = !vp || vp.view?.series_uid !== m.series_uid;
  b.addEventListener('click', () => {
    const target = app.byId.get(m.vpId);
    if (target && target.view?.series_uid === m.series_uid) applyWindow(target, window, { markId: m.id, source: 'mark' });
  });
  box.append(b);
});

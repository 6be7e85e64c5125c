// Occlusion masks (R33): drag a rectangle (`mask-rect`) or an ellipse (`mask-ellipse`) over, say,
// burned-in patient text, and it joins the viewport's view state `masks` in output pixels
// (`center_px`, `half_size_px`: fixed on the screen whatever the zoom, pan or slice — README,
// "View state"). The server paints masks opaque (black) into every frame, lossless settle
// included, so the only thing drawn here is the rubber band while dragging. "Clear masks" removes
// every viewport's masks.
import { app, on, send, recordError } from './app.js';
import { dragShapeTool } from './rubberband.js';
import { defineStrings } from './i18n.js';

defineStrings({
  zh: { toolMaskRect: '矩形遮挡', toolMaskEllipse: '椭圆遮挡', clearMasks: '清除遮挡' },
  en: { toolMaskRect: 'Mask rectangle', toolMaskEllipse: 'Mask ellipse', clearMasks: 'Clear masks' },
});

const MAX_MASKS = 32;  // the server's limit per view
const FRAME_WAIT_MS = 5000;

/** Resolve when `vp` has drawn a frame answering input `seq` (or after FRAME_WAIT_MS). */
function frameAfter(vp, seq) {
  return new Promise((resolve) => {
    let off = () => {};
    const timer = setTimeout(() => { off(); resolve(false); }, FRAME_WAIT_MS);
    off = on('frame', (p, header) => {
      if (p === vp && header.input_seq >= seq) { clearTimeout(timer); off(); resolve(true); }
    });
  });
}

function setMasks(vp, masks) {
  return send({ type: 'view', viewport: vp.id, set: { masks } });
}

/** Add the dragged box as a mask; the rubber band stays until the masked frame is drawn. */
async function addMask(vp, box) {
  const masks = vp.view?.masks || [];
  if (masks.length >= MAX_MASKS) { recordError({ code: 'mask', message: `at most ${MAX_MASKS} masks per view` }); return; }
  const seq = setMasks(vp, [...masks, { shape: box.shape, center_px: box.center, half_size_px: box.half }]);
  if (seq >= 0) await frameAfter(vp, seq);
}

export function clearMasks() {
  for (const vp of app.viewports) if (vp.view?.masks?.length) setMasks(vp, []);
}

const shown = (vp) => !!vp.view;
dragShapeTool({ name: 'mask-rect', label: 'toolMaskRect', group: 'mask', shape: 'rectangle', kind: 'mask', applies: shown, done: addMask });
dragShapeTool({ name: 'mask-ellipse', label: 'toolMaskEllipse', group: 'mask', shape: 'ellipse', kind: 'mask', applies: shown, done: addMask });

document.querySelector('[data-testid="clear-masks"]')?.addEventListener('click', clearMasks);

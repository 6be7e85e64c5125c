// The magnifying glass (R26): while the button is held, a round lens over the pointer shows the
// anatomy under it `factor` times finer. The lens is not an enlargement of the streamed picture:
// it is its own view, a smaller plane in patient space centred on the point (same orientation,
// window, colour map, fusion layers and masks), rendered by the server (POST /api/render), so
// it shows the detail of the volume itself. Requests are latest-wins; the lens follows the pointer.
import { vox, recordError } from './app.js';
import { defineTool } from './tools.js';
import { defineStrings } from './i18n.js';
import { getToken } from './api.js';

defineStrings({ zh: { toolMagnify: '放大镜' }, en: { toolMagnify: 'Magnifier' } });

const LENS_CSS = 220;   // lens diameter in CSS px
const FACTOR = 3;

let lens = null;        // {el, img, vp, pending, busy, url}

function ensureLens() {
  if (lens) return lens;
  const el = document.createElement('div');
  el.className = 'lens';
  el.setAttribute('data-testid', 'magnifier');
  const img = document.createElement('img');
  img.alt = '';
  el.append(img);
  document.body.append(el);
  lens = { el, img, pending: null, busy: false, url: null };
  return lens;
}

/** The lens' view state: an explicit plane through the point under the pointer (README, "View state"). */
export function lensView(vp, out, factor = FACTOR, sizePx = null) {
  const plane = vp.plane, view = vp.view;
  const dpr = window.devicePixelRatio || 1;
  const side = sizePx || Math.min(512, Math.round(LENS_CSS * dpr));
  const center = vp.pxToLps(...out);
  // Output px are plane.pixel_spacing_mm apart; on screen one output px is fit().s CSS px.
  const cssPerOut = vp.fit().s;
  const spacing = (plane.pixel_spacing_mm / factor) * (LENS_CSS * dpr / side) / (cssPerOut * dpr);
  return {
    series_uid: view.series_uid,
    plane: { center_lps: center, row_dir: plane.row_dir, col_dir: plane.col_dir, pixel_spacing_mm: spacing, size_px: [side, side] },
    slab: view.slab, interpolation: view.interpolation, invert: view.invert, colormap: view.colormap,
    preset: view.preset, window: view.window ?? (view.preset ? null : vp.state.window),
    layers: view.layers, masks: (view.masks || []).map((m) => anchor(vp, m)),
  };
}

/** A mask given in output px of the viewport, anchored in patient space (it moves with the lens plane). */
function anchor(vp, m) {
  if (!m.center_px) return m;
  const s = vp.plane.pixel_spacing_mm;
  return { shape: m.shape, color: m.color, center_lps: vp.pxToLps(...m.center_px), half_size_mm: [m.half_size_px[0] * s, m.half_size_px[1] * s] };
}

async function fetchLens() {
  const l = lens;
  if (!l || l.busy || !l.pending) return;
  const { vp, out } = l.pending;
  l.pending = null;
  l.busy = true;
  try {
    const resp = await fetch('/api/render?format=png', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${getToken()}` }, body: JSON.stringify(lensView(vp, out)) });
    if (resp.ok) {
      const url = URL.createObjectURL(await resp.blob());
      if (l.url) URL.revokeObjectURL(l.url);
      l.url = url;
      l.img.src = url;
      vox.magnifier = { frames: (vox.magnifier?.frames || 0) + 1, at_px: out, viewport: vp.id };
    } else {
      recordError({ code: 'magnifier', message: `${resp.status} ${await resp.text()}` });
    }
  } catch (err) {
    recordError({ code: 'magnifier', message: String(err) });
  } finally {
    l.busy = false;
    if (l.pending && l.el.isConnected && !l.el.hidden) fetchLens();
  }
}

function place(vp, ptr) {
  const l = ensureLens();
  const [x, y] = vp.toClient(ptr.pos);
  l.el.hidden = false;
  l.el.style.left = `${x - LENS_CSS / 2}px`;
  l.el.style.top = `${y - LENS_CSS / 2 - (ptr.type === 'touch' ? LENS_CSS * 0.6 : 0)}px`;
  l.pending = { vp, out: ptr.out };
  fetchLens();
}

function hide() { if (lens) { lens.el.hidden = true; lens.pending = null; } }

defineTool({
  name: 'magnify', label: 'toolMagnify', group: 'nav', key: 'g',
  applies: (vp) => vp.isPlanar,
  down(vp, ptr) { if (vp.isPlanar) place(vp, ptr); },
  move(vp, ptr) { if (vp.isPlanar && lens && !lens.el.hidden) place(vp, ptr); },
  up() { hide(); },
  cancel() { hide(); },
});

export { FACTOR as MAGNIFIER_FACTOR };

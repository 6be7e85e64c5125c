// The information overlay of every viewport (R25), drawn as SVG from the state the server sends:
// four-corner text after the regional imaging-exchange guideline (patient, institution, study,
// modality and device, series and image number of total, slice position and thickness, W/L,
// zoom, kVp/mAs), orientation markers from the plane's edge labels and a scale bar in mm.
// Shown or hidden with the overlay toggle; the user's own marks are other layers.
import { app, seriesOf } from './app.js';
import { defineLayer, svgEl, fmtNum } from './viewport.js';
import { t, fmtDate, fmtTime, fmtSex } from './i18n.js';
import { dot, normalOf } from './geometry.js';

function ageOf(study, corner) {
  if (corner?.patient_age) {  // DICOM AS: nnnD / nnnW / nnnM / nnnY
    const m = /^(\d{1,3})([DWMY])$/.exec(corner.patient_age);
    if (m) return t(`age${m[2]}`, { n: +m[1] });
  }
  const birth = study?.patient_birth_date, date = study?.study_date;
  if (!birth || birth.length < 8 || !date || date.length < 8) return '';
  let age = +date.slice(0, 4) - +birth.slice(0, 4);
  if (date.slice(4, 8) < birth.slice(4, 8)) age -= 1;
  return age >= 0 ? t('ageY', { n: age }) : '';
}

const wl = (v) => (Math.abs(v) >= 20 ? String(Math.round(v)) : fmtNum(v, Number.isInteger(v) ? 0 : 2));

/** The four corners' lines for a viewport: {tl, tr, bl, br}. */
export function cornerText(vp, compact = false) {
  const st = vp.state;
  const view = st.view || {};
  const series = seriesOf(vp);
  const corner = series.four_corner || {};
  const study = app.studies.find((s) => s.study_uid === series.study_uid) || app.study || {};
  const layers = (view.layers || []).map((l) => app.seriesByUid[l.series_uid] || {});
  const name = study.patient_name || corner.patient_name, pid = study.patient_id || corner.patient_id;
  const tl = [name, pid !== name ? pid : '',
    [fmtSex(study.patient_sex || corner.patient_sex), ageOf(study, corner)].filter(Boolean).join(' ')];
  const device = [corner.manufacturer, corner.manufacturer_model_name].filter(Boolean).join(' ');
  const tr = [corner.institution_name, study.study_description,
    `${fmtDate(study.study_date)} ${fmtTime(study.study_time)}`.trim(),
    [[series.modality, ...layers.map((l) => l.modality)].filter(Boolean).join(' + '), device].filter(Boolean).join('  ')];
  const bl = [];
  const layerDesc = layers.map((l) => l.series_description).filter(Boolean);
  bl.push(`${t('series')}: ${series.series_number ?? ''} ${series.series_description || ''}${layerDesc.length ? ' + ' + layerDesc.join(', ') : ''}`.trim());
  const plane = st.geometry?.plane;
  if (view.render3d) {
    bl.push(`3D ${t(`render.${view.render3d.method}`)}`);
  } else if (view.cpr) {
    bl.push(`CPR ${t(`cpr.${view.cpr.mode || 'straightened'}`)} ${fmtNum(view.cpr.rotation_deg || 0, 0)}°`);
  } else if (plane) {
    if (st.slice) bl.push(`${t('image')}: ${st.slice.index + 1} / ${st.slice.count}`);
    bl.push(`${t('slicePos')}: ${fmtNum(st.slice ? st.slice.position_mm : dot(plane.center_lps, normalOf(plane)), 1)} mm`);
    const slab = view.slab?.thickness_mm;
    if (slab) bl.push(`${t('slabShort')}: ${fmtNum(slab, 1)} mm ${view.slab.mode?.toUpperCase() || ''}`);
    // the acquired slices' thickness, on planes along the acquisition axis (as many slices as acquired)
    else if (corner.slice_thickness_mm && st.slice && series.shape && st.slice.count === series.shape[0]) bl.push(`${t('thickness')}: ${fmtNum(corner.slice_thickness_mm, 1)} mm`);
  }
  const tech = [corner.kvp ? `${fmtNum(corner.kvp, 0)} kV` : '', corner.mas ? `${fmtNum(corner.mas, 0)} mAs` : ''].filter(Boolean);
  if (tech.length) bl.push(tech.join('  '));
  const br = [];
  if (st.window && view.render3d?.method !== 'vr') br.push(`W: ${wl(st.window.width)} L: ${wl(st.window.center)}${st.units ? ' ' + st.units : ''}`);
  if (!view.render3d) br.push(`${t('zoom')}: ${fmtNum((view.zoom || 1) * 100, 0)}%`);
  if (view.rotation_deg) br.push(`${t('rotate')}: ${fmtNum(view.rotation_deg, 0)}°`);
  if (view.invert) br.push(t('invert'));
  // what is on screen: an interactive JPEG frame or the video, not yet the lossless settle
  if (vp.lastKind === 'lossy' || vp.el.dataset.picture === 'video') br.push(t('lossy'));
  if (compact) {  // a phone-sized viewport: who, what, which image, which window
    const image = bl.find((l) => l.startsWith(`${t('image')}:`)) || bl.find((l) => l.startsWith('3D') || l.startsWith('CPR')) || '';
    return { tl: [name], tr: [[tr[3].split('  ')[0], corner.manufacturer_model_name].filter(Boolean).join(' ')], bl: [image], br: br.slice(0, 1) };
  }
  return { tl, tr, bl, br };
}

const measure = document.createElement('canvas').getContext('2d');

const textWidths = new Map();  // "fs|text" → width in CSS px (the corners repeat on every frame)

function textWidth(text, fs) {
  const key = `${fs}|${text}`;
  let w = textWidths.get(key);
  if (w === undefined) {
    measure.font = `${fs}px system-ui, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif`;
    w = measure.measureText(text).width;
    if (textWidths.size > 4000) textWidths.clear();
    textWidths.set(key, w);
  }
  return w;
}

/** `text` cut (with an ellipsis) to at most `px` CSS pixels wide in the overlay's font. */
function fitText(text, px, fs) {
  if (textWidth(text, fs) <= px) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(`${text.slice(0, mid)}…`, fs) <= px) lo = mid; else hi = mid - 1;
  }
  return lo ? `${text.slice(0, lo)}…` : '';
}

defineLayer(10, (vp, svg, f) => {
  if (!app.overlays) return;
  const st = vp.state;
  const small = f.cw < 420;
  const lh = small ? 12 : 15;
  const { tl, tr, bl, br } = cornerText(vp, small);
  const fs = small ? 10 : 13;
  // Two corners share a row: each line gets the half of the width its neighbour leaves free.
  const rows = (lines) => lines.filter((l) => l);
  const widths = (mine, other, up) => mine.map((_, i) => {
    const j = up ? other.length - mine.length + i : i;
    return (other[j] ? f.cw / 2 : f.cw) - 10;
  });
  const corner = (lines, x, y, anchor, up, name, room) => {
    const text = svgEl('text', { x, y, 'text-anchor': anchor, class: 'corner', 'font-size': fs, 'data-corner': name });
    lines.forEach((line, i, arr) => {
      const ts = svgEl('tspan', { x, y: up ? y - (arr.length - 1 - i) * lh : y + i * lh });
      ts.textContent = fitText(line, room[i], fs);
      if (ts.textContent !== line) ts.setAttribute('data-full', line);
      text.append(ts);
    });
    svg.append(text);
  };
  const [TL, TR, BL, BR] = [tl, tr, bl, br].map(rows);
  corner(TL, 6, lh, 'start', false, 'tl', widths(TL, TR, false));
  corner(TR, f.cw - 6, lh, 'end', false, 'tr', widths(TR, TL, false));
  corner(BL, 6, f.ch - 6, 'start', true, 'bl', widths(BL, BR, true));
  corner(BR, f.cw - 6, f.ch - 6, 'end', true, 'br', widths(BR, BL, true));

  const edges = st.geometry?.edges;
  if (edges && !st.view?.cpr) {
    const efs = small ? 12 : 16;
    const x0 = Math.max(f.ox, 0), x1 = Math.min(f.ox + f.W * f.s, f.cw);
    const y0 = Math.max(f.oy, 0), y1 = Math.min(f.oy + f.H * f.s, f.ch);
    const mk = (label, x, y, anchor, side) => {
      if (!label) return;
      const el = svgEl('text', { x, y, 'text-anchor': anchor, class: 'orient', 'font-size': efs, 'dominant-baseline': 'middle', 'data-edge': side });
      el.textContent = label;
      svg.append(el);
    };
    mk(edges.left, x0 + 6, (y0 + y1) / 2, 'start', 'left');
    mk(edges.right, x1 - 20, (y0 + y1) / 2, 'end', 'right');
    // small viewports: below (above) the one row of corner text, which spans the width
    mk(edges.top, (x0 + x1) / 2, small ? Math.max(y0 + efs, lh + efs) : y0 + efs, 'middle', 'top');
    mk(edges.bottom, (x0 + x1) / 2, small ? Math.min(y1 - efs, f.ch - 6 - lh - efs * 0.6) : y1 - efs * 2.2, 'middle', 'bottom');
  }

  const spacing = st.geometry?.plane?.pixel_spacing_mm || st.geometry?.cpr?.pixel_spacing_mm;
  if (spacing > 0 && !st.view?.render3d) {
    const cssPerMm = f.s / spacing;
    let mm = [100, 50, 20, 10, 5, 2, 1].find((m) => m * cssPerMm <= f.ch * 0.3) || 1;
    const len = mm * cssPerMm;
    const x = f.cw - 18, yMid = Math.min(Math.max(f.ch * 0.7, len / 2 + 30), f.ch - len / 2 - 60);
    const g = svgEl('g', { class: 'scalebar', 'data-testid': 'scalebar', 'data-mm': mm, 'data-px': len.toFixed(2) });
    g.append(svgEl('line', { x1: x, y1: yMid - len / 2, x2: x, y2: yMid + len / 2 }));
    for (let i = 0; i <= 10; i += 1) {
      const y = yMid - len / 2 + (len * i) / 10;
      g.append(svgEl('line', { x1: x - (i % 5 === 0 ? 8 : 4), y1: y, x2: x, y2: y }));
    }
    const label = svgEl('text', { x: x - 10, y: yMid + len / 2, 'text-anchor': 'end', class: 'corner', 'font-size': small ? 10 : 12 });
    label.textContent = `${mm} mm`;
    g.append(label);
    svg.append(g);
  }
});

// Plane geometry in patient space (DICOM LPS, mm), as the server describes a view in its
// `state` events: `plane` = {center_lps, row_dir, col_dir, pixel_spacing_mm, size_px}. The centre
// of output pixel (x = column, y = row) is center + (x - (w-1)/2)·s·row_dir + (y - (h-1)/2)·s·col_dir
// (README, "View state"). Every overlay, annotation and reference line is placed with these.

export const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
export const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
export const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
export const scale = (a, k) => [a[0] * k, a[1] * k, a[2] * k];
export const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
export const norm = (a) => Math.hypot(a[0], a[1], a[2]);
export const unit = (a) => { const n = norm(a) || 1; return [a[0] / n, a[1] / n, a[2] / n]; };

export function normalOf(plane) { return unit(cross(plane.row_dir, plane.col_dir)); }

/** Output pixel (x, y) of `plane` → patient point (LPS mm). */
export function pxToLps(plane, x, y) {
  const [w, h] = plane.size_px;
  const a = (x - (w - 1) / 2) * plane.pixel_spacing_mm, b = (y - (h - 1) / 2) * plane.pixel_spacing_mm;
  return [0, 1, 2].map((k) => plane.center_lps[k] + a * plane.row_dir[k] + b * plane.col_dir[k]);
}

/** Patient point → output pixel [x, y] of `plane` (the point projected onto it). */
export function lpsToPx(plane, q) {
  const [w, h] = plane.size_px;
  const d = sub(q, plane.center_lps);
  return [dot(d, plane.row_dir) / plane.pixel_spacing_mm + (w - 1) / 2, dot(d, plane.col_dir) / plane.pixel_spacing_mm + (h - 1) / 2];
}

/** Signed distance (mm) of a patient point from the plane, along its normal. */
export function distanceFromPlane(plane, q) { return dot(sub(q, plane.center_lps), normalOf(plane)); }

/** Rotate vector v about the unit axis k by `deg` degrees (Rodrigues). */
export function rotate(v, k, deg) {
  const r = (deg * Math.PI) / 180, c = Math.cos(r), s = Math.sin(r);
  const kv = cross(k, v), kd = dot(k, v);
  return [0, 1, 2].map((i) => v[i] * c + kv[i] * s + k[i] * kd * (1 - c));
}

/**
 * Where plane `other` cuts plane `plane`: {point, dir} in patient space, or null when they are
 * (nearly) parallel. `point` is the line's point nearest to `plane`'s centre.
 */
export function intersection(plane, other) {
  const n1 = normalOf(plane), n2 = normalOf(other);
  const dir = cross(n1, n2);
  const len = norm(dir);
  if (len < 1e-3) return null;
  const d1 = dot(n1, plane.center_lps), d2 = dot(n2, other.center_lps);
  // the point on both planes in the span of n1 and n2, then moved along dir next to the centre
  const n12 = dot(n1, n2), det = 1 - n12 * n12;
  const c1 = (d1 - d2 * n12) / det, c2 = (d2 - d1 * n12) / det;
  const base = add(scale(n1, c1), scale(n2, c2));
  const u = scale(dir, 1 / len);
  const point = add(base, scale(u, dot(sub(plane.center_lps, base), u)));
  return { point, dir: u };
}

/** Whether two planes are parallel (|cos| of their normals above 1 - tol). */
export function parallel(a, b, tol = 1e-3) { return Math.abs(dot(normalOf(a), normalOf(b))) > 1 - tol; }

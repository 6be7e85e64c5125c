// The tool registry. A tool turns one pointer's gesture on a viewport into protocol messages
// or annotations; the toolbar, the phone's long-press menu and the keyboard list the tools from
// here, so a new tool is one `defineTool()` in its own module.
//
// spec: { name, label: i18n key, group: 'nav' | 'mpr' | 'measure' | 'mask', key?: shortcut,
//         down?(vp, ptr), move?(vp, ptr, dx, dy), up?(vp, ptr), cancel?(vp),
//         applies?(vp): false when the tool cannot act on this viewport (e.g. paging a 3D view) }
// ptr: { pos, start: CSS px in the viewport, out, outStart: output px, e: the PointerEvent }

const TOOLS = new Map();

export function defineTool(spec) {
  TOOLS.set(spec.name, spec);
  return spec;
}

export function getTool(name) { return TOOLS.get(name); }

export function allTools() { return [...TOOLS.values()]; }

export const GROUPS = ['nav', 'mpr', 'measure', 'mask'];

// ---- the drag tools: each move becomes (coalesced) protocol input ----------------------------

const is3d = (vp) => !!vp.state?.view?.render3d;

defineTool({
  name: 'page', label: 'toolPage', group: 'nav', key: 'p',
  // a 3D view has no slices: dragging it turns it (the PET MIP through 360°)
  move(vp, ptr, dx, dy) {
    if (is3d(vp)) vp.queue('orbit', [dx * 0.5, 0]);
    else vp.queue('page', dy / 6);
  },
});

defineTool({
  name: 'wl', label: 'toolWl', group: 'nav', key: 'w',
  move(vp, ptr, dx, dy) { vp.queue('wl', [dx, dy]); },
});

defineTool({
  name: 'zoom', label: 'toolZoom', group: 'nav', key: 'z',
  move(vp, ptr, dx, dy) { vp.queue('zoom', { factor: Math.exp(-dy / 150), at: ptr.outStart }); },
});

defineTool({
  name: 'pan', label: 'toolPan', group: 'nav', key: 'm',
  move(vp, ptr, dx, dy) { const f = vp.fit(); vp.queue('pan', [dx / f.s, dy / f.s]); },
});

defineTool({
  name: 'orbit', label: 'toolOrbit', group: 'nav', key: 'b',
  // 3D: turn the camera; a plane: tilt it (oblique MPR), 0.5° a CSS pixel
  move(vp, ptr, dx, dy) { vp.queue('orbit', [dx * 0.5, -dy * 0.5]); },
});

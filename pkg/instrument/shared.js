// What the opt-in instrumentations share: the page-load span (document-load
// makes it; web vitals become its children) and small browser helpers.

/** Tracing → its page-load span (set by document-load.js). */
export const pageLoadSpans = new WeakMap();

/** A performance timestamp (ms since the time origin) as unix ms. */
export const unixMs = (t) => performance.timeOrigin + t;

/** Adds a listener; returns its removal. */
export function listen(target, type, f, capture = true) {
  target.addEventListener(type, f, capture);
  return () => target.removeEventListener(type, f, capture);
}

/**
 * Calls `f` once the next frame has been rendered (a task after the next
 * animation frame), or at the next task where no frame comes (a hidden page).
 */
export function afterPaint(f) {
  let done = 0;
  const once = () => done++ || f();
  if (globalThis.document?.visibilityState === 'visible' && typeof requestAnimationFrame === 'function') {
    requestAnimationFrame(() => setTimeout(once));
    setTimeout(once, 1000); // hidden before the frame: rAF never fires
  } else {
    setTimeout(once);
  }
}

/** A short, bounded description of an element: `tag#id` (never its text or value). */
export function describe(el) {
  return el?.tagName ? el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') : '';
}

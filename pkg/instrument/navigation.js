// instrumentNavigation: a `navigation` span per same-document route change
// (path or query; a fragment alone is no route change), from the Navigation
// API where the browser has it, else from history.pushState/replaceState and
// popstate. Its parent is what is current when the route changes (the click
// that caused it, with instrumentInteractions), else none.
//
// Which work belongs to it, under the context rules (never a guess):
// - the rest of the event the route change happens in (the click handlers
//   after the one that called pushState, the other navigate / popstate
//   listeners) and the microtasks they queue;
// - a Navigation API handler (`event.intercept({ handler })`): its synchronous
//   part and what continues from tracelink's own promises (await fetch…).
// It ends when an intercepted navigation's handler settles (navigatesuccess /
// navigateerror, recorded), else after the new route's first frame, or when
// the next navigation starts. Settings: { navigationApi: true } (false: the
// History API only).

import { afterPaint, listen } from './shared.js';

const route = (href) => href.split('#')[0];

export function install(hooks, { navigationApi = true } = {}) {
  const proto = globalThis.History?.prototype;
  if (!globalThis.document || !proto) return () => {};
  const tracing = hooks.tracing;
  const api = navigationApi && globalThis.navigation?.addEventListener ? globalThis.navigation : null;
  const eventProto = api && globalThis.NavigateEvent?.prototype;
  const byEvent = new WeakMap(); // navigate event → its navigation
  let open = null; // the navigation in progress
  let pending = null; // the navigation a navigate event started inside pushState/replaceState
  let popped = null; // a traversal whose popstate is still to come (Navigation API)
  let href = location.href;
  const undo = [];

  const start = (type, url) => {
    open?.finish();
    href = url;
    const span = tracing.startSpan('navigation', {
      attributes: { 'browser.navigation.type': type, 'url.full': hooks.spanUrl(url) ?? undefined },
    });
    const nav = {
      ctx: hooks.contextOf(span),
      finish: (error) => {
        if (open !== nav) return;
        open = null;
        if (error) span.recordException(error);
        span.end();
      },
    };
    return (open = nav);
  };
  /** The navigation of a navigate event, started now if it was not yet; current for the rest of the event. */
  const navOf = (e) => {
    let nav = byEvent.get(e);
    if (!nav) {
      byEvent.set(e, (nav = start(e.navigationType, e.destination.url)));
      hooks.enterEvent(nav.ctx, e);
      pending = nav;
      if (e.navigationType === 'traverse') popped = nav;
    }
    return nav;
  };

  if (api) {
    undo.push(
      listen(api, 'navigate', (e) => hooks.safe(() => {
        if (e.destination.sameDocument && route(e.destination.url) !== route(location.href)) navOf(e);
      })),
      listen(api, 'navigatesuccess', () => hooks.safe(() => open?.finish())),
      listen(api, 'navigateerror', (e) => hooks.safe(() => open?.finish(e.error))),
    );
    // A handler the app intercepts with runs in its navigation's context.
    const intercept = eventProto?.intercept;
    if (typeof intercept === 'function') {
      const patched = {
        intercept(options) { // eslint-disable-line no-unused-vars
          const handler = options?.handler;
          const nav = typeof handler === 'function' && hooks.safe(() => navOf(this));
          if (!nav) return intercept.apply(this, arguments);
          return intercept.call(this, Object.create(options, {
            handler: { value() { return hooks.run(nav.ctx, handler.bind(this)); } },
          }));
        },
      }.intercept;
      const d = Object.getOwnPropertyDescriptor(eventProto, 'intercept');
      Object.defineProperty(eventProto, 'intercept', { ...d, value: patched });
      undo.push(() => {
        if (eventProto.intercept === patched) Object.defineProperty(eventProto, 'intercept', d);
      });
    }
  }

  // pushState / replaceState: the rest of the event they are called in (a click) belongs to the navigation.
  for (const [name, type] of [['pushState', 'push'], ['replaceState', 'replace']]) {
    const original = proto[name];
    if (typeof original !== 'function') continue;
    const patched = {
      [name](data, unused) { // eslint-disable-line no-unused-vars
        const outer = globalThis.event;
        pending = null;
        const result = original.apply(this, arguments);
        hooks.safe(() => {
          let nav = pending;
          if (!api && route(location.href) !== route(href)) {
            nav = start(type, location.href);
            afterPaint(nav.finish);
          }
          if (nav && outer) hooks.enterEvent(nav.ctx, outer);
        });
        return result;
      },
    }[name];
    const d = Object.getOwnPropertyDescriptor(proto, name);
    Object.defineProperty(proto, name, { ...d, value: patched });
    undo.push(() => {
      if (proto[name] === patched) Object.defineProperty(proto, name, d);
    });
  }

  // Back / forward: the app's popstate listeners belong to the traversal.
  undo.push(listen(globalThis, 'popstate', (e) => hooks.safe(() => {
    let nav = popped;
    popped = null;
    if (!api && route(location.href) !== route(href)) {
      nav = start('traverse', location.href);
      afterPaint(nav.finish);
    }
    if (nav) hooks.enterEvent(nav.ctx, e);
  })));
  return () => undo.splice(0).forEach((f) => f());
}

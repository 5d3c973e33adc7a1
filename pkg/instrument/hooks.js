// What opt-in instrumentation modules (pkg/instrument/*.js) get from the
// tracing setup: the context rules, the traced fetch's HTTP semantics for
// other clients, and the error bookkeeping. Loaded with the first enabled
// instrumentation, so a page without any never downloads it. Internal: not
// part of the public API (it reaches into the Tracing it is given).

/** The hooks object for `t` (a Tracing); `Span` is tracelink.js's Span class. */
export function hooks(t, Span) {
  return {
    tracing: t,
    /** Whether the context is exact (AsyncLocalStorage) or task-scoped (browsers). */
    exact: t._store.exact,
    current: () => t._current(),
    /** Runs fn(...args) with `ctx` (a span's context) current in its synchronous extent. */
    run: (ctx, fn, args = []) => (ctx ? t._store.run(ctx, fn, args) : fn(...args)),
    /** A promise settling like `promise`, whose continuations re-enter `ctx` (task store). */
    follow: (promise, ctx) => t._follow(promise, ctx),
    /** The context of a Span (to pass as a parent, or to `run`). */
    contextOf: (span) => (span instanceof Span ? span._c : null),
    /**
     * An HTTP CLIENT span for `method` `url` under `parent` (a context; null for
     * a new trace; undefined: the current one), with the traced fetch's
     * semantics. Returns null when the URL is not traced, else
     * { span, headers }: the [name, value] pairs to add to the request (none
     * where trace headers may not go).
     */
    httpStart: (method, url, parent) => t._safe(() => {
      const u = new URL(String(url), globalThis.location?.href);
      if (t._ignored(u)) return null;
      const ctx = t._httpStart(String(method || 'GET').toUpperCase(), u, parent === undefined ? t._implicitParent() : parent);
      return ctx ? { span: new Span(t, ctx), headers: t._traceHeaders(ctx, u) } : null;
    }) ?? null,
    /** Ends an HTTP span: status, and the server's span read back from its response headers. */
    httpEnd: (span, status, traceresponse = '', serverTiming = '', date = '') => t._safe(() => {
      if (span?._c) t._httpEnd(span._c, Number(status) || 0, traceresponse, serverTiming, date);
    }),
    /** Ends an HTTP span whose request failed (network error, abort, timeout). */
    httpFail: (span, type, message = '') => t._safe(() => {
      if (span?._c) t._httpFail(span._c, String(type || 'Error'), String(message));
    }),
    /** Whether `error` was already recorded on a span (by traceOperation or recordException). */
    wasRecorded: (error) => error !== null && (typeof error === 'object' || typeof error === 'function') && t._recordedErrors.has(error),
    /** Runs f, counting (never throwing) any failure. */
    safe: (f) => t._safe(f),
    // ---- added for pkg/instrument (branch `instrument`) -------------------
    /** `url.full` for `url` as the traced fetch records it (no userinfo, query values redacted); null for ignoreUrls and the exporter. */
    spanUrl: (url) => t._safe(() => {
      const u = new URL(String(url), globalThis.location?.href);
      return t._ignored(u) ? null : t._spanUrl(u);
    }) ?? null,
    /**
     * Makes `ctx` current for the rest of the dispatch of `event` (an Event
     * being dispatched now): the listeners after the caller's and the
     * microtasks they queue. See enterEvent below. Returns whether it applied.
     */
    enterEvent: (ctx, event) => t._safe(() => enterEvent(t._store, ctx, event)) ?? false,
    // ---- end of the pkg/instrument addition -------------------------------
  };
}

/**
 * Task store only (an exact store carries the context itself): `ctx` is
 * current, from now until `event`'s dispatch ends, wherever the store would
 * answer what it answered at entry (`base`); an operation run or re-entered
 * inside still wins. Exact: a dispatch the browser starts as a task begins
 * with an empty microtask queue, so everything that runs until it ends (the
 * listeners, and the microtasks they queue, which run between listeners) was
 * started by this event's listeners; a dispatch from script runs only its
 * listeners. Once the dispatch is over (eventPhase NONE) it no longer applies.
 */
function enterEvent(store, ctx, event) {
  if (!ctx || store.exact || !(event?.eventPhase > 0)) return false;
  let scopes = store.eventScopes;
  if (!scopes) {
    scopes = store.eventScopes = [];
    const get = store.get;
    store.get = function () {
      let c = get.call(this);
      for (let i = 0; i < scopes.length; i++) {
        const s = scopes[i];
        if (!s.event.eventPhase) scopes.splice(i--, 1);
        else if (c === s.base) c = s.ctx;
      }
      return c;
    };
  }
  scopes.push({ event, ctx, base: store.get() });
  return true;
}

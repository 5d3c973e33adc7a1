// instrumentXhr: the traced fetch's semantics for XMLHttpRequest (axios's
// default transport): a CLIENT span per send(), trace headers and the
// correlation id added in send() only where they may go (a header the caller
// set is kept, never duplicated), URL redaction, the server's span read back
// from traceresponse / Server-Timing. The app's handlers of the request's
// events (those added after open(), as axios and most code do) run in the
// context send() was called in, like the continuations of a traced fetch.
// Works wherever XMLHttpRequest exists (pages, Web Workers).
//
// The XHR behaves exactly as without tracelink: the patched methods call the
// originals first or last with the caller's own arguments and let their
// exceptions through unchanged, and nothing listens on xhr.upload (a listener
// there makes a cross-origin request preflighted).

const EVENTS = ['readystatechange', 'loadstart', 'progress', 'load', 'error', 'abort', 'timeout', 'loadend'];
const FAILURES = { error: 'NetworkError', abort: 'AbortError', timeout: 'TimeoutError' };

export function install(hooks) {
  const proto = globalThis.XMLHttpRequest?.prototype;
  if (!proto || typeof proto.send !== 'function') return () => {};
  const { open, send, setRequestHeader } = proto;
  /** xhr → { method, url, set: header names the caller set, req: the traced request } */
  const state = new WeakMap();

  const end = (req, failure, message = '') => {
    if (req.done) return;
    req.done = true;
    if (failure) hooks.httpFail(req.span, failure, message);
    else {
      const header = (name) => req.xhr.getResponseHeader(name) ?? '';
      hooks.httpEnd(req.span, req.xhr.status, header('traceresponse'), header('server-timing'), header('date'));
    }
  };

  function onEvent(e) {
    hooks.safe(() => {
      const s = state.get(this);
      const req = s?.req;
      if (!req) return;
      hooks.enterEvent(req.caller, e); // the app's handlers after this one: the caller's continuation
      if (e.type === 'load') end(req);
      else if (FAILURES[e.type]) end(req, FAILURES[e.type]);
      else if (e.type === 'loadend' && req.done) s.req = null;
    });
  }

  const patched = {
    open(method, url) { // eslint-disable-line no-unused-vars
      const result = open.apply(this, arguments);
      hooks.safe(() => {
        const s = state.get(this);
        // open() during a request ends it without events.
        if (s?.req) end(s.req, 'AbortError', 'XMLHttpRequest.open() during the request');
        // Listeners on the XHR itself run in the order they were added: added at the
        // first open(), before the handlers most code sets after it, ours run first.
        if (!s) for (const type of EVENTS) this.addEventListener(type, onEvent);
        const base = globalThis.document?.baseURI ?? globalThis.location?.href;
        state.set(this, { method: String(method), url: new URL(String(url), base).href, set: new Set(), req: null });
      });
      return result;
    },
    setRequestHeader(name, value) { // eslint-disable-line no-unused-vars
      const result = setRequestHeader.apply(this, arguments);
      hooks.safe(() => state.get(this)?.set.add(String(name).toLowerCase()));
      return result;
    },
    send() {
      const s = state.get(this);
      const req = s && !s.req && this.readyState === 1 ? hooks.safe(() => {
        const http = hooks.httpStart(s.method, s.url);
        if (!http) return null;
        for (const [name, value] of http.headers) if (!s.set.has(name.toLowerCase())) setRequestHeader.call(this, name, value);
        return (s.req = { xhr: this, span: http.span, caller: hooks.current(), done: false });
      }) : null;
      try {
        return send.apply(this, arguments);
      } catch (e) {
        // A synchronous request that failed, or send() refused: no events follow.
        if (req) hooks.safe(() => { end(req, e?.name || 'Error', e?.message); s.req = null; });
        throw e;
      }
    },
  };

  const originals = { open, send, setRequestHeader };
  const swap = (from, to) => {
    for (const name in originals) {
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (d?.value === from[name]) Object.defineProperty(proto, name, { ...d, value: to[name] });
    }
  };
  swap(originals, patched);
  return () => swap(patched, originals);
}

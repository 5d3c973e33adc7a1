// Where "the current span" lives. A context is a small frozen record made by
// the entry: { t: the Tracing it belongs to, h: span handle, cid: correlation
// id, baggage: the W3C baggage header, tp/ts: the span's traceparent and
// tracestate once it has ended }. Rule: a parent link is never wrong, so a
// store answers `null` (no context) whenever it cannot know.
//
// Two kinds of store:
// - exact: AsyncLocalStorage (Node, Deno, Bun, workerd with nodejs_als /
//   nodejs_compat) or TC39 AsyncContext.Variable. The runtime carries the
//   context across every await, timer and callback.
// - task-scoped (browsers): a variable set only during the synchronous extent
//   of `run`, and during the continuations of tracelink's own promises
//   (`follow`). Everywhere else it is null.

/** An exact store over AsyncLocalStorage or AsyncContext.Variable. */
class AsyncStore {
  constructor(variable, name) {
    this.exact = true;
    this.name = name;
    this._v = variable;
    this._get = typeof variable.getStore === 'function' ? () => variable.getStore() : () => variable.get();
  }
  get() {
    return this._get() ?? null;
  }
  run(ctx, fn, args) {
    return this._v.run(ctx, fn, ...args);
  }
  /** The runtime re-enters contexts itself: the promise is returned as is. */
  follow(promise) {
    return promise;
  }
}

/**
 * The browser store. `follow(promise, ctx)` returns a native promise that
 * settles like `promise`; when it settles, `ctx` is current for exactly the
 * reactions registered on it by then (an `await` continuation included):
 *
 *   queue: [enter ctx] [reaction 1] … [reaction n] [leave]
 *
 * Both markers are queued in the same synchronous step as the settlement, so
 * no other job can run between them; jobs those reactions queue run after
 * `leave`, without a context.
 */
class TaskStore {
  constructor() {
    this.exact = false;
    this.name = 'task';
    this._cur = null;
  }
  get() {
    return this._cur;
  }
  run(ctx, fn, args) {
    const previous = this._cur;
    this._cur = ctx;
    try {
      return fn(...args);
    } finally {
      this._cur = previous;
    }
  }
  follow(promise, ctx) {
    if (!ctx) return promise;
    return new Promise((resolve, reject) => {
      const settle = (f, v) => {
        queueMicrotask(() => { this._cur = ctx; });
        f(v);
        queueMicrotask(() => { this._cur = null; });
      };
      promise.then((v) => settle(resolve, v), (e) => settle(reject, e));
    });
  }
}

const taskStore = new TaskStore(); // one per realm: "current" is realm-wide here

/**
 * Picks the store: `option` (an AsyncLocalStorage class or instance, or an
 * AsyncContext.Variable; `false` for the task store everywhere), else TC39 AsyncContext, else AsyncLocalStorage found
 * without a static `node:` import (which would break browser bundles), else
 * the task store.
 */
export async function contextStore(option) {
  const g = globalThis;
  if (option === false) return taskStore;
  if (option != null) {
    if (typeof option === 'function') option = new option(); // the AsyncLocalStorage class
    if (typeof option.run !== 'function' || (typeof option.getStore !== 'function' && typeof option.get !== 'function')) {
      throw new TypeError('tracelink: setupTracing: asyncContext must be AsyncLocalStorage (class or instance) or an AsyncContext.Variable');
    }
    return new AsyncStore(option, typeof option.getStore === 'function' ? 'AsyncLocalStorage' : 'AsyncContext');
  }
  try {
    if (typeof g.AsyncContext?.Variable === 'function') return new AsyncStore(new g.AsyncContext.Variable(), 'AsyncContext');
  } catch { /* a partial implementation: try the next */ }
  const hooks = await asyncHooks(g);
  if (typeof hooks?.AsyncLocalStorage === 'function') {
    try {
      return new AsyncStore(new hooks.AsyncLocalStorage(), 'AsyncLocalStorage');
    } catch { /* unusable: fall through */ }
  }
  return taskStore;
}

/** `node:async_hooks` where the runtime has it, never in a browser. */
async function asyncHooks(g) {
  let proc;
  try { proc = g.process; } catch { return null; }
  try {
    const m = proc?.getBuiltinModule?.('node:async_hooks');
    if (m) return m;
  } catch { /* not allowed: try the import */ }
  // Server runtimes without getBuiltinModule. A browser has none of these, so
  // it never evaluates the import; bundlers are told to leave it alone.
  let ua = '';
  try { ua = String(g.navigator?.userAgent ?? ''); } catch { /* none */ }
  if (!proc?.versions?.node && !g.Deno?.version && !g.Bun && ua !== "Cloudflare-Workers") return null;
  const specifier = 'node:async_hooks';
  try {
    return await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier);
  } catch {
    return null;
  }
}

// What server runtimes need, loaded by setupTracing only there (or when an
// option asks for it): a browser page never downloads this file.
// - The OTEL_* settings (process.env, or `options.env`).
// - The exact context stores (a server runtime, TC39 AsyncContext, or an
//   `asyncContext` option). A context is a small record made by
// tracelink.js ({ t: the Tracing it belongs to, h: span handle, cid:
// correlation id, baggage: the W3C baggage header, tp/ts: the span's
// traceparent and tracestate once it has ended }). Rule: a parent link is
// never wrong, so a store answers `null` (no context) whenever it cannot know.
//
// Two kinds of store:
// - exact (here): AsyncLocalStorage (Node, Deno, Bun, workerd with
//   nodejs_als / nodejs_compat) or TC39 AsyncContext.Variable. The runtime
//   carries the context across every await, timer and callback.
// - task-scoped (browsers; tracelink.js's TaskStore): a variable set only
//   during the synchronous extent of `run`, and during the continuations of
//   tracelink's own promises (`follow`). Everywhere else it is null.

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
 * The exact store: `option` (an AsyncLocalStorage class or instance, or an
 * AsyncContext.Variable), else TC39 AsyncContext, else AsyncLocalStorage
 * found without a static `node:` import (which would break browser bundles);
 * null when there is none (the task store then).
 */
export async function contextStore(option) {
  const g = globalThis;
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
  return null;
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

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS / OTEL_RESOURCE_ATTRIBUTES). */
function parseKeyValueList(s) {
  const out = {};
  for (const part of String(s ?? '').split(',')) {
    const i = part.indexOf('=');
    try {
      if (i > 0) out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch { /* malformed escape: skip the entry */ }
  }
  return out;
}

const ENV_KEYS = ['OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_CONSOLE_EXPORT'];

/** The OTEL_* settings: `options.env`, else process.env where it exists (Node, Bun, Deno). */
function readEnv(options) {
  const g = globalThis;
  if (options.env != null) {
    if (typeof options.env !== 'object') throw new TypeError('tracelink: setupTracing: env must be an object of OTEL_* settings');
    return options.env;
  }
  // Deno throws (or prompts) on a variable not granted by --allow-env: read only granted ones.
  const env = {};
  let source, deno;
  try { source = g.process?.env; deno = g.Deno?.permissions; } catch { /* no process */ }
  if (source) {
    for (const key of ENV_KEYS) {
      try {
        if (deno && deno.querySync({ name: 'env', variable: key }).state !== 'granted') continue;
        if (typeof source[key] === 'string') env[key] = source[key];
      } catch { /* unreadable: unset */ }
    }
  }
  return env;
}

/**
 * The defaults the OTEL_* settings give setupTracing's options (explicit
 * options win; setupTracing validates both alike).
 */
export function envDefaults(options) {
  const env = readEnv(options);
  const resource = parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES);
  const tracesEndpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const headers = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS || env.OTEL_EXPORTER_OTLP_HEADERS;
  const sampler = env.OTEL_TRACES_SAMPLER_ARG;
  const consoleExport = env.OTEL_CONSOLE_EXPORT;
  return {
    serviceName: env.OTEL_SERVICE_NAME ?? resource['service.name'],
    serviceVersion: resource['service.version'],
    resourceAttributes: resource,
    // A signal-specific endpoint is the full URL; the general one a base URL.
    otlpEndpoint: tracesEndpoint || env.OTEL_EXPORTER_OTLP_ENDPOINT,
    otlpBase: !tracesEndpoint,
    otlpHeaders: headers ? parseKeyValueList(headers) : undefined,
    protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL,
    sampleRate: sampler != null ? Number(sampler) : undefined,
    consoleExport: consoleExport === true || (typeof consoleExport === 'string' && /^(1|true|yes|on)$/i.test(consoleExport.trim())),
  };
}

// Type declarations for tracelink (hand-written; the API is pkg/tracelink.js).

/** An attribute value: OpenTelemetry's primitive types and homogeneous arrays. */
export type AttributeValue = string | number | boolean | bigint | string[] | number[] | boolean[];
export type Attributes = Record<string, AttributeValue | undefined>;

/** A W3C context read from headers, usable as `options.parent`. */
export interface RemoteContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceparent: string;
  tracestate: string;
  /** The received `baggage` header, validated ('' if none); inherited by spans started under this context. */
  baggage: string;
}

/** Something that carries the current context across awaits: AsyncLocalStorage (class or instance) or AsyncContext.Variable. */
export type AsyncContextCarrier =
  | { new (): { run<R>(store: unknown, fn: (...args: any[]) => R, ...args: any[]): R; getStore(): unknown } }
  | { run<R>(store: unknown, fn: (...args: any[]) => R, ...args: any[]): R; getStore(): unknown }
  | { run<R>(value: unknown, fn: (...args: any[]) => R, ...args: any[]): R; get(): unknown };

export interface TracingOptions {
  /** `service.name` (or OTEL_SERVICE_NAME). */
  serviceName?: string;
  /** `service.version`. */
  serviceVersion?: string;
  /** Full `/v1/traces` URL or a base URL (or OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT). Relative URLs resolve against the page. */
  otlpEndpoint?: string | URL;
  /** Headers sent only to the collector, e.g. auth (or OTEL_EXPORTER_OTLP_HEADERS). */
  otlpHeaders?: Record<string, string>;
  /** Wire format; default 'http/protobuf'. */
  protocol?: 'http/protobuf' | 'http/json';
  /** Log each ended span with console.debug (or OTEL_CONSOLE_EXPORT). */
  consoleExport?: boolean;
  /** Where trace headers may go besides the page's own origin: URL prefixes or RegExps on the full URL. */
  propagateTo?: Array<string | RegExp>;
  /** Also send `baggage` to those destinations. Default false. */
  propagateBaggage?: boolean;
  /** Replace `globalThis.fetch` with the traced fetch (undo with `restoreFetch`). */
  instrumentFetch?: boolean;
  /** Ratio of new traces recorded, 0..1 (or OTEL_TRACES_SAMPLER_ARG). Children follow their parent. */
  sampleRate?: number;
  /** Header that carries an operation's correlation id on its fetches, e.g. 'X-Correlation-ID'. */
  correlationIdHeader?: string;
  /** Query parameters whose values are replaced by REDACTED in `url.full`. */
  redactQueryParams?: string[];
  /** Extra resource attributes (also from OTEL_RESOURCE_ATTRIBUTES). */
  resourceAttributes?: Record<string, string>;
  /** The wasm: a precompiled Module (Workers), bytes (Node/Deno/Bun), or a URL. Default: next to tracelink.js. */
  wasm?: WebAssembly.Module | BufferSource | URL | string | Response;
  /** OTEL_* settings, e.g. a Worker's `env` bindings. Default: `process.env` where it exists. */
  env?: Record<string, string | undefined>;
  /** The fetch used for the app's calls and for export. Default: `globalThis.fetch` at setup. */
  fetch?: typeof fetch;
  /** Export timer after the first queued span, ms. Default 1000. */
  scheduleDelayMillis?: number;
  /** Spans queued at most before new ones are dropped (counted). Default 2048. */
  maxQueueSize?: number;
  /** Spans per export request at most. Default 512. */
  maxExportBatchSize?: number;
  /** Abort an export request after this many ms. Default 30000. */
  exportTimeoutMillis?: number;
  /**
   * How the current span follows async work. Default: TC39 AsyncContext where
   * it exists, else AsyncLocalStorage found at setup (Node, Deno, Bun, workerd
   * with nodejs_als / nodejs_compat), else the browser's task-scoped rules
   * (README: "Context across await"). Pass AsyncLocalStorage where it cannot be
   * found on its own; `false` forces the task-scoped rules.
   */
  asyncContext?: AsyncContextCarrier | false;
  /**
   * Send export bodies gzip'd (`Content-Encoding: gzip`, compressed synchronously
   * in wasm, so also at page hide; beacons and stored bodies stay plain). Default:
   * on for a same-origin endpoint and outside browsers; off for a cross-origin
   * collector, whose CORS settings must allow `Content-Encoding` first. The
   * encoder is in `tracelink-gzip.wasm` (and `tracelink-full.wasm`), loaded
   * instead of `tracelink.wasm` when this is on (+1.8 KB gzip). With an
   * `options.wasm` that has no encoder, the default is off and `true` rejects.
   */
  compress?: boolean;
  /** Store spans that cannot be sent (offline, collector down at page hide, retries exhausted) in IndexedDB and send them on the next load or when back online, exactly once across tabs. Default true where IndexedDB exists. */
  persist?: boolean;
  /** Bytes of stored spans kept at most (oldest dropped first, counted). Default 1 MiB. */
  persistMaxBytes?: number;
  /** Age of stored spans kept at most, ms (older are dropped, counted). Default 24 h. */
  persistMaxAgeMs?: number;
  /** URLs never traced (prefixes or RegExps on the full URL), by fetch and every instrumentation. The exporter's own endpoint never is. */
  ignoreUrls?: Array<string | RegExp>;
  // Opt-in instrumentations: each module is downloaded only when its option is set.
  /** A CLIENT span per XMLHttpRequest, with the traced fetch's headers and semantics (pages, Web Workers). */
  instrumentXhr?: boolean | Record<string, never>;
  /** The page load as a trace (documentLoad, documentFetch, resourceFetch, paints), joined to the HTML response's server span. */
  instrumentDocumentLoad?: boolean | DocumentLoadOptions;
  /** A `navigation` span per SPA route change (Navigation API, else History API). */
  instrumentNavigation?: boolean | NavigationOptions;
  /** A root span per click / submit on an element, current for its handlers. */
  instrumentInteractions?: boolean | InteractionOptions;
  /** Uncaught errors and unhandled rejections recorded on the current span (or a short standalone span). */
  instrumentErrors?: boolean | Record<string, never>;
  /** TTFB, FCP, LCP, INP, CLS: one span each per page (children of the page-load span with instrumentDocumentLoad). */
  instrumentWebVitals?: boolean | Record<string, never>;
}

// ---- instrumentation settings (pkg/instrument/) ----
export interface DocumentLoadOptions {
  /** Most resourceFetch spans per page load (default 250); the rest are counted in `tracelink.resources_dropped`. */
  maxResources?: number;
}
export interface NavigationOptions {
  /** Use the Navigation API where the browser has it (default true); false: History API only. */
  navigationApi?: boolean;
}
export interface InteractionOptions {
  /** DOM event types that start a span (default ['click', 'submit']). */
  events?: string[];
  /** Attribute that names an element's span (default 'data-trace-name'). */
  nameAttribute?: string;
  /** CSS selector of the elements a click counts on (default: links, buttons, checkboxes, radios, summary, ARIA controls, named elements). */
  selector?: string;
}

export interface SpanOptions {
  attributes?: Attributes;
  kind?: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** Parent: a Span, a context from `extractContext`, or null for a new trace. Default: the current span. */
  parent?: Span | RemoteContext | null;
  /** Sets `correlation_id` on this span; children and their fetches inherit it. */
  correlationId?: string;
  /** Start time: unix milliseconds or a Date. Default: now. */
  startTime?: number | Date;
}

/** A span. Methods never throw and do nothing once it has ended. */
export class Span {
  setAttribute(key: string, value: AttributeValue): this;
  setAttributes(attributes: Attributes): this;
  addEvent(name: string, attributes?: Attributes): this;
  setStatus(code: 'ok' | 'error' | 'unset' | { code: 'ok' | 'error' | 'unset'; message?: string }, message?: string): this;
  recordException(error: unknown): this;
  updateName(name: string): this;
  /** Ends the span now, or at `endTime` (unix milliseconds or a Date). */
  end(endTime?: number | Date): void;
  isRecording(): boolean;
  readonly traceId: string;
  readonly spanId: string;
  readonly traceparent: string;
  /** A traced fetch whose parent is this span (for concurrent code). */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * Runs `fn(...args)` with this span current (OpenTelemetry's `context.with`):
   * spans, fetches, correlation id and baggage inside belong to it.
   */
  run<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R;
}

export interface TracingStats {
  started: number;
  unsampled: number;
  ended: number;
  queued: number;
  inFlight: number;
  exported: number;
  dropped: number;
  droppedQueueFull: number;
  droppedTooLarge: number;
  droppedRejected: number;
  droppedFailed: number;
  droppedShutdown: number;
  droppedLiveLimit: number;
  retried: number;
  failedRequests: number;
  internalErrors: number;
  broken: boolean;
  /** Spans started with no parent because the context could not be known while an operation was open (task-scoped store only). */
  parentUnknown: number;
  /** The context mechanism: 'AsyncContext', 'AsyncLocalStorage' or 'task'. */
  contextMode: string;
  [counter: string]: number | boolean | string;
}

export class Tracing {
  traceOperation<T>(name: string, fn: (span: Span) => T): T;
  traceOperation<T>(name: string, options: SpanOptions | undefined, fn: (span: Span) => T): T;
  /** Runs `fn(...args)` with `span` current: the same as `span.run(fn, ...args)`. */
  withSpan<A extends unknown[], R>(span: Span, fn: (...args: A) => R, ...args: A): R;
  /** The current operation's correlation id, if any. */
  currentCorrelationId(): string | undefined;
  startSpan(name: string, options?: SpanOptions): Span;
  currentSpan(): Span;
  addTraceAttributes(attributes: Attributes): void;
  addTraceEvent(name: string, attributes?: Attributes): void;
  currentTraceId(): string;
  /** Writes `traceparent` (and `tracestate`, and `baggage` with `propagateBaggage`) of the current span into `carrier` and returns it. Never throws. */
  injectContext(carrier: Headers): Headers;
  injectContext(carrier?: Record<string, string>): Record<string, string> & { traceparent?: string; tracestate?: string };
  extractContext(headers: Headers | Record<string, string> | Map<string, string>): RemoteContext | null;
  /** Sets a baggage entry in the current context (or for work outside operations), sent only with `propagateBaggage` and only where trace headers may go. */
  setBaggage(key: string, value: string): boolean;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  instrumentFetch(): void;
  restoreFetch(): void;
  flush(timeoutMs?: number): Promise<void>;
  shutdown(timeoutMs?: number): Promise<void>;
  stats(): TracingStats;
}

/** Validates options, loads the wasm once, and starts tracing. */
export function setupTracing(options: TracingOptions): Promise<Tracing>;

// bench/sink.mjs: a local OTLP/HTTP trace sink for the benchmark.
//
// Listens on 127.0.0.1 (a free port unless told), accepts POST .../v1/traces in
// OTLP JSON or protobuf (optionally gzip/deflate/br encoded), and counts, per
// request: body bytes on the wire, header bytes, spans, and the shape of each
// span (attribute and event counts). It decodes just enough OTLP protobuf to
// count Span messages inside ScopeSpans; JSON is parsed.
//
// Runs are kept apart by path: POST /r/<run>/v1/traces records into run <run>
// (a plain /v1/traces goes to run "default"). Each run has a mode:
//   up    200 (empty ExportTraceServiceResponse); with `forward` set, the
//         body is passed on to that OTLP/HTTP URL (e.g. a real collector
//         without CORS) and its status is answered and recorded instead
//   503   503 Service Unavailable (what a struggling collector answers)
//   down  the connection is destroyed without a response (a dead collector)
// CORS: preflights are answered for any origin (credentials allowed, so
// sendBeacon works too, Max-Age 600); every response carries
// Cross-Origin-Resource-Policy: cross-origin (pages may be cross-origin isolated).
//
// In-process use (bench/run.mjs):  const sink = await startSink();
//   sink.url(run, mode?) -> endpoint URL; sink.setMode(run, mode); sink.run(run) -> record
// Standalone:  node bench/sink.mjs [--port 4318]   (prints one line per request)
//   control:   GET /_sink/runs   POST /_sink/mode?run=ID&mode=up|503|down
import { createServer } from 'node:http';
import { gzipSync, gunzipSync, inflateSync, brotliDecompressSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const MODES = new Set(['up', '503', 'down']);

/** Wall-clock milliseconds with sub-ms precision (comparable with a page's timeOrigin + now()). */
export const nowMs = () => performance.timeOrigin + performance.now();

// ---- OTLP protobuf: just enough to count spans -----------------------------

/** Reads a varint at `pos`; returns [value, nextPos]. Throws on truncation. */
function varint(buf, pos) {
  let v = 0, mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, pos];
    mul *= 128;
  }
  throw new Error('varint too long');
}

/** Calls `onField(fieldNumber, start, end)` for each length-delimited field of the message buf[start, end). */
function eachField(buf, start, end, onField) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = varint(buf, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    switch (wire) {
      case 0: [, pos] = varint(buf, pos); break;
      case 1: pos += 8; break;
      case 5: pos += 4; break;
      case 2: {
        let len;
        [len, pos] = varint(buf, pos);
        if (pos + len > end) throw new Error('truncated field');
        onField(field, pos, pos + len);
        pos += len;
        break;
      }
      default: throw new Error(`unsupported wire type ${wire}`);
    }
  }
  if (pos !== end) throw new Error('message overrun');
}

/**
 * Counts the spans of an ExportTraceServiceRequest and the shape of each:
 * request.resource_spans(1) -> ResourceSpans.scope_spans(2) -> ScopeSpans.spans(2)
 * -> Span.attributes(9), Span.events(11).
 */
export function countProtobuf(buf) {
  const shapes = new Map();
  let spans = 0;
  eachField(buf, 0, buf.length, (f, s, e) => {
    if (f !== 1) return;
    eachField(buf, s, e, (f2, s2, e2) => {
      if (f2 !== 2) return;
      eachField(buf, s2, e2, (f3, s3, e3) => {
        if (f3 !== 2) return;
        spans++;
        let attrs = 0, events = 0;
        eachField(buf, s3, e3, (f4) => { if (f4 === 9) attrs++; else if (f4 === 11) events++; });
        const k = `${attrs}a/${events}e`;
        shapes.set(k, (shapes.get(k) ?? 0) + 1);
      });
    });
  });
  return { spans, shapes };
}

/** The same count for OTLP JSON. */
export function countJson(buf) {
  const doc = JSON.parse(Buffer.from(buf).toString('utf8'));
  const shapes = new Map();
  let spans = 0;
  for (const rs of doc.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const sp of ss.spans ?? []) {
        spans++;
        const k = `${sp.attributes?.length ?? 0}a/${sp.events?.length ?? 0}e`;
        shapes.set(k, (shapes.get(k) ?? 0) + 1);
      }
    }
  }
  return { spans, shapes };
}

function decodeBody(body, encoding) {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case '': case 'identity': return body;
    case 'gzip': case 'x-gzip': return gunzipSync(body);
    case 'deflate': return inflateSync(body);
    case 'br': return brotliDecompressSync(body);
    default: throw new Error(`unknown content-encoding ${encoding}`);
  }
}

// ---- the server ------------------------------------------------------------

function newRun(id) {
  return {
    id, mode: 'up', gzip: false, forward: null, upstreamErrors: [],
    firstJson: null, // the start of the first OTLP/JSON body, to eyeball
    requests: [], // { t, bytes, headerBytes, spans, json, encoding, status, gzipBytes?, error? }
    spans: 0, bytes: 0, headerBytes: 0, gzipBytes: 0, gzipSpans: 0,
    preflights: 0, refused: 0, errors: 0, firstT: null, lastT: null,
    pending: 0, aborted: 0, // uploads under way; uploads the client gave up on
    shapes: {},
  };
}

function corsHeaders(req) {
  const origin = req.headers.origin;
  const h = {
    'Cross-Origin-Resource-Policy': 'cross-origin',
    'Access-Control-Allow-Origin': origin && origin !== 'null' ? origin : '*',
    Vary: 'Origin',
  };
  if (origin && origin !== 'null') h['Access-Control-Allow-Credentials'] = 'true';
  return h;
}

/**
 * Starts the sink. Options: { port = 0, host = '127.0.0.1', log = false }.
 * Resolves to { port, origin, url(run, opts), setMode(run, mode), run(run), runs, reset(run), close() }.
 */
export async function startSink({ port = 0, host = '127.0.0.1', log = false } = {}) {
  const runs = new Map();
  const run = (id) => {
    let r = runs.get(id);
    if (!r) runs.set(id, (r = newRun(id)));
    return r;
  };

  /** Passes a request body on to `url`; resolves to [status, text]. */
  async function forward(url, req, body) {
    try {
      const headers = { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf' };
      if (req.headers['content-encoding']) headers['content-encoding'] = req.headers['content-encoding'];
      const res = await fetch(url, { method: 'POST', headers, body });
      return [res.status, res.ok ? '' : (await res.text()).slice(0, 300)];
    } catch (e) {
      return [502, String(e?.cause?.code ?? e?.message ?? e)];
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://sink');
    if (url.pathname.startsWith('/_sink/')) return control(req, res, url);
    const m = /^(?:\/r\/([^/]+))?\/v1\/traces\/?$/.exec(url.pathname);
    const r = m ? run(m[1] ?? 'default') : null;
    if (req.method === 'OPTIONS') {
      if (r) r.preflights++;
      if (r?.mode === 'down') { r.refused++; return req.socket.destroy(); }
      res.writeHead(204, {
        ...corsHeaders(req),
        'Access-Control-Allow-Methods': 'POST, OPTIONS',
        'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'content-type',
        'Access-Control-Max-Age': '600',
      });
      return res.end();
    }
    if (!r || req.method !== 'POST') {
      res.writeHead(404, corsHeaders(req));
      return res.end();
    }
    if (r.mode === 'down') {
      r.refused++;
      req.socket.destroy();
      return;
    }
    const chunks = [];
    let open = true;
    r.pending++;
    const settle = () => { if (open) { open = false; r.pending--; } };
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => {});
    req.on('close', () => { if (open) { r.aborted++; settle(); } });
    req.on('end', async () => {
      settle();
      let t = nowMs();
      const body = Buffer.concat(chunks);
      const ct = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      const json = ct === 'application/json';
      let headerBytes = 0;
      for (let i = 0; i < req.rawHeaders.length; i += 2) headerBytes += req.rawHeaders[i].length + req.rawHeaders[i + 1].length + 4;
      headerBytes += req.method.length + req.url.length + 12; // request line
      const rec = { t, bytes: body.length, headerBytes, spans: 0, json, encoding: req.headers['content-encoding'] ?? '', status: 200 };
      try {
        const raw = decodeBody(body, req.headers['content-encoding']);
        const { spans, shapes } = json ? countJson(raw) : countProtobuf(raw);
        rec.spans = spans;
        for (const [k, n] of shapes) r.shapes[k] = (r.shapes[k] ?? 0) + n;
        if (json && r.firstJson == null) r.firstJson = Buffer.from(raw).toString('utf8').slice(0, 4000);
        if (r.gzip && !rec.encoding) {
          rec.gzipBytes = gzipSync(raw).length; // what Content-Encoding: gzip (zlib level 6) would put on the wire
          r.gzipBytes += rec.gzipBytes;
          r.gzipSpans += spans;
        }
      } catch (e) {
        rec.error = String(e?.message ?? e);
        rec.status = 400;
        r.errors++;
      }
      if (r.mode === '503' && rec.status === 200) rec.status = 503;
      if (r.forward && rec.status === 200) {
        const [status, text] = await forward(r.forward, req, body);
        rec.status = status;
        t = rec.t = nowMs();
        if (status !== 200 && r.upstreamErrors.length < 5) r.upstreamErrors.push(`${status} ${text}`);
      }
      if (rec.status === 200) {
        r.spans += rec.spans;
        r.bytes += rec.bytes;
        r.headerBytes += rec.headerBytes;
        r.firstT ??= t;
        r.lastT = t;
      }
      r.requests.push(rec);
      if (log) console.log(`${new Date(t).toISOString()} run=${r.id} ${json ? 'json' : 'protobuf'}${rec.encoding ? '+' + rec.encoding : ''} ${rec.bytes} B ${rec.spans} spans -> ${rec.status}${rec.error ? ' ' + rec.error : ''}`);
      const headers = corsHeaders(req);
      if (rec.status === 200) {
        headers['Content-Type'] = json ? 'application/json' : 'application/x-protobuf';
        res.writeHead(200, headers);
        return res.end(json ? '{}' : '');
      }
      res.writeHead(rec.status, { ...headers, 'Content-Type': 'text/plain' });
      res.end(rec.status === 503 ? 'unavailable' : rec.error);
    });
  });

  function control(req, res, url) {
    const send = (code, obj) => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); };
    if (url.pathname === '/_sink/runs') {
      return send(200, [...runs.values()].map(({ requests, ...rest }) => ({ ...rest, requests: requests.length })));
    }
    if (url.pathname === '/_sink/mode' && req.method === 'POST') {
      const mode = url.searchParams.get('mode');
      if (!MODES.has(mode)) return send(400, { error: 'mode must be up, 503 or down' });
      run(url.searchParams.get('run') ?? 'default').mode = mode;
      return send(200, { ok: true });
    }
    return send(404, { error: 'not found' });
  }

  server.keepAliveTimeout = 30000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  const origin = `http://${host}:${actualPort}`;
  return {
    port: actualPort,
    origin,
    runs,
    /**
     * The endpoint URL for run `id`; `opts.mode`, `opts.gzip` (compute the
     * gzip'd size) and `opts.forward` (upstream OTLP URL) set up the run.
     */
    url(id, opts = {}) {
      const r = run(id);
      if (opts.forward !== undefined) r.forward = opts.forward;
      if (opts.mode) this.setMode(id, opts.mode);
      if (opts.gzip !== undefined) r.gzip = !!opts.gzip;
      return `${origin}/r/${encodeURIComponent(id)}/v1/traces`;
    },
    setMode(id, mode) {
      if (!MODES.has(mode)) throw new Error(`sink mode must be up, 503 or down, got ${mode}`);
      run(id).mode = mode;
    },
    run,
    reset(id) { runs.delete(id); },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--port');
  const sink = await startSink({ port: i > 0 ? Number(process.argv[i + 1]) : 0, log: true });
  console.log(`OTLP sink on ${sink.origin}/v1/traces (runs: ${sink.origin}/r/<run>/v1/traces; stats: ${sink.origin}/_sink/runs)`);
}

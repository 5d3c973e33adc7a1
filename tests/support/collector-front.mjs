// A collector front for the fault tests: forwards OTLP/HTTP requests to a
// real collector (rotel, from peers.mjs startCollector) or fails them on
// command. Mount `front.handler` on a page's own server (same origin, as a
// relay), or `await front.listen()` for a server of its own (Node tests),
// which can also refuse connections outright.
//
//   front.set('pass')                        forward to the collector
//   front.set('down')                        close the connection without an answer
//   front.set('status', { status: 429, retryAfter: '1', times: 3 })
//                                            answer that status (the next `times`
//                                            requests, then pass; default: all)
//   front.set('flap', { status: 503, fail: 2, pass: 2 })
//                                            `fail` requests in a row fail, then `pass`
//                                            pass, and so on
//   front.set('hold')                        keep requests waiting until set() again
//   await front.refuse() / await front.accept()   (own server only) stop / resume listening
//
// `front.log` records every request: { mode, bytes, status } (status 0: no answer).
import http from 'node:http';
import { corsFront } from './peers.mjs';

const HOST = '127.0.0.1';

export function collectorFront({ upstream }) {
  const forward = corsFront({ upstream });
  let mode = { kind: 'pass' };
  let held = [];
  let flapped = 0;
  const log = [];

  const answer = (res, entry, status, retryAfter) => {
    entry.status = status;
    res.writeHead(status, { 'content-type': 'text/plain', ...(retryAfter != null ? { 'retry-after': retryAfter } : {}) });
    res.end(`front: ${status}`);
  };
  const pass = async (req, res, ctx, entry) => {
    await forward(req, res, ctx);
    entry.status = res.statusCode;
  };

  const handler = async (req, res, ctx) => {
    if (req.method !== 'POST') return pass(req, res, ctx, {});
    const m = mode;
    const entry = { mode: m.kind, bytes: ctx.body.length, status: null };
    log.push(entry);
    switch (m.kind) {
      case 'down':
        entry.status = 0;
        req.socket.destroy();
        return undefined;
      case 'status':
        if (m.times === undefined || m.times-- > 0) return answer(res, entry, m.status, m.retryAfter);
        return pass(req, res, ctx, entry);
      case 'flap': {
        const fail = m.fail ?? 1;
        if (flapped++ % (fail + (m.pass ?? 1)) < fail) return answer(res, entry, m.status ?? 503, m.retryAfter);
        return pass(req, res, ctx, entry);
      }
      case 'hold':
        await new Promise((resolve) => held.push(resolve));
        return pass(req, res, ctx, entry);
      default:
        return pass(req, res, ctx, entry);
    }
  };

  let server = null;
  let port = 0;
  const sockets = new Set();
  const listen = () => new Promise((resolve, reject) => {
    server = http.createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const url = new URL(req.url, `http://${HOST}`);
      try {
        await handler(req, res, { url, body: Buffer.concat(chunks) });
      } catch {
        res.destroy();
      }
    });
    server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    server.once('error', reject);
    server.listen(port, HOST, () => {
      port = server.address().port;
      resolve();
    });
  });

  return {
    handler,
    log,
    /** Switches the mode (see the file header); releases held requests unless the new mode is 'hold'. */
    set(kind, options = {}) {
      mode = { kind, ...options };
      flapped = 0;
      if (kind !== 'hold') for (const release of held.splice(0)) release();
    },
    /** Requests waiting in 'hold' mode. */
    get held() { return held.length; },
    /** Starts the front's own server on a free port; returns its /v1/traces URL. */
    async listen() {
      await listen();
      return `http://${HOST}:${port}/v1/traces`;
    },
    /** Own server: stops listening and drops open connections (connection refused from now on). */
    async refuse() {
      if (!server) return;
      const s = server;
      server = null;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => s.close(() => resolve()));
    },
    /** Own server: listens again on the same port. */
    async accept() {
      if (!server) await listen();
    },
    async stop() {
      this.set('pass');
      await this.refuse();
    },
  };
}

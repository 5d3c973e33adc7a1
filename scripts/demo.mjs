#!/usr/bin/env node
// scripts/demo.mjs: the FIR desk demo stack on 127.0.0.1, in the foreground until Ctrl-C.
//
//   tracelink-viewer  Jaeger UI + JSON API       http://127.0.0.1:16686/   DEMO_VIEWER_PORT
//   rotel             OTLP/HTTP + OTLP/gRPC      127.0.0.1:4318, :4317     DEMO_COLLECTOR_HTTP_PORT,
//                     forwarding to the viewer                             DEMO_COLLECTOR_GRPC_PORT
//   demo/backend      www/ at /, pkg/ at /pkg/,  http://127.0.0.1:8000/    DEMO_PORT
//                     the API, the OTLP relay /otlp/v1/traces -> rotel
//
// The viewer's own OTLP receivers (only rotel talks to them) take free ports unless
// DEMO_VIEWER_GRPC_PORT / DEMO_VIEWER_HTTP_PORT are set. Run it through `make demo`
// (scripts/demo.sh builds pkg/ first). tests/e2e/demo.test.mjs starts the same stack
// through startDemo() on free ports.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  ROOT, delegateStopSignals, freePort, startBackend, startCollector, startViewer, stopAll,
} from '../tests/support/peers.mjs';

const HOST = '127.0.0.1';

/** The demo's ports, the variable that overrides each, and its default (0: any free port). */
export const PORTS = {
  app: { env: 'DEMO_PORT', fallback: 8000 },
  viewer: { env: 'DEMO_VIEWER_PORT', fallback: 16686 },
  collectorHttp: { env: 'DEMO_COLLECTOR_HTTP_PORT', fallback: 4318 },
  collectorGrpc: { env: 'DEMO_COLLECTOR_GRPC_PORT', fallback: 4317 },
  viewerGrpc: { env: 'DEMO_VIEWER_GRPC_PORT', fallback: 0 },
  viewerHttp: { env: 'DEMO_VIEWER_HTTP_PORT', fallback: 0 },
};

/** A start failure whose message is meant for the user as it is. */
export class DemoError extends Error {}

/** The ports from DEMO_* variables (defaults above); throws a DemoError on a malformed one. */
export function portsFromEnv(env = process.env) {
  const ports = {};
  for (const [key, { env: name, fallback }] of Object.entries(PORTS)) {
    const raw = (env[name] ?? '').trim();
    const port = raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new DemoError(`${name}=${raw} is not a port number (0 to 65535; 0 picks a free port)`);
    }
    ports[key] = port;
  }
  return ports;
}

/** Can this process listen on HOST:port? false when something else has it (or it is privileged). */
function canListen(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Start the viewer, rotel (forwarding to the viewer) and the backend (serving www/ and pkg/),
 * in that order. `ports` as from portsFromEnv(); a missing or 0 port is any free port. A port
 * that is taken, or a part that does not come up, stops whatever was started and throws a
 * DemoError naming it. Returns { appUrl, viewerUrl, collector, viewer, backend, parts, stop() }:
 * parts is [{ what, exited }] and stop() stops the backend, then rotel, then the viewer, so each
 * flushes its last spans to the next.
 */
export async function startDemo({ ports = {} } = {}) {
  for (const file of ['pkg/tracelink.js', 'pkg/context.js', 'pkg/core.js', 'pkg/tracelink.wasm', 'www/index.html']) {
    if (!fs.existsSync(path.join(ROOT, file))) {
      throw new DemoError(`${file} is missing: build the package first (bash scripts/build.sh, or make demo)`);
    }
  }
  const chosen = {};
  for (const key of Object.keys(PORTS)) {
    const port = ports[key] || 0;
    if (port && !(await canListen(port))) {
      throw new DemoError(`port ${port} is in use (set ${PORTS[key].env} to another port, or 0 for any free one)`);
    }
    chosen[key] = port || await freePort();
  }

  const started = [];
  const stop = async () => {
    for (const part of [...started].reverse()) await part.stop();
  };
  const start = async (what, run) => {
    try {
      const part = await run();
      started.push(part);
      return part;
    } catch (error) {
      await stop();
      // Taken between the check above and the start: name the variable that moves it.
      const taken = Number(error.message.match(/port [\d.]+:(\d+) is already in use/)?.[1]);
      const key = Object.keys(chosen).find((k) => chosen[k] === taken);
      const hint = key ? ` (port ${taken} is in use: set ${PORTS[key].env})` : '';
      const detail = error.message.startsWith(`${what}: `) ? error.message.slice(what.length + 2) : error.message;
      throw new DemoError(`the ${what} did not start${hint}: ${detail}`);
    }
  };

  const viewer = await start('trace viewer (demo/viewer)', () => startViewer({
    uiPort: chosen.viewer, grpcPort: chosen.viewerGrpc, httpPort: chosen.viewerHttp,
  }));
  const collector = await start('collector (rotel)', () => startCollector({
    httpPort: chosen.collectorHttp, grpcPort: chosen.collectorGrpc, forwardGrpc: viewer.grpcAddress, readBack: false,
  }));
  const backend = await start('backend (demo/backend)', () => startBackend({
    collectorUrl: collector.httpUrl,
    staticDir: path.join(ROOT, 'www'),
    pkgDir: path.join(ROOT, 'pkg'),
    env: { BACKEND_PORT: String(chosen.app), VIEWER_URL: viewer.uiUrl },
  }));
  return {
    appUrl: `${backend.url}/`,
    viewerUrl: `${viewer.uiUrl}/`,
    collector,
    viewer,
    backend,
    parts: [
      { what: 'trace viewer (demo/viewer)', exited: viewer.exited, logFile: viewer.logFile },
      { what: 'collector (rotel)', exited: collector.exited, logFile: collector.logFile },
      { what: 'backend (demo/backend)', exited: backend.exited, logFile: backend.logFile },
    ],
    stop,
  };
}

function describe(exit) {
  if (exit.error) return `could not run (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

function logTail(file, lines = 15) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** `node scripts/demo.mjs`: start, print the URLs, stay up until SIGINT/SIGTERM/SIGHUP. */
async function main() {
  const t0 = Number(process.env.DEMO_T0_MS) || Date.now();
  delegateStopSignals();
  let demo = null;
  let stopping = false;
  const shutdown = async (why, status) => {
    if (stopping) return;
    stopping = true;
    console.log(`\ndemo: ${why}, stopping...`);
    try {
      if (demo) await demo.stop();
      await stopAll(); // anything started before a start failure or mid-start signal
      console.log('demo: stopped');
    } finally {
      process.exit(status);
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (stopping) {
        console.log('demo: second signal, killing everything now');
        process.exit(130); // peers.mjs SIGKILLs what is left on exit
      }
      shutdown(signal, 0); // the normal way to end the demo: a clean stop is a success
    });
  }

  try {
    demo = await startDemo({ ports: portsFromEnv() });
  } catch (error) {
    if (stopping) return;
    console.error(`demo: ${error instanceof DemoError ? error.message : error.stack}`);
    await stopAll();
    process.exit(1);
  }
  if (stopping) return; // a signal arrived while starting: shutdown() stops it all
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const c = demo.collector;
  console.log([
    '',
    `FIR desk demo is up (${seconds} s). Ctrl-C stops everything.`,
    '',
    `  open this:  ${demo.appUrl}`,
    `  traces:     ${demo.viewerUrl}`,
    '',
    `  collector:  rotel, OTLP/HTTP ${c.tracesUrl}, OTLP/gRPC ${HOST}:${c.grpcPort} -> viewer ${demo.viewer.grpcAddress}`,
    `  logs:       ${demo.parts.map((p) => p.logFile).join('\n              ')}`,
    '',
  ].join('\n'));

  // peers.mjs unrefs its children (a forgotten test peer must not keep Node alive); the demo
  // itself is what keeps this process up until a signal.
  setInterval(() => {}, 1 << 30);
  // A part that dies on its own takes the demo down, with its log.
  await Promise.race(demo.parts.map(async (part) => {
    const exit = await part.exited;
    if (stopping) return;
    console.error(`demo: the ${part.what} ${describe(exit)}; log tail (${part.logFile}):\n${logTail(part.logFile)}`);
    await shutdown(`the ${part.what} stopped`, 1);
  }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}

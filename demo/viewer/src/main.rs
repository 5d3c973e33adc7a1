//! tracelink-viewer: the tracelink demo's trace viewer, fully offline.
//!
//! Jaeger UI 2.14.1 (vendored by the crates.io crate `otlp-embedded`) over an
//! in-memory trace store, with two ways in:
//!
//! - OTLP/gRPC (`--grpc`, gzip accepted): where rotel forwards with
//!   `--exporter otlp --otlp-exporter-endpoint http://ADDR --otlp-exporter-protocol grpc`;
//! - OTLP/HTTP (`--http`, `POST /v1/traces`, protobuf, CORS-enabled): for
//!   exporters, tests and browser pages that skip the collector.
//!
//! The UI port also serves the Jaeger JSON API (`/api/traces/<hex id>`,
//! `/api/services`, `/api/traces?service=...&limit=N`) and `/healthz`.
//!
//! All listeners are bound before the first stdout line is printed, so a harness
//! that has read that line can connect at once:
//!
//! ```text
//! viewer ui=http://127.0.0.1:16686 grpc=127.0.0.1:43177 http=http://127.0.0.1:43178
//! ```
//!
//! SIGINT or SIGTERM stops it with exit status 0 within [`SHUTDOWN_GRACE`].

mod config;
mod ingest;
mod otlp_http;
mod ui;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use otlp_embedded::{State, TraceServiceServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;

use crate::config::{Config, ConfigError};
use crate::ingest::Ingest;

/// How long open connections may finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Estimated memory the store may hold before evicting old traces.
const MAX_STORE_BYTES: usize = 256 << 20;
/// Largest gRPC export message (rotel batches can exceed tonic's 4 MiB default).
const MAX_GRPC_MESSAGE_BYTES: usize = 32 << 20;

fn main() -> ExitCode {
    let config = match Config::parse(std::env::args().skip(1), |key| std::env::var(key).ok()) {
        Ok(config) => config,
        Err(ConfigError::Help) => {
            print!("{}", config::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(ConfigError::Invalid(message)) => {
            eprintln!("viewer: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("viewer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    let mut signals = match StopSignals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("viewer: cannot listen for stop signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (ui, grpc, http) = match bind_all(&config).await {
        Ok(listeners) => listeners,
        Err(message) => {
            eprintln!("viewer: {message}");
            return ExitCode::FAILURE;
        }
    };
    let (ui_addr, grpc_addr, http_addr) = (local(&ui), local(&grpc), local(&http));

    let state = State::new(otlp_embedded::Config { max_length: config.max_traces, max_memory_usage: MAX_STORE_BYTES });
    let ingest = Ingest::new(state.clone());
    let (stop, stopping) = watch::channel(false);
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };

    let mut servers = tokio::task::JoinSet::new();
    let ui_stop = stopped();
    servers.spawn(async move {
        axum::serve(ui, ui::router(state)).with_graceful_shutdown(ui_stop).await.map_err(|e| format!("ui: {e}"))
    });
    let http_stop = stopped();
    let http_router = otlp_http::router(ingest.clone());
    servers.spawn(async move {
        axum::serve(http, http_router).with_graceful_shutdown(http_stop).await.map_err(|e| format!("http: {e}"))
    });
    let trace_service = TraceServiceServer::new(ingest)
        .accept_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES);
    let grpc_stop = stopped();
    servers.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(trace_service)
            .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(grpc), grpc_stop)
            .await
            .map_err(|e| format!("grpc: {e}"))
    });

    // The contract with harnesses: one line, every address already accepting.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "viewer ui=http://{ui_addr} grpc={grpc_addr} http=http://{http_addr}");
    let _ = stdout.flush();
    drop(stdout);
    eprintln!(
        "viewer: open http://{ui_addr}/ | rotel: --exporter otlp --otlp-exporter-endpoint http://{grpc_addr} \
         --otlp-exporter-protocol grpc | OTLP/HTTP: POST http://{http_addr}/v1/traces"
    );

    let status = tokio::select! {
        signal = signals.recv() => {
            eprintln!("viewer: {signal}, stopping");
            ExitCode::SUCCESS
        }
        Some(ended) = servers.join_next() => {
            let message = match ended {
                Ok(Ok(())) => "a server stopped on its own".to_owned(),
                Ok(Err(e)) => e,
                Err(e) => format!("a server task failed: {e}"),
            };
            eprintln!("viewer: {message}");
            ExitCode::FAILURE
        }
    };
    let _ = stop.send(true);
    if within(SHUTDOWN_GRACE, async { while servers.join_next().await.is_some() {} }).await.is_none() {
        eprintln!("viewer: connections still open after {SHUTDOWN_GRACE:?}, closing them");
    }
    status
}

async fn bind_all(config: &Config) -> Result<(TcpListener, TcpListener, TcpListener), String> {
    async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
        TcpListener::bind(addr).await.map_err(|e| format!("cannot listen for {what} on {addr}: {e}"))
    }
    Ok((bind("ui", config.ui).await?, bind("grpc", config.grpc).await?, bind("http", config.http).await?))
}

fn local(listener: &TcpListener) -> SocketAddr {
    // A bound TCP listener always has a local address; the fallback is unreachable.
    listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, work).await.ok()
}

/// SIGINT and SIGTERM listeners. Installed before the banner is printed, so a
/// harness may signal the moment it has read the banner.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves on the first stop signal, naming it.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

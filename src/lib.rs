//! # tracelink
//!
//! Distributed tracing for browsers and edge runtimes, in WebAssembly: spans
//! started in a page or a Worker carry W3C `traceparent` on the app's `fetch`
//! calls, so the backend continues the same trace, and are batched to any
//! OTLP/HTTP collector.
//!
//! The crate has two layers with a one-way dependency:
//! - [`core`]: deterministic, platform-free logic (ids, W3C propagation, the
//!   span model, sampling, OTLP encoding, the export policy). No IO, no clock.
//! - `web` (wasm32 only): clocks, timers, the fetch transport, page lifecycle
//!   and the JS API; it only drives `core`.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

#[cfg(feature = "opentelemetry")]
pub mod otel;

#[cfg(feature = "opentelemetry")]
pub use otel::*;

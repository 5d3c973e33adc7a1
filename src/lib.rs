//! # tracelink
//!
//! Distributed tracing for browsers and edge runtimes, in WebAssembly: a
//! click in a page becomes the parent of the backend's spans. tracelink
//! starts spans in the page (or Worker), puts W3C `traceparent` on the
//! app's `fetch` calls so the backend continues the same trace, and batches
//! the spans to any OTLP/HTTP collector.
//!
//! JavaScript apps use the npm package (`pkg/`, built from this crate).
//! Rust apps compiled to wasm32 (Leptos, Yew, Dioxus, plain wasm-bindgen)
//! use the same engine through the standard OpenTelemetry API: the
//! `opentelemetry` feature makes tracelink the SDK half that
//! `opentelemetry_sdk` cannot be in a browser (its processors spawn
//! threads and block).
//!
//! ## The model
//!
//! - A **span** is one timed operation: a name, a kind (a user action is
//!   internal, an outgoing request CLIENT, the backend's handling of it
//!   SERVER), attributes, events, a status. It starts, records, and ends;
//!   when it ends it is encoded once and queued for export.
//! - A **trace** is the tree of spans of one piece of work, across
//!   processes: every span carries the trace id and its parent's span id.
//! - The **context** says which span is current: new spans and traced
//!   requests take it as their parent. In async Rust the context follows a
//!   *future*, not the call stack: wrap a future with
//!   `opentelemetry::trace::FutureExt::with_context` (or instrument it with
//!   `tracing::Instrument`) and its span stays current across every
//!   `.await`, even when `spawn_local` runs it later.
//! - **Propagation** is how a trace crosses to the backend: `traceparent`
//!   (trace id, the CLIENT span's id, sampled flag) and `tracestate` on the
//!   request; the backend's span names that CLIENT span as its parent.
//!   Trace headers go only to the page's origin and to allowlisted URLs,
//!   because `traceparent` is not CORS-safelisted: elsewhere it would
//!   cause a preflight that may fail the app's request.
//! - **Export** sends ended spans in batches (about once a second, at once
//!   when a batch is full), retries what the collector could not take
//!   (`Retry-After`, backoff), keeps memory bounded, and sends everything
//!   with `keepalive` / `sendBeacon` when the page is hidden or closed.
//!   Nothing is dropped without being counted.
//!
//! ## From Rust (feature `opentelemetry`)
//!
//! ```toml
//! [dependencies]
//! tracelink = { version = "0.1", default-features = false, features = ["opentelemetry"] }
//! opentelemetry = { version = "0.33", default-features = false, features = ["trace"] }
//! ```
//!
//! Set up once, at start; keep a clone of the provider to flush it:
//!
//! ```ignore
//! use opentelemetry::{global, trace::{FutureExt, TraceContextExt, Tracer}, Context};
//!
//! let provider = tracelink::WebTracerProvider::builder()
//!     .with_service_name("my-app")
//!     .with_endpoint("/otlp/v1/traces")              // or https://collector.example.com/v1/traces
//!     .with_propagate_to(["https://api.example.com"]) // same origin always
//!     .build()?;
//! global::set_tracer_provider(provider.clone());
//! global::set_text_map_propagator(tracelink::TraceContextPropagator::new());
//!
//! // A user action: a span, current while its future runs.
//! let cx = Context::current_with_span(global::tracer("my-app").start("checkout"));
//! wasm_bindgen_futures::spawn_local(async move {
//!     let request = web_sys::Request::new_with_str("https://api.example.com/cart").unwrap();
//!     let response = tracelink::fetch(&request).await; // CLIENT span + traceparent
//!     cx.span().end();
//! }.with_context(cx.clone()));
//!
//! // Spans export on their own, and on page hide; to wait for them:
//! provider.force_flush().await?;
//! ```
//!
//! The pieces, re-exported at the crate root from `otel`:
//! `WebTracerProvider` (with `Tracer` and `Span`), `fetch`,
//! `TraceContextPropagator` and `BaggagePropagator`, and
//! `inject_headers` / `inject_header_map` for requests sent by other
//! HTTP clients (gloo-net, reqwest). `examples/rust-app` is a complete page,
//! tested end to end against an OpenTelemetry Python backend.
//!
//! ## Layers
//!
//! One-way arrows: `otel` → `web` → `core`.
//! - [`core`]: deterministic, platform-free logic (ids, W3C propagation, the
//!   span model, sampling, OTLP encoding, the export policy). No IO, no
//!   clock; host `cargo test` covers it.
//! - `web` (wasm32, feature `web`): the clock over wasm-bindgen, and with
//!   `opentelemetry` the Rust platform driver: fetch transport, timer, page
//!   lifecycle.
//! - `otel` (feature `opentelemetry`): the OpenTelemetry API over them.
//! - `js_abi` (wasm32, feature `js-package`, private): the npm package's wasm,
//!   plain exports driven by `pkg/tracelink.js`; only `scripts/build.sh`
//!   turns it on.

pub mod core;

#[cfg(all(target_arch = "wasm32", feature = "web"))]
pub mod web;

#[cfg(all(target_arch = "wasm32", feature = "js-package"))]
mod js_abi;

#[cfg(feature = "opentelemetry")]
pub mod otel;

#[cfg(feature = "opentelemetry")]
pub use otel::*;

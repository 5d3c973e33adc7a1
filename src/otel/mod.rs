//! The OpenTelemetry API over tracelink (feature `opentelemetry`): for Rust
//! apps compiled to wasm32, the SDK half that `opentelemetry_sdk` cannot be
//! there.
//!
//! - [`WebTracerProvider`] (`provider`), [`Tracer`] (`tracer`), [`Span`]
//!   (`span`): the `opentelemetry::trace` traits over the core's tracer and
//!   the Rust platform driver (`crate::web::driver`); wasm32 only
//! - [`fetch`] (`fetch`): a traced `fetch` for `web_sys::Request`; wasm32 only
//! - [`TraceContextPropagator`], [`BaggagePropagator`] (`propagation`): W3C
//!   propagators over the core's parsers; any target
//! - `headers`: trace headers into `http::HeaderMap` (any target) and
//!   `web_sys::Headers` (wasm32)
//! - `convert`: between the API's types and the core's
//!
//! The crate root re-exports everything public here; see the crate docs
//! for the model and a walk-through.

// Most of it serves the wasm32-only tracer and span.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod convert;
mod headers;
mod propagation;

#[cfg(target_arch = "wasm32")]
mod fetch;
#[cfg(target_arch = "wasm32")]
mod provider;
#[cfg(target_arch = "wasm32")]
mod registry;
#[cfg(target_arch = "wasm32")]
mod span;
#[cfg(target_arch = "wasm32")]
mod tracer;

use std::fmt;

pub use headers::{inject_header_map, HeaderMapExtractor, HeaderMapInjector};
#[cfg(target_arch = "wasm32")]
pub use headers::{inject_headers, HeadersExtractor, HeadersInjector};
pub use propagation::{BaggagePropagator, TraceContextPropagator};

#[cfg(target_arch = "wasm32")]
pub use fetch::fetch;
#[cfg(target_arch = "wasm32")]
pub use provider::{Protocol, Stats, WebTracerProvider, WebTracerProviderBuilder, DEFAULT_REDACTED_QUERY_PARAMS};
#[cfg(target_arch = "wasm32")]
pub use span::Span;
#[cfg(target_arch = "wasm32")]
pub use tracer::Tracer;

/// What can go wrong in the Rust API: a setting `build()` refuses, or a
/// flush that did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `with_endpoint` was not called.
    MissingEndpoint,
    /// The endpoint is not an http(s) URL (absolute, or relative to the page).
    InvalidEndpoint(String),
    /// Not `http/protobuf` or `http/json`.
    InvalidProtocol(String),
    /// The platform refused this export header (name or value).
    InvalidHeader(String),
    /// The sample ratio is not within 0..=1.
    InvalidSampleRatio,
    /// This runtime has no `crypto.getRandomValues` (ids must be random).
    NoRandomSource,
    /// A flush or shutdown did not finish within its 30 s (what was not
    /// sent stays counted as queued or in flight in `stats()`).
    FlushTimeout,
    /// The provider is gone (dropped) or lives on another thread.
    ShutDown,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingEndpoint => f.write_str("tracelink: an OTLP endpoint is required (with_endpoint)"),
            Error::InvalidEndpoint(url) => write!(f, "tracelink: the OTLP endpoint is not an http(s) URL: '{url}'"),
            Error::InvalidProtocol(p) => write!(f, "tracelink: protocol must be http/protobuf or http/json, got '{p}'"),
            Error::InvalidHeader(name) => write!(f, "tracelink: invalid export header '{name}'"),
            Error::InvalidSampleRatio => f.write_str("tracelink: the sample ratio must be within 0..=1"),
            Error::NoRandomSource => f.write_str("tracelink: this runtime has no crypto.getRandomValues"),
            Error::FlushTimeout => f.write_str("tracelink: the flush did not finish in time"),
            Error::ShutDown => f.write_str("tracelink: the provider is shut down"),
        }
    }
}

impl std::error::Error for Error {}

//! The deterministic core: everything tracelink decides, with no IO.
//!
//! Like `quinn-proto`, this module contains no networking code and never reads
//! a clock: times are arguments (unix nanoseconds for spans, milliseconds of
//! a monotonic clock for the export policy), randomness comes from a seeded
//! [`id::IdGenerator`], and output is data (encoded bytes, "send this",
//! "wake me at t"). The wasm32 platform layer (`crate::web`) drives it;
//! host `cargo test` covers it.
//!
//! - [`id`]: trace and span ids and their generator
//! - [`span`]: the span model and its limits
//! - [`trace_context`]: W3C `traceparent` / `tracestate`
//! - [`baggage`]: W3C `baggage`
//! - [`sampler`]: parent-based, trace-id-ratio sampling
//! - [`otlp`]: OTLP/HTTP encoders (protobuf and JSON)
//! - [`gzip`] (feature `gzip`): a small synchronous gzip encoder for request bodies
//! - [`body`]: records framed (and gzip'd) into request bodies, measured for the policy
//! - [`export`]: the batch, retry and flush policy
//! - [`tracer`]: live spans, context, sampling and hand-off to export
//! - [`span_log`]: a span's recorded data staged in one buffer (one JS → wasm
//!   crossing), replayed onto a span or encoded straight to protobuf
//! - [`text`]: byte-level splitting and trimming for header syntax
//! - [`pipeline`]: tracer + encoder + export policy as one sans-IO client
//! - [`clock_skew`]: the client clock's offset from the server's, from traced responses
//! - `http_span` (feature `opentelemetry`): the traced fetch's CLIENT span
//!   and the propagation allowlist

pub mod baggage;
pub mod body;
pub mod clock_skew;
pub mod export;
#[cfg(feature = "gzip")]
pub mod gzip;
#[cfg(feature = "opentelemetry")]
pub mod http_span;
pub mod id;
pub mod otlp;
pub mod pipeline;
pub mod sampler;
pub mod span;
pub mod span_log;
pub mod text;
pub mod trace_context;
pub mod tracer;

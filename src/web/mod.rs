//! The wasm32 platform layer: it only drives [`crate::core`].
//!
//! - [`clock`]: wall and monotonic time from `performance` / `Date`, with
//!   drift correction (sleep, suspended tabs, Workers' `timeOrigin == 0`)
//!
//! With the `opentelemetry` feature, the pipeline driven from Rust (for Rust
//! apps; see `crate::otel`):
//! - `driver`: the pipeline with its transport, timer and lifecycle
//! - `transport`: OTLP bodies out by `fetch` (keepalive) and `sendBeacon`
//! - `timer`: a re-armable `setTimeout`
//! - `lifecycle`: `pagehide` / `visibilitychange` listeners
//!
//! Everything JS is bound on the global scope (`globalThis`), never `window`,
//! so the same module runs in pages, Workers, Deno, Bun and Node.

pub mod clock;
#[cfg(feature = "opentelemetry")]
pub mod driver;
#[cfg(feature = "opentelemetry")]
pub mod lifecycle;
#[cfg(feature = "opentelemetry")]
pub mod timer;
#[cfg(feature = "opentelemetry")]
pub mod transport;

//! The wasm32 platform layer: it only drives [`crate::core`].
//!
//! - [`clock`]: wall and monotonic time from `performance` / `Date`, with
//!   drift correction (sleep, suspended tabs, Workers' `timeOrigin == 0`)
//! - `agent` (feature `js-agent`, on by default): the `Agent` class the JS
//!   entry (`pkg/tracelink.js`) calls: spans in, OTLP requests out through
//!   host callbacks (send, set timer)
//!
//! Everything JS is bound on the global scope (`globalThis`), never `window`,
//! so the same module runs in pages, Workers, Deno, Bun and Node.

#[cfg(feature = "js-agent")]
pub mod agent;
pub mod clock;

#[cfg(feature = "js-agent")]
pub use agent::Agent;

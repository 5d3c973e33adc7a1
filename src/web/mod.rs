//! The wasm32 platform layer: it only drives [`crate::core`].
//!
//! - [`clock`]: wall and monotonic time from `performance` / `Date`, with
//!   drift correction (sleep, suspended tabs, Workers' `timeOrigin == 0`)
//!
//! Everything JS is bound on the global scope (`globalThis`), never `window`,
//! so the same module runs in pages, Workers, Deno, Bun and Node.

pub mod clock;

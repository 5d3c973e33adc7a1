//! The OpenTelemetry API (feature `opentelemetry`) on wasm32.
#![cfg(target_arch = "wasm32")]

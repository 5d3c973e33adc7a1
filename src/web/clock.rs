//! Time for spans (unix nanoseconds) and for the export policy (monotonic ms).
//!
//! Span times are `anchor + performance.now()`: sub-millisecond and
//! monotonic within a span. The anchor starts at `performance.timeOrigin`
//! and is re-taken from `Date.now()` whenever the two disagree by more than
//! [`MAX_DRIFT_MS`]: `performance.now()` stops while a device sleeps or a tab
//! is frozen (so `timeOrigin + now()` falls behind the wall clock), and in
//! Cloudflare Workers `timeOrigin` is 0 and `now()` is already epoch time.

use js_sys::{Date, Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// Re-anchor when the high-resolution clock and the wall clock disagree by more.
pub const MAX_DRIFT_MS: f64 = 1000.0;

/// The platform clock; see the module docs.
pub struct Clock {
    now: Option<(JsValue, Function)>,
    anchor_ms: f64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

impl Clock {
    /// Reads `performance` once; falls back to `Date.now()` without it.
    pub fn new() -> Clock {
        let perf = Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok().filter(|p| p.is_object());
        let now = perf.as_ref().and_then(|p| {
            let f = Reflect::get(p, &JsValue::from_str("now")).ok()?.dyn_into::<Function>().ok()?;
            Some((p.clone(), f))
        });
        let origin = perf
            .and_then(|p| Reflect::get(&p, &JsValue::from_str("timeOrigin")).ok())
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        let mut clock = Clock { now, anchor_ms: origin };
        clock.unix_ms();
        clock
    }

    /// Monotonic milliseconds (`performance.now()`, else `Date.now()`).
    pub fn mono_ms(&self) -> f64 {
        match &self.now {
            Some((perf, f)) => f.call0(perf).ok().and_then(|v| v.as_f64()).unwrap_or_else(Date::now),
            None => Date::now(),
        }
    }

    /// Wall-clock milliseconds since the unix epoch, with sub-ms resolution.
    pub fn unix_ms(&mut self) -> f64 {
        let mono = self.mono_ms();
        let wall = Date::now();
        let t = self.anchor_ms + mono;
        if (t - wall).abs() > MAX_DRIFT_MS {
            self.anchor_ms = wall - mono;
            return wall;
        }
        t
    }

    /// Wall-clock nanoseconds since the unix epoch.
    pub fn unix_nanos(&mut self) -> u64 {
        ms_to_nanos(self.unix_ms())
    }
}

/// Milliseconds (f64) to nanoseconds, rounded to whole microseconds: the
/// finest resolution browsers give (5–100 µs), and digits below it would be
/// noise that compresses badly on the wire. Exact: epoch µs fit in 2^53.
pub fn ms_to_nanos(ms: f64) -> u64 {
    if ms.is_nan() || ms <= 0.0 {
        return 0;
    }
    ((ms * 1000.0).round() as u64).saturating_mul(1000) // far futures: the largest time
}

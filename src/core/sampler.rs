//! Sampling: parent-based, with a trace-id-ratio sampler for roots.
//!
//! A span with a parent follows the parent's sampled flag (so a backend that
//! sees `-01` records the trace, and `-00` means nobody records it). A root
//! span is sampled when its trace id falls under the ratio, decided from the
//! trace id alone so every participant that uses the same rule agrees.

use super::id::TraceId;
use super::span::SpanContext;

/// Parent-based sampling with a trace-id-ratio root sampler.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampler {
    /// Upper bound (exclusive) on `trace_id[8..16] >> 1` for sampled roots.
    threshold: u64,
    ratio: f64,
}

impl Sampler {
    /// Samples roots with probability `ratio`, clamped to `[0, 1]`; NaN is 0.
    #[allow(clippy::manual_clamp)]
    pub fn ratio(ratio: f64) -> Sampler {
        // max/min, not clamp: clamp's panic path pulls float formatting into wasm.
        let ratio = if ratio.is_nan() { 0.0 } else { ratio.max(0.0).min(1.0) };
        let threshold = if ratio >= 1.0 { u64::MAX } else { (ratio * (1u64 << 63) as f64) as u64 };
        Sampler { threshold, ratio }
    }

    /// Samples every root.
    pub fn always_on() -> Sampler {
        Sampler::ratio(1.0)
    }

    /// The configured root ratio.
    pub fn root_ratio(&self) -> f64 {
        self.ratio
    }

    /// Whether a new span in `trace_id` is sampled, given its parent (if any).
    pub fn should_sample(&self, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
        match parent {
            Some(p) if p.is_valid() => p.flags.is_sampled(),
            _ => self.root_decision(trace_id),
        }
    }

    fn root_decision(&self, trace_id: TraceId) -> bool {
        if self.threshold == u64::MAX {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id.0[8..]);
        (u64::from_be_bytes(low) >> 1) < self.threshold
    }
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler::always_on()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::{IdGenerator, SpanId};
    use crate::core::span::TraceFlags;

    #[test]
    fn parent_decides_for_children() {
        let s = Sampler::ratio(0.0);
        let mut parent = SpanContext {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            flags: TraceFlags(1),
            ..SpanContext::default()
        };
        assert!(s.should_sample(Some(&parent), parent.trace_id));
        parent.flags = TraceFlags(0);
        assert!(!Sampler::always_on().should_sample(Some(&parent), parent.trace_id));
    }

    #[test]
    fn ratio_is_respected_statistically() {
        let mut g = IdGenerator::from_seed([3; 32]);
        for ratio in [0.0, 0.1, 0.5, 0.9, 1.0] {
            let s = Sampler::ratio(ratio);
            let n = 20_000;
            let hits = (0..n).filter(|_| s.should_sample(None, g.trace_id())).count();
            let got = hits as f64 / n as f64;
            assert!((got - ratio).abs() < 0.02, "ratio {ratio}: got {got}");
        }
    }

    #[test]
    fn bad_ratios_are_clamped() {
        assert_eq!(Sampler::ratio(f64::NAN).root_ratio(), 0.0);
        assert_eq!(Sampler::ratio(7.0).root_ratio(), 1.0);
        assert_eq!(Sampler::ratio(-1.0).root_ratio(), 0.0);
    }
}

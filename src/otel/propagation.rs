//! W3C propagators for `opentelemetry::global::set_text_map_propagator`.
//!
//! [`TraceContextPropagator`] reads and writes `traceparent` and
//! `tracestate` with the core's parser (`core::trace_context`): W3C Level 2
//! (the random-trace-id flag is kept), every spec rule (an invalid
//! `traceparent` drops its `tracestate`, a bad `tracestate` never affects
//! `traceparent`, higher versions are read at the version-00 offsets), and
//! always version `00` out. [`BaggagePropagator`] does the same for
//! `baggage` (`core::baggage`: 64 members, 8192 bytes, never part of a
//! member, percent-encoding). Both work on any target.
//!
//! ```
//! use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
//! use opentelemetry::trace::TraceContextExt;
//! use std::collections::HashMap;
//! use tracelink::{BaggagePropagator, TraceContextPropagator};
//!
//! opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
//!     Box::new(TraceContextPropagator::new()),
//!     Box::new(BaggagePropagator::new()),
//! ]));
//!
//! // On a server: continue the caller's trace.
//! let mut headers = HashMap::new();
//! headers.insert("traceparent".to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03".to_string());
//! let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&headers));
//! assert_eq!(cx.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! ```

use opentelemetry::baggage::{BaggageExt, KeyValueMetadata};
use opentelemetry::propagation::{text_map_propagator::FieldIter, Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;

use super::convert;
use crate::core::baggage::Baggage;
use crate::core::trace_context;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// `traceparent` + `tracestate` (W3C Trace Context Level 2); see the module docs.
#[derive(Clone, Debug)]
pub struct TraceContextPropagator {
    fields: [String; 2],
}

impl TraceContextPropagator {
    /// The propagator.
    pub fn new() -> TraceContextPropagator {
        TraceContextPropagator { fields: [TRACEPARENT.to_owned(), TRACESTATE.to_owned()] }
    }
}

impl Default for TraceContextPropagator {
    fn default() -> TraceContextPropagator {
        TraceContextPropagator::new()
    }
}

/// The `traceparent` and `tracestate` values for a context (`None` without
/// a valid span context; the `tracestate` is empty when there is none).
pub fn trace_headers(cx: &Context) -> Option<(String, String)> {
    let span = cx.span();
    let ctx = convert::from_api_context(span.span_context())?;
    Some((trace_context::format_traceparent(&ctx), ctx.trace_state))
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some((traceparent, tracestate)) = trace_headers(cx) {
            injector.set(TRACEPARENT, traceparent);
            if !tracestate.is_empty() {
                injector.set(TRACESTATE, tracestate);
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let tracestate = extractor.get_all(TRACESTATE).unwrap_or_default();
        match trace_context::extract(extractor.get(TRACEPARENT), &tracestate) {
            Some(remote) => cx.with_remote_span_context(convert::to_api_context(&remote)),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// `baggage` (W3C Baggage); see the module docs.
#[derive(Clone, Debug)]
pub struct BaggagePropagator {
    fields: [String; 1],
}

impl BaggagePropagator {
    /// The propagator.
    pub fn new() -> BaggagePropagator {
        BaggagePropagator { fields: [BAGGAGE.to_owned()] }
    }
}

impl Default for BaggagePropagator {
    fn default() -> BaggagePropagator {
        BaggagePropagator::new()
    }
}

/// The `baggage` header value for a context's baggage ('' when it has none).
/// Entries are sorted by key (the API keeps them in a hash map); entries
/// the W3C grammar refuses are left out.
pub fn baggage_header(cx: &Context) -> String {
    let api = cx.baggage();
    if api.is_empty() {
        return String::new();
    }
    let mut entries: Vec<_> = api.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut baggage = Baggage::default();
    for (key, (value, metadata)) in entries {
        let _ = baggage.insert(key.as_str(), value.as_str(), metadata.as_str());
    }
    baggage.header()
}

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let header = baggage_header(cx);
        if !header.is_empty() {
            injector.set(BAGGAGE, header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(values) = extractor.get_all(BAGGAGE) else {
            return cx.clone();
        };
        let parsed = Baggage::parse_headers(values);
        if parsed.is_empty() {
            return cx.clone();
        }
        let entries = parsed.iter().map(|e| KeyValueMetadata::new(e.key.clone(), e.value.clone(), e.metadata.as_str()));
        cx.with_baggage(entries.collect::<opentelemetry::baggage::Baggage>())
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::KeyValue;

    use super::*;

    fn carrier(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn extracts_level2_and_injects_version_00() {
        let p = TraceContextPropagator::new();
        let cx = p.extract(&carrier(&[
            ("traceparent", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future"),
            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ]));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_flags().to_u8(), 0x03);
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
        assert_eq!(out["tracestate"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    }

    #[test]
    fn invalid_traceparent_drops_tracestate_and_keeps_the_context() {
        let p = TraceContextPropagator::new();
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let cx = p.extract(&carrier(&[("traceparent", bad), ("tracestate", "a=b")]));
            assert!(!cx.span().span_context().is_valid(), "{bad}");
            let mut out = HashMap::new();
            p.inject_context(&cx, &mut out);
            assert!(out.is_empty(), "nothing to inject after {bad}");
        }
    }

    #[test]
    fn bad_tracestate_never_affects_traceparent() {
        let p = TraceContextPropagator::new();
        let cx = p.extract(&carrier(&[
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            ("tracestate", "UPPER=x,,=broken"),
        ]));
        assert!(cx.span().span_context().is_valid());
        assert_eq!(cx.span().span_context().trace_state().header(), "");
        assert_eq!(p.fields().collect::<Vec<_>>(), ["traceparent", "tracestate"]);
    }

    #[test]
    fn injects_the_current_span_context() {
        let sc = SpanContext::new(
            TraceId::from_bytes([0xab; 16]),
            SpanId::from_bytes([0xcd; 8]),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_key_value([("k", "v")]).unwrap(),
        );
        let cx = Context::new().with_remote_span_context(sc);
        let mut out = HashMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out["traceparent"], format!("00-{}-{}-01", "ab".repeat(16), "cd".repeat(8)));
        assert_eq!(out["tracestate"], "k=v");
    }

    #[test]
    fn baggage_round_trips_with_encoding_and_metadata() {
        let p = BaggagePropagator::new();
        let cx = p.extract(&carrier(&[("baggage", "userId=alice, serverNode=DF%2028;ttl=30 ,bad key=x")]));
        let b = cx.baggage();
        assert_eq!(b.get("userId").map(|v| v.as_str()), Some("alice"));
        assert_eq!(b.get("serverNode").map(|v| v.as_str()), Some("DF 28"));
        assert_eq!(b.len(), 2, "the invalid member is skipped");
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out["baggage"], "serverNode=DF%2028;ttl=30,userId=alice");

        let cx = Context::new().with_baggage([KeyValue::new("k", "a,b=c"), KeyValue::new("bad key", "x")]);
        let mut out = HashMap::new();
        p.inject_context(&cx, &mut out);
        assert_eq!(out["baggage"], "k=a%2Cb=c", "values encoded (, is not a baggage-octet), invalid keys left out");
        let mut out = HashMap::new();
        p.inject_context(&Context::new(), &mut out);
        assert!(out.is_empty());
    }
}

//! Property tests for W3C propagation: `traceparent`, `tracestate`, `baggage`.
//!
//! Round trips for random valid data, limits on everything we send, and no
//! panics on arbitrary or almost-valid input.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use tracelink::core::baggage::{Baggage, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};
use tracelink::core::id::{SpanId, TraceId};
use tracelink::core::span::{SpanContext, TraceFlags};
use tracelink::core::trace_context::{
    format_traceparent, parse_traceparent, TraceState, MAX_HEADER_LEN, MAX_MEMBERS, TRACEPARENT_LEN,
};

// ---- traceparent ----

fn span_context() -> impl Strategy<Value = SpanContext> {
    (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())
        .prop_filter("ids must be non-zero", |(t, s, _)| *t != [0; 16] && *s != [0; 8])
        .prop_map(|(t, s, flags)| SpanContext {
            trace_id: TraceId(t),
            span_id: SpanId(s),
            flags: TraceFlags(flags),
            trace_state: String::new(),
            is_remote: true,
        })
}

/// Spaces and tabs, as HTTP optional whitespace.
fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,3}"
}

proptest! {
    #[test]
    fn traceparent_round_trips(ctx in span_context(), before in ows(), after in ows()) {
        let header = format_traceparent(&ctx);
        prop_assert_eq!(header.len(), TRACEPARENT_LEN);
        prop_assert!(header.bytes().all(|c| c == b'-' || c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let parsed = parse_traceparent(&[before.as_str(), &header, &after].concat()).unwrap();
        prop_assert_eq!(parsed.trace_id, ctx.trace_id);
        prop_assert_eq!(parsed.span_id, ctx.span_id);
        // Unknown flag bits are never sent.
        prop_assert_eq!(parsed.flags, ctx.flags.known());
        prop_assert!(parsed.is_remote);
    }

    #[test]
    fn traceparent_flags_byte_is_kept_as_received(ctx in span_context()) {
        let mut header = format_traceparent(&ctx);
        header.truncate(53);
        tracelink::core::id::push_hex(&mut header, &[ctx.flags.0]);
        prop_assert_eq!(parse_traceparent(&header).unwrap().flags, ctx.flags);
    }

    #[test]
    fn traceparent_future_versions_parse_at_fixed_offsets(
        ctx in span_context(),
        version in 1u8..=0xfe,
        rest in proptest::option::of("-[ -~]{0,40}"),
    ) {
        let mut header = tracelink::core::id::encode_hex(&[version]);
        header.push_str(&format_traceparent(&ctx)[2..]);
        header.push_str(rest.as_deref().unwrap_or(""));
        let parsed = parse_traceparent(&header).unwrap();
        prop_assert_eq!(parsed.trace_id, ctx.trace_id);
        prop_assert_eq!(parsed.span_id, ctx.span_id);
        prop_assert_eq!(format_traceparent(&parsed), format_traceparent(&ctx));
    }

    #[test]
    fn traceparent_parse_never_panics(s in any::<String>()) {
        check_traceparent(&s)?;
    }

    #[test]
    fn traceparent_mutations_never_panic(
        ctx in span_context(),
        edits in prop::collection::vec((0usize..64, prop::sample::select(MUTATION_CHARS.to_vec()), 0u8..3), 1..4),
    ) {
        let mut s: Vec<char> = format_traceparent(&ctx).chars().collect();
        for (pos, c, op) in edits {
            let pos = pos.min(s.len());
            match op {
                0 if pos < s.len() => s[pos] = c,
                1 => s.insert(pos, c),
                _ if pos < s.len() => { s.remove(pos); }
                _ => s.push(c),
            }
        }
        check_traceparent(&s.into_iter().collect::<String>())?;
    }
}

const MUTATION_CHARS: [char; 12] = ['0', '1', 'f', 'F', 'g', '-', ' ', '\t', '.', 'é', 'x', '\n'];

/// Whatever `s` is, parsing must not panic, and a success must agree with
/// the spec's fixed layout.
fn check_traceparent(s: &str) -> Result<(), TestCaseError> {
    if let Some(ctx) = parse_traceparent(s) {
        let t = s.trim_matches([' ', '\t']);
        prop_assert!(t.len() == TRACEPARENT_LEN || (!t.starts_with("00") && t.as_bytes()[TRACEPARENT_LEN] == b'-'));
        prop_assert!(!t.starts_with("ff"));
        prop_assert_eq!(&t[3..35], ctx.trace_id.to_hex());
        prop_assert_eq!(&t[36..52], ctx.span_id.to_hex());
        prop_assert!(ctx.is_valid());
        let again = parse_traceparent(&format_traceparent(&ctx)).unwrap();
        prop_assert_eq!(again.flags, ctx.flags.known());
    }
    Ok(())
}

// ---- tracestate ----

/// A key in the Level 2 grammar, usually short, sometimes up to 256.
fn ts_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9][a-z0-9_*/@-]{0,12}",
        1 => "[a-z0-9][a-z0-9_*/@-]{0,255}",
    ]
}

/// A valid value: printable ASCII without `,` `=`, not ending in a space.
fn ts_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => r"[\x20-\x2B\x2D-\x3C\x3E-\x7E]{0,20}[\x21-\x2B\x2D-\x3C\x3E-\x7E]",
        1 => r"[\x20-\x2B\x2D-\x3C\x3E-\x7E]{0,255}[\x21-\x2B\x2D-\x3C\x3E-\x7E]",
    ]
}

fn ts_list() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((ts_key(), ts_value()), 0..=MAX_MEMBERS)
}

fn dedup_first(list: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in list {
        if !out.iter().any(|(seen, _)| seen == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    out
}

fn entries(ts: &TraceState) -> Vec<(String, String)> {
    ts.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn canonical(list: &[(String, String)]) -> String {
    list.iter().map(|(k, v)| [k.as_str(), "=", v].concat()).collect::<Vec<_>>().join(",")
}

/// The header we send is within limits, parses back to a subsequence of
/// the state, and is a fixpoint of parse-then-send.
fn check_tracestate_header(ts: &TraceState) -> Result<(), TestCaseError> {
    let h = ts.header();
    prop_assert!(h.len() <= MAX_HEADER_LEN);
    prop_assert!(!h.contains(", ") && !h.contains('\t'));
    let back = TraceState::parse(&h);
    prop_assert!(back.len() <= MAX_MEMBERS);
    prop_assert_eq!(back.len(), if h.is_empty() { 0 } else { h.split(',').count() });
    let mut all = ts.iter();
    for kept in back.iter() {
        prop_assert!(all.any(|e| e == kept), "{:?} is not from the state, in order", kept);
    }
    prop_assert_eq!(back.header(), h);
    Ok(())
}

proptest! {
    #[test]
    fn tracestate_parses_valid_lists_with_ows(
        list in ts_list(),
        seps in prop::collection::vec(prop::sample::select(vec![",", " ,", ", ", " \t,\t ", ",,", ", ,"]), MAX_MEMBERS),
        lines in 1usize..4,
    ) {
        let mut text = String::new();
        for (i, (k, v)) in list.iter().enumerate() {
            if i > 0 { text.push_str(seps[i]); }
            text.push_str(k);
            text.push('=');
            text.push_str(v);
        }
        // Split the same list over several header lines, at commas.
        let parts: Vec<&str> = text.splitn(lines, ',').collect();
        let ts = TraceState::parse_headers(parts.iter().copied());
        let expected = dedup_first(&list);
        prop_assert_eq!(entries(&ts), expected.clone());
        check_tracestate_header(&ts)?;
        if canonical(&expected).len() <= MAX_HEADER_LEN {
            prop_assert_eq!(ts.header(), canonical(&expected));
            prop_assert_eq!(&TraceState::parse(&ts.header()), &ts);
        }
    }

    #[test]
    fn tracestate_rejects_over_32_members(
        list in prop::collection::vec(("[a-z][a-z0-9@]{0,8}".prop_map(String::from), "[ -+]{0,4}[!-+]"), 33..40),
    ) {
        prop_assert!(TraceState::parse(&canonical(&list)).is_empty());
    }

    #[test]
    fn tracestate_insert_keeps_invariants(
        ops in prop::collection::vec(("[a-z][a-z0-9_*/-]{0,6}(@[a-z][a-z0-9]{0,3})?", ts_value(), any::<bool>()), 1..80),
    ) {
        let mut ts = TraceState::default();
        for (k, v, remove) in &ops {
            if *remove && ts.get(k).is_some() {
                ts.remove(k);
                prop_assert_eq!(ts.get(k), None);
                continue;
            }
            ts.insert(k, v).unwrap();
            prop_assert_eq!(ts.iter().next(), Some((k.as_str(), v.as_str())));
            prop_assert!(ts.len() <= MAX_MEMBERS);
            let keys: Vec<&str> = ts.iter().map(|(k, _)| k).collect();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            prop_assert_eq!(unique.len(), keys.len());
        }
        check_tracestate_header(&ts)?;
    }

    #[test]
    fn tracestate_parse_never_panics(s in any::<String>()) {
        check_tracestate_header(&TraceState::parse(&s))?;
    }

    #[test]
    fn tracestate_near_valid_input_never_panics(
        s in r"[a-z0-9_*/@=, \t\-A-Z.é\x7f]{0,120}",
        t in r"[a-z=,]{0,40}",
    ) {
        let ts = TraceState::parse_headers([s.as_str(), t.as_str()]);
        check_tracestate_header(&ts)?;
        for (k, v) in ts.iter() {
            prop_assert!(tracelink::core::trace_context::is_valid_key(k));
            prop_assert!(tracelink::core::trace_context::is_valid_value(v));
        }
    }
}

// ---- baggage ----

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// Any Unicode, control characters included.
fn any_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// Properties as they are sent: `key` or `key=value`, joined by `;`.
fn metadata() -> impl Strategy<Value = String> {
    let property = (token(), proptest::option::of(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]{0,10}")).prop_map(
        |(k, v)| match v {
            Some(v) => [k, "=".into(), v].concat(),
            None => k,
        },
    );
    prop::collection::vec(property, 0..3).prop_map(|p| p.join(";"))
}

fn baggage(max_entries: usize, max_value: usize) -> impl Strategy<Value = Baggage> {
    prop::collection::vec((token(), any_text(max_value), metadata()), 0..max_entries).prop_map(|list| {
        let mut b = Baggage::default();
        for (k, v, m) in list {
            b.insert(&k, &v, &m).unwrap();
        }
        b
    })
}

/// The header we send is within limits, holds only whole members of `b`
/// in order, and is a fixpoint of parse-then-send.
fn check_baggage_header(b: &Baggage) -> Result<(), TestCaseError> {
    let mut h = String::new();
    let left_out = b.write_header(&mut h);
    prop_assert!(h.len() <= MAX_BAGGAGE_BYTES);
    prop_assert!(h.bytes().all(|c| c.is_ascii_graphic()));
    let (back, skipped) = Baggage::parse_headers_counted([h.as_str()]);
    prop_assert_eq!(skipped, 0);
    prop_assert!(back.len() <= MAX_BAGGAGE_MEMBERS);
    prop_assert_eq!(back.len() + left_out, b.len());
    let mut all = b.iter();
    for kept in back.iter() {
        prop_assert!(all.any(|e| e == kept), "{:?} is not from the baggage, in order", kept);
    }
    prop_assert_eq!(back.header(), h);
    Ok(())
}

proptest! {
    #[test]
    fn baggage_round_trips_within_limits(b in baggage(20, 40)) {
        let h = b.header();
        if h.len() <= MAX_BAGGAGE_BYTES && b.len() <= MAX_BAGGAGE_MEMBERS {
            prop_assert_eq!(&Baggage::parse(&h), &b);
        }
        check_baggage_header(&b)?;
    }

    #[test]
    fn baggage_parse_tolerates_ows_and_split_lines(b in baggage(12, 20), pad in ows(), lines in 1usize..4) {
        let h = b.header();
        let spaced = h.replace(',', &[pad.as_str(), ",", &pad].concat());
        let parts: Vec<&str> = spaced.splitn(lines, ',').collect();
        prop_assert_eq!(&Baggage::parse_headers(parts.iter().copied()), &b);
    }

    #[test]
    fn baggage_parse_never_panics(s in any::<String>()) {
        check_baggage_header(&Baggage::parse(&s))?;
    }

    #[test]
    fn baggage_near_valid_input_never_panics(s in r"[a-zA-Z0-9=;,% \t\x22\\é%0-9A-Fa-f]{0,120}") {
        check_baggage_header(&Baggage::parse(&s))?;
    }
}

proptest! {
    // Big inputs (past both limits): fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn baggage_header_respects_limits(b in prop_oneof![baggage(100, 6), baggage(50, 300)]) {
        check_baggage_header(&b)?;
    }
}

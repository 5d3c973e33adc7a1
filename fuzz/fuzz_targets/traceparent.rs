//! `traceparent` parsing and formatting.
//!
//! Checks, for any input line:
//! - the parser accepts exactly what an independent reading of the W3C
//!   processing model accepts (written here from the spec, not from
//!   tracelink's code), with the same ids and flags byte;
//! - an accepted value re-formats to version `00`, 55 characters of
//!   lowercase hex with only known flag bits, which parses back to the same
//!   context (unknown flag bits cleared) and formats to the same string;
//! - `extract` agrees with `parse_traceparent` whatever `tracestate` comes
//!   with it, and `write_traceparent` appends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelink::core::span::TraceFlags;
use tracelink::core::trace_context::{
    extract, format_traceparent, parse_traceparent, write_traceparent, TRACEPARENT_LEN,
};

/// `(trace id, span id, flags)` per the spec, or `None`.
fn reference(value: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let v = value.trim_matches(|c| c == ' ' || c == '\t').as_bytes();
    let hex = |s: &[u8]| -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) || !s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        Some(s.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect())
    };
    if v.len() < 55 {
        return None;
    }
    let version = hex(&v[..2])?[0];
    if version == 0xff {
        return None;
    }
    // Version 00: exactly four fields. Later versions: the version 00 fields
    // at the same offsets, then the end or a '-'.
    if version == 0 && v.len() != 55 {
        return None;
    }
    if v.len() > 55 && v[55] != b'-' {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace: [u8; 16] = hex(&v[3..35])?.try_into().ok()?;
    let span: [u8; 8] = hex(&v[36..52])?.try_into().ok()?;
    let flags = hex(&v[53..55])?[0];
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span, flags))
}

fuzz_target!(|data: &[u8]| {
    // Split off an optional tracestate after the first newline.
    let text = String::from_utf8_lossy(data);
    let (value, tracestate) = text.split_once('\n').unwrap_or((&text, ""));

    let parsed = parse_traceparent(value);
    let expected = reference(value);
    assert_eq!(
        parsed.as_ref().map(|c| (c.trace_id.0, c.span_id.0, c.flags.0)),
        expected,
        "parser and the spec disagree on {value:?}"
    );
    assert_eq!(
        extract(Some(value), &[tracestate]).map(|c| (c.trace_id, c.span_id, c.flags)),
        parsed.as_ref().map(|c| (c.trace_id, c.span_id, c.flags)),
        "extract vs parse_traceparent"
    );

    let Some(ctx) = parsed else { return };
    assert!(ctx.is_valid() && ctx.is_remote && ctx.trace_state.is_empty());

    let formatted = format_traceparent(&ctx);
    assert_eq!(formatted.len(), TRACEPARENT_LEN);
    assert!(formatted.starts_with("00-"), "always version 00: {formatted}");
    for (i, c) in formatted.bytes().enumerate() {
        if [2, 35, 52].contains(&i) {
            assert_eq!(c, b'-');
        } else {
            assert!(c.is_ascii_digit() || (b'a'..=b'f').contains(&c), "lowercase hex: {formatted}");
        }
    }
    let again = parse_traceparent(&formatted).expect("a formatted traceparent parses");
    assert_eq!(again.trace_id, ctx.trace_id);
    assert_eq!(again.span_id, ctx.span_id);
    assert_eq!(again.flags, TraceFlags(ctx.flags.0 & TraceFlags::KNOWN), "only known flags are sent");
    assert_eq!(format_traceparent(&again), formatted, "formatting is idempotent");

    let mut out = String::from(value);
    write_traceparent(&ctx, &mut out);
    assert_eq!(out, [value, formatted.as_str()].concat(), "write_traceparent appends");
});

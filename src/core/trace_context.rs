//! W3C Trace Context: the `traceparent` and `tracestate` request headers.
//!
//! `traceparent` names the caller's span in a form every tracer understands:
//! `version-traceid-parentid-flags`, e.g.
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
//! `tracestate` is its companion: an ordered list of vendor `key=value`
//! entries, most recently updated first, that a tracer must pass on even
//! when it understands none of them.
//!
//! Parsing follows the spec's processing model (w3c/trace-context,
//! `spec/20-http_request_header_format.md` and `spec/30-processing-model.md`):
//!
//! - An invalid `traceparent` is ignored as a whole, and so is any
//!   `tracestate` that came with it ([`extract`] returns `None`).
//! - A bad `tracestate` never affects `traceparent`. When any list-member
//!   breaks the grammar, or there are more than 32, the whole `tracestate`
//!   is dropped (the spec's "MAY discard the entire header", which is what
//!   the spec's conformance harness checks at its default strictness and
//!   what OpenTelemetry Python does). Duplicate keys are not an error: the
//!   first (left-most, most recent) entry is kept.
//! - Spaces and tabs around a header value are ignored, as HTTP allows and
//!   the conformance harness expects.
//!
//! We always send version `00`, lowercase, with unknown flag bits zeroed.

use std::fmt;

use super::id::{decode_lower_hex, push_hex, SpanId, TraceId};
use super::span::{SpanContext, TraceFlags};

/// Length of a version-`00` `traceparent` value.
pub const TRACEPARENT_LEN: usize = 55;

/// Most `tracestate` list-members a list may hold.
pub const MAX_MEMBERS: usize = 32;

/// Longest `tracestate` header we send, in characters. The spec asks
/// vendors to propagate at least this much.
pub const MAX_HEADER_LEN: usize = 512;

/// Entries longer than this (`key=value`) are the first to go when the
/// header must be truncated.
pub const LONG_ENTRY_LEN: usize = 128;

/// Longest `tracestate` key.
pub const MAX_KEY_LEN: usize = 256;

/// Longest `tracestate` value.
pub const MAX_VALUE_LEN: usize = 256;

/// Parses a `traceparent` header value into a remote span context.
///
/// Leading and trailing spaces and tabs are ignored. Only lowercase hex is
/// accepted; version `ff` and all-zero ids are invalid. Version `00` must be
/// exactly four fields (55 characters). A higher version is read at the
/// fixed offsets of version `00`, must be at least 55 characters, and its
/// flags must be followed by `-` or the end; anything after is ignored.
///
/// The flags byte is kept as received (unknown bits included);
/// [`format_traceparent`] zeroes unknown bits when sending. The returned
/// context has `is_remote` set and an empty `trace_state`.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let b = trim_ows(value).as_bytes();
    if b.len() < TRACEPARENT_LEN {
        return None;
    }
    let mut version = [0u8; 1];
    if !decode_lower_hex(&b[0..2], &mut version) || b[2] != b'-' {
        return None;
    }
    match version[0] {
        0xff => return None,
        0x00 if b.len() != TRACEPARENT_LEN => return None,
        _ if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' => return None,
        _ => {}
    }
    if b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let (mut trace_id, mut span_id, mut flags) = ([0u8; 16], [0u8; 8], [0u8; 1]);
    let parsed = decode_lower_hex(&b[3..35], &mut trace_id)
        && decode_lower_hex(&b[36..52], &mut span_id)
        && decode_lower_hex(&b[53..55], &mut flags);
    let ctx = SpanContext {
        trace_id: TraceId(trace_id),
        span_id: SpanId(span_id),
        flags: TraceFlags(flags[0]),
        trace_state: String::new(),
        is_remote: true,
    };
    (parsed && ctx.is_valid()).then_some(ctx)
}

/// The `traceparent` value for `ctx`: version `00`, lowercase, known flags.
pub fn format_traceparent(ctx: &SpanContext) -> String {
    let mut out = String::with_capacity(TRACEPARENT_LEN);
    write_traceparent(ctx, &mut out);
    out
}

/// Appends the `traceparent` value for `ctx` to `out` (see
/// [`format_traceparent`]).
pub fn write_traceparent(ctx: &SpanContext, out: &mut String) {
    out.reserve(TRACEPARENT_LEN);
    out.push_str("00-");
    push_hex(out, &ctx.trace_id.0);
    out.push('-');
    push_hex(out, &ctx.span_id.0);
    out.push('-');
    push_hex(out, &[ctx.flags.known().0]);
}

/// Extracts a remote span context from the incoming `traceparent` and
/// `tracestate` header values (several `tracestate` lines combine in order).
///
/// A missing or invalid `traceparent` gives `None`, and the `tracestate` is
/// discarded with it. A bad `tracestate` never causes `None`: the context
/// then carries an empty `trace_state`. The kept `tracestate` is stored in
/// its sendable form ([`TraceState::header`]).
pub fn extract(traceparent: Option<&str>, tracestate: &[&str]) -> Option<SpanContext> {
    let mut ctx = parse_traceparent(traceparent?)?;
    // Borrowed entries straight into the header: no `TraceState` built.
    let mut entries = Vec::new();
    if parse_entries(tracestate.iter().copied(), &mut entries).is_ok() {
        write_entries(&entries, &mut ctx.trace_state);
    }
    Some(ctx)
}

/// Parses `tracestate` lines as one list into `entries` (borrowed, left-most
/// first, the first of each key kept); see [`TraceState::try_parse_headers`].
fn parse_entries<'a>(values: impl IntoIterator<Item = &'a str>, entries: &mut Vec<(&'a str, &'a str)>) -> Result<(), TraceStateError> {
    let mut members = 0;
    for list in values {
        for member in super::text::split(list, b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            members += 1;
            if members > MAX_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            let (key, value) = super::text::split_once(member, b'=').ok_or(TraceStateError::MissingEquals)?;
            if !is_valid_key(key) {
                return Err(TraceStateError::InvalidKey);
            }
            if !is_valid_value(value) {
                return Err(TraceStateError::InvalidValue);
            }
            if !entries.iter().any(|(k, _)| *k == key) {
                entries.push((key, value));
            }
        }
    }
    Ok(())
}

/// Appends `entries` (at most [`MAX_MEMBERS`] are considered) as a header
/// value to `out`; returns how many were left out (see
/// [`TraceState::write_header`]).
fn write_entries(all: &[(&str, &str)], out: &mut String) -> usize {
    let entries = &all[..all.len().min(MAX_MEMBERS)];
    // Each kept entry costs its length plus one separator; the header
    // is one character shorter than the sum.
    let mut cost: usize = entries.iter().map(|(k, v)| entry_len(k, v) + 1).sum();
    let mut keep = [true; MAX_MEMBERS];
    for long_only in [true, false] {
        for (i, (k, v)) in entries.iter().enumerate().rev() {
            let len = entry_len(k, v);
            if cost <= MAX_HEADER_LEN + 1 {
                break;
            }
            if keep[i] && (!long_only || len > LONG_ENTRY_LEN) {
                keep[i] = false;
                cost -= len + 1;
            }
        }
    }
    out.reserve(cost.saturating_sub(1));
    let mut first = true;
    for ((k, v), _) in entries.iter().zip(keep).filter(|(_, keep)| *keep) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    keep[..entries.len()].iter().filter(|k| !**k).count() + (all.len() - entries.len())
}

/// Why a `tracestate` list or entry was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceStateError {
    /// A key breaks the key grammar (or, for [`TraceState::insert`], the
    /// conservative Level 1 grammar).
    InvalidKey,
    /// A value is empty, longer than 256, ends in a space, or holds a
    /// character outside printable ASCII or `,` / `=`.
    InvalidValue,
    /// A non-empty list-member without `=`.
    MissingEquals,
    /// More than 32 list-members.
    TooManyMembers,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceStateError::InvalidKey => "invalid tracestate key",
            TraceStateError::InvalidValue => "invalid tracestate value",
            TraceStateError::MissingEquals => "tracestate list-member without '='",
            TraceStateError::TooManyMembers => "more than 32 tracestate list-members",
        })
    }
}

impl std::error::Error for TraceStateError {}

/// A `tracestate` list: `(key, value)` entries, left-most first, with no
/// duplicate keys and at most 32 entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceState {
    entries: Vec<(String, String)>,
}

impl TraceState {
    /// Parses one `tracestate` header value; an invalid list gives the empty
    /// state (see the [module docs](self)).
    pub fn parse(value: &str) -> TraceState {
        TraceState::parse_headers([value])
    }

    /// Parses several `tracestate` header lines as one list, in order; an
    /// invalid list gives the empty state.
    pub fn parse_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> TraceState {
        TraceState::try_parse_headers(values).unwrap_or_default()
    }

    /// Like [`parse_headers`](Self::parse_headers), but says why a list was
    /// dropped, so the caller can count it.
    ///
    /// Empty and whitespace-only list-members are skipped; spaces and tabs
    /// around members are ignored (so trailing spaces are not part of a
    /// value, leading ones are). Keys follow the Level 2 grammar:
    /// `(lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@")`.
    pub fn try_parse_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<TraceState, TraceStateError> {
        let mut entries = Vec::new();
        parse_entries(values, &mut entries)?;
        Ok(TraceState { entries: entries.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect() })
    }

    /// The value for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.entries[i].1.as_str())
    }

    /// Sets `key` to `value` and moves it to the front (left), as the spec
    /// requires of a modified key. If that makes 33 entries, the right-most
    /// is removed.
    ///
    /// The key must follow the Level 1 grammar (`simple-key`, or
    /// `tenant-id@system-id` with a tenant of at most 241 and a system of at
    /// most 14 characters), which is stricter than what [`parse`](Self::parse)
    /// accepts: receivers that still enforce Level 1, such as OpenTelemetry
    /// Python, drop a whole `tracestate` over one key they reject.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceStateError> {
        if !is_level1_key(key) {
            return Err(TraceStateError::InvalidKey);
        }
        if !is_valid_value(value) {
            return Err(TraceStateError::InvalidValue);
        }
        let entry = match self.position(key) {
            Some(i) => {
                let mut entry = self.entries.remove(i);
                entry.1.clear();
                entry.1.push_str(value);
                entry
            }
            None => (key.to_owned(), value.to_owned()),
        };
        self.entries.insert(0, entry);
        self.entries.truncate(MAX_MEMBERS);
        Ok(())
    }

    /// Removes `key`, if present.
    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.entries.remove(i);
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, left-most first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The header value to send: entries joined by `,` with no whitespace,
    /// at most 512 characters (see [`write_header`](Self::write_header)).
    pub fn header(&self) -> String {
        let mut out = String::new();
        self.write_header(&mut out);
        out
    }

    /// Appends the header value to `out` and returns how many entries were
    /// left out to keep it within 512 characters.
    ///
    /// Truncation removes whole entries only, as the spec says: first
    /// entries longer than 128 characters, right-most first, then others
    /// from the right, until the rest fits.
    pub fn write_header(&self, out: &mut String) -> usize {
        let entries: Vec<(&str, &str)> = self.iter().collect();
        write_entries(&entries, out)
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }
}

fn entry_len(key: &str, value: &str) -> usize {
    key.len() + 1 + value.len()
}

/// Strips HTTP optional whitespace (spaces and tabs) from both ends.
fn trim_ows(s: &str) -> &str {
    super::text::trim_ows(s)
}

/// `lcalpha / DIGIT / "_" / "-" / "*" / "/"`: the key characters both
/// grammar levels share.
fn is_key_char(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// Whether `key` is a valid `tracestate` key (Level 2 grammar): 1 to 256
/// characters, starting with a lowercase letter or digit, then lowercase
/// letters, digits, `_`, `-`, `*`, `/` or `@`.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.len() <= MAX_KEY_LEN
        && b.iter().all(|&c| is_key_char(c) || c == b'@')
}

/// Whether `key` follows the Level 1 grammar, the one every receiver
/// accepts: `simple-key` (a lowercase letter, then up to 255 key
/// characters) or `tenant-id@system-id` (a lowercase letter or digit and up
/// to 240 key characters, `@`, a lowercase letter and up to 13 more).
pub fn is_level1_key(key: &str) -> bool {
    fn part(s: &str, first: fn(u8) -> bool, max: usize) -> bool {
        let b = s.as_bytes();
        matches!(b.first(), Some(&c) if first(c)) && b.len() <= max && b.iter().all(|&c| is_key_char(c))
    }
    let lower = |c: u8| c.is_ascii_lowercase();
    match super::text::split_once(key, b'@') {
        None => part(key, lower, MAX_KEY_LEN),
        Some((tenant, system)) => {
            part(tenant, |c| c.is_ascii_lowercase() || c.is_ascii_digit(), 241) && part(system, lower, 14)
        }
    }
}

/// Whether `value` is a valid `tracestate` value: 1 to 256 printable ASCII
/// characters other than `,` and `=`, not ending in a space.
pub fn is_valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_VALUE_LEN
        && b[b.len() - 1] != b' '
        && b.iter().all(|&c| matches!(c, 0x20..=0x7e) && c != b',' && c != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";
    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn tp(version: &str, trace: &str, span: &str, flags: &str) -> String {
        [version, trace, span, flags].join("-")
    }

    fn ctx(flags: u8) -> SpanContext {
        SpanContext {
            trace_id: TraceId::from_hex(TRACE).unwrap(),
            span_id: SpanId::from_hex(SPAN).unwrap(),
            flags: TraceFlags(flags),
            trace_state: String::new(),
            is_remote: true,
        }
    }

    #[test]
    fn parses_the_spec_example() {
        assert_eq!(parse_traceparent(VALID), Some(ctx(1)));
        let unsampled = parse_traceparent(&tp("00", TRACE, SPAN, "00")).unwrap();
        assert!(!unsampled.flags.is_sampled());
        assert!(unsampled.is_remote && unsampled.trace_state.is_empty());
    }

    #[test]
    fn rejects_invalid_traceparents() {
        let t = "12345678901234567890123456789012";
        let s = "1234567890123456";
        let cases: &[(&str, String)] = &[
            ("empty", String::new()),
            ("version ff", tp("ff", t, s, "01")),
            ("version illegal char 1", tp(".0", t, s, "01")),
            ("version illegal char 2", tp("0.", t, s, "01")),
            ("version too long", tp("000", t, s, "01")),
            ("version too long 2", tp("0000", t, s, "01")),
            ("version too short", tp("0", t, s, "01")),
            ("version uppercase", tp("0A", t, s, "01")),
            ("trace id all zero", tp("00", "00000000000000000000000000000000", s, "01")),
            ("trace id illegal first", tp("00", ".2345678901234567890123456789012", s, "01")),
            ("trace id illegal last", tp("00", "1234567890123456789012345678901.", s, "01")),
            ("trace id too long", tp("00", "123456789012345678901234567890123", s, "01")),
            ("trace id too short", tp("00", "1234567890123456789012345678901", s, "01")),
            ("trace id uppercase", tp("00", "4BF92F3577B34DA6A3CE929D0E0E4736", s, "01")),
            ("parent id all zero", tp("00", t, "0000000000000000", "01")),
            ("parent id illegal first", tp("00", t, ".234567890123456", "01")),
            ("parent id illegal last", tp("00", t, "123456789012345.", "01")),
            ("parent id too long", tp("00", t, "12345678901234567", "01")),
            ("parent id too short", tp("00", t, "123456789012345", "01")),
            ("parent id uppercase", tp("00", t, "00F067AA0BA902B7", "01")),
            ("flags illegal first", tp("00", t, s, ".0")),
            ("flags illegal last", tp("00", t, s, "0.")),
            ("flags too long", tp("00", t, s, "001")),
            ("flags too short", tp("00", t, s, "1")),
            ("flags uppercase", tp("00", t, s, "0A")),
            ("v00 trailing dot", tp("00", t, s, "01.")),
            ("v00 extra field", tp("00", t, s, "01-what-the-future-will-be-like")),
            ("v00 trailing dash", tp("00", t, s, "01-")),
            ("future version, no dash after flags", tp("cc", t, s, "01.what-the-future-will-be-like")),
            ("future version too short", tp("cc", t, s, "1")),
            ("future version ff with extra", tp("ff", t, s, "01-future")),
            ("wrong delimiter", "00_12345678901234567890123456789012_1234567890123456_01".into()),
            ("missing version", "-12345678901234567890123456789012-1234567890123456-01-".into()),
            ("plus signs", "00-+2345678901234567890123456789012-+234567890123456-01".into()),
            ("inner space", tp("00", t, s, " 1")),
            ("non-ascii", "00-1234567890123456789012345678901é-1234567890123456-01".into()),
            ("newline inside", tp("00", t, s, "0\n")),
            ("two headers combined", [tp("00", t, s, "01"), tp("00", t, s, "01")].join(", ")),
        ];
        for (name, value) in cases {
            assert_eq!(parse_traceparent(value), None, "{name}: {value:?}");
        }
    }

    #[test]
    fn accepts_future_versions_at_fixed_offsets() {
        let t = "12345678901234567890123456789012";
        let s = "1234567890123456";
        for value in [
            tp("cc", t, s, "01"),
            tp("cc", t, s, "01-what-the-future-will-be-like"),
            tp("01", t, s, "01-"),
            tp("fe", t, s, "01-x-y-z"),
        ] {
            let c = parse_traceparent(&value).unwrap_or_else(|| panic!("{value}"));
            assert_eq!(c.trace_id.to_hex(), t);
            assert_eq!(c.span_id.to_hex(), s);
            assert!(c.flags.is_sampled());
            // Always re-sent as version 00, without the unknown fields.
            assert_eq!(format_traceparent(&c), tp("00", t, s, "01"));
        }
    }

    #[test]
    fn surrounding_spaces_and_tabs_are_ignored() {
        for value in [
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "\t00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t",
            "\t 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 \t",
        ] {
            assert_eq!(parse_traceparent(value), Some(ctx(1)), "{value:?}");
        }
        // Other whitespace is not OWS.
        assert_eq!(parse_traceparent("\n00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), None);
    }

    #[test]
    fn flags_keep_unknown_bits_in_but_send_only_known_bits() {
        let c = parse_traceparent(&tp("00", TRACE, SPAN, "ff")).unwrap();
        assert_eq!(c.flags, TraceFlags(0xff));
        assert_eq!(format_traceparent(&c), tp("00", TRACE, SPAN, "03"));

        let c = parse_traceparent(&tp("00", TRACE, SPAN, "09")).unwrap();
        assert_eq!(c.flags, TraceFlags(0x09));
        assert!(c.flags.is_sampled() && !c.flags.is_random());
        assert_eq!(format_traceparent(&c), tp("00", TRACE, SPAN, "01"));

        // The random-trace-id bit (Level 2) is propagated unchanged.
        let c = parse_traceparent(&tp("00", TRACE, SPAN, "02")).unwrap();
        assert!(c.flags.is_random() && !c.flags.is_sampled());
        assert_eq!(format_traceparent(&c), tp("00", TRACE, SPAN, "02"));
        let c = parse_traceparent(&tp("00", TRACE, SPAN, "06")).unwrap();
        assert_eq!(format_traceparent(&c), tp("00", TRACE, SPAN, "02"));
    }

    #[test]
    fn format_round_trips_and_write_appends() {
        for flags in [0, 1, 2, 3] {
            let c = ctx(flags);
            let s = format_traceparent(&c);
            assert_eq!(s.len(), TRACEPARENT_LEN);
            assert_eq!(parse_traceparent(&s), Some(c));
        }
        let mut out = String::from("traceparent: ");
        write_traceparent(&ctx(1), &mut out);
        assert_eq!(out, ["traceparent: ", VALID].concat());
    }

    #[test]
    fn extract_applies_the_processing_model() {
        // No or invalid traceparent: tracestate is discarded with it.
        assert_eq!(extract(None, &["foo=1"]), None);
        assert_eq!(extract(Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), &["foo=1"]), None);

        let c = extract(Some(VALID), &["foo=1,bar=2"]).unwrap();
        assert_eq!(c.trace_state, "foo=1,bar=2");
        assert!(c.is_remote);

        // A bad tracestate never costs the traceparent.
        let c = extract(Some(VALID), &["foo=1", "Bad=2"]).unwrap();
        assert_eq!(c.trace_state, "");
        assert_eq!(c.trace_id.to_hex(), TRACE);

        let c = extract(Some(VALID), &[]).unwrap();
        assert_eq!(c.trace_state, "");

        // Multiple lines combine in order; whitespace is normalised away.
        let c = extract(Some(VALID), &["foo=1 , bar=2", "", "rojo=1,congo=2", "baz=3"]).unwrap();
        assert_eq!(c.trace_state, "foo=1,bar=2,rojo=1,congo=2,baz=3");
    }

    fn parsed(lines: &[&str]) -> Vec<(String, String)> {
        TraceState::parse_headers(lines.iter().copied()).iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tracestate_whitespace_and_empty_members() {
        let expect = pairs(&[("foo", "1"), ("bar", "2"), ("baz", "3")]);
        assert_eq!(parsed(&["foo=1 \t , \t bar=2, \t baz=3"]), expect);
        assert_eq!(parsed(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"]), expect);
        assert_eq!(parsed(&[",,foo=1,, ,\t,bar=2,", "", " ", "baz=3,"]), expect);
        for one in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(parsed(&[one]), pairs(&[("foo", "1")]), "{one:?}");
        }
        // Leading spaces belong to the value; trailing ones are OWS.
        assert_eq!(parsed(&["foo=  1  "]), pairs(&[("foo", "  1")]));
        assert!(TraceState::parse("").is_empty());
        assert!(TraceState::parse(" , \t, ").is_empty());
    }

    #[test]
    fn tracestate_invalid_member_drops_the_whole_list() {
        let cases = [
            "foo =1",
            "FOO=1",
            "foo.bar=1",
            "@foo=1,bar=2",
            "foo=bar=baz",
            "foo=,bar=3",
            "foo",
            "=1",
            "foo=1\u{7f}",
            "foo=é",
            "foo=a\tb",
            "foo=1;bar=2\n",
        ];
        for case in cases {
            assert!(TraceState::parse(case).is_empty(), "{case:?}");
            assert!(TraceState::parse_headers(["ok=1", case]).is_empty(), "{case:?}");
        }
        assert_eq!(TraceState::try_parse_headers(["foo"]), Err(TraceStateError::MissingEquals));
        assert_eq!(TraceState::try_parse_headers(["FOO=1"]), Err(TraceStateError::InvalidKey));
        assert_eq!(TraceState::try_parse_headers(["foo=,x=1"]), Err(TraceStateError::InvalidValue));
    }

    #[test]
    fn tracestate_key_grammar() {
        // Level 2: '@' anywhere after the first character.
        assert_eq!(parsed(&["foo@=1,bar=2"]), pairs(&[("foo@", "1"), ("bar", "2")]));
        assert_eq!(parsed(&["foo@@bar=1,bar=2"]), pairs(&[("foo@@bar", "1"), ("bar", "2")]));
        assert_eq!(parsed(&["foo@bar@baz=1"]), pairs(&[("foo@bar@baz", "1")]));
        assert_eq!(parsed(&["1abc=1"]), pairs(&[("1abc", "1")]));

        // Key length limit: 256 in, 257 drops the whole list.
        let key = "z".repeat(256);
        let line = [key.as_str(), "=1"].concat();
        assert_eq!(parsed(&["foo=1", &line]), pairs(&[("foo", "1"), (&key, "1")]));
        let line = ["z".repeat(257).as_str(), "=1"].concat();
        assert!(parsed(&["foo=1", &line]).is_empty());
        for key in [
            ["t".repeat(241), "@".into(), "v".repeat(14)].concat(),
            ["t".repeat(242), "@v".into()].concat(),
            ["t@".into(), "v".repeat(15)].concat(),
        ] {
            let line = [key.as_str(), "=1"].concat();
            assert_eq!(parsed(&["foo=1", &line]), pairs(&[("foo", "1"), (&key, "1")]));
        }

        // Every allowed character.
        let plain = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let tenant = [plain, "@a-z0-9_-*/"].concat();
        let value: String = (0x20u8..=0x7e).filter(|c| *c != b',' && *c != b'=').map(char::from).collect();
        for key in [plain, tenant.as_str()] {
            let line = [key, "=", &value].concat();
            assert_eq!(TraceState::parse(&line).get(key), Some(value.as_str()));
        }
    }

    #[test]
    fn level1_key_grammar_for_insert() {
        for ok in [
            "a",
            "congo",
            "a0_-*/",
            "0tenant@sys",
            "fw529a3039@dt",
            &["a".repeat(256)].concat(),
            &["t".repeat(241), "@".into(), "v".repeat(14)].concat(),
        ] {
            assert!(is_level1_key(ok), "{ok}");
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in [
            "",
            "0abc",
            "Abc",
            "a b",
            "foo@",
            "@foo",
            "a@0b",
            "a@b@c",
            &"a".repeat(257),
            &["t".repeat(242), "@v".into()].concat(),
            &["t@".into(), "v".repeat(15)].concat(),
        ] {
            assert!(!is_level1_key(bad), "{bad}");
        }
        let mut ts = TraceState::default();
        assert_eq!(ts.insert("a@b@c", "1"), Err(TraceStateError::InvalidKey));
        assert_eq!(ts.insert("1abc", "1"), Err(TraceStateError::InvalidKey));
        assert!(ts.is_empty());
    }

    #[test]
    fn tracestate_value_grammar() {
        assert!(is_valid_value("x"));
        assert!(is_valid_value(" x"));
        assert!(is_valid_value(&"v".repeat(256)));
        assert!(!is_valid_value(&"v".repeat(257)));
        assert!(!is_valid_value(""));
        assert!(!is_valid_value("x "));
        assert!(!is_valid_value(" "));
        assert!(!is_valid_value("a,b"));
        assert!(!is_valid_value("a=b"));
        assert!(!is_valid_value("a\tb"));
        assert!(!is_valid_value("ü"));
    }

    #[test]
    fn tracestate_member_limit() {
        let lines: Vec<String> = (1..=33).map(|i| ["bar", &i.to_string(), "=", &i.to_string()].concat()).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let ts = TraceState::parse_headers(refs[..32].iter().copied());
        assert_eq!(ts.len(), 32);
        assert_eq!(ts.get("bar1"), Some("1"));
        assert_eq!(TraceState::try_parse_headers(refs.iter().copied()), Err(TraceStateError::TooManyMembers));
        // Spread across header lines, as in the conformance harness.
        let joined = [refs[..10].join(","), refs[10..20].join(","), refs[20..30].join(","), refs[30..].join(",")];
        assert!(TraceState::parse_headers(joined.iter().map(String::as_str)).is_empty());
    }

    #[test]
    fn tracestate_duplicates_keep_the_first() {
        assert_eq!(parsed(&["foo=1,foo=1"]), pairs(&[("foo", "1")]));
        assert_eq!(parsed(&["foo=1,bar=3,foo=2"]), pairs(&[("foo", "1"), ("bar", "3")]));
        assert_eq!(parsed(&["foo=1", "foo=2"]), pairs(&[("foo", "1")]));
        // Duplicates still count towards the 32-member limit of the list.
        let mut line = vec!["k=1"; 33].join(",");
        assert!(TraceState::parse(&line).is_empty());
        line.truncate(line.len() - 4);
        assert_eq!(TraceState::parse(&line).len(), 1);
    }

    #[test]
    fn insert_moves_key_left_and_caps_at_32() {
        let mut ts = TraceState::parse("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        ts.insert("congo", "ucfJifl5GOE").unwrap();
        assert_eq!(ts.header(), "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
        ts.insert("new", "x").unwrap();
        assert_eq!(ts.header(), "new=x,congo=ucfJifl5GOE,rojo=00f067aa0ba902b7");
        assert_eq!(ts.insert("bad", "x "), Err(TraceStateError::InvalidValue));
        assert_eq!(ts.insert("bad", ""), Err(TraceStateError::InvalidValue));
        assert_eq!(ts.insert("Bad", "x"), Err(TraceStateError::InvalidKey));
        assert_eq!(ts.len(), 3);

        ts.remove("congo");
        ts.remove("absent");
        assert_eq!(ts.header(), "new=x,rojo=00f067aa0ba902b7");

        let mut ts = TraceState::default();
        for i in 0..40 {
            ts.insert(&["k", &i.to_string()].concat(), "v").unwrap();
        }
        assert_eq!(ts.len(), MAX_MEMBERS);
        assert_eq!(ts.iter().next(), Some(("k39", "v")));
        assert_eq!(ts.iter().last(), Some(("k8", "v")));
        assert_eq!(ts.get("k7"), None);
    }

    fn entry(key: &str, value_len: usize) -> String {
        [key, "=", &"v".repeat(value_len)].concat()
    }

    #[test]
    fn header_truncates_long_entries_first_then_from_the_right() {
        // Four entries of 100 chars and one of 200: 604 chars with commas.
        let lines = [entry("a", 98), entry("long", 195), entry("b", 98), entry("c", 98), entry("d", 98)];
        let ts = TraceState::parse_headers(lines.iter().map(String::as_str));
        assert_eq!(ts.len(), 5);
        let mut out = String::new();
        assert_eq!(ts.write_header(&mut out), 1);
        assert_eq!(out, [&lines[0], ",", &lines[2], ",", &lines[3], ",", &lines[4]].concat());
        assert_eq!(out.len(), 403);

        // Only as many long entries as needed go, right-most first.
        let lines = [entry("x", 198), entry("y", 198), entry("z", 198)];
        let h = TraceState::parse_headers(lines.iter().map(String::as_str)).header();
        assert_eq!(h, [&lines[0], ",", &lines[1]].concat());

        // Then short entries from the right.
        let lines: Vec<String> = (0..6).map(|i| entry(&["k", &i.to_string()].concat(), 97)).collect();
        let ts = TraceState::parse_headers(lines.iter().map(String::as_str));
        let h = ts.header();
        assert_eq!(h, lines[..5].join(","));
        assert_eq!(h.len(), 504);

        // Exactly 512 fits.
        let lines = [entry("a", 253), entry("b", 254)];
        let h = TraceState::parse_headers(lines.iter().map(String::as_str)).header();
        assert_eq!(h.len(), 512);

        // A single entry over 512 characters cannot be sent.
        let line = [&"k".repeat(256), "=", &"v".repeat(256)].concat();
        let ts = TraceState::parse(&line);
        assert_eq!(ts.len(), 1);
        assert_eq!(ts.header(), "");
    }

    #[test]
    fn header_never_exceeds_limits_with_maximal_entries() {
        // 32 entries of 513 characters: none can be sent.
        let lines: Vec<String> =
            (0..32).map(|i| [&"k".repeat(254), &format!("{i:02}"), "=", &"v".repeat(256)].concat()).collect();
        let ts = TraceState::parse_headers(lines.iter().map(String::as_str));
        assert_eq!(ts.len(), 32);
        let mut out = String::new();
        assert_eq!(ts.write_header(&mut out), 32);
        assert_eq!(out, "");

        // 32 entries of 509: only the left-most fits.
        let lines: Vec<String> =
            (0..32).map(|i| [&"k".repeat(250), &format!("{i:02}"), "=", &"v".repeat(256)].concat()).collect();
        let ts = TraceState::parse_headers(lines.iter().map(String::as_str));
        assert_eq!(ts.header(), lines[0]);
    }
}

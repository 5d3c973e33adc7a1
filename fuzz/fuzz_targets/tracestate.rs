//! `tracestate` parsing, editing and the header we send.
//!
//! Input: header lines separated by `\n`; after a NUL byte, edits, one per
//! line: `key=value` inserts, `-key` removes.
//!
//! Checks:
//! - the parser agrees with an independent reading of the grammar written
//!   here (list-members split on `,`, OWS trimmed, empty ones skipped, at
//!   most 32 members across all lines, Level 2 keys, printable values not
//!   ending in a space, first duplicate kept, one bad member drops the list);
//! - a parsed list has at most 32 members, no duplicate keys, valid entries;
//! - `insert` accepts exactly Level 1 keys and valid values, moves the key
//!   to the front, keeps at most 32 entries; `remove` removes;
//! - the header sent is at most 512 characters, has no whitespace around members, re-parses
//!   to the entries it kept, keeps them in order, and drops exactly the
//!   entries the documented truncation rule drops (entries over 128
//!   characters first, right-most first; then others from the right).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracelink::core::trace_context::{
    is_level1_key, is_valid_key, is_valid_value, TraceState, TraceStateError, LONG_ENTRY_LEN, MAX_HEADER_LEN,
    MAX_MEMBERS,
};

type Entries = Vec<(String, String)>;

fn entries(ts: &TraceState) -> Entries {
    ts.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn ref_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/@".contains(&c))
}

fn ref_value(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && !v.ends_with(' ')
        && b.iter().all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

/// Level 1: `lcalpha 0*255 keychar`, or `(lcalpha/DIGIT) 0*240 keychar "@" lcalpha 0*13 keychar`
/// where keychar excludes `@`.
fn ref_level1_key(k: &str) -> bool {
    let chars = |s: &str| s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-*/".contains(&c));
    match k.split_once('@') {
        None => k.len() <= 256 && k.starts_with(|c: char| c.is_ascii_lowercase()) && chars(k),
        Some((t, s)) => {
            (1..=241).contains(&t.len())
                && t.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && chars(t)
                && (1..=14).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && chars(s)
        }
    }
}

fn reference(lines: &[&str]) -> Result<Entries, TraceStateError> {
    let mut out = Entries::new();
    let mut members = 0;
    for line in lines {
        for m in line.split(',') {
            let m = m.trim_matches(|c| c == ' ' || c == '\t');
            if m.is_empty() {
                continue;
            }
            members += 1;
            if members > 32 {
                return Err(TraceStateError::TooManyMembers);
            }
            let Some(eq) = m.find('=') else { return Err(TraceStateError::MissingEquals) };
            let (k, v) = (&m[..eq], &m[eq + 1..]);
            if !ref_key(k) {
                return Err(TraceStateError::InvalidKey);
            }
            if !ref_value(v) {
                return Err(TraceStateError::InvalidValue);
            }
            if !out.iter().any(|(ok, _)| ok == k) {
                out.push((k.to_owned(), v.to_owned()));
            }
        }
    }
    Ok(out)
}

/// Which entries the header keeps, per the documented rule.
fn reference_keep(e: &Entries) -> Vec<bool> {
    let len = |i: usize| e[i].0.len() + 1 + e[i].1.len();
    let mut keep = vec![true; e.len()];
    let total = |keep: &[bool]| -> usize {
        let kept: Vec<usize> = (0..e.len()).filter(|&i| keep[i]).map(len).collect();
        kept.iter().sum::<usize>() + kept.len().saturating_sub(1)
    };
    for long_only in [true, false] {
        for i in (0..e.len()).rev() {
            if total(&keep) <= MAX_HEADER_LEN {
                break;
            }
            if keep[i] && (!long_only || len(i) > LONG_ENTRY_LEN) {
                keep[i] = false;
            }
        }
    }
    keep
}

fn check_state(ts: &TraceState) {
    let e = entries(ts);
    assert!(e.len() <= MAX_MEMBERS, "{} members", e.len());
    assert_eq!(ts.len(), e.len());
    for (i, (k, v)) in e.iter().enumerate() {
        assert!(is_valid_key(k) && ref_key(k), "key {k:?}");
        assert!(is_valid_value(v) && ref_value(v), "value {v:?}");
        assert!(!e[..i].iter().any(|(other, _)| other == k), "duplicate key {k:?}");
        assert_eq!(ts.get(k), Some(v.as_str()));
    }

    let mut header = String::from("x");
    let dropped = ts.write_header(&mut header);
    let header = header.split_off(1);
    assert_eq!(header, ts.header());
    assert!(header.len() <= MAX_HEADER_LEN, "header of {} characters", header.len());
    // Values may hold inner spaces; nothing else is whitespace.
    assert!(
        !header.contains('\t')
            && !header.starts_with(' ')
            && !header.ends_with(' ')
            && !header.contains(" ,")
            && !header.contains(", "),
        "no whitespace around members: {header:?}"
    );
    let keep = reference_keep(&e);
    let kept: Entries = e.iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| x.clone()).collect();
    assert_eq!(dropped, e.len() - kept.len(), "dropped count");
    let reparsed = TraceState::try_parse_headers([header.as_str()]).expect("the header we send parses");
    assert_eq!(entries(&reparsed), kept, "header keeps what the truncation rule keeps, in order");
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (headers, edits) = text.split_once('\0').unwrap_or((&text, ""));
    let lines: Vec<&str> = headers.split('\n').collect();

    let parsed = TraceState::try_parse_headers(lines.iter().copied());
    assert_eq!(
        parsed.as_ref().map(entries).map_err(|e| *e),
        reference(&lines),
        "parser and the grammar disagree on {lines:?}"
    );
    assert_eq!(TraceState::parse_headers(lines.iter().copied()), parsed.clone().unwrap_or_default());
    let mut ts = parsed.unwrap_or_default();
    check_state(&ts);

    // A few edits per input keep executions fast; the fuzzer varies which.
    for edit in edits.split('\n').filter(|e| !e.is_empty()).take(8) {
        let before = entries(&ts);
        if let Some(key) = edit.strip_prefix('-') {
            ts.remove(key);
            let expected: Entries = before.into_iter().filter(|(k, _)| k != key).collect();
            assert_eq!(entries(&ts), expected, "remove {key:?}");
        } else {
            let (k, v) = edit.split_once('=').unwrap_or((edit, ""));
            let valid = is_level1_key(k) && is_valid_value(v);
            assert_eq!(ref_level1_key(k), is_level1_key(k), "Level 1 key grammar on {k:?}");
            match ts.insert(k, v) {
                Ok(()) => {
                    assert!(valid);
                    let mut expected = vec![(k.to_owned(), v.to_owned())];
                    expected.extend(before.into_iter().filter(|(ok, _)| ok != k));
                    expected.truncate(MAX_MEMBERS);
                    assert_eq!(entries(&ts), expected, "insert {k:?}={v:?}");
                }
                Err(e) => {
                    assert!(!valid, "insert refused {k:?}={v:?}: {e}");
                    assert_eq!(entries(&ts), before, "a refused insert changes nothing");
                }
            }
        }
    }
    // Each edit was checked against the model; the invariants once, at the end.
    check_state(&ts);
});

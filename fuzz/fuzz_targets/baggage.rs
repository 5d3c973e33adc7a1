//! `baggage` parsing, editing and the header we send.
//!
//! Input: header lines separated by `\n`; after a NUL byte, edits, one per
//! line: `key\x01value\x01metadata` inserts, `\x02key` removes.
//!
//! Checks:
//! - the parser agrees with an independent reading of the documented rules
//!   (written here): members split on `,`, OWS trimmed, bad members skipped
//!   and counted, values of `baggage-octet`s with strict `%XX` escapes
//!   decoded (non-UTF-8 bytes become U+FFFD), properties normalized, a
//!   repeated key keeps its first position and takes the last value;
//! - keys are unique HTTP tokens;
//! - `insert` accepts exactly token keys with valid metadata, keeps an
//!   existing key's position, appends a new one; `remove` removes;
//! - the header sent holds at most 64 members and 8192 bytes, only
//!   `baggage-octet`s and separators (no whitespace), keeps whole entries
//!   greedily in order (one that does not fit is skipped and later ones
//!   still tried), and re-parses, with nothing skipped, to exactly the
//!   entries it kept.
#![no_main]

use std::collections::{HashMap, HashSet};

use libfuzzer_sys::fuzz_target;
use tracelink::core::baggage::{Baggage, BaggageError, MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS};

type Entry = (String, String, String);

fn entries(b: &Baggage) -> Vec<Entry> {
    b.iter().map(|e| (e.key.clone(), e.value.clone(), e.metadata.clone())).collect()
}

fn ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// `%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`
fn octet(c: u8) -> bool {
    (0x21..=0x7e).contains(&c) && !b"\",;\\".contains(&c)
}

/// Normalized properties, or `None` if one is invalid.
fn properties(raw: &str) -> Option<String> {
    let mut out = Vec::new();
    for p in raw.split(';').map(ows).filter(|p| !p.is_empty()) {
        match p.find('=') {
            None => {
                if !token(p) {
                    return None;
                }
                out.push(p.to_owned());
            }
            Some(i) => {
                let (k, v) = (ows(&p[..i]), ows(&p[i + 1..]));
                if !token(k) || !v.bytes().all(octet) {
                    return None;
                }
                out.push(format!("{k}={v}"));
            }
        }
    }
    Some(out.join(";"))
}

fn decode(v: &str) -> Option<String> {
    if !v.bytes().all(octet) {
        return None;
    }
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn member(m: &str) -> Option<Entry> {
    let i = m.find('=')?;
    let key = ows(&m[..i]);
    if !token(key) {
        return None;
    }
    let rest = &m[i + 1..];
    let (value, props) = match rest.find(';') {
        Some(j) => (&rest[..j], &rest[j + 1..]),
        None => (rest, ""),
    };
    Some((key.to_owned(), decode(ows(value))?, properties(props)?))
}

fn set(list: &mut Vec<Entry>, e: Entry) {
    match list.iter_mut().find(|x| x.0 == e.0) {
        Some(x) => *x = e,
        None => list.push(e),
    }
}

fn reference(lines: &[&str]) -> (Vec<Entry>, usize) {
    let mut out: Vec<Entry> = Vec::new();
    let mut index = HashMap::new();
    let mut skipped = 0;
    for m in lines.iter().flat_map(|l| l.split(',')).filter(|m| !ows(m).is_empty()) {
        match member(m) {
            Some(e) => match index.get(&e.0) {
                Some(&i) => out[i] = e,
                None => {
                    index.insert(e.0.clone(), out.len());
                    out.push(e);
                }
            },
            None => skipped += 1,
        }
    }
    (out, skipped)
}

/// The member as sent: value percent-encoded (uppercase hex) outside
/// `baggage-octet` and for `%`.
fn encoded(e: &Entry) -> String {
    let mut s = format!("{}=", e.0);
    for c in e.1.bytes() {
        if octet(c) && c != b'%' {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    if !e.2.is_empty() {
        s.push(';');
        s.push_str(&e.2);
    }
    s
}

fn check_state(b: &Baggage) {
    let e = entries(b);
    assert_eq!(b.len(), e.len());
    let mut keys = HashSet::new();
    for (i, (k, v, meta)) in e.iter().enumerate() {
        assert!(token(k), "key {k:?}");
        assert!(keys.insert(k), "duplicate key {k:?}");
        if i < 64 {
            assert_eq!(b.get(k), Some(v.as_str()));
        }
        assert_eq!(properties(meta).as_deref(), Some(meta.as_str()), "metadata is normalized");
    }

    let mut header = String::from("x");
    let left_out = b.write_header(&mut header);
    let header = header.split_off(1);
    assert_eq!(header, b.header());
    assert!(header.len() <= MAX_BAGGAGE_BYTES, "{} bytes", header.len());
    assert!(
        header.bytes().all(|c| octet(c) || c == b',' || c == b';'),
        "only baggage-octets and separators: {header:?}"
    );

    // Greedy, in order: an entry that does not fit is skipped, later ones tried.
    let mut kept = Vec::new();
    let mut used = 0;
    for x in &e {
        let len = encoded(x).len() + usize::from(!kept.is_empty());
        if kept.len() < MAX_BAGGAGE_MEMBERS && used + len <= MAX_BAGGAGE_BYTES {
            used += len;
            kept.push(x.clone());
        }
    }
    assert_eq!(left_out, e.len() - kept.len(), "entries left out");
    assert_eq!(header, kept.iter().map(encoded).collect::<Vec<_>>().join(","));
    let (reparsed, skipped) = Baggage::parse_headers_counted([header.as_str()]);
    assert_eq!(skipped, 0, "the header we send parses cleanly: {header:?}");
    assert_eq!(entries(&reparsed), kept, "the header re-parses to the entries it kept");
    assert!(reparsed.len() <= MAX_BAGGAGE_MEMBERS);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (headers, edits) = text.split_once('\0').unwrap_or((&text, ""));
    // Parsing is quadratic in the number of members (each one looks for its
    // key among the earlier ones), which the coverage instrumentation makes
    // slow: 100 members are well past the 64 sent and keep runs fast.
    let headers = match headers.match_indices([',', '\n']).nth(100) {
        Some((cut, _)) => &headers[..cut],
        None => headers,
    };
    let lines: Vec<&str> = headers.split('\n').collect();

    let (mut b, skipped) = Baggage::parse_headers_counted(lines.iter().copied());
    assert_eq!((entries(&b), skipped), reference(&lines), "parser and the rules disagree on {lines:?}");
    assert_eq!(Baggage::parse_headers(lines.iter().copied()), b);
    check_state(&b);

    // A few edits per input keep executions fast; the fuzzer varies which.
    for edit in edits.split('\n').filter(|e| !e.is_empty()).take(8) {
        let before = entries(&b);
        if let Some(key) = edit.strip_prefix('\x02') {
            b.remove(key);
            let expected: Vec<Entry> = before.into_iter().filter(|e| e.0 != key).collect();
            assert_eq!(entries(&b), expected, "remove {key:?}");
        } else {
            let mut parts = edit.splitn(3, '\x01');
            let (k, v, meta) = (parts.next().unwrap(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let want = if !token(k) {
                Err(BaggageError::InvalidKey)
            } else {
                properties(meta).ok_or(BaggageError::InvalidMetadata)
            };
            match (b.insert(k, v, meta), want) {
                (Ok(()), Ok(normalized)) => {
                    let mut expected = before;
                    set(&mut expected, (k.to_owned(), v.to_owned(), normalized));
                    assert_eq!(entries(&b), expected, "insert {k:?}");
                }
                (Err(got), Err(want)) => {
                    assert_eq!(got, want, "insert {k:?} {meta:?}");
                    assert_eq!(entries(&b), before, "a refused insert changes nothing");
                }
                (got, want) => panic!("insert {k:?} {v:?} {meta:?}: got {got:?}, want {want:?}"),
            }
        }
    }
    // Each edit was checked against the model; the invariants once, at the end.
    check_state(&b);
});

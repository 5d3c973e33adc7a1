//! OTLP JSON encoder: spans built from fuzz input are encoded by tracelink,
//! parsed by serde_json, read back under the OTLP JSON mapping's rules
//! (lowerCamelCase keys and no others, lowercase hex ids, 64-bit integers as
//! canonical decimal strings, 32-bit integers and enums as numbers, default
//! fields left out, an AnyValue with exactly one member) and compared field
//! by field with what the span model should hold. Doubles must be written
//! as Rust's `{:?}` writes them; non-finite ones travel as the strings
//! "NaN" / "Infinity" / "-Infinity" (tracelink's documented deviation).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tracelink::core::otlp::Encoding;
use tracelink_fuzz::{encode_and_check_framing, Attrs, ExpEvent, ExpLink, ExpSpan, Expected, RequestInput, Val};

fuzz_target!(|input: RequestInput| {
    let (resource, scope, spans, expected) = input.build();
    let body = encode_and_check_framing(Encoding::Json, &resource, &scope, &spans);
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => panic!("serde_json cannot parse tracelink's request: {e}\n{}", String::from_utf8_lossy(&body)),
    };
    assert_eq!(decoded(&json), json_form(expected));
    check_double_texts(&body);
});

/// Every `doubleValue` is written as Rust's `{:?}` writes it. serde_json
/// normalizes number text (`e289` becomes `e+289`), so read it from the
/// body: `"doubleValue":` cannot occur inside a JSON string, where every
/// quote is escaped.
fn check_double_texts(body: &[u8]) {
    const KEY: &[u8] = b"\"doubleValue\":";
    let mut rest = body;
    while let Some(i) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[i + KEY.len()..];
        let end = rest.iter().position(|c| *c == b'}').expect("an AnyValue closes");
        let text = std::str::from_utf8(&rest[..end]).unwrap();
        let f: f64 = text.parse().unwrap_or_else(|_| panic!("doubleValue {text:?}"));
        assert_eq!(text, format!("{f:?}"), "doubles are written as Rust's {{:?}} writes them");
    }
}

/// The expected request with non-finite doubles as the strings tracelink sends.
fn json_form(mut e: Expected) -> Expected {
    fn fix(attrs: &mut Attrs) {
        attrs.iter_mut().for_each(|(_, v)| fix_val(v));
    }
    fn fix_val(v: &mut Val) {
        match v {
            Val::Double(bits) if !f64::from_bits(*bits).is_finite() => {
                let f = f64::from_bits(*bits);
                *v = Val::Str(
                    if f.is_nan() {
                        "NaN"
                    } else if f > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    }
                    .into(),
                );
            }
            Val::Array(items) => items.iter_mut().for_each(fix_val),
            _ => {}
        }
    }
    fix(&mut e.resource);
    for s in &mut e.spans {
        fix(&mut s.attributes);
        s.events.iter_mut().for_each(|ev| fix(&mut ev.attributes));
        s.links.iter_mut().for_each(|l| fix(&mut l.attributes));
    }
    e
}

/// `v` as an object whose keys are all in `allowed`.
fn object<'a>(v: &'a Value, allowed: &[&str]) -> &'a Map<String, Value> {
    let m = v.as_object().unwrap_or_else(|| panic!("expected an object, got {v}"));
    for k in m.keys() {
        assert!(allowed.contains(&k.as_str()), "unexpected key {k:?} (allowed: {allowed:?})");
    }
    m
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("expected an array, got {v}"))
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v}")).to_owned()
}

/// A 32-bit integer or enum: a JSON number.
fn number(v: &Value) -> u32 {
    let n = v.as_u64().unwrap_or_else(|| panic!("expected an unsigned integer number, got {v}"));
    assert_eq!(v.to_string(), n.to_string(), "canonical number");
    u32::try_from(n).expect("fits in 32 bits")
}

/// A field that is left out when zero.
fn count(m: &Map<String, Value>, key: &str) -> u32 {
    match m.get(key) {
        None => 0,
        Some(v) => {
            let n = number(v);
            assert_ne!(n, 0, "{key}: a zero count is left out");
            n
        }
    }
}

/// A 64-bit integer: a canonical decimal string.
fn u64_string(v: &Value) -> u64 {
    let s = string(v);
    let n: u64 = s.parse().unwrap_or_else(|_| panic!("not a u64 decimal: {s:?}"));
    assert_eq!(s, n.to_string(), "canonical decimal");
    n
}

/// A lowercase hex id of `len` bytes.
fn hex_id(v: &Value, len: usize) -> Vec<u8> {
    let s = string(v);
    assert_eq!(s.len(), 2 * len, "id length: {s:?}");
    assert!(s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "lowercase hex: {s:?}");
    (0..len).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// A string field that is left out when empty.
fn opt_string(m: &Map<String, Value>, key: &str) -> String {
    match m.get(key) {
        None => String::new(),
        Some(v) => {
            let s = string(v);
            assert!(!s.is_empty(), "{key}: an empty string is left out");
            s
        }
    }
}

/// A repeated field that is left out when empty.
fn list<'a>(m: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    match m.get(key) {
        None => &[],
        Some(v) => {
            let a = array(v);
            assert!(!a.is_empty(), "{key}: an empty list is left out");
            a
        }
    }
}

fn decoded(json: &Value) -> Expected {
    let top = object(json, &["resourceSpans"]);
    let rs = array(&top["resourceSpans"]);
    assert_eq!(rs.len(), 1);
    let rs = object(&rs[0], &["resource", "scopeSpans"]);
    let resource = match rs.get("resource") {
        None => Attrs::new(),
        Some(r) => {
            let r = object(r, &["attributes"]);
            let a = attrs(array(&r["attributes"]));
            assert!(!a.is_empty(), "an empty resource is left out");
            a
        }
    };
    let ss = array(&rs["scopeSpans"]);
    assert_eq!(ss.len(), 1);
    let ss = object(&ss[0], &["scope", "spans"]);
    let scope = ss.get("scope").map(|s| {
        let s = object(s, &["name", "version"]);
        (string(&s["name"]), opt_string(s, "version"))
    });
    let spans = array(&ss["spans"]).iter().map(span).collect();
    Expected { resource, scope, spans }
}

fn span(v: &Value) -> ExpSpan {
    let m = object(
        v,
        &[
            "traceId",
            "spanId",
            "traceState",
            "parentSpanId",
            "flags",
            "name",
            "kind",
            "startTimeUnixNano",
            "endTimeUnixNano",
            "attributes",
            "droppedAttributesCount",
            "events",
            "droppedEventsCount",
            "links",
            "droppedLinksCount",
            "status",
        ],
    );
    let kind = number(&m["kind"]);
    assert!((1..=5).contains(&kind), "kind {kind}");
    ExpSpan {
        trace_id: hex_id(&m["traceId"], 16),
        span_id: hex_id(&m["spanId"], 8),
        trace_state: opt_string(m, "traceState"),
        parent_span_id: m.get("parentSpanId").map_or(Vec::new(), |p| hex_id(p, 8)),
        flags: count(m, "flags"),
        name: string(&m["name"]),
        kind: kind as i32,
        start: u64_string(&m["startTimeUnixNano"]),
        end: u64_string(&m["endTimeUnixNano"]),
        attributes: attrs(list(m, "attributes")),
        dropped_attributes: count(m, "droppedAttributesCount"),
        events: list(m, "events").iter().map(event).collect(),
        dropped_events: count(m, "droppedEventsCount"),
        links: list(m, "links").iter().map(link).collect(),
        dropped_links: count(m, "droppedLinksCount"),
        status: m.get("status").map(|s| {
            let s = object(s, &["code", "message"]);
            let code = number(&s["code"]);
            assert!(code == 1 || code == 2, "status code {code}");
            (code as i32, opt_string(s, "message"))
        }),
    }
}

fn event(v: &Value) -> ExpEvent {
    let m = object(v, &["timeUnixNano", "name", "attributes", "droppedAttributesCount"]);
    ExpEvent {
        time: u64_string(&m["timeUnixNano"]),
        name: string(&m["name"]),
        attributes: attrs(list(m, "attributes")),
        dropped_attributes: count(m, "droppedAttributesCount"),
    }
}

fn link(v: &Value) -> ExpLink {
    let m = object(v, &["traceId", "spanId", "traceState", "attributes", "droppedAttributesCount", "flags"]);
    ExpLink {
        trace_id: hex_id(&m["traceId"], 16),
        span_id: hex_id(&m["spanId"], 8),
        trace_state: opt_string(m, "traceState"),
        attributes: attrs(list(m, "attributes")),
        dropped_attributes: count(m, "droppedAttributesCount"),
        flags: count(m, "flags"),
    }
}

fn attrs(list: &[Value]) -> Attrs {
    list.iter()
        .map(|kv| {
            let m = object(kv, &["key", "value"]);
            (string(&m["key"]), any_value(&m["value"], true))
        })
        .collect()
}

fn any_value(v: &Value, array_allowed: bool) -> Val {
    let m = object(v, &["stringValue", "boolValue", "intValue", "doubleValue", "arrayValue"]);
    assert_eq!(m.len(), 1, "an AnyValue holds exactly one member: {v}");
    let (k, x) = m.iter().next().unwrap();
    match k.as_str() {
        "stringValue" => Val::Str(string(x)),
        "boolValue" => Val::Bool(x.as_bool().unwrap_or_else(|| panic!("boolValue {x}"))),
        "intValue" => {
            let s = string(x);
            let i: i64 = s.parse().unwrap_or_else(|_| panic!("intValue {s:?}"));
            assert_eq!(s, i.to_string(), "canonical intValue");
            Val::Int(i)
        }
        "doubleValue" => {
            // The text itself is checked by `check_double_texts`.
            let text = x.as_number().unwrap_or_else(|| panic!("doubleValue must be a number: {x}")).to_string();
            let f: f64 = text.parse().unwrap_or_else(|_| panic!("doubleValue {text:?}"));
            assert!(f.is_finite(), "finite doubles only: {text}");
            Val::Double(f.to_bits())
        }
        "arrayValue" if array_allowed => {
            let a = object(x, &["values"]);
            Val::Array(array(&a["values"]).iter().map(|e| any_value(e, false)).collect())
        }
        _ => panic!("unexpected AnyValue member {k:?}"),
    }
}

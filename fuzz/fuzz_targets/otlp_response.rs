//! The collector's response: `parse_partial_success` for protobuf and JSON.
//!
//! The first byte picks a mode:
//! - raw bytes as a protobuf / JSON body: never a panic, and whenever an
//!   independent decoder (prost / serde_json) accepts the body as a
//!   response, tracelink reads the same values from it (tracelink may read
//!   bodies they refuse: it is deliberately forgiving, e.g. of invalid UTF-8);
//! - a well-formed response built from fuzz input, with unknown fields,
//!   written by prost / serde_json: tracelink must read exactly its values.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::{json, Map, Value};
use tracelink::core::otlp::{parse_partial_success, Encoding};

/// `ExportTraceServiceResponse` (collector/trace/v1/trace_service.proto),
/// with `error_message` read as bytes so that prost accepts what tracelink
/// reads leniently (it decodes invalid UTF-8 with U+FFFD).
#[derive(Clone, PartialEq, Message)]
struct Response {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_spans: i64,
    #[prost(bytes = "vec", tag = "2")]
    error_message: Vec<u8>,
}

/// The same response with unknown fields around the known ones.
#[derive(Clone, PartialEq, Message)]
struct ResponseWithExtras {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccessWithExtras>,
    #[prost(string, tag = "7")]
    unknown_string: String,
    #[prost(fixed64, repeated, tag = "9")]
    unknown_fixed: Vec<u64>,
}

#[derive(Clone, PartialEq, Message)]
struct PartialSuccessWithExtras {
    #[prost(int64, tag = "1")]
    rejected_spans: i64,
    #[prost(string, tag = "2")]
    error_message: String,
    #[prost(uint32, tag = "3")]
    unknown_varint: u32,
    #[prost(fixed32, tag = "15")]
    unknown_fixed32: u32,
}

#[derive(Arbitrary, Debug)]
struct Built {
    present: bool,
    rejected: i64,
    message: String,
    extra_varint: u32,
    extra_string: String,
    extras: Vec<u64>,
    /// JSON: snake_case names, `rejectedSpans` as a number, extra members.
    snake_case: bool,
    as_number: bool,
    extra_members: Vec<(String, JsonLeaf)>,
}

#[derive(Arbitrary, Debug)]
enum JsonLeaf {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Nested(Vec<(String, i64)>),
}

impl JsonLeaf {
    fn json(&self) -> Value {
        match self {
            JsonLeaf::Null => Value::Null,
            JsonLeaf::Bool(b) => json!(b),
            JsonLeaf::Int(i) => json!(i),
            JsonLeaf::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            JsonLeaf::Str(s) => json!(s),
            JsonLeaf::Nested(v) => Value::Array(v.iter().map(|(k, i)| json!({ k: [i, {}], "x": [] })).collect()),
        }
    }
}

/// What serde_json reads from a response body, or `None` when it is not a
/// well-formed response with a partial success.
fn serde_reading(body: &[u8]) -> Option<(i64, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let top = v.as_object()?;
    // Either spelling may carry it; with both, which one wins is not defined.
    let ps = [top.get("partialSuccess"), top.get("partial_success")];
    if ps.iter().all(Option::is_some) {
        return None;
    }
    let ps = ps.into_iter().flatten().next()?;
    if ps.is_null() {
        return None;
    }
    let ps = ps.as_object()?;
    let pick = |a: &str, b: &str| -> Option<Option<&Value>> {
        match (ps.get(a), ps.get(b)) {
            (Some(_), Some(_)) => None,
            (x, y) => Some(x.or(y)),
        }
    };
    let rejected = match pick("rejectedSpans", "rejected_spans")? {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => s.parse().ok()?,
        Some(Value::Number(n)) => n.to_string().parse().ok()?,
        Some(_) => return None,
    };
    let message = match pick("errorMessage", "error_message")? {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return None,
    };
    Some((rejected, message))
}

/// Whether some object in `body` repeats a member name: serde_json keeps only
/// the last, so its reading is no reference there. Counts the `:` outside
/// strings (one per member) against the members serde_json kept.
fn has_duplicate_member_names(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return true };
    fn members(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.len() + m.values().map(members).sum::<usize>(),
            Value::Array(a) => a.iter().map(members).sum(),
            _ => 0,
        }
    }
    let mut count = 0;
    let mut in_string = false;
    let mut escaped = false;
    for &c in body {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (false, _, b'"') => in_string = true,
            (false, _, b':') => count += 1,
            _ => {}
        }
    }
    count != members(&v)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => {
            let ours = parse_partial_success(Encoding::Protobuf, rest);
            if let Ok(response) = Response::decode(rest) {
                let theirs = response
                    .partial_success
                    // tracelink keeps the message only when it is valid UTF-8 (it is informative).
                    .map(|ps| (ps.rejected_spans, String::from_utf8(ps.error_message).unwrap_or_default()));
                assert_eq!(ours, theirs, "tracelink and prost read {rest:?}");
            }
        }
        1 => {
            let ours = parse_partial_success(Encoding::Json, rest);
            if !has_duplicate_member_names(rest) {
                if let Some(expected) = serde_reading(rest) {
                    assert_eq!(
                        ours,
                        Some(expected),
                        "tracelink and serde_json read {:?}",
                        String::from_utf8_lossy(rest)
                    );
                }
            }
        }
        2 => {
            let Ok(b) = Built::arbitrary(&mut Unstructured::new(rest)) else { return };
            let response = ResponseWithExtras {
                partial_success: b.present.then(|| PartialSuccessWithExtras {
                    rejected_spans: b.rejected,
                    error_message: b.message.clone(),
                    unknown_varint: b.extra_varint,
                    unknown_fixed32: b.extra_varint,
                }),
                unknown_string: b.extra_string.clone(),
                unknown_fixed: b.extras.clone(),
            };
            let body = response.encode_to_vec();
            let expected = b.present.then(|| (b.rejected, b.message.clone()));
            assert_eq!(parse_partial_success(Encoding::Protobuf, &body), expected);
        }
        _ => {
            let Ok(b) = Built::arbitrary(&mut Unstructured::new(rest)) else { return };
            let (outer, rejected_name, message_name) = if b.snake_case {
                ("partial_success", "rejected_spans", "error_message")
            } else {
                ("partialSuccess", "rejectedSpans", "errorMessage")
            };
            let mut ps = Map::new();
            for (k, v) in &b.extra_members {
                if ![rejected_name, message_name, "rejectedSpans", "rejected_spans", "errorMessage", "error_message"]
                    .contains(&k.as_str())
                {
                    ps.insert(k.clone(), v.json());
                }
            }
            ps.insert(
                rejected_name.into(),
                if b.as_number { json!(b.rejected) } else { json!(b.rejected.to_string()) },
            );
            ps.insert(message_name.into(), json!(b.message));
            let mut top = Map::new();
            for (k, v) in &b.extra_members {
                if !["partialSuccess", "partial_success"].contains(&k.as_str()) {
                    top.insert(k.clone(), v.json());
                }
            }
            if b.present {
                top.insert(outer.into(), Value::Object(ps));
            }
            let body = if b.extra_varint % 2 == 0 {
                serde_json::to_vec(&Value::Object(top)).unwrap()
            } else {
                serde_json::to_vec_pretty(&Value::Object(top)).unwrap()
            };
            let expected = b.present.then(|| (b.rejected, b.message.clone()));
            assert_eq!(parse_partial_success(Encoding::Json, &body), expected, "{:?}", String::from_utf8_lossy(&body));
        }
    }
});

//! Property tests for the clock-skew correction: for random client clock
//! skews of up to ±10 minutes and random network and server delays, a
//! corrected client span encloses its server child within the round-trip
//! bound, through the real header format and the real pipeline.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use tracelink::core::clock_skew::{ClockSample, ClockSkew, CLIENT_RESOLUTION_NANO, OFFSET_ATTRIBUTE};
use tracelink::core::export::parse_http_date;
use tracelink::core::id::IdGenerator;
use tracelink::core::pipeline::{Pipeline, PipelineConfig};
use tracelink::core::span::SpanKind;
use tracelink::core::tracer::Parent;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
const NOW: u64 = 1_733_011_200 * S;
/// The server's resolution in the header (three decimals of ms), twice: start and duration.
const HEADER_SLACK: u64 = 2_000;

/// One request on the wire: client send time, then delays.
#[derive(Clone, Copy, Debug)]
struct Trip {
    gap: u64,
    up: u64,
    work: u64,
    down: u64,
}

fn trip() -> impl Strategy<Value = Trip> {
    // Up to 5 s between requests, 0.05–400 ms each way, 0–300 ms at the server.
    (0..5 * S, 50_000..400 * MS, 0..300 * MS, 50_000..400 * MS).prop_map(|(gap, up, work, down)| Trip { gap, up, work, down })
}

/// What both sides saw of one request: client send/arrive times (client
/// clock), server receive/answer times (server clock), and the header.
struct Seen {
    sent: u64,
    arrived: u64,
    received: u64,
    answered: u64,
    server_timing: String,
}

fn see(sent: u64, t: Trip, offset: i64) -> Seen {
    let received = (sent + t.up).saturating_add_signed(offset);
    let answered = received + t.work;
    // What tracelink-backend sends: milliseconds with three decimals, truncated.
    let ms = |ns: u64| format!("{}.{:03}", ns / MS, ns / 1_000 % 1_000);
    let server_timing = format!(
        r#"traceparent;desc="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracelink-time;desc={};dur={}"#,
        ms(received),
        ms(t.work)
    );
    Seen { sent, arrived: sent + t.up + t.work + t.down, received, answered, server_timing }
}

fn json_u64(json: &str, key: &str) -> u64 {
    let at = json.find(&format!("\"{key}\":\"")).unwrap_or_else(|| panic!("{key} in {json}")) + key.len() + 4;
    json[at..].split('"').next().and_then(|v| v.parse().ok()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The estimate is within the narrowest honest interval of the truth, and
    /// every sampled request's corrected client span encloses its server span
    /// to the clocks' resolution, with one outlier anywhere among the samples.
    #[test]
    fn the_estimate_encloses_every_sampled_server_span(
        offset in -600 * S as i64..=600 * S as i64,
        trips in prop::collection::vec(trip(), 2..=7),
        outlier in prop::option::of((0usize..8, 5 * S as i64..=600 * S as i64, any::<bool>())),
    ) {
        let mut skew = ClockSkew::new();
        let mut honest = Vec::new();
        let mut sent = NOW;
        for (i, t) in trips.iter().enumerate() {
            sent += t.gap;
            if let Some((at, shift, ahead)) = outlier {
                if at == i {
                    // A server with a clock `shift` off (or a stale clock reading).
                    let bad = see(sent, *t, if ahead { offset + shift } else { offset - shift });
                    prop_assert!(skew.add_sample(ClockSample::from_headers(bad.sent, bad.arrived, &bad.server_timing, None).unwrap()));
                }
            }
            let seen = see(sent, *t, offset);
            let sample = ClockSample::from_headers(seen.sent, seen.arrived, &seen.server_timing, None).unwrap();
            prop_assert!(skew.add_sample(sample));
            honest.push((seen, sample.offset_bounds().unwrap()));
            sent = seen_arrived(&honest);
        }
        prop_assert!(skew.is_confident());
        let estimate = skew.offset_nano();
        let narrowest = honest.iter().map(|(_, (low, high))| high.abs_diff(*low)).min().unwrap();
        prop_assert!(estimate.abs_diff(offset) <= narrowest, "estimate {} truth {} bound {}", estimate, offset, narrowest);
        let slack = CLIENT_RESOLUTION_NANO + HEADER_SLACK;
        for (seen, _) in &honest {
            let (start, end) = (seen.sent.saturating_add_signed(estimate), seen.arrived.saturating_add_signed(estimate));
            prop_assert!(start <= seen.received + slack, "client start {} after server start {}", start, seen.received);
            prop_assert!(seen.answered <= end + slack, "server answer {} after client end {}", seen.answered, end);
        }
    }

    /// Through the pipeline, as the platform drives it: an operation span with a
    /// fetch inside; the fetch's response is a clock sample taken before the
    /// fetch span ends. From the second fetch on, every exported fetch span
    /// encloses its server span, every operation encloses its fetch, and the
    /// applied offset is recorded.
    #[test]
    fn exported_fetch_spans_enclose_their_server_spans(
        offset in -600 * S as i64..=600 * S as i64,
        trips in prop::collection::vec(trip(), 2..=12),
    ) {
        let mut p = Pipeline::new(PipelineConfig::new("skew", None, "rust"), IdGenerator::from_seed([7; 32]));
        let mut sent = NOW;
        let slack = CLIENT_RESOLUTION_NANO + HEADER_SLACK;
        for (i, t) in trips.iter().enumerate() {
            sent += t.gap;
            let seen = see(sent, *t, offset);
            let op = p.tracer.start_span("operation", SpanKind::Internal, Parent::Root, sent - MS);
            let fetch = p.tracer.start_span("GET", SpanKind::Client, Parent::Local(op), sent);
            prop_assert!(p.clock_sample_from_response(fetch, seen.arrived, &seen.server_timing, None));
            let fetch_json = p.end_span(fetch, seen.arrived, 0, true).unwrap();
            let op_json = p.end_span(op, seen.arrived + MS, 0, true).unwrap();
            let (start, end) = (json_u64(&fetch_json, "startTimeUnixNano"), json_u64(&fetch_json, "endTimeUnixNano"));
            sent = seen.arrived;
            prop_assert!(json_u64(&op_json, "startTimeUnixNano") <= start && end <= json_u64(&op_json, "endTimeUnixNano"));
            prop_assert_eq!(fetch_json.contains(OFFSET_ATTRIBUTE), op_json.contains(OFFSET_ATTRIBUTE));
            prop_assert_eq!(fetch_json.contains(OFFSET_ATTRIBUTE), start != seen.sent);
            if i == 0 {
                prop_assert_eq!(start, seen.sent, "one sample is not enough to move anything");
                continue;
            }
            prop_assert!(start <= seen.received + slack, "fetch {} starts {} after its server span {}", i, start, seen.received);
            prop_assert!(seen.answered <= end + slack, "fetch {} ends {} before its server answered {}", i, end, seen.answered);
        }
    }

    /// Nothing a server or proxy sends makes the estimator panic or move
    /// without two agreeing samples.
    #[test]
    fn arbitrary_headers_never_panic(
        timings in prop::collection::vec(("[ -~]{0,80}", any::<u64>(), any::<u64>()), 1..6),
    ) {
        let mut skew = ClockSkew::new();
        for (header, a, b) in &timings {
            let forms = [header.clone(), format!("tracelink-time;desc={header}"), format!("tracelink-time;desc={a};dur={b}")];
            for form in &forms {
                if let Some(sample) = ClockSample::from_headers(*a.min(b), *a.max(b), form, parse_http_date(header)) {
                    skew.add_sample(sample);
                }
            }
        }
        if !skew.is_confident() {
            prop_assert_eq!(skew.offset_nano(), 0);
        }
    }
}

fn seen_arrived(honest: &[(Seen, (i64, i64))]) -> u64 {
    honest.last().map_or(NOW, |(seen, _)| seen.arrived)
}

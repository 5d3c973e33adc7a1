use super::*;
use crate::core::export::parse_http_date;
use crate::core::span::{SpanContext, SpanKind, Value};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;
/// 2024-12-01T00:00:00Z in unix ns: a plausible "now".
const NOW: u64 = 1_733_011_200 * S;

/// A round trip sent at client time `sent` whose server clock runs `offset`
/// ahead: `up` ns to the server, `work` ns there, `down` ns back, the server
/// time given to the microsecond.
fn trip(sent: u64, offset: i64, up: u64, work: u64, down: u64) -> ClockSample {
    let server = (sent + up).saturating_add_signed(offset);
    ClockSample {
        request_unix_nano: sent,
        response_unix_nano: sent + up + work + down,
        server_unix_nano: server / 1_000 * 1_000,
        server_duration_nano: work / 1_000 * 1_000,
        precision_nano: 1_000,
    }
}

fn date_sample(sent: u64, rtt: u64, date_unix_s: u64) -> ClockSample {
    ClockSample {
        request_unix_nano: sent,
        response_unix_nano: sent + rtt,
        server_unix_nano: date_unix_s * S,
        server_duration_nano: 0,
        precision_nano: DATE_PRECISION_NANO,
    }
}

#[test]
fn the_tracelink_time_metric_is_read_among_others() {
    let header = r#"traceparent;desc="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracelink-time;desc=1733011200123.456;dur=12.5"#;
    let s = ClockSample::from_headers(1, 2, header, parse_http_date("Sun, 01 Dec 2024 00:00:00 GMT")).unwrap();
    assert_eq!(s.server_unix_nano, 1_733_011_200_123_456_000);
    assert_eq!(s.server_duration_nano, 12_500_000);
    assert_eq!(s.precision_nano, 100_000); // dur has one decimal: 0.1 ms
    assert_eq!((s.request_unix_nano, s.response_unix_nano), (1, 2));

    let s = ClockSample::from_headers(1, 2, r#"db;dur=3, TRACELINK-TIME ; dur = "0.250" ; desc="1733011200123""#, None).unwrap();
    assert_eq!((s.server_unix_nano, s.server_duration_nano, s.precision_nano), (1_733_011_200_123 * MS, 250_000, MS));
    let s = ClockSample::from_headers(1, 2, "tracelink-time;desc=1733011200123.4567891;flag", None).unwrap();
    assert_eq!((s.server_unix_nano, s.server_duration_nano, s.precision_nano), (1_733_011_200_123_456_789, 0, 1));
}

#[test]
fn the_date_header_is_the_fallback() {
    let s = ClockSample::from_headers(1, 2, "traceparent;desc=x", parse_http_date(" Sun, 01 Dec 2024 00:00:00 GMT ")).unwrap();
    assert_eq!((s.server_unix_nano, s.server_duration_nano, s.precision_nano), (NOW, 0, DATE_PRECISION_NANO));
    // A broken metric is no metric: the Date header is used.
    let s = ClockSample::from_headers(1, 2, "tracelink-time;desc=12a.5", parse_http_date("Sun, 01 Dec 2024 00:00:00 GMT")).unwrap();
    assert_eq!(s.precision_nano, DATE_PRECISION_NANO);
}

#[test]
fn garbage_gives_no_sample() {
    for (timing, date) in [
        ("", ""),
        ("tracelink-time", "yesterday"),
        ("tracelink-time;desc=", ""),
        ("tracelink-time;desc=.5", ""),
        ("tracelink-time;desc=5.", ""),
        ("tracelink-time;desc=-5", ""),
        ("tracelink-time;desc=0", ""),
        ("tracelink-time;desc=1e12", ""),
        ("tracelink-time;desc=99999999999999999999", ""),
        ("tracelink-time;desc=1733011200123;dur=x", ""),
        ("tracelink-time;dur=5", ""),
        ("\u{0}\u{ff};;,,==", "Sun, 01 Dec 2024 00:00:00 UTC"),
    ] {
        assert_eq!(ClockSample::from_headers(1, 2, timing, parse_http_date(date)), None, "{timing:?} {date:?}");
    }
}

#[test]
fn a_sample_bounds_the_offset_by_its_round_trip() {
    // 40 ms up, 20 ms at the server, 40 ms back; the server is 5 s ahead.
    let s = trip(NOW, 5_000 * MS as i64, 40 * MS, 20 * MS, 40 * MS);
    let (low, high) = s.offset_bounds().unwrap();
    let slack = CLIENT_RESOLUTION_NANO as i64;
    assert_eq!(low, 5_000 * MS as i64 - 40 * MS as i64 - slack);
    assert_eq!(high, 5_000 * MS as i64 + 40 * MS as i64 + 1_000 + slack);
}

#[test]
fn nonsense_samples_are_refused() {
    let good = trip(NOW, 0, MS, MS, MS);
    let cases = [
        ClockSample { response_unix_nano: good.request_unix_nano - 1, ..good }, // response before request
        ClockSample { server_duration_nano: 10 * MS, ..good },                 // server busier than the round trip
        ClockSample { server_unix_nano: 0, ..good },
        ClockSample { response_unix_nano: good.request_unix_nano + 121 * S, ..good }, // useless width
        ClockSample { server_unix_nano: u64::MAX, ..good },                    // offset beyond i64
    ];
    let mut skew = ClockSkew::new();
    for case in cases {
        assert_eq!(case.offset_bounds(), None, "{case:?}");
        assert!(!skew.add_sample(case));
    }
    assert_eq!(skew.stats(), ClockSkewStats { accepted: 0, rejected: 5, ignored: 0 });
}

#[test]
fn two_agreeing_samples_are_needed() {
    let offset = -90 * S as i64; // the client is 90 s ahead
    let mut skew = ClockSkew::new();
    assert!(skew.add_sample(trip(NOW, offset, 30 * MS, 5 * MS, 30 * MS)));
    assert_eq!((skew.offset_nano(), skew.is_confident()), (0, false));
    assert!(skew.add_sample(trip(NOW + S, offset, 10 * MS, 5 * MS, 50 * MS)));
    assert!(skew.is_confident());
    assert!(skew.offset_nano().abs_diff(offset) <= 30 * MS, "{}", skew.offset_nano());
}

#[test]
fn clocks_that_agree_within_the_measurement_are_left_alone() {
    let mut skew = ClockSkew::new();
    skew.add_sample(trip(NOW, 2 * MS as i64, 10 * MS, MS, 10 * MS));
    skew.add_sample(trip(NOW + S, 2 * MS as i64, 10 * MS, MS, 10 * MS));
    assert!(skew.is_confident());
    assert_eq!(skew.offset_nano(), 0); // [−8 ms, 12 ms] contains 0
}

#[test]
fn a_single_outlier_is_outvoted_first_or_later() {
    let offset = 300 * S as i64;
    let outlier = trip(NOW + 2 * S, offset + 40 * S as i64, 5 * MS, MS, 5 * MS);
    for outlier_first in [true, false] {
        let mut skew = ClockSkew::new();
        if outlier_first {
            skew.add_sample(outlier);
            skew.add_sample(trip(NOW, offset, 5 * MS, MS, 5 * MS));
            assert!(!skew.is_confident(), "two samples that disagree say nothing");
        } else {
            skew.add_sample(trip(NOW, offset, 5 * MS, MS, 5 * MS));
        }
        skew.add_sample(trip(NOW + S, offset, 7 * MS, MS, 3 * MS));
        if !outlier_first {
            skew.add_sample(outlier);
        }
        assert!(skew.is_confident());
        assert!(skew.offset_nano().abs_diff(offset) <= 6 * MS, "{}", skew.offset_nano());
    }
}

#[test]
fn date_samples_count_only_without_finer_ones() {
    let offset = 120 * S as i64;
    let server_s = |client: u64| (client.saturating_add_signed(offset)) / S;
    let mut skew = ClockSkew::new();
    skew.add_sample(date_sample(NOW, 50 * MS, server_s(NOW + 25 * MS)));
    skew.add_sample(date_sample(NOW + 3 * S, 50 * MS, server_s(NOW + 3 * S + 25 * MS)));
    assert!(skew.is_confident());
    // The midpoint of an interval one Date uncertainty (+ the round trip) wide.
    assert!(skew.offset_nano().abs_diff(offset) <= DATE_PRECISION_NANO / 2 + 50 * MS, "{}", skew.offset_nano());

    // Microsecond samples replace them; a proxy's cached Date (an hour old) is then ignored.
    skew.add_sample(trip(NOW + 10 * S, offset, 20 * MS, MS, 20 * MS));
    skew.add_sample(trip(NOW + 11 * S, offset, 20 * MS, MS, 20 * MS));
    assert!(!skew.add_sample(date_sample(NOW + 12 * S, 10 * MS, server_s(NOW) - 3600)));
    assert!(!skew.add_sample(date_sample(NOW + 13 * S, 10 * MS, server_s(NOW) - 3600)));
    assert!(skew.offset_nano().abs_diff(offset) <= 21 * MS, "{}", skew.offset_nano());
    assert_eq!(skew.stats(), ClockSkewStats { accepted: 4, rejected: 0, ignored: 2 });
}

#[test]
fn a_server_that_caches_its_date_does_not_move_a_clock_that_is_right() {
    // uvicorn: `Date` is refreshed every 10 ticks of a 100 ms loop (a bit over a
    // second apart), truncated to the second, so it is up to ~2 s behind when
    // sent. Measured against uvicorn with a 1 s Date precision, a browser whose
    // clock was right had its spans moved by -0.8 s.
    let refreshes: Vec<u64> = (0..12).map(|k| NOW + 900 * MS + k * 1_020 * MS).collect();
    let date_at = |t: u64| refreshes.iter().rev().find(|&&u| u <= t).copied().unwrap_or(NOW) / S;
    let mut skew = ClockSkew::new();
    for i in 0..30u64 {
        let sent = NOW + S + i * 370 * MS;
        let sample = date_sample(sent, 2 * MS, date_at(sent + MS));
        assert!(skew.add_sample(sample), "sample {i} kept: {sample:?}");
        assert_eq!(skew.offset_nano(), 0, "sample {i}: {sample:?}");
    }
    assert!(skew.is_confident());
}

#[test]
fn a_jump_of_the_client_clock_is_followed_once_the_new_offset_has_the_votes() {
    // Set back 90 s (the old samples still count: outvoted) or an hour (too far apart: forgotten).
    for (jump_s, needed) in [(90u64, CAPACITY / 2), (3600, 2)] {
        let mut skew = ClockSkew::new();
        for i in 0..CAPACITY as u64 {
            skew.add_sample(trip(NOW + i * S, 0, 5 * MS, MS, 5 * MS));
        }
        assert_eq!(skew.offset_nano(), 0);
        let jumped = (jump_s * S) as i64; // the server now looks that far ahead
        let mut samples = 0;
        while skew.offset_nano() == 0 {
            samples += 1;
            assert!(samples <= needed, "{jump_s} s: still not following after {samples} samples");
            skew.add_sample(trip(NOW + 10 * S - jump_s * S + samples as u64 * S, jumped, 5 * MS, MS, 5 * MS));
        }
        assert_eq!(samples, needed, "{jump_s} s");
        assert!(skew.offset_nano().abs_diff(jumped) <= 5 * MS);
    }
}

#[test]
fn old_samples_are_forgotten() {
    let mut skew = ClockSkew::new();
    skew.add_sample(trip(NOW, 60 * S as i64, 5 * MS, MS, 5 * MS));
    // Eleven minutes later: the first no longer counts, so this one alone is no estimate.
    skew.add_sample(trip(NOW + 11 * 60 * S, 60 * S as i64, 5 * MS, MS, 5 * MS));
    assert!(!skew.is_confident());
}

fn span_at(start: u64, end: u64) -> SpanData {
    let mut span = SpanData::new(SpanContext::default(), None, "s".into(), SpanKind::Client, start);
    span.add_event("e".into(), start + 5, Vec::new(), &SpanLimits::default());
    span.end(end);
    span
}

#[test]
fn an_offset_moves_every_time_and_is_recorded_in_ms() {
    let limits = SpanLimits::default();
    let mut span = span_at(NOW, NOW + 100);
    apply_offset(&mut span, -1_500_000, &limits);
    assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (NOW - 1_500_000, NOW + 100 - 1_500_000));
    assert_eq!(span.events[0].time_unix_nano, NOW + 5 - 1_500_000);
    assert_eq!(span.attributes, vec![KeyValue::new(OFFSET_ATTRIBUTE, -2i64)]);

    let mut span = span_at(NOW, NOW + 100);
    apply_offset(&mut span, 300_499_999, &limits);
    assert_eq!(span.attributes[0].value, Value::I64(300));
    assert_eq!(span.start_time_unix_nano, NOW + 300_499_999);

    let mut span = span_at(NOW, NOW + 100);
    apply_offset(&mut span, 0, &limits);
    assert_eq!((span.start_time_unix_nano, span.attributes.len()), (NOW, 0));

    let mut span = span_at(5, 10);
    apply_offset(&mut span, i64::MIN, &limits);
    assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (0, 0)); // saturates, never wraps
}

#[test]
fn each_trace_keeps_the_offset_of_its_first_exported_span() {
    let mut pins = TraceOffsets::default();
    let (a, b) = (TraceId([1; 16]), TraceId([2; 16]));
    assert_eq!(pins.offset_for(a, 0), 0);
    assert_eq!(pins.offset_for(a, 7), 0);
    assert_eq!(pins.offset_for(b, 7), 7);
    for i in 0..PINNED_TRACES as u8 {
        pins.offset_for(TraceId([i + 10; 16]), 9);
    }
    assert_eq!(pins.offset_for(a, 11), 11, "forgotten after {PINNED_TRACES} newer traces");
    assert_eq!(pins.offset_for(TraceId::INVALID, 3), 3);
    assert_eq!(pins.offset_for(TraceId::INVALID, 4), 4, "the invalid id is never pinned");
}

#[test]
fn the_pipeline_takes_samples_only_for_live_spans() {
    use crate::core::id::IdGenerator;
    use crate::core::pipeline::{Pipeline, PipelineConfig};
    use crate::core::tracer::Parent;

    let mut p = Pipeline::new(PipelineConfig::new("t", None, "rust"), IdGenerator::from_seed([3; 32]));
    let timing = "tracelink-time;desc=1733011260000.000;dur=1.000"; // the server is a minute ahead
    let h = p.tracer.start_span("GET", SpanKind::Client, Parent::Root, NOW);
    assert!(p.clock_sample_from_response(h, NOW + 10 * MS, timing, None));
    p.end_span(h, NOW + 10 * MS, 0, false);
    assert!(!p.clock_sample_from_response(h, NOW + 20 * MS, timing, None), "an ended span is no sample");
    assert!(!p.clock_sample_from_response(h, NOW + 20 * MS, "", parse_http_date("garbage")));
    assert_eq!(p.clock_offset_nano(), 0);
    let h = p.tracer.start_span("GET", SpanKind::Client, Parent::Root, NOW + S);
    assert!(p.clock_sample_from_response(h, NOW + S + 10 * MS, "tracelink-time;desc=1733011261000.000;dur=1.000", None));
    assert!(p.clock_offset_nano().abs_diff(60 * S as i64) <= 10 * MS);
}

//! What gzip buys on real OTLP bodies: bench-shaped spans (5 attributes,
//! 3 more attributes, 1 event; roots, as `make bench` makes them) framed by
//! the pipeline's encoders, compressed by core::gzip and, for comparison,
//! by zlib levels 6 (what `CompressionStream` and the bench's sink use) and 9.
//! Prints bytes per span (`cargo test --test gzip_ratio -- --nocapture`);
//! byte counts are deterministic, so they are also budgeted.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{Read, Write};

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use tracelink::core::body::BodyBuilder;
use tracelink::core::export::{RequestSizer, Transport};
use tracelink::core::gzip::gzip;
use tracelink::core::id::IdGenerator;
use tracelink::core::otlp::{encode_request, encode_span, Encoding};
use tracelink::core::span::{KeyValue, Resource, Scope, SpanKind};
use tracelink::core::tracer::{Parent, Tracer, TracerConfig};

/// `n` spans of the bench's shape, as records, with clock values like a
/// browser's (`performance.now()` at 5 µs resolution, ~9 µs per span).
fn bench_records(enc: Encoding, n: usize, seed: u8) -> Vec<Vec<u8>> {
    let mut tracer = Tracer::new(TracerConfig::default(), IdGenerator::from_seed([seed; 32]));
    let t0 = 1_764_000_000_123_455_000u64;
    (0..n)
        .map(|i| {
            let t = t0 + (i as u64 * 9_000) / 5_000 * 5_000;
            let h = tracer.start_span("bench.op", SpanKind::Internal, Parent::Root, t);
            tracer.set_attribute(h, KeyValue::new("app.name", "checkout"));
            tracer.set_attribute(h, KeyValue::new("app.items", i as i64));
            tracer.set_attribute(h, KeyValue::new("app.ratio", 0.25));
            tracer.set_attribute(h, KeyValue::new("app.cached", false));
            tracer.set_attribute(h, KeyValue::new("http.route", "/api/items/:id"));
            tracer.set_attribute(h, KeyValue::new("app.step", "validate"));
            tracer.set_attribute(h, KeyValue::new("app.count", i as i64));
            tracer.set_attribute(h, KeyValue::new("app.ok", true));
            tracer.add_event(h, "e", t + 5_000, vec![KeyValue::new("k", "v")]);
            let span = tracer.end_span(h, t + 5_000).expect("a live span");
            let mut record = Vec::new();
            encode_span(enc, &span, &mut record);
            record
        })
        .collect()
}

fn request(enc: Encoding, records: &[Vec<u8>]) -> Vec<u8> {
    let resource = Resource::new("bench-app", Some("1.0.0"), "webjs");
    let scope = Scope { name: "tracelink".into(), version: "0.1.0".into() };
    let mut body = Vec::new();
    encode_request(enc, &resource, &scope, records.iter().map(Vec::as_slice), &mut body);
    body
}

fn zlib(data: &[u8], level: u32) -> usize {
    let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap().len()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(body).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn bench_spans_compress_about_five_times() {
    println!("\n{:<9} {:>6} {:>10} {:>10} {:>10} {:>10}", "encoding", "spans", "plain B/sp", "ours B/sp", "zlib-6", "zlib-9");
    for enc in [Encoding::Protobuf, Encoding::Json] {
        for n in [1, 10, 100, 512, 1000] {
            let body = request(enc, &bench_records(enc, n, 7));
            let ours = gzip(&body);
            assert_eq!(gunzip(&ours), body);
            if let Some(dir) = std::env::var_os("TRACELINK_GZIP_DUMP") {
                std::fs::write(std::path::Path::new(&dir).join(format!("{enc:?}-{n}.gz")), &ours).unwrap();
            }
            let per = |bytes: usize| bytes as f64 / n as f64;
            println!(
                "{:<9} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
                format!("{enc:?}"),
                n,
                per(body.len()),
                per(ours.len()),
                per(zlib(&body, 6)),
                per(zlib(&body, 9)),
            );
        }
    }
}

/// How many bench spans one request of at most 60 000 bytes (the keepalive
/// budget) holds, measured the way the export policy measures.
#[test]
fn spans_per_keepalive_request() {
    let resource = Resource::new("bench-app", Some("1.0.0"), "webjs");
    let scope = Scope { name: "tracelink".into(), version: "0.1.0".into() };
    for enc in [Encoding::Protobuf, Encoding::Json] {
        let records = bench_records(enc, 3000, 7);
        let fit = |compress: bool| {
            let mut sizer = BodyBuilder::new(enc, compress);
            sizer.set_envelope(&resource, &scope);
            sizer.begin(Transport::FetchKeepalive);
            records.iter().take_while(|r| sizer.add(r) <= 60_000).count()
        };
        let (plain, gzipped) = (fit(false), fit(true));
        println!("{enc:?}: {plain} spans in 60 000 bytes uncompressed, {gzipped} gzip'd ({:.1}x)", gzipped as f64 / plain as f64);
        assert!(gzipped >= 4 * plain, "{enc:?}: {gzipped} vs {plain}");
    }
}

/// A fixed workload for profiling variants (`valgrind --tool=callgrind <test
/// binary> timing --ignored` counts instructions per input byte).
#[test]
#[ignore]
fn timing() {
    let body = request(Encoding::Protobuf, &bench_records(Encoding::Protobuf, 1000, 7));
    for _ in 0..2 {
        std::hint::black_box(gzip(std::hint::black_box(&body)));
    }
}

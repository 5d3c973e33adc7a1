//! Randomized simulation of the export policy against a flaky collector and a
//! page that hides, shows and shuts down, with simulated time.
//!
//! Checked after every step: every pushed span is exactly one of queued, in
//! flight, exported, dropped or persisted (handed to the store: in half the
//! scenarios the driver can store, and the network goes offline and back);
//! nothing is sent while offline with a store; request sizes are exact and within their
//! transport's limit; in-flight keepalive bytes stay within the budget; no
//! span is in two requests at once or sent again after it was resolved; the
//! policy never asks to be woken in the past. Then the collector heals and
//! everything not dropped must be exported.
//!
//! Half the scenarios size requests the way the pipeline does with
//! compression on ([`BodyBuilder`]: fetch bodies gzip'd when smaller, beacons
//! never): each body is built, its length must be the size the policy
//! accounted, and it must decode (through flate2) to exactly the
//! uncompressed request. A last test queues 1000 bench-shaped spans and hides
//! the page: gzip'd, all of them fit the keepalive budget.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashSet;
use std::io::Read;

use proptest::prelude::*;
use tracelink::core::body::BodyBuilder;
use tracelink::core::export::{
    parse_retry_after, ExportConfig, ExportPolicy, Outcome, RequestOverhead, Transmit, Transport,
};
use tracelink::core::id::IdGenerator;
use tracelink::core::otlp::{encode_request, request_overhead, Encoding};
use tracelink::core::span::{KeyValue, Resource, Scope};

const SCENARIOS: u64 = 1500;
const STEPS: usize = 250;

struct Sim {
    policy: ExportPolicy,
    config: ExportConfig,
    rng: IdGenerator,
    now: u64,
    next_span: u32,
    hidden: bool,
    /// A beacon was refused since the page was last hidden (the policy then
    /// sends what keepalive cannot take by plain fetch).
    beacons_refused_seen: bool,
    /// Requests the driver is waiting on, with the span ids they carry.
    in_flight: Vec<(Transmit, Vec<u32>)>,
    /// Span ids in some in-flight request.
    sending: HashSet<u32>,
    /// Span ids whose fate is sealed (exported, rejected or failed).
    resolved: HashSet<u32>,
    /// Spans in requests that succeeded (exported + rejected).
    succeeded_spans: u64,
    keepalive_bytes: usize,
    online: bool,
    persist: bool,
    /// Spans whose store request succeeded.
    stored_spans: u64,
    /// Compressed scenarios: the pipeline's sizer, and the envelope it frames.
    compressed: Option<Compressed>,
    /// Requests sent gzip'd, and sent plain (compressed scenarios).
    gzip_requests: u64,
    plain_requests: u64,
}

struct Compressed {
    bodies: BodyBuilder,
    encoding: Encoding,
    resource: Resource,
    scope: Scope,
}

impl Compressed {
    fn new(encoding: Encoding, resource: Resource) -> Compressed {
        let scope = Scope::default();
        let mut bodies = BodyBuilder::new(encoding, true);
        bodies.set_envelope(&resource, &scope);
        Compressed { bodies, encoding, resource, scope }
    }

    /// The policy's overhead for this envelope, as the pipeline sets it.
    fn overhead(&self) -> RequestOverhead {
        let one = request_overhead(self.encoding, &self.resource, &self.scope, 1);
        let two = request_overhead(self.encoding, &self.resource, &self.scope, 2);
        RequestOverhead { fixed: one - (two - one), per_record: two - one }
    }

    /// The uncompressed request for `records`.
    fn plain<R: AsRef<[u8]>>(&self, records: &[R]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_request(self.encoding, &self.resource, &self.scope, records.iter().map(AsRef::as_ref), &mut out);
        out
    }
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out).expect("a valid gzip body");
    out
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = IdGenerator::from_seed(seed_bytes(seed));
        let mut pick = |lo: u64, hi: u64| lo + rng.next_u64() % (hi - lo + 1);
        let config = ExportConfig {
            max_queue_spans: pick(3, 60) as usize,
            max_queue_bytes: pick(200, 5000) as usize,
            max_batch_spans: pick(1, 10) as usize,
            max_batch_bytes: pick(80, 1000) as usize,
            schedule_delay_ms: pick(0, 2000),
            max_attempts: pick(1, 5) as u32,
            keepalive_budget_bytes: pick(40, 600) as usize,
            max_concurrent_requests: pick(1, 3) as usize,
            shutdown_timeout_ms: pick(0, 10_000),
            overhead: RequestOverhead {
                fixed: pick(0, 20) as usize,
                per_record: pick(0, 4) as usize,
            },
            persist: pick(0, 1) == 1,
            ..ExportConfig::default()
        };
        let mut config = ExportConfig {
            jitter_seed: seed,
            ..config
        };
        // Odd seeds: compressed, with a small envelope so that tiny budgets
        // still take some requests.
        let compressed = (seed % 2 == 1).then(|| {
            let encoding = if seed % 4 == 1 { Encoding::Protobuf } else { Encoding::Json };
            let c = Compressed::new(encoding, Resource::default());
            config.overhead = c.overhead();
            c
        });
        let policy = ExportPolicy::new(config.clone());
        let persist = config.persist;
        Sim {
            policy,
            config,
            rng: IdGenerator::from_seed(seed_bytes(!seed)),
            now: 0,
            next_span: 0,
            hidden: false,
            beacons_refused_seen: false,
            in_flight: Vec::new(),
            sending: HashSet::new(),
            resolved: HashSet::new(),
            succeeded_spans: 0,
            keepalive_bytes: 0,
            online: true,
            persist,
            stored_spans: 0,
            compressed,
            gzip_requests: 0,
            plain_requests: 0,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n
    }

    fn push(&mut self) {
        let len = match self.below(10) {
            0 => 4 + self.below(1200) as usize, // sometimes too large for anything
            _ => 4 + self.below(120) as usize,
        };
        let mut record = self.next_span.to_le_bytes().to_vec();
        if self.below(3) == 0 {
            // incompressible
            while record.len() < len {
                record.extend_from_slice(&self.rng.next_u64().to_le_bytes());
            }
            record.truncate(len);
        } else {
            record.resize(len, 0xab);
        }
        self.next_span += 1;
        // Like the pipeline: half the time ask first whether the span would be
        // dropped anyway (then it is never encoded, and counted the same).
        if self.below(2) == 0 && self.policy.drop_if_full() {
            return;
        }
        let before = self.policy.stats().queued;
        self.policy.push(record, self.now);
        if self.policy.stats().queued > before {
            // Accepted only with room: the bound covers what waits (a failed
            // request's records may go back past it; they were accepted).
            assert!(before < self.config.max_queue_spans as u64, "accepted a span into a full queue");
        }
    }

    /// Takes every due transmit, checking it; beacons are answered at once,
    /// as `sendBeacon` does.
    fn poll(&mut self, beacon_accepts: bool) {
        loop {
            let t = match &mut self.compressed {
                Some(c) => {
                    c.bodies.forget();
                    self.policy.poll_transmit_sized(self.now, &mut c.bodies)
                }
                None => self.policy.poll_transmit(self.now),
            };
            let Some(t) = t else { break };
            let records = self.policy.records(t.id);
            assert_eq!(records.len(), t.spans);
            assert!(t.spans >= 1 && t.spans <= self.config.max_batch_spans);
            let sum: usize = records.iter().map(|r| r.as_ref().len()).sum();
            // Uncompressed, the plain request's size; with the policy's
            // (protobuf: upper-bound) overhead when not compressed.
            let mut plain_bytes = self.config.overhead.request_bytes(t.spans, sum);
            match &mut self.compressed {
                None => assert_eq!(t.bytes, plain_bytes, "exact size"),
                Some(c) => {
                    let (resource, scope) = (c.resource.clone(), c.scope.clone());
                    let (body, gzip) = c.bodies.build(&t, records, &resource, &scope);
                    assert_eq!(body.len(), t.bytes, "the policy accounts the bytes sent");
                    let plain = c.plain(records);
                    plain_bytes = plain.len();
                    if gzip {
                        assert_ne!(t.transport, Transport::Beacon, "beacons cannot say Content-Encoding");
                        assert!(body.len() < plain.len(), "gzip'd only when smaller");
                        assert_eq!(gunzip(&body), plain);
                        self.gzip_requests += 1;
                    } else {
                        assert_eq!(body, plain);
                        self.plain_requests += 1;
                    }
                }
            }
            let ids: Vec<u32> = records
                .iter()
                .map(|r| r.as_ref())
                .map(|r| u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
                .collect();
            for id in &ids {
                assert!(
                    !self.resolved.contains(id),
                    "span {id} sent after it was resolved"
                );
                assert!(
                    self.sending.insert(*id),
                    "span {id} in two requests at once"
                );
            }
            let budget = self.config.keepalive_budget_bytes;
            if self.persist && !self.online {
                assert_eq!(t.transport, Transport::Persist, "nothing sent while offline with a store");
            }
            let sending = self.in_flight.iter().filter(|(t, _)| t.transport != Transport::Persist).count();
            match t.transport {
                Transport::Persist => {
                    assert!(t.bytes <= self.config.max_batch_bytes);
                }
                Transport::Fetch => {
                    assert!(t.bytes <= self.config.max_batch_bytes);
                    if !self.hidden {
                        assert!(sending < self.config.max_concurrent_requests);
                    } else {
                        assert!(
                            (t.spans == 1 && plain_bytes > budget) || self.beacons_refused_seen,
                            "plain fetch when hidden: too big for keepalive or a beacon, or after a refused beacon"
                        );
                    }
                }
                Transport::FetchKeepalive => {
                    if !self.hidden {
                        assert!(sending < self.config.max_concurrent_requests);
                    }
                    self.keepalive_bytes += t.bytes;
                    assert!(self.keepalive_bytes <= budget, "keepalive budget exceeded");
                }
                Transport::Beacon => {
                    assert!(self.hidden, "beacons only when hidden");
                    assert!(t.bytes <= budget);
                }
            }
            self.in_flight.push((t, ids));
            if t.transport == Transport::Beacon {
                let accepted = beacon_accepts || self.below(2) == 0;
                let i = self.in_flight.len() - 1;
                self.beacons_refused_seen |= !accepted;
                self.complete(i, Outcome::BeaconAccepted(accepted));
            }
        }
        let s = self.policy.stats();
        if let Some(t) = self.policy.poll_timeout() {
            assert!(
                t > self.now,
                "asks to be woken in the past: {t} <= {}",
                self.now
            );
        } else if s.queued > 0 {
            assert!(s.in_flight_requests > 0, "stuck: {s:?}");
        }
    }

    fn complete(&mut self, i: usize, outcome: Outcome) {
        let (t, ids) = self.in_flight.remove(i);
        for id in &ids {
            self.sending.remove(id);
        }
        if t.transport == Transport::FetchKeepalive {
            self.keepalive_bytes -= t.bytes;
        }
        let sealed = match &outcome {
            // A store request, kept or refused, is never sent again.
            _ if t.transport == Transport::Persist => {
                if outcome == Outcome::Stored(true) {
                    self.stored_spans += ids.len() as u64;
                }
                true
            }
            Outcome::Success { .. } | Outcome::BeaconAccepted(true) => {
                self.succeeded_spans += ids.len() as u64;
                true
            }
            Outcome::Http { status, .. } => {
                if (200..300).contains(status) {
                    self.succeeded_spans += ids.len() as u64;
                }
                ![429, 502, 503, 504].contains(status)
            }
            _ => false,
        };
        if sealed {
            self.resolved.extend(ids);
        }
        self.policy.on_outcome(t.id, outcome, self.now);
    }

    fn random_outcome(&mut self, transport: Transport) -> Outcome {
        if transport == Transport::Persist {
            return Outcome::Stored(self.below(4) != 0);
        }
        match self.below(8) {
            0 | 1 => Outcome::Success { rejected_spans: 0 },
            2 => Outcome::Success {
                rejected_spans: self.below(4),
            },
            3 => Outcome::NetworkError,
            4 => Outcome::Timeout,
            _ => {
                let status = [200, 400, 413, 429, 500, 502, 503, 504][self.below(8) as usize];
                let retry_after = match self.below(6) {
                    0 => Some("0".to_string()),
                    1 => Some((1 + self.below(5)).to_string()),
                    2 => Some("Sun, 06 Nov 1994 08:49:40 GMT".to_string()),
                    3 => Some("later".to_string()),
                    _ => None,
                };
                // As the driver does: parse with the wall clock at arrival.
                let retry_after_ms =
                    retry_after.and_then(|v| parse_retry_after(&v, 784_111_777_000));
                Outcome::Http {
                    status,
                    retry_after_ms,
                }
            }
        }
    }

    fn check(&self) {
        let s = self.policy.stats();
        assert_eq!(s.pushed, u64::from(self.next_span));
        assert_eq!(
            s.pushed,
            s.queued + s.in_flight + s.exported + s.dropped_total() + s.persisted,
            "{s:?}"
        );
        assert_eq!(s.persisted, self.stored_spans);
        assert_eq!(s.in_flight_requests as usize, self.in_flight.len());
        assert_eq!(s.in_flight as usize, self.sending.len());
        assert_eq!(s.in_flight_keepalive_bytes as usize, self.keepalive_bytes);
        assert!(s.in_flight_keepalive_bytes as usize <= self.config.keepalive_budget_bytes);
        assert!(s.in_flight <= s.in_flight_requests * self.config.max_batch_spans as u64, "{s:?}");
        assert_eq!(s.exported + s.dropped_rejected, self.succeeded_spans);
    }

    fn step(&mut self) {
        match self.below(100) {
            0..=39 => self.push(),
            40..=64 if !self.in_flight.is_empty() => {
                let i = self.below(self.in_flight.len() as u64) as usize;
                let outcome = self.random_outcome(self.in_flight[i].0.transport);
                self.complete(i, outcome);
            }
            65..=79 => {
                self.now += match self.policy.poll_timeout() {
                    Some(t) if self.below(2) == 0 => t - self.now,
                    _ => self.below(3000),
                };
                self.policy.handle_timeout(self.now);
            }
            80..=84 => self.policy.flush(self.now),
            85..=90 => {
                if !self.hidden {
                    self.beacons_refused_seen = false;
                }
                self.hidden = true;
                self.policy.page_hidden(self.now);
            }
            92 | 93 if self.persist || self.below(4) == 0 => {
                self.online = !self.online;
                self.policy.set_online(self.online, self.now);
            }
            91..=97 => {
                self.hidden = false;
                self.policy.page_visible(self.now);
            }
            98 if self.below(4) == 0 => self.policy.shutdown(self.now),
            99 if self.below(4) == 0 => {
                // The resource changed: new framing overhead.
                let (mut fixed, mut per_record) = (self.below(40) as usize, self.below(5) as usize);
                if let Some(c) = &mut self.compressed {
                    c.resource = Resource { attributes: vec![KeyValue::new("k", "v".repeat(fixed))] };
                    c.bodies.set_envelope(&c.resource, &c.scope);
                    RequestOverhead { fixed, per_record } = c.overhead();
                }
                self.config.overhead = RequestOverhead { fixed, per_record };
                self.policy.set_request_overhead(fixed, per_record);
            }
            _ => {}
        }
        self.check();
        self.poll(false);
        self.check();
    }

    /// The collector heals and the page stays visible: everything left must
    /// end exported (or dropped by shutdown's deadline) in bounded time.
    fn heal(&mut self) {
        self.hidden = false;
        self.policy.page_visible(self.now);
        self.online = true;
        self.policy.set_online(true, self.now);
        for _ in 0..10_000 {
            self.poll(true);
            self.check();
            if let Some((t, _)) = self.in_flight.first() {
                let outcome = if t.transport == Transport::Persist {
                    Outcome::Stored(true)
                } else {
                    Outcome::Success { rejected_spans: 0 }
                };
                self.complete(0, outcome);
                continue;
            }
            match self.policy.poll_timeout() {
                Some(t) => {
                    self.now = t;
                    self.policy.handle_timeout(t);
                }
                None => break,
            }
        }
        let s = self.policy.stats();
        assert!(self.policy.is_idle(), "not idle after healing: {s:?}");
        assert_eq!(s.pushed, s.exported + s.dropped_total() + s.persisted, "{s:?}");
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    bytes
}

#[test]
fn random_scenarios_conserve_spans_and_respect_limits() {
    let mut totals = [0u64; 6];
    let mut bodies = [0u64; 2];
    for seed in 0..SCENARIOS {
        let mut sim = Sim::new(seed);
        for _ in 0..STEPS {
            sim.step();
        }
        sim.heal();
        let s = sim.policy.stats();
        totals[0] += s.exported;
        totals[1] += s.retried;
        totals[2] += s.beacons_refused;
        totals[3] += s.dropped_total();
        totals[4] += s.persisted;
        totals[5] += s.dropped_persist_failed;
        bodies[0] += sim.gzip_requests;
        bodies[1] += sim.plain_requests;
    }
    assert!(bodies.iter().all(|&n| n > 100), "compressed scenarios: gzip'd and plain requests {bodies:?}");
    // The scenarios really exercise the paths they claim to.
    assert!(
        totals.iter().all(|&t| t > 100),
        "exported, retried, beacons refused, dropped, persisted, store refused: {totals:?}"
    );
}

proptest! {
    #[test]
    fn parse_retry_after_never_panics(value in ".{0,40}", now in any::<u64>()) {
        let _ = parse_retry_after(&value, now);
    }

    #[test]
    fn parse_retry_after_reads_delta_seconds(secs in 0u64..10_000_000, now in any::<u64>()) {
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(secs * 1000));
    }

    #[test]
    fn parse_retry_after_handles_date_shaped_noise(
        day in "[A-Za-z]{3}", d in "[0-9]{2}", mon in "[A-Za-z]{3}", y in "[0-9]{4}",
        t in "[0-9]{2}:[0-9]{2}:[0-9]{2}", now in any::<u64>(),
    ) {
        let _ = parse_retry_after(&format!("{day}, {d} {mon} {y} {t} GMT"), now);
    }
}

/// The bench's page-hide scenario, through the whole pipeline: 1000 spans
/// of the bench's shape end in a burst on a page whose uplink is too slow
/// to finish anything, then the page hides. Everything must leave by
/// keepalive (the only transport that survives the unload) within the
/// 60 000-byte budget. Uncompressed, about a fifth fits; gzip'd, all of it.
/// (`-- --nocapture` prints the figures.)
#[test]
fn page_hide_fits_five_times_more_spans_gzipped() {
    use tracelink::core::pipeline::{Pipeline, PipelineConfig};
    use tracelink::core::span::SpanKind;
    use tracelink::core::tracer::Parent;

    let run = |encoding: Encoding, compress: bool| {
        let mut config = PipelineConfig::new("bench-app", Some("1.0.0"), "webjs");
        config.encoding = encoding;
        config.compress = compress;
        let mut p = Pipeline::new(config, IdGenerator::from_seed([3; 32]));
        let queued = |p: &Pipeline| p.stats_fields().iter().find(|(k, _)| *k == "queued").unwrap().1;
        let (mut keepalive_spans, mut keepalive_bytes, mut other_spans) = (0, 0, 0);
        let mut take = |p: &mut Pipeline| {
            loop {
                let before = queued(p);
                let Some(req) = p.poll_request(0) else { break };
                let spans = before - queued(p);
                assert_eq!(req.gzip, req.body.starts_with(&[0x1f, 0x8b]));
                if req.transport == Transport::FetchKeepalive {
                    keepalive_spans += spans;
                    keepalive_bytes += req.body.len();
                } else {
                    other_spans += spans; // a beacon or plain fetch: lost at unload
                }
            }
        };
        let t0 = 1_764_000_000_123_455_000u64;
        for i in 0..1000u64 {
            let t = t0 + i * 9_000 / 5_000 * 5_000;
            let h = p.tracer.start_span("bench.op", SpanKind::Internal, Parent::Root, t);
            for kv in [
                KeyValue::new("app.name", "checkout"),
                KeyValue::new("app.items", i as i64),
                KeyValue::new("app.ratio", 0.25),
                KeyValue::new("app.cached", false),
                KeyValue::new("http.route", "/api/items/:id"),
                KeyValue::new("app.step", "validate"),
                KeyValue::new("app.count", i as i64),
                KeyValue::new("app.ok", true),
            ] {
                p.tracer.set_attribute(h, kv);
            }
            p.tracer.add_event(h, "e", t + 5_000, vec![KeyValue::new("k", "v")]);
            p.end_span(h, t + 5_000, 0, false);
            take(&mut p); // as the agent does after every end
        }
        p.page_hidden(0);
        take(&mut p);
        assert!(keepalive_bytes <= 60_000, "{keepalive_bytes}");
        println!(
            "{encoding:?}, gzip {compress}: {keepalive_spans} of 1000 spans by keepalive ({keepalive_bytes} bytes, {:.1} B/span), {other_spans} by beacon or plain fetch",
            keepalive_bytes as f64 / keepalive_spans as f64
        );
        keepalive_spans
    };
    // Protobuf, the default: 228 spans fit uncompressed, all 1000 gzip'd.
    let plain = run(Encoding::Protobuf, false);
    assert!(plain < 250, "protobuf uncompressed: {plain} spans fit");
    assert_eq!(run(Encoding::Protobuf, true), 1000, "protobuf gzip'd: every span fits");
    // JSON: 81 uncompressed; gzip'd (fixed Huffman codes spend 8 bits on
    // each hex digit of the ids) about 700.
    let plain = run(Encoding::Json, false);
    let gzipped = run(Encoding::Json, true);
    assert!(gzipped >= 5 * plain, "JSON: {gzipped} gzip'd vs {plain} uncompressed");
}

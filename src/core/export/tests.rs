use super::*;

/// 10 bytes per request, 2 per record: a record of 20 bytes costs 22.
const OVERHEAD: RequestOverhead = RequestOverhead {
    fixed: 10,
    per_record: 2,
};

fn config() -> ExportConfig {
    ExportConfig {
        overhead: OVERHEAD,
        backoff_jitter: 0.0,
        ..ExportConfig::default()
    }
}

fn policy(config: ExportConfig) -> ExportPolicy {
    ExportPolicy::new(ExportConfig {
        jitter_seed: 7,
        ..config
    })
}

fn push_n(p: &mut ExportPolicy, now: u64, n: usize, len: usize) {
    for i in 0..n {
        p.push(vec![i as u8; len], now);
    }
}

fn transmit(p: &mut ExportPolicy, now: u64) -> Transmit {
    let t = p.poll_transmit(now).expect("a transmit is due");
    let records = p.records(t.id);
    assert_eq!(records.len(), t.spans);
    let sum: usize = records.iter().map(|r| r.as_ref().len()).sum();
    assert_eq!(t.bytes, p.config().overhead.request_bytes(t.spans, sum));
    t
}

fn ok() -> Outcome {
    Outcome::Success { rejected_spans: 0 }
}

/// A non-2xx response, with its `Retry-After` value parsed as the driver does.
fn http(status: u16, retry_after: Option<&str>) -> Outcome {
    Outcome::Http {
        status,
        retry_after_ms: retry_after.and_then(|v| parse_retry_after(v, 0)),
    }
}

fn assert_conserved(p: &ExportPolicy) {
    let s = p.stats();
    assert_eq!(
        s.pushed,
        s.queued + s.in_flight + s.exported + s.dropped_total() + s.persisted,
        "{s:?}"
    );
}

#[test]
fn full_batch_by_count_leaves_at_once() {
    let mut p = policy(ExportConfig {
        max_batch_spans: 3,
        ..config()
    });
    push_n(&mut p, 0, 2, 5);
    assert_eq!(p.poll_transmit(0), None);
    p.push(vec![9; 5], 0);
    let t = transmit(&mut p, 0);
    assert_eq!(
        (t.transport, t.spans, t.bytes),
        (Transport::FetchKeepalive, 3, 10 + 3 * 7),
        "small batches go keepalive, so they survive an unload"
    );
    assert_eq!(p.records(t.id), &[vec![0; 5], vec![1; 5], vec![9; 5]]);
    assert_eq!(p.poll_transmit(0), None);
    assert_eq!(p.poll_timeout(), None);
    assert_conserved(&p);
}

#[test]
fn full_batch_by_bytes_leaves_when_next_record_would_not_fit() {
    let mut p = policy(ExportConfig {
        max_batch_bytes: 10 + 3 * 22,
        ..config()
    });
    push_n(&mut p, 0, 3, 20);
    assert_eq!(
        p.poll_transmit(0),
        None,
        "exactly at the limit, not over it"
    );
    p.push(vec![3; 20], 0);
    let t = transmit(&mut p, 0);
    assert_eq!((t.spans, t.bytes), (3, 76));
    assert_eq!(
        p.poll_transmit(0),
        None,
        "the remainder waits for the schedule"
    );
    assert_eq!(p.poll_timeout(), Some(1000));
    assert_eq!(transmit(&mut p, 1000).spans, 1);
    assert_conserved(&p);
}

#[test]
fn schedule_delay_counts_from_first_queued_span() {
    let mut p = policy(config());
    assert_eq!(p.poll_timeout(), None);
    p.push(vec![1], 100);
    assert_eq!(p.poll_timeout(), Some(1100));
    p.push(vec![2], 600);
    assert_eq!(p.poll_timeout(), Some(1100));
    assert_eq!(p.poll_transmit(1099), None);
    p.handle_timeout(1100);
    assert_eq!(p.poll_timeout(), None, "due now: poll_transmit, no timer");
    let t = transmit(&mut p, 1100);
    assert_eq!(t.spans, 2);
    assert_eq!(p.poll_timeout(), None);
    p.push(vec![3], 1200);
    assert_eq!(p.poll_timeout(), Some(2200));
}

#[test]
fn flush_sends_partial_batches_within_concurrency_limit() {
    let mut p = policy(ExportConfig {
        max_batch_spans: 3,
        max_concurrent_requests: 2,
        ..config()
    });
    // Pushed without polling in between: 7 queued.
    push_n(&mut p, 0, 7, 4);
    p.flush(5);
    let a = transmit(&mut p, 5);
    let b = transmit(&mut p, 5);
    assert_eq!((a.spans, b.spans), (3, 3));
    assert_eq!(p.poll_transmit(5), None, "two in flight");
    assert_eq!(p.poll_timeout(), None, "waits for an outcome, not a time");
    p.on_outcome(a.id, ok(), 6);
    let c = transmit(&mut p, 6);
    assert_eq!(c.spans, 1);
    p.on_outcome(b.id, ok(), 7);
    p.on_outcome(c.id, ok(), 7);
    assert!(p.is_idle());
    assert_eq!(p.stats().exported, 7);
    assert_conserved(&p);
}

#[test]
fn retry_after_seconds_pauses_all_sending() {
    let mut p = policy(config());
    push_n(&mut p, 0, 2, 4);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.on_outcome(t.id, http(503, Some("7")), 100);
    assert_eq!(p.poll_timeout(), Some(7100));
    p.push(vec![9; 4], 200);
    p.flush(300);
    assert_eq!(p.poll_transmit(7099), None, "fresh spans wait too");
    let r = transmit(&mut p, 7100);
    assert_eq!(p.records(r.id), &[vec![0; 4], vec![1; 4], vec![9; 4]]);
    let s = p.stats();
    assert_eq!((s.retried, s.failed_requests, s.requests), (1, 1, 2));
    p.on_outcome(r.id, ok(), 7200);
    assert_eq!(p.stats().exported, 3);
    assert_conserved(&p);
}

#[test]
fn retry_after_http_date_uses_wall_clock_of_response() {
    let mut p = policy(config());
    p.push(vec![1], 0);
    p.flush(0);
    let t = transmit(&mut p, 0);
    let received_unix_ms = 784_111_777_000 - 3000;
    let retry_after_ms = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", received_unix_ms);
    let outcome = Outcome::Http {
        status: 429,
        retry_after_ms,
    };
    p.on_outcome(t.id, outcome, 500);
    assert_eq!(p.poll_timeout(), Some(3500));
    assert_eq!(p.poll_transmit(3499), None);
    assert_eq!(transmit(&mut p, 3500).spans, 1);
}

#[test]
fn long_retry_after_is_capped_and_bad_one_falls_back_to_backoff() {
    let mut p = policy(config());
    p.push(vec![1], 0);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.on_outcome(t.id, http(503, Some("86400")), 0);
    assert_eq!(p.poll_timeout(), Some(300_000));
    let t = transmit(&mut p, 300_000);
    p.on_outcome(t.id, http(429, Some("soon")), 300_000);
    // Second failure of this record: backoff 1000 * 1.5.
    assert_eq!(p.poll_timeout(), Some(301_500));
}

#[test]
fn backoff_grows_by_multiplier_and_caps() {
    let mut p = policy(ExportConfig {
        max_attempts: 8,
        ..config()
    });
    p.push(vec![1], 0);
    p.flush(0);
    let mut now = 0;
    let mut gaps = Vec::new();
    for i in 0..7 {
        let t = transmit(&mut p, now);
        let outcome = if i % 2 == 0 {
            Outcome::NetworkError
        } else {
            http(502, None)
        };
        p.on_outcome(t.id, outcome, now);
        let due = p.poll_timeout().unwrap();
        assert_eq!(p.poll_transmit(due - 1), None);
        gaps.push(due - now);
        now = due;
    }
    assert_eq!(gaps, [1000, 1500, 2250, 3375, 5000, 5000, 5000]);
}

#[test]
fn backoff_jitter_stays_within_bounds() {
    let (mut lowest, mut highest) = (u64::MAX, 0);
    for seed in 0..300 {
        let mut p = ExportPolicy::new(ExportConfig {
            overhead: OVERHEAD,
            jitter_seed: seed,
            ..ExportConfig::default()
        });
        p.push(vec![1], 0);
        p.flush(0);
        let mut now = 0;
        for attempt in 1..=4 {
            let t = transmit(&mut p, now);
            p.on_outcome(t.id, Outcome::Timeout, now);
            let gap = p.poll_timeout().unwrap() - now;
            let base = [1000.0, 1500.0, 2250.0, 3375.0][attempt - 1];
            assert!(
                gap as f64 >= base * 0.8 - 1.0 && gap as f64 <= base * 1.2,
                "{gap} vs {base}"
            );
            assert!(gap <= 5000);
            if attempt == 1 {
                lowest = lowest.min(gap);
                highest = highest.max(gap);
            }
            now += gap;
        }
    }
    assert!(
        lowest < 850 && highest > 1150,
        "jitter spreads: {lowest}..{highest}"
    );
}

#[test]
fn backoff_is_deterministic_for_a_seed() {
    let run = |seed| {
        let mut p = ExportPolicy::new(ExportConfig {
            jitter_seed: seed,
            ..ExportConfig::default()
        });
        p.push(vec![1], 0);
        p.flush(0);
        let t = p.poll_transmit(0).unwrap();
        p.on_outcome(t.id, Outcome::NetworkError, 0);
        p.poll_timeout()
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12));
}

#[test]
fn non_retryable_statuses_drop_as_failed() {
    for status in [400, 401, 403, 404, 408, 413, 500, 501, 505, 301, 0] {
        let mut p = policy(config());
        push_n(&mut p, 0, 3, 2);
        p.flush(0);
        let t = transmit(&mut p, 0);
        p.on_outcome(t.id, http(status, Some("1")), 10);
        let s = p.stats();
        assert_eq!(
            (s.dropped_failed, s.failed_requests, s.retried),
            (3, 1, 0),
            "{status}"
        );
        assert!(p.is_idle());
        assert_eq!(p.poll_timeout(), None);
        assert_eq!(p.poll_transmit(10_000), None);
        assert_conserved(&p);
    }
}

#[test]
fn classify_statuses() {
    assert_eq!(classify(200), StatusClass::Success);
    assert_eq!(classify(204), StatusClass::Success);
    for s in [429, 502, 503, 504] {
        assert_eq!(classify(s), StatusClass::Retryable);
    }
    for s in [0, 199, 300, 400, 408, 500, 501, 505] {
        assert_eq!(classify(s), StatusClass::Fatal);
    }
}

#[test]
fn http_2xx_and_partial_success() {
    let mut p = policy(config());
    push_n(&mut p, 0, 5, 2);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.on_outcome(t.id, Outcome::Success { rejected_spans: 2 }, 1);
    let s = p.stats();
    assert_eq!((s.exported, s.dropped_rejected, s.retried), (3, 2, 0));

    push_n(&mut p, 1, 2, 2);
    p.flush(1);
    let t = transmit(&mut p, 1);
    p.on_outcome(t.id, Outcome::Success { rejected_spans: 99 }, 2);
    assert_eq!(
        p.stats().dropped_rejected,
        4,
        "clamped to the request's spans"
    );

    p.push(vec![1], 2);
    p.flush(2);
    let t = transmit(&mut p, 2);
    p.on_outcome(t.id, http(204, None), 3);
    assert_eq!(p.stats().exported, 4);
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn gives_up_after_max_attempts() {
    let mut p = policy(config());
    push_n(&mut p, 0, 2, 3);
    p.flush(0);
    let mut now = 0;
    let mut sends = 0;
    while let Some(t) = p.poll_transmit(now) {
        sends += 1;
        let outcome = if sends % 2 == 0 {
            Outcome::Timeout
        } else {
            http(504, None)
        };
        p.on_outcome(t.id, outcome, now);
        match p.poll_timeout() {
            Some(due) => now = due,
            None => break,
        }
    }
    assert_eq!(sends, 5, "max_attempts includes the first send");
    let s = p.stats();
    assert_eq!(
        (s.dropped_retries_exhausted, s.retried, s.failed_requests),
        (2, 4, 5)
    );
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn retried_records_keep_their_own_attempt_count_when_merged() {
    let mut p = policy(ExportConfig {
        max_attempts: 2,
        ..config()
    });
    p.push(vec![1], 0);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.on_outcome(t.id, Outcome::NetworkError, 0);
    p.push(vec![2], 10);
    let t = transmit(&mut p, 1000);
    assert_eq!(t.spans, 2);
    p.on_outcome(t.id, Outcome::NetworkError, 1000);
    // The first record used its 2 attempts; the second has one left.
    assert_eq!(p.stats().dropped_retries_exhausted, 1);
    let due = p.poll_timeout().unwrap();
    let t = transmit(&mut p, due);
    assert_eq!(p.records(t.id), &[vec![2]]);
}

#[test]
fn queue_full_drops_the_new_span_not_counting_in_flight() {
    let mut p = policy(ExportConfig {
        max_queue_spans: 3,
        max_batch_spans: 2,
        ..config()
    });
    push_n(&mut p, 0, 2, 1);
    let t = transmit(&mut p, 0);
    // In flight does not count (as OpenTelemetry's maxQueueSize): 3 more fit.
    for b in [6, 7, 8, 9] {
        p.push(vec![b], 0);
    }
    let s = p.stats();
    assert_eq!((s.in_flight, s.queued, s.dropped_queue_full), (2, 3, 1));
    // A failed request's records go back, past the bound: they were accepted.
    p.on_outcome(t.id, http(503, Some("0")), 1);
    assert_eq!((p.stats().queued, p.stats().dropped_queue_full), (5, 1));
    assert!(p.is_full());
    let t = transmit(&mut p, 1);
    assert_eq!(p.records(t.id), &[vec![0], vec![1]]);
    assert_conserved(&p);

    let mut p = policy(ExportConfig {
        max_queue_bytes: 100,
        ..config()
    });
    push_n(&mut p, 0, 3, 40);
    assert_eq!(p.stats().dropped_queue_full, 1);
    p.push(vec![0; 20], 0);
    assert_eq!(p.stats().queued_bytes, 100);
    assert_conserved(&p);
}

#[test]
fn record_too_large_for_any_request_is_dropped() {
    let mut p = policy(ExportConfig {
        max_batch_bytes: 100,
        ..config()
    });
    p.push(vec![0; 88], 0);
    p.push(vec![0; 89], 0);
    let s = p.stats();
    assert_eq!((s.queued, s.dropped_too_large), (1, 1));
    p.flush(0);
    assert_eq!(transmit(&mut p, 0).bytes, 100);
    assert_eq!(p.poll_transmit(0), None);
    assert_conserved(&p);
}

#[test]
fn hidden_page_splits_into_keepalive_within_budget_then_beacons() {
    let mut p = policy(ExportConfig {
        keepalive_budget_bytes: 120,
        max_batch_spans: 2,
        ..config()
    });
    push_n(&mut p, 0, 7, 20); // 7 records of 22 bytes each with framing
    p.page_hidden(10);
    let a = transmit(&mut p, 10);
    let b = transmit(&mut p, 10);
    assert_eq!(
        (a.transport, a.bytes, b.transport, b.bytes),
        (Transport::FetchKeepalive, 54, Transport::FetchKeepalive, 54)
    );
    assert_eq!(p.stats().in_flight_keepalive_bytes, 108);
    let beacon = transmit(&mut p, 10);
    assert_eq!((beacon.transport, beacon.spans), (Transport::Beacon, 2));
    p.on_outcome(beacon.id, Outcome::BeaconAccepted(false), 10);
    // Budget full and beacons refused: the rest goes by plain fetch, best
    // effort (it may still complete before the page is gone).
    let c = transmit(&mut p, 10);
    assert_eq!((c.transport, c.spans), (Transport::Fetch, 2));
    assert_eq!(p.records(c.id), &[vec![4; 20], vec![5; 20]], "refused beacon first");
    let d = transmit(&mut p, 10);
    assert_eq!((d.transport, d.spans), (Transport::Fetch, 1));
    assert_eq!(p.poll_transmit(10), None, "everything is on its way");
    assert_eq!(p.stats().in_flight_keepalive_bytes, 108, "plain fetches use no keepalive budget");
    assert_conserved(&p);
    p.on_outcome(a.id, ok(), 20);
    p.on_outcome(b.id, ok(), 30);
    p.on_outcome(c.id, ok(), 40);
    p.on_outcome(d.id, ok(), 40);
    let s = p.stats();
    assert_eq!(
        (
            s.exported,
            s.beacons_refused,
            s.failed_requests,
            s.in_flight_keepalive_bytes
        ),
        (7, 1, 0, 0)
    );
    assert!(p.is_idle());
}

#[test]
fn accepted_beacon_counts_as_exported() {
    let mut p = policy(ExportConfig {
        keepalive_budget_bytes: 60,
        ..config()
    });
    push_n(&mut p, 0, 4, 20); // 2 per request: 10 + 2 * 22 = 54
    p.page_hidden(0);
    let ka = transmit(&mut p, 0);
    let beacon = transmit(&mut p, 0);
    assert_eq!(
        (ka.transport, ka.spans, beacon.transport, beacon.spans),
        (Transport::FetchKeepalive, 2, Transport::Beacon, 2)
    );
    assert!(beacon.bytes <= 60);
    p.on_outcome(beacon.id, Outcome::BeaconAccepted(true), 0);
    assert_eq!(p.stats().exported, 2);
    assert_conserved(&p);
}

#[test]
fn hidden_page_sends_at_once_and_retries_keepalive() {
    let mut p = policy(config());
    p.page_hidden(0);
    p.push(vec![1; 10], 5);
    let t = transmit(&mut p, 5);
    assert_eq!(
        t.transport,
        Transport::FetchKeepalive,
        "no schedule delay when hidden"
    );
    p.on_outcome(t.id, http(503, Some("2")), 50);
    assert_eq!(p.stats().in_flight_keepalive_bytes, 0);
    assert_eq!(p.poll_timeout(), Some(2050));
    assert_eq!(p.poll_transmit(2049), None);
    let r = transmit(&mut p, 2050);
    assert_eq!((r.transport, r.spans), (Transport::FetchKeepalive, 1));
}

#[test]
fn hidden_page_ignores_concurrency_limit_for_keepalive() {
    let mut p = policy(ExportConfig {
        max_batch_spans: 1,
        max_concurrent_requests: 1,
        ..config()
    });
    push_n(&mut p, 0, 5, 10);
    p.page_hidden(0);
    let mut n = 0;
    while let Some(t) = p.poll_transmit(0) {
        assert_eq!(t.transport, Transport::FetchKeepalive);
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn record_too_big_for_keepalive_goes_by_plain_fetch_when_hidden() {
    let mut p = policy(ExportConfig {
        keepalive_budget_bytes: 100,
        ..config()
    });
    p.push(vec![0; 200], 0);
    p.push(vec![1; 10], 0);
    p.page_hidden(0);
    let big = transmit(&mut p, 0);
    assert_eq!((big.transport, big.spans), (Transport::Fetch, 1));
    let small = transmit(&mut p, 0);
    assert_eq!(
        (small.transport, small.spans),
        (Transport::FetchKeepalive, 1)
    );
}

#[test]
fn page_visible_returns_to_normal_batching() {
    let mut p = policy(ExportConfig {
        keepalive_budget_bytes: 60,
        ..config()
    });
    push_n(&mut p, 0, 3, 20);
    p.page_hidden(0);
    let ka = transmit(&mut p, 0);
    let beacon = transmit(&mut p, 0);
    p.on_outcome(beacon.id, Outcome::BeaconAccepted(false), 0);
    // Beacons refused: the rest by plain fetch.
    let t = transmit(&mut p, 0);
    assert_eq!((t.transport, t.spans), (Transport::Fetch, 1));
    assert_eq!(p.poll_transmit(0), None);
    p.page_visible(100);
    p.on_outcome(t.id, ok(), 110);
    p.on_outcome(ka.id, ok(), 110);
    p.push(vec![1], 200);
    assert_eq!(p.poll_transmit(200), None, "back to the schedule delay");
    assert_eq!(p.poll_timeout(), Some(1200));
    assert_eq!(transmit(&mut p, 1200).transport, Transport::FetchKeepalive);
}

#[test]
fn a_keepalive_budget_of_queued_bytes_leaves_at_once() {
    // Never more than one keepalive request's worth waits for the timer, so
    // an unloading page can always send what is queued.
    let mut p = policy(ExportConfig { keepalive_budget_bytes: 10 + 3 * 22, ..config() });
    push_n(&mut p, 0, 2, 20);
    assert_eq!(p.poll_transmit(0), None);
    p.push(vec![2; 20], 0);
    let t = transmit(&mut p, 0);
    assert_eq!((t.transport, t.spans, t.bytes), (Transport::FetchKeepalive, 3, 76));
    // While that is in flight the budget is used up: the next batch goes plain.
    push_n(&mut p, 10, 3, 20);
    let u = transmit(&mut p, 0);
    assert_eq!((u.transport, u.spans), (Transport::Fetch, 3));
    assert_conserved(&p);
}

#[test]
fn shutdown_flushes_and_drops_later_pushes() {
    let mut p = policy(config());
    push_n(&mut p, 0, 2, 5);
    p.shutdown(10);
    let t = transmit(&mut p, 10);
    p.push(vec![1], 11);
    assert_eq!(p.stats().dropped_shutdown, 1);
    // A short backoff fits before the deadline: retried.
    p.on_outcome(t.id, Outcome::NetworkError, 20);
    let r = transmit(&mut p, 1020);
    // A retry due after the deadline can't happen: dropped now.
    p.on_outcome(r.id, http(503, Some("60")), 1030);
    let s = p.stats();
    assert_eq!((s.dropped_shutdown, s.queued), (3, 0));
    assert!(p.is_idle());
    assert_eq!(p.poll_timeout(), None);
    assert_conserved(&p);
}

#[test]
fn shutdown_deadline_drops_what_is_still_queued() {
    let mut p = policy(ExportConfig {
        max_batch_spans: 1,
        max_concurrent_requests: 1,
        ..config()
    });
    push_n(&mut p, 0, 3, 5);
    p.shutdown(0);
    let t = transmit(&mut p, 0);
    assert_eq!(p.poll_timeout(), Some(30_000));
    p.handle_timeout(30_000);
    assert_eq!(p.stats().dropped_shutdown, 2);
    assert_eq!(p.stats().in_flight, 1);
    p.on_outcome(t.id, Outcome::Timeout, 30_001);
    assert_eq!(p.stats().dropped_shutdown, 3);
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn unknown_or_repeated_outcomes_are_ignored() {
    let mut p = policy(config());
    p.push(vec![1], 0);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.on_outcome(t.id + 100, ok(), 1);
    assert_eq!(p.stats().in_flight, 1);
    p.on_outcome(t.id, ok(), 1);
    p.on_outcome(t.id, Outcome::NetworkError, 2);
    assert!(p.records(t.id).is_empty());
    let s = p.stats();
    assert_eq!((s.exported, s.failed_requests, s.queued), (1, 0, 0));
}

#[test]
fn nonsensical_config_is_clamped() {
    let mut p = ExportPolicy::new(ExportConfig {
        max_batch_spans: 0,
        max_concurrent_requests: 0,
        max_attempts: 0,
        backoff_multiplier: f64::NAN,
        backoff_jitter: 7.0,
        ..ExportConfig::default()
    });
    p.push(vec![1], 0);
    p.push(vec![2], 0);
    let t = p.poll_transmit(0).expect("a batch of one is full");
    assert_eq!(t.spans, 1);
    assert_eq!(p.poll_transmit(0), None, "one request at a time");
    p.on_outcome(t.id, Outcome::NetworkError, 0);
    assert_eq!(p.stats().dropped_retries_exhausted, 1, "one attempt");
}

#[test]
fn growing_overhead_drops_queued_records_that_no_longer_fit() {
    let mut p = policy(ExportConfig {
        max_batch_bytes: 100,
        ..config()
    });
    p.push(vec![0; 80], 0);
    p.push(vec![1; 40], 0);
    p.set_request_overhead(30, 2);
    let s = p.stats();
    assert_eq!((s.queued, s.queued_bytes, s.dropped_too_large), (1, 40, 1));
    p.push(vec![2; 69], 0);
    assert_eq!(
        p.stats().dropped_too_large,
        2,
        "new pushes use the new overhead"
    );
    p.flush(0);
    let t = transmit(&mut p, 0);
    assert_eq!((t.spans, t.bytes), (1, 72));
    assert_conserved(&p);
}

#[test]
fn record_in_flight_when_overhead_grows_is_dropped_on_retry() {
    let mut p = policy(ExportConfig {
        max_batch_bytes: 100,
        ..config()
    });
    p.push(vec![0; 80], 0);
    p.push(vec![1; 10], 0);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.set_request_overhead(30, 2);
    p.on_outcome(t.id, Outcome::NetworkError, 0);
    let s = p.stats();
    assert_eq!((s.dropped_too_large, s.queued), (1, 1));
    let r = transmit(&mut p, 1000);
    assert_eq!(p.records(r.id), &[vec![1; 10]]);
    assert_conserved(&p);
}

#[test]
fn drop_if_full_counts_like_push_without_a_record() {
    let mut p = policy(ExportConfig { max_queue_spans: 2, ..config() });
    assert!(!p.drop_if_full());
    push_n(&mut p, 0, 2, 5);
    assert!(p.drop_if_full(), "queue at its span bound");
    assert_eq!(p.stats().dropped_queue_full, 1);
    assert_conserved(&p);
    p.shutdown(1);
    let t = transmit(&mut p, 1);
    p.on_outcome(t.id, ok(), 2);
    assert!(p.drop_if_full(), "after shutdown");
    assert_eq!(p.stats().dropped_shutdown, 1);
    assert_conserved(&p);
}

#[test]
fn an_overflowing_queue_drains_without_waiting_for_the_schedule() {
    // Two requests in flight (the most), 1 span queued, and the queue (max 1)
    // overflows. Once the requests in flight complete, the partial rest goes
    // at once, not after the schedule delay.
    let mut p = policy(ExportConfig { max_queue_spans: 1, max_batch_spans: 2, ..config() });
    let mut flushed = || {
        p.push(vec![0; 5], 0);
        p.flush(0);
        transmit(&mut p, 0)
    };
    let (a, b) = (flushed(), flushed());
    assert_eq!(p.stats().dropped_queue_full, 0);
    p.push(vec![8; 5], 0);
    assert!(p.poll_transmit(0).is_none(), "two requests in flight");
    p.push(vec![9; 5], 1); // over max_queue_spans: dropped
    assert_eq!(p.stats().dropped_queue_full, 1);
    p.on_outcome(a.id, ok(), 2);
    p.on_outcome(b.id, ok(), 2);
    let rest = transmit(&mut p, 3);
    assert_eq!(rest.spans, 1, "the partial batch left at 3 ms, schedule delay {} ms", config().schedule_delay_ms);
    assert_conserved(&p);
    // Afterwards the schedule applies again.
    p.on_outcome(rest.id, ok(), 4);
    p.push(vec![1; 5], 10);
    assert!(p.poll_transmit(11).is_none());
    assert_eq!(p.poll_timeout(), Some(10 + config().schedule_delay_ms));
}

// ---- offline persistence ----------------------------------------------

fn persisting(config: ExportConfig) -> ExportPolicy {
    policy(ExportConfig {
        persist: true,
        ..config
    })
}

/// Fails the next request due at `now` with `outcome`.
fn fail_next(p: &mut ExportPolicy, now: u64, outcome: Outcome) {
    let t = transmit(p, now);
    assert_ne!(t.transport, Transport::Persist);
    p.on_outcome(t.id, outcome, now);
}

#[test]
fn exhausted_retries_are_stored_instead_of_dropped() {
    let mut p = persisting(ExportConfig {
        max_attempts: 2,
        ..config()
    });
    push_n(&mut p, 0, 3, 5);
    p.flush(0);
    fail_next(&mut p, 0, Outcome::NetworkError);
    assert_eq!(p.poll_transmit(0), None, "paused");
    let due = p.poll_timeout().unwrap();
    let t = transmit(&mut p, due);
    assert_eq!(t.transport, Transport::FetchKeepalive);
    p.on_outcome(t.id, http(503, None), due);
    // Attempts used up: the records go to the store, not the bin.
    let stored = transmit(&mut p, due);
    assert_eq!((stored.transport, stored.spans), (Transport::Persist, 3));
    assert_eq!(p.records(stored.id), &[vec![0; 5], vec![1; 5], vec![2; 5]]);
    assert_eq!(p.poll_transmit(due), None);
    let s = p.stats();
    assert_eq!((s.in_flight, s.dropped_retries_exhausted, s.requests), (3, 0, 2), "a store is not a request");
    assert_conserved(&p);
    p.on_outcome(stored.id, Outcome::Stored(true), due + 1);
    let s = p.stats();
    assert_eq!((s.persisted, s.in_flight, s.dropped_total()), (3, 0, 0));
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn a_refused_store_counts_as_dropped_and_is_never_sent() {
    let mut p = persisting(ExportConfig {
        max_attempts: 1,
        ..config()
    });
    push_n(&mut p, 0, 2, 5);
    p.flush(0);
    fail_next(&mut p, 0, http(429, Some("1")));
    let stored = transmit(&mut p, 0);
    assert_eq!(stored.transport, Transport::Persist);
    p.on_outcome(stored.id, Outcome::Stored(false), 1);
    let s = p.stats();
    assert_eq!((s.persisted, s.dropped_persist_failed, s.dropped_total()), (0, 2, 2));
    assert_eq!(p.poll_transmit(10_000), None, "not sent after the store refused it");
    assert!(p.is_idle());
    assert_conserved(&p);
    // Any other outcome for a store request counts the same way.
    push_n(&mut p, 10, 1, 5);
    p.flush(10);
    fail_next(&mut p, 10, Outcome::Timeout);
    let stored = transmit(&mut p, 10);
    p.on_outcome(stored.id, ok(), 11);
    assert_eq!((p.stats().exported, p.stats().dropped_persist_failed), (0, 3));
    assert_conserved(&p);
}

#[test]
fn without_persistence_nothing_is_stored() {
    let mut p = policy(ExportConfig {
        max_attempts: 1,
        ..config()
    });
    p.set_online(false, 0);
    push_n(&mut p, 0, 2, 5);
    p.flush(0);
    let t = transmit(&mut p, 0);
    assert_eq!(t.transport, Transport::FetchKeepalive, "offline is only a hint: still sent");
    p.on_outcome(t.id, Outcome::NetworkError, 0);
    p.page_hidden(0);
    assert_eq!(p.poll_transmit(0), None);
    assert_eq!(p.stats().dropped_retries_exhausted, 2);
    assert_conserved(&p);
}

#[test]
fn page_hidden_during_a_retry_pause_stores_everything_queued() {
    let mut p = persisting(ExportConfig {
        keepalive_budget_bytes: 60,
        ..config()
    });
    push_n(&mut p, 0, 2, 20);
    p.flush(0);
    fail_next(&mut p, 0, http(503, Some("30")));
    push_n(&mut p, 5, 3, 20);
    assert_eq!(p.poll_transmit(5), None, "paused");
    p.page_hidden(10);
    // Everything, in requests a keepalive could carry later: 2 + 2 + 1.
    let mut spans = Vec::new();
    while let Some(t) = p.poll_transmit(10) {
        assert_eq!(t.transport, Transport::Persist);
        assert!(t.bytes <= 60);
        spans.push(t.spans);
        p.on_outcome(t.id, Outcome::Stored(true), 11);
    }
    assert_eq!(spans, [2, 2, 1]);
    assert_eq!(p.stats().persisted, 5);
    assert!(p.is_idle());
    assert_eq!(p.poll_timeout(), None);
    assert_conserved(&p);
}

#[test]
fn page_hidden_while_sending_works_still_sends() {
    let mut p = persisting(config());
    push_n(&mut p, 0, 2, 20);
    p.page_hidden(0);
    let t = transmit(&mut p, 0);
    assert_eq!(t.transport, Transport::FetchKeepalive, "online and no pause: send");
    // It fails while the page is still there: stored, not retried later.
    p.on_outcome(t.id, Outcome::NetworkError, 5);
    let stored = transmit(&mut p, 5);
    assert_eq!((stored.transport, stored.spans), (Transport::Persist, 2));
    p.on_outcome(stored.id, Outcome::Stored(true), 6);
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn offline_stores_each_batch_as_it_falls_due() {
    let mut p = persisting(ExportConfig {
        max_batch_spans: 3,
        ..config()
    });
    p.set_online(false, 0);
    push_n(&mut p, 0, 2, 5);
    assert_eq!(p.poll_transmit(0), None, "a partial batch still waits");
    assert_eq!(p.poll_timeout(), Some(1000));
    p.push(vec![9; 5], 10);
    let t = transmit(&mut p, 10);
    assert_eq!((t.transport, t.spans), (Transport::Persist, 3), "a full batch is stored at once");
    p.push(vec![8; 5], 20);
    assert_eq!(p.poll_timeout(), Some(1020));
    let u = transmit(&mut p, 1020);
    assert_eq!((u.transport, u.spans), (Transport::Persist, 1));
    p.on_outcome(t.id, Outcome::Stored(true), 1030);
    p.on_outcome(u.id, Outcome::Stored(true), 1030);
    assert_eq!((p.stats().persisted, p.stats().requests), (4, 0));
    // Back online: sent again.
    p.set_online(true, 2000);
    p.push(vec![7; 5], 2000);
    p.flush(2000);
    assert_eq!(transmit(&mut p, 2000).transport, Transport::FetchKeepalive);
    assert_conserved(&p);
}

#[test]
fn offline_stores_what_failed_without_waiting_for_the_backoff() {
    let mut p = persisting(config());
    push_n(&mut p, 0, 2, 5);
    p.flush(0);
    let t = transmit(&mut p, 0);
    p.set_online(false, 1);
    p.on_outcome(t.id, Outcome::NetworkError, 2);
    let stored = transmit(&mut p, 2);
    assert_eq!((stored.transport, stored.spans), (Transport::Persist, 2));
    p.on_outcome(stored.id, Outcome::Stored(true), 3);
    assert!(p.is_idle());
    assert_conserved(&p);
}

#[test]
fn store_requests_use_no_request_slot() {
    let mut p = persisting(ExportConfig {
        max_attempts: 1,
        max_concurrent_requests: 1,
        max_batch_spans: 1,
        ..config()
    });
    push_n(&mut p, 0, 2, 5);
    let a = transmit(&mut p, 0);
    p.on_outcome(a.id, Outcome::NetworkError, 0);
    let stored = transmit(&mut p, 0);
    assert_eq!(stored.transport, Transport::Persist);
    // The store is still writing; the next batch may leave.
    assert_eq!(transmit(&mut p, 0).transport, Transport::FetchKeepalive);
    assert_conserved(&p);
}

#[test]
fn back_online_ends_a_backoff_but_not_a_retry_after() {
    let mut p = policy(config());
    push_n(&mut p, 0, 1, 5);
    p.flush(0);
    fail_next(&mut p, 0, Outcome::NetworkError);
    assert_eq!(p.poll_timeout(), Some(1000));
    p.set_online(false, 10);
    p.set_online(true, 20);
    let t = transmit(&mut p, 20);
    p.on_outcome(t.id, http(429, Some("30")), 30);
    p.set_online(false, 40);
    p.set_online(true, 50);
    assert_eq!(p.poll_transmit(50), None, "the server asked to wait");
    assert_eq!(p.poll_timeout(), Some(30_030));
    p.set_online(true, 60);
    assert_eq!(p.poll_transmit(60), None, "online again without going offline changes nothing");
    assert_eq!(transmit(&mut p, 30_030).spans, 1);
}

#[test]
fn persistence_can_be_turned_on_and_off_at_run_time() {
    let mut p = policy(ExportConfig {
        max_attempts: 1,
        ..config()
    });
    p.set_persist(true);
    push_n(&mut p, 0, 1, 5);
    p.flush(0);
    fail_next(&mut p, 0, Outcome::NetworkError);
    let stored = transmit(&mut p, 0);
    assert_eq!(stored.transport, Transport::Persist);
    p.set_persist(false);
    push_n(&mut p, 1, 1, 5);
    p.flush(1);
    fail_next(&mut p, 1, Outcome::NetworkError);
    assert_eq!(p.poll_transmit(1), None);
    assert_eq!(p.stats().dropped_retries_exhausted, 1);
    p.on_outcome(stored.id, Outcome::Stored(true), 2);
    assert_eq!(p.stats().persisted, 1);
    assert_conserved(&p);
}

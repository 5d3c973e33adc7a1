//! The export policy: when finished spans are sent, in which requests, what is
//! retried and what is dropped.
//!
//! [`ExportPolicy`] is a deterministic state machine in the style of
//! `quinn-proto`: it does no IO and never reads a clock. The platform driver
//! feeds it events with the current time (`now`, milliseconds of a monotonic
//! clock) and it answers with what to do: a [`Transmit`] to send, or the time
//! at which it wants to be woken ([`ExportPolicy::poll_timeout`]). It never
//! encodes either: spans arrive already encoded as OTLP records, and the driver
//! frames the records of each [`Transmit`] into one OTLP/HTTP request.
//!
//! # Lifecycle of a span record
//!
//! 1. **Pushed.** When a span ends, its record is [`push`](ExportPolicy::push)ed.
//!    It is dropped at once, and counted, if it could never fit in a request
//!    (`too_large`), if the queue is at its bounds (`queue_full`: the *new*
//!    span is the one dropped), or after shutdown (`shutdown`). Otherwise it
//!    is queued.
//! 2. **Queued.** Records leave in arrival order, in requests of at most
//!    `max_batch_spans` records and `max_batch_bytes` bytes (records plus the
//!    request framing, so the size is exact; or, with a [`RequestSizer`], the
//!    bytes the driver will send, e.g. gzip'd). A request leaves as soon as a
//!    full batch is queued, or as soon as the queue holds a keepalive budget's
//!    worth of bytes (so an unloading page never has more waiting than one
//!    keepalive request can carry); a partial batch leaves `schedule_delay_ms`
//!    (1 s) after its first span was queued, or at once on [`flush`],
//!    [`shutdown`], page hide, or once the queue has overflowed (spans come
//!    faster than they leave: waiting would only drop more). At most `max_concurrent_requests` (2) are in
//!    flight. A batch that fits the free keepalive budget is sent with
//!    `keepalive` (it then completes even if the page unloads meanwhile);
//!    larger ones by plain fetch.
//! 3. **In flight.** The policy keeps the records of each request until the
//!    driver reports its [`Outcome`]; the driver borrows them with
//!    [`records`](ExportPolicy::records) to frame the body. The driver aborts
//!    a request after `export_timeout_ms` (30 s) and reports a timeout.
//! 4. **Resolved.** Each record ends as exactly one of: exported, or dropped
//!    for a reason that [`stats`](ExportPolicy::stats) counts, or handed to
//!    the driver's store (`persisted`, see *Offline persistence*). Nothing is
//!    lost silently: `pushed == queued + in_flight + exported +
//!    dropped_total() + persisted` holds after every call.
//!
//! # Failure modes
//!
//! - **2xx**: exported. A partial success (`rejected_spans > 0`) counts the
//!   rejected spans as dropped (`rejected`) and the rest as exported; it is
//!   never retried, since the collector already has the rest.
//! - **429, 502, 503, 504, network error, timeout**: the request's records go
//!   back to the front of the queue and *all* sending pauses, fresh spans
//!   included (there is one collector: if it is overloaded or unreachable, a
//!   new request would fail too). The pause is the server's `Retry-After`
//!   (delta-seconds or HTTP-date, turned into a delay by
//!   [`parse_retry_after`]; capped at `retry_after_max_ms`, 5 min), else
//!   exponential backoff: 1 s, 1.5 s, 2.25 s, ... capped at 5 s, each ±20%
//!   jitter. A record is sent at most `max_attempts` (5) times, then dropped
//!   (`retries_exhausted`), or stored with persistence (see below). A cross-origin page can read `Retry-After` only if
//!   the collector lists it in `Access-Control-Expose-Headers`; without it the
//!   backoff applies.
//! - **400, other 4xx, other 5xx**: dropped (`failed`). The same bytes would get
//!   the same answer.
//! - **Network down**: each batch is retried with backoff until its records
//!   have been tried 5 times (about 8 s of waiting), then dropped. Meanwhile
//!   new spans queue up to the bounds, and beyond them are dropped
//!   (`queue_full`).
//! - **Queue full**: the bounds (`max_queue_spans` 2048, `max_queue_bytes`
//!   4 MiB) cover the records waiting to be sent (queued or waiting for a
//!   retry), as OpenTelemetry's `maxQueueSize` does; requests in flight hold
//!   at most `max_concurrent_requests` batches more. A failed request's
//!   records go back to the queue even past the bounds (they were accepted),
//!   so memory stays bounded (queue bounds plus the batches in flight) when
//!   the collector is slow or down, and a span is dropped when it arrives,
//!   never after it was accepted.
//! - **Page hidden** ([`page_hidden`](ExportPolicy::page_hidden), on
//!   `visibilitychange` to hidden and on `pagehide`): the page may be gone any
//!   moment, so everything queued is sent at once (unless a retry pause is
//!   running: the collector asked to wait; with persistence, it is stored) with `fetch(..., {keepalive:
//!   true})`, which outlives the page. Browsers fail keepalive requests once
//!   the in-flight keepalive bodies of the page exceed 64 KiB, so each request
//!   and the sum in flight stay within `keepalive_budget_bytes` (60 000, leaving
//!   room for the app's own keepalive requests); more are sent as earlier ones
//!   complete. What does not fit is offered to `navigator.sendBeacon`, each
//!   beacon within the same per-request limit. The browser answers a beacon
//!   only with accepted or refused: accepted counts as exported (a beacon can't
//!   see the status); refused puts the records back and stops beacons until
//!   the next page hide (Chromium shares one quota between keepalive and
//!   beacons, so a refusal means it is full). From then on, what keepalive
//!   budget cannot take goes by plain fetch, best effort: it often completes
//!   before the page is torn down, and if the page was only hidden it simply
//!   works. A record too big for keepalive goes by plain fetch too. Retries
//!   that fall due while hidden also go keepalive. Plain-fetch requests
//!   already in flight when the page unloads may be cancelled by the browser;
//!   the driver never reports them and they stay counted as in flight.
//!   [`page_visible`](ExportPolicy::page_visible) returns to normal batching.
//! - **Offline persistence** (only when the driver can store requests:
//!   [`ExportConfig::persist`] / [`set_persist`](ExportPolicy::set_persist);
//!   IndexedDB in pages and workers). Spans that cannot be sent are handed
//!   to the driver as a [`Transport::Persist`] request instead of being lost:
//!   records whose attempts ran out (instead of `retries_exhausted`); while
//!   the host says it is offline ([`set_online`](ExportPolicy::set_online)),
//!   every batch that falls due; and, when the page hides while sending is
//!   impossible (offline, or a retry pause is running), everything queued.
//!   The driver stores the body and reports [`Outcome::Stored`]: stored spans
//!   count as `persisted`, a refused store as dropped (`persist_failed`). A
//!   record handed to the store is never sent by this policy again, so
//!   nothing is both stored and sent; the driver sends stored bodies on a
//!   later page load or when the network returns. Store requests don't count
//!   as `requests` nor against `max_concurrent_requests`. Without
//!   persistence, offline is only a hint: batches are still sent (and
//!   retried, then dropped). Either way, back online, a backoff pause ends
//!   at once (a server's `Retry-After` is still honoured).
//! - **Shutdown** ([`shutdown`]): flushes, then drops new spans (`shutdown`).
//!   Retries go on, but whatever is still queued `shutdown_timeout_ms` (30 s)
//!   later, or waits for a retry due after that, is dropped (`shutdown`), and
//!   so is a request in flight then that fails retryably. So
//!   [`is_idle`](ExportPolicy::is_idle) is reached in bounded time: the
//!   deadline plus at most `export_timeout_ms`.
//!
//! # Why a 1 s schedule delay
//!
//! OpenTelemetry's default is 5 s. A browser tab can crash, be discarded or be
//! killed without a `pagehide` event, and then whatever waits in memory is
//! lost: a shorter delay loses less. The cost is more, smaller requests:
//! about one per second while spans trickle in (a busy page fills batches and
//! sends each as soon as it is full, whatever the delay).
//!
//! # Driving it
//!
//! ```
//! use tracelink::core::export::{ExportConfig, ExportPolicy, Outcome};
//! let mut policy = ExportPolicy::new(ExportConfig::default());
//! policy.push(b"span record".to_vec(), 0);
//! assert!(policy.poll_transmit(0).is_none()); // a partial batch waits...
//! assert_eq!(policy.poll_timeout(), Some(1000)); // ...for the schedule delay
//! policy.handle_timeout(1000);
//! while let Some(t) = policy.poll_transmit(1000) {
//!     let _records = policy.records(t.id); // frame these into the body, POST it
//!     policy.on_outcome(t.id, Outcome::Success { rejected_spans: 0 }, 1050);
//! }
//! assert_eq!(policy.stats().exported, 1);
//! ```
//!
//! [`flush`]: ExportPolicy::flush
//! [`shutdown`]: ExportPolicy::shutdown

mod retry_after;
#[cfg(test)]
mod tests;

pub use retry_after::parse_retry_after;
pub use retry_after::parse_http_date;

use super::id::IdGenerator;

/// Tuning for [`ExportPolicy`]. `Default` gives the values in the module doc.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportConfig {
    /// Most spans waiting to be sent (queued or waiting to retry); requests
    /// in flight are bounded by `max_concurrent_requests` batches.
    pub max_queue_spans: usize,
    /// Most record bytes waiting to be sent (queued or waiting to retry).
    pub max_queue_bytes: usize,
    /// Most spans in one request.
    pub max_batch_spans: usize,
    /// Most bytes in one normal request body (records plus framing). A record
    /// that can't fit alone is dropped as too large.
    pub max_batch_bytes: usize,
    /// How long a partial batch waits for more spans after its first one.
    pub schedule_delay_ms: u64,
    /// After this long the driver aborts a request and reports [`Outcome::Timeout`].
    pub export_timeout_ms: u64,
    /// Most times a record is sent, the first included. At least 1.
    pub max_attempts: u32,
    /// First backoff delay after a retryable failure without `Retry-After`.
    pub backoff_initial_ms: u64,
    /// Each further retry of a batch waits this many times longer (at least 1).
    pub backoff_multiplier: f64,
    /// Backoff delays never exceed this, jitter included.
    pub backoff_max_ms: u64,
    /// Relative jitter on backoff delays: 0.2 is ±20%. Clamped to `[0, 1]`.
    pub backoff_jitter: f64,
    /// Seeds the jitter. Drivers set it from their random id generator so
    /// that clients don't retry in lockstep; tests keep it fixed so runs
    /// repeat exactly.
    pub jitter_seed: u64,
    /// A longer `Retry-After` is shortened to this.
    pub retry_after_max_ms: u64,
    /// Largest keepalive request, and largest sum of keepalive request bodies
    /// in flight at once (the browser's page-wide limit is 64 KiB). Also the
    /// largest beacon.
    pub keepalive_budget_bytes: usize,
    /// Most requests in flight at once outside page-hidden mode.
    pub max_concurrent_requests: usize,
    /// After [`ExportPolicy::shutdown`], how long queued spans may still wait.
    pub shutdown_timeout_ms: u64,
    /// The request framing around the records, so sizes are exact.
    pub overhead: RequestOverhead,
    /// The driver can store requests for later ([`Transport::Persist`]):
    /// spans that cannot be sent are stored instead of dropped (see the
    /// module docs). Also set at run time by [`ExportPolicy::set_persist`].
    pub persist: bool,
}

impl Default for ExportConfig {
    fn default() -> ExportConfig {
        ExportConfig {
            max_queue_spans: 2048,
            max_queue_bytes: 4 << 20,
            max_batch_spans: 512,
            max_batch_bytes: 1 << 20,
            schedule_delay_ms: 1000,
            export_timeout_ms: 30_000,
            max_attempts: 5,
            backoff_initial_ms: 1000,
            backoff_multiplier: 1.5,
            backoff_max_ms: 5000,
            backoff_jitter: 0.2,
            jitter_seed: 0,
            retry_after_max_ms: 300_000,
            keepalive_budget_bytes: 60_000,
            max_concurrent_requests: 2,
            shutdown_timeout_ms: 30_000,
            overhead: RequestOverhead::default(),
            persist: false,
        }
    }
}

/// Bytes a request adds around its records: `fixed + per_record * n`.
///
/// The driver sets it from the encoder (`otlp::request_overhead`) so that
/// `records + overhead` is the exact body size. If an encoding's framing is
/// not exactly affine in `n` (protobuf length prefixes grow with the body),
/// use an upper bound: limits then still hold, with a little slack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOverhead {
    /// Bytes per request, whatever the number of records.
    pub fixed: usize,
    /// Bytes per record (separators, field tags, length prefixes).
    pub per_record: usize,
}

impl RequestOverhead {
    /// The body size of a request with `records` records totalling `record_bytes`.
    pub fn request_bytes(&self, records: usize, record_bytes: usize) -> usize {
        self.fixed
            .saturating_add(self.per_record.saturating_mul(records))
            .saturating_add(record_bytes)
    }
}

/// How the driver sends a [`Transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `fetch` POST.
    Fetch,
    /// `fetch` POST with `keepalive: true`: survives the page unloading.
    FetchKeepalive,
    /// `navigator.sendBeacon`: report only whether the browser accepted it.
    Beacon,
    /// Not sent: store the body for a later page load or for when the
    /// network returns (IndexedDB), then report [`Outcome::Stored`].
    Persist,
}

/// A request to send now: frame [`ExportPolicy::records`]`(id)` into one body
/// and send it by `transport`, then report with [`ExportPolicy::on_outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Names the request in [`ExportPolicy::records`] and [`ExportPolicy::on_outcome`].
    pub id: u64,
    /// How to send it.
    pub transport: Transport,
    /// Number of span records in it.
    pub spans: usize,
    /// Exact body size on the wire: the records plus [`RequestOverhead`], or
    /// what the [`RequestSizer`] measured.
    pub bytes: usize,
}

/// Measures requests for the policy: how many bytes a request made of the
/// first records of the queue takes on the wire (framed, and compressed if
/// the driver compresses). The policy calls [`begin`](RequestSizer::begin),
/// then [`add`](RequestSizer::add) with each record in order until the
/// request is full; it keeps the largest prefix that fits its limit.
///
/// [`ExportPolicy::poll_transmit`] sizes requests as uncompressed records
/// plus [`RequestOverhead`]; a driver that compresses passes its own sizer
/// to [`ExportPolicy::poll_transmit_sized`], so the keepalive budget counts
/// the bytes actually sent. Batch triggers and the queue bounds keep using
/// uncompressed record bytes (an upper bound on the wire size, and what
/// memory holds).
pub trait RequestSizer {
    /// Starts measuring a new request to be sent by `transport`.
    fn begin(&mut self, transport: Transport);
    /// Adds the next record; returns the wire size of the request holding
    /// every record added since [`begin`](RequestSizer::begin).
    fn add(&mut self, record: &[u8]) -> usize;
}

/// Uncompressed sizing: the records plus [`RequestOverhead`].
struct Framed {
    overhead: RequestOverhead,
    count: usize,
    bytes: usize,
}

impl RequestSizer for Framed {
    fn begin(&mut self, _: Transport) {
        (self.count, self.bytes) = (0, 0);
    }

    fn add(&mut self, record: &[u8]) -> usize {
        self.count += 1;
        self.bytes += record.len();
        self.overhead.request_bytes(self.count, self.bytes)
    }
}

/// What became of a [`Transmit`], as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx response. `rejected_spans` comes from an OTLP partial-success
    /// body (0 if none).
    Success {
        /// Spans the collector refused; never retried.
        rejected_spans: u64,
    },
    /// An HTTP response with this status (a 2xx here counts as [`Outcome::Success`]).
    Http {
        /// The response status.
        status: u16,
        /// The `Retry-After` header as a delay, from [`parse_retry_after`]
        /// (the driver has the wall clock an HTTP-date needs); `None` if
        /// absent or unparseable. Capped at `retry_after_max_ms`.
        retry_after_ms: Option<u64>,
    },
    /// The request failed without a response (`fetch` rejected).
    NetworkError,
    /// The driver aborted the request after `export_timeout_ms`.
    Timeout,
    /// What `navigator.sendBeacon` returned for a [`Transport::Beacon`] request.
    BeaconAccepted(bool),
    /// Whether the store kept a [`Transport::Persist`] request's body.
    Stored(bool),
}

/// What an HTTP status means for the spans in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: exported.
    Success,
    /// 429, 502, 503, 504: try again later.
    Retryable,
    /// Anything else: sending the same request again would fail again.
    Fatal,
}

/// Classifies an OTLP/HTTP response status.
pub fn classify(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        429 | 502 | 503 | 504 => StatusClass::Retryable,
        _ => StatusClass::Fatal,
    }
}

/// Counters and gauges for every span the policy has seen; nothing is lost
/// silently: `pushed == queued + in_flight + exported + dropped_total() +
/// persisted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans ever pushed.
    pub pushed: u64,
    /// Spans waiting to be sent (fresh or waiting for a retry).
    pub queued: u64,
    /// Record bytes waiting to be sent.
    pub queued_bytes: u64,
    /// Spans in requests whose outcome is not reported yet.
    pub in_flight: u64,
    /// Requests whose outcome is not reported yet.
    pub in_flight_requests: u64,
    /// Body bytes of keepalive requests in flight.
    pub in_flight_keepalive_bytes: u64,
    /// Spans the collector accepted (or a beacon carried).
    pub exported: u64,
    /// New spans dropped because the queue was at its bounds.
    pub dropped_queue_full: u64,
    /// Spans dropped because their record could not fit in any request.
    pub dropped_too_large: u64,
    /// Spans the collector refused in a partial success.
    pub dropped_rejected: u64,
    /// Spans in requests answered with a non-retryable status.
    pub dropped_failed: u64,
    /// Spans dropped after `max_attempts` retryable failures.
    pub dropped_retries_exhausted: u64,
    /// Spans pushed after shutdown, or still unsent at its deadline.
    pub dropped_shutdown: u64,
    /// Requests handed to the driver.
    pub requests: u64,
    /// Requests that failed (any non-2xx outcome except a refused beacon).
    pub failed_requests: u64,
    /// Failed requests whose spans were queued again for a retry.
    pub retried: u64,
    /// Beacons the browser refused (their spans were queued again).
    pub beacons_refused: u64,
    /// Spans handed to the driver's store and kept there ([`Transport::Persist`]).
    pub persisted: u64,
    /// Spans the store refused (no room, storage unavailable).
    pub dropped_persist_failed: u64,
}

impl ExportStats {
    /// All dropped spans, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_too_large
            + self.dropped_rejected
            + self.dropped_failed
            + self.dropped_retries_exhausted
            + self.dropped_shutdown
            + self.dropped_persist_failed
    }
}

/// A record waiting to be sent (or in flight), with the number of times it
/// was sent and failed.
#[derive(Debug)]
pub struct Queued {
    record: Vec<u8>,
    failures: u32,
}

impl AsRef<[u8]> for Queued {
    fn as_ref(&self) -> &[u8] {
        &self.record
    }
}

impl PartialEq<Vec<u8>> for Queued {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.record == *other
    }
}

/// A request handed to the driver and not yet reported.
struct InFlight {
    id: u64,
    transport: Transport,
    bytes: usize,
    record_bytes: usize,
    records: Vec<Queued>,
}

/// The batch, retry and flush policy (see the [module docs](self)).
pub struct ExportPolicy {
    config: ExportConfig,
    rng: IdGenerator,
    queue: Vec<Queued>,
    queue_bytes: usize,
    in_flight: Vec<InFlight>,
    in_flight_spans: usize,
    in_flight_bytes: usize,
    keepalive_bytes: usize,
    next_id: u64,
    /// When the partial batch at the head of the queue is due.
    schedule_at: Option<u64>,
    /// Send everything queued without waiting for full batches.
    draining: bool,
    /// No request leaves before this (retry pause).
    paused_until: Option<u64>,
    hidden: bool,
    beacons_refused: bool,
    /// Set by shutdown: the time after which queued spans are dropped.
    shutdown_deadline: Option<u64>,
    /// The host's network state (`navigator.onLine`); true unless told.
    online: bool,
    /// The retry pause is the server's `Retry-After` (kept when back online).
    server_pause: bool,
    stats: ExportStats,
}

impl ExportPolicy {
    /// A policy with `config` (nonsensical values clamped: at least one span
    /// per batch, one request, one attempt; multiplier >= 1; jitter in
    /// `[0, 1]`). Deterministic: equal configs and inputs give equal outputs.
    pub fn new(mut config: ExportConfig) -> ExportPolicy {
        config.max_batch_spans = config.max_batch_spans.max(1);
        config.max_concurrent_requests = config.max_concurrent_requests.max(1);
        config.max_attempts = config.max_attempts.max(1);
        if config.backoff_multiplier.is_nan() || config.backoff_multiplier < 1.0 {
            config.backoff_multiplier = 1.0;
        }
        // min/max, not f64::clamp: clamp's panic message pulls float
        // formatting (~20 KB) into the wasm. NaN becomes 0.
        let jitter = config.backoff_jitter;
        config.backoff_jitter = if jitter > 0.0 { jitter.min(1.0) } else { 0.0 };
        // Spread the 64-bit seed over the generator's 256 bits (splitmix64),
        // so that nearby seeds give unrelated jitter.
        let mut seed_bytes = [0u8; 32];
        let mut x = config.jitter_seed;
        for chunk in seed_bytes.chunks_exact_mut(8) {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        ExportPolicy {
            config,
            rng: IdGenerator::from_seed(seed_bytes),
            queue: Vec::new(),
            queue_bytes: 0,
            in_flight: Vec::new(),
            in_flight_spans: 0,
            in_flight_bytes: 0,
            keepalive_bytes: 0,
            next_id: 0,
            schedule_at: None,
            draining: false,
            paused_until: None,
            hidden: false,
            beacons_refused: false,
            shutdown_deadline: None,
            online: true,
            server_pause: false,
            stats: ExportStats::default(),
        }
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// Sets the request framing (it changes with the resource attributes).
    /// Queued records that no longer fit a request alone are dropped as too
    /// large.
    pub fn set_request_overhead(&mut self, fixed: usize, per_record: usize) {
        self.config.overhead = RequestOverhead { fixed, per_record };
        let (overhead, max) = (self.config.overhead, self.config.max_batch_bytes);
        let before = self.queue.len();
        self.queue
            .retain(|q| overhead.request_bytes(1, q.record.len()) <= max);
        self.stats.dropped_too_large += (before - self.queue.len()) as u64;
        self.queue_bytes = self.queue.iter().map(|q| q.record.len()).sum();
        if self.queue.is_empty() {
            self.schedule_at = None;
            self.draining = false;
        }
    }

    /// Takes a finished span's encoded record, or drops and counts it (too
    /// large, queue full, shut down).
    pub fn push(&mut self, record: Vec<u8>, now: u64) {
        self.stats.pushed += 1;
        let len = record.len();
        if self.shutdown_deadline.is_some() {
            self.stats.dropped_shutdown += 1;
        } else if self.config.overhead.request_bytes(1, len) > self.config.max_batch_bytes {
            self.stats.dropped_too_large += 1;
        } else if self.is_full() || self.queue_bytes + len > self.config.max_queue_bytes {
            self.stats.dropped_queue_full += 1;
            self.overflowed();
        } else {
            if !self.draining && self.schedule_at.is_none() {
                self.schedule_at = Some(now.saturating_add(self.config.schedule_delay_ms));
            }
            self.queue_bytes += len;
            self.queue.push(Queued {
                record,
                failures: 0,
            });
        }
    }

    /// Counts the next span as dropped, without its record, when
    /// [`push`](Self::push) would surely drop it: after shutdown, or with
    /// `max_queue_spans` spans already held. Lets the driver skip encoding
    /// spans that cannot be kept (a tight loop under overload). Returns
    /// whether it dropped; counted exactly as `push` would count it.
    pub fn drop_if_full(&mut self) -> bool {
        let counter = if self.shutdown_deadline.is_some() {
            &mut self.stats.dropped_shutdown
        } else if self.is_full() {
            self.overflowed();
            &mut self.stats.dropped_queue_full
        } else {
            return false;
        };
        *counter += 1;
        self.stats.pushed += 1;
        true
    }

    /// Whether the next span would be dropped for want of room (`max_queue_spans`
    /// spans waiting) or after shutdown: [`drop_if_full`](Self::drop_if_full)
    /// without counting.
    pub fn is_full(&self) -> bool {
        self.shutdown_deadline.is_some() || self.queue.len() >= self.config.max_queue_spans
    }

    /// The queue overflowed: spans are being made faster than they leave, so
    /// waiting out the schedule delay for a partial batch would only drop
    /// more. Everything queued goes as soon as a request slot frees (until
    /// the queue is empty again).
    fn overflowed(&mut self) {
        if !self.queue.is_empty() {
            self.draining = true;
            self.schedule_at = None;
        }
    }

    /// The next request to send, if one is due: call in a loop until `None`.
    /// Sizes requests uncompressed (records plus [`RequestOverhead`]).
    #[must_use = "the request is in flight until its outcome is reported"]
    pub fn poll_transmit(&mut self, now: u64) -> Option<Transmit> {
        let mut sizer = Framed { overhead: self.config.overhead, count: 0, bytes: 0 };
        self.poll_transmit_sized(now, &mut sizer)
    }

    /// [`poll_transmit`](Self::poll_transmit) with requests measured by
    /// `sizer` (e.g. compressed). Within one call every measurement starts
    /// at the head of the queue, and the last one covers the records of the
    /// returned transmit (so the sizer may keep the body it built).
    #[must_use = "the request is in flight until its outcome is reported"]
    pub fn poll_transmit_sized(&mut self, now: u64, sizer: &mut dyn RequestSizer) -> Option<Transmit> {
        self.expire(now);
        // Records whose attempts ran out wait at the head: to the store at once.
        let mut exhausted = 0;
        while self.queue.get(exhausted).is_some_and(|q| q.failures >= self.config.max_attempts) {
            exhausted += 1;
        }
        if exhausted > 0 {
            let (count, bytes) = self.fit_upto(sizer, Transport::Persist, self.config.max_batch_bytes, exhausted);
            return Some(self.send(Transport::Persist, count.max(1), bytes));
        }
        if self.queue.is_empty() {
            return None;
        }
        if self.storing() {
            // Hidden: everything, now. Offline: each batch as it falls due.
            if !(self.hidden || self.draining || self.batch_due()) {
                return None;
            }
            let limit = self.config.keepalive_budget_bytes.min(self.config.max_batch_bytes);
            let (count, bytes) = match self.fit(sizer, Transport::Persist, limit) {
                (0, _) => self.fit(sizer, Transport::Persist, self.config.max_batch_bytes),
                fit => fit,
            };
            return (count > 0).then(|| self.send(Transport::Persist, count, bytes));
        }
        if self.paused_until.is_some() {
            return None;
        }
        let (transport, count, bytes) = if self.hidden {
            self.plan_urgent(sizer)
        } else {
            self.plan_normal(sizer)?
        };
        Some(self.send(transport, count, bytes))
    }

    /// When the driver should call [`handle_timeout`](Self::handle_timeout)
    /// next (schedule delay, end of a retry pause, shutdown deadline); `None`
    /// when only a push, an outcome or a lifecycle event can make progress.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.queue.is_empty() {
            return None;
        }
        let wake = match self.paused_until {
            Some(t) if !self.storing() => Some(t),
            _ if self.draining || self.hidden => None,
            _ => self.schedule_at,
        };
        match (wake, self.shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances timers to `now`; then poll for transmits.
    pub fn handle_timeout(&mut self, now: u64) {
        self.expire(now);
    }

    /// Sends everything queued without waiting for full batches (still
    /// respecting a retry pause and the concurrency limit).
    pub fn flush(&mut self, now: u64) {
        self.expire(now);
        if !self.queue.is_empty() {
            self.draining = true;
            self.schedule_at = None;
        }
    }

    /// The page was hidden or is unloading: send everything now, by keepalive
    /// fetch within the budget, then beacons (see the module docs).
    pub fn page_hidden(&mut self, now: u64) {
        self.hidden = true;
        self.beacons_refused = false;
        self.expire(now);
    }

    /// The page is visible again: back to normal batching. Spans queued while
    /// hidden are sent at once.
    pub fn page_visible(&mut self, now: u64) {
        self.hidden = false;
        self.beacons_refused = false;
        self.flush(now);
    }

    /// The host's network state changed (`online` / `offline` events,
    /// `navigator.onLine`). Offline with persistence, batches are stored
    /// instead of sent; back online, a backoff pause ends at once (a
    /// server's `Retry-After` is still honoured) and the queue is sent.
    pub fn set_online(&mut self, online: bool, now: u64) {
        let was = self.online;
        self.online = online;
        if online && !was {
            if !self.server_pause {
                self.paused_until = None;
            }
            self.flush(now);
        }
    }

    /// Whether the driver can store requests now ([`Transport::Persist`]).
    pub fn set_persist(&mut self, available: bool) {
        self.config.persist = available;
    }

    /// Flushes, then drops every later push; anything still unsent
    /// `shutdown_timeout_ms` from now is dropped. Calling it again changes nothing.
    pub fn shutdown(&mut self, now: u64) {
        if self.shutdown_deadline.is_none() {
            self.shutdown_deadline = Some(now.saturating_add(self.config.shutdown_timeout_ms));
        }
        self.flush(now);
    }

    /// True when nothing is queued or in flight (a flush or shutdown is done).
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// The records of request `id`, in order, while it is in flight (empty
    /// otherwise).
    ///
    /// The policy keeps the records (it needs them back for a retry); the
    /// driver borrows them to frame the request body.
    pub fn records(&self, id: u64) -> &[Queued] {
        self.in_flight
            .iter()
            .find(|r| r.id == id)
            .map_or(&[], |r| r.records.as_slice())
    }

    /// Reports what became of request `id`. Unknown ids (already reported)
    /// are ignored.
    pub fn on_outcome(&mut self, id: u64, outcome: Outcome, now: u64) {
        let Some(pos) = self.in_flight.iter().position(|r| r.id == id) else {
            return;
        };
        let request = self.in_flight.remove(pos);
        self.in_flight_spans -= request.records.len();
        self.in_flight_bytes -= request.record_bytes;
        if request.transport == Transport::FetchKeepalive {
            self.keepalive_bytes -= request.bytes;
        }
        if request.transport == Transport::Persist {
            // Stored or not, never sent from here: nothing is both.
            let spans = request.records.len() as u64;
            if outcome == Outcome::Stored(true) {
                self.stats.persisted += spans;
            } else {
                self.stats.dropped_persist_failed += spans;
            }
            self.expire(now);
            return;
        }
        match outcome {
            Outcome::Success { rejected_spans } => self.succeeded(&request, rejected_spans),
            Outcome::BeaconAccepted(true) => self.succeeded(&request, 0),
            Outcome::Http {
                status,
                retry_after_ms,
            } => match classify(status) {
                StatusClass::Success => self.succeeded(&request, 0),
                StatusClass::Retryable => {
                    let delay = retry_after_ms.map(|d| d.min(self.config.retry_after_max_ms));
                    self.failed_retryable(now, request, delay);
                }
                StatusClass::Fatal => {
                    self.stats.failed_requests += 1;
                    self.stats.dropped_failed += request.records.len() as u64;
                }
            },
            Outcome::NetworkError | Outcome::Timeout | Outcome::Stored(_) => {
                self.failed_retryable(now, request, None)
            }
            Outcome::BeaconAccepted(false) => {
                // Never sent: no attempt used up. Wait for keepalive budget.
                self.stats.beacons_refused += 1;
                self.beacons_refused = true;
                self.requeue(request.records);
            }
        }
        self.expire(now);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ExportStats {
        ExportStats {
            queued: self.queue.len() as u64,
            queued_bytes: self.queue_bytes as u64,
            in_flight: self.in_flight_spans as u64,
            in_flight_requests: self.in_flight.len() as u64,
            in_flight_keepalive_bytes: self.keepalive_bytes as u64,
            ..self.stats
        }
    }

    /// Applies the timers that have come due at `now`.
    fn expire(&mut self, now: u64) {
        if self.paused_until.is_some_and(|t| t <= now) {
            self.paused_until = None;
            self.server_pause = false;
        }
        if self.schedule_at.is_some_and(|t| t <= now) {
            self.schedule_at = None;
            self.draining = true;
        }
        if let Some(deadline) = self.shutdown_deadline {
            if now >= deadline || self.paused_until.is_some_and(|t| t >= deadline) {
                self.stats.dropped_shutdown += self.queue.len() as u64;
                self.queue.clear();
                self.queue_bytes = 0;
            }
        }
        if self.queue.is_empty() {
            self.schedule_at = None;
            self.draining = false;
        }
    }

    /// Spans go to the driver's store rather than the network: persistence
    /// is available and sending is impossible (offline, or the page hides
    /// during a retry pause).
    fn storing(&self) -> bool {
        self.config.persist && (!self.online || (self.hidden && self.paused_until.is_some()))
    }

    /// A full batch is queued: full by count or bytes, or a keepalive budget's
    /// worth. Never let more than one keepalive request's worth wait, so a
    /// page that unloads can still send it all.
    fn batch_due(&self) -> bool {
        let queued = self.config.overhead.request_bytes(self.queue.len(), self.queue_bytes);
        self.queue.len() >= self.config.max_batch_spans
            || queued > self.config.max_batch_bytes
            || queued >= self.config.keepalive_budget_bytes
    }

    /// Normal mode: a full batch, or anything when draining, by plain fetch.
    fn plan_normal(&self, sizer: &mut dyn RequestSizer) -> Option<(Transport, usize, usize)> {
        // Requests to the store do not hold a connection.
        let sending = self.in_flight.iter().filter(|r| r.transport != Transport::Persist).count();
        if sending >= self.config.max_concurrent_requests {
            return None;
        }
        // (Uncompressed bytes in batch_due: an upper bound that needs no measuring.)
        if !(self.batch_due() || self.draining) {
            return None;
        }
        // Batches that fit the free keepalive budget go keepalive: a request
        // in flight when the page unloads then still completes.
        let budget = self.config.keepalive_budget_bytes.saturating_sub(self.keepalive_bytes);
        let limit = budget.min(self.config.max_batch_bytes);
        if let (n @ 1.., bytes) = self.fit(sizer, Transport::FetchKeepalive, limit) {
            return Some((Transport::FetchKeepalive, n, bytes));
        }
        // Every queued record fits `max_batch_bytes` uncompressed, but a
        // sizer may add a few bytes (gzip's framing): send at least one.
        let (count, bytes) = self.fit(sizer, Transport::Fetch, self.config.max_batch_bytes);
        Some((Transport::Fetch, count.max(1), bytes))
    }

    /// Page-hidden mode: everything, keepalive while the budget lasts, then
    /// beacons until one is refused, then plain fetch (best effort: it may
    /// complete before the page goes, and if the page stays, it simply works).
    fn plan_urgent(&self, sizer: &mut dyn RequestSizer) -> (Transport, usize, usize) {
        let budget = self.config.keepalive_budget_bytes;
        let (count, bytes) = self.fit(sizer, Transport::FetchKeepalive, budget.saturating_sub(self.keepalive_bytes));
        if count > 0 {
            return (Transport::FetchKeepalive, count, bytes);
        }
        // `bytes` is the first record alone. More than any keepalive request
        // may carry, or than a beacon may (a beacon may be sized differently,
        // e.g. uncompressed): it goes alone by plain fetch, best effort.
        if bytes > budget {
            return self.fit_one(sizer, Transport::Fetch);
        }
        if self.beacons_refused {
            let (count, bytes) = self.fit(sizer, Transport::Fetch, self.config.max_batch_bytes);
            return (Transport::Fetch, count.max(1), bytes);
        }
        match self.fit(sizer, Transport::Beacon, budget) {
            (0, _) => self.fit_one(sizer, Transport::Fetch),
            (n, bytes) => (Transport::Beacon, n, bytes),
        }
    }

    /// How many records from the head of the queue fit one request sent by
    /// `transport` of at most `limit` bytes and `max_batch_spans` spans, and
    /// that request's size; `(0, size of the first record alone)` if none.
    fn fit(&self, sizer: &mut dyn RequestSizer, transport: Transport, limit: usize) -> (usize, usize) {
        self.fit_upto(sizer, transport, limit, self.config.max_batch_spans)
    }

    /// [`fit`](Self::fit) over at most `max_count` records.
    fn fit_upto(&self, sizer: &mut dyn RequestSizer, transport: Transport, limit: usize, max_count: usize) -> (usize, usize) {
        sizer.begin(transport);
        let (mut count, mut bytes) = (0, 0);
        for q in self.queue.iter().take(self.config.max_batch_spans.min(max_count)) {
            let next = sizer.add(&q.record);
            if next > limit {
                if count == 0 {
                    bytes = next;
                }
                break;
            }
            count += 1;
            bytes = next;
        }
        (count, bytes)
    }

    /// The first record alone, sent by `transport`.
    fn fit_one(&self, sizer: &mut dyn RequestSizer, transport: Transport) -> (Transport, usize, usize) {
        (transport, 1, self.fit(sizer, transport, 0).1)
    }

    /// Moves `count` records from the queue into a new in-flight request of
    /// `bytes` bytes on the wire.
    fn send(&mut self, transport: Transport, count: usize, bytes: usize) -> Transmit {
        // Rotated to the back and split off there: the queue keeps its
        // allocation (a VecDeque or `drain` + `splice` cost 1.2 KB gzip more).
        self.queue.rotate_left(count);
        let records = self.queue.split_off(self.queue.len() - count);
        let record_bytes = records.iter().map(|q| q.record.len()).sum();
        self.queue_bytes -= record_bytes;
        self.in_flight_spans += count;
        self.in_flight_bytes += record_bytes;
        if transport == Transport::FetchKeepalive {
            self.keepalive_bytes += bytes;
        }
        let id = self.next_id;
        self.next_id += 1;
        if transport != Transport::Persist {
            self.stats.requests += 1;
        }
        self.in_flight.push(InFlight {
            id,
            transport,
            bytes,
            record_bytes,
            records,
        });
        if self.queue.is_empty() {
            self.schedule_at = None;
            self.draining = false;
        }
        Transmit {
            id,
            transport,
            spans: count,
            bytes,
        }
    }

    fn succeeded(&mut self, request: &InFlight, rejected: u64) {
        let spans = request.records.len() as u64;
        let rejected = rejected.min(spans);
        self.stats.exported += spans - rejected;
        self.stats.dropped_rejected += rejected;
    }

    /// A retryable failure: records with attempts left go back to the front of
    /// the queue and sending pauses for `retry_after` or a backoff delay.
    fn failed_retryable(&mut self, now: u64, request: InFlight, retry_after: Option<u64>) {
        self.stats.failed_requests += 1;
        let attempt = request.records.iter().map(|q| q.failures).max().unwrap_or(0) + 1;
        let mut records = Vec::with_capacity(request.records.len());
        let mut exhausted = Vec::new();
        for mut q in request.records {
            q.failures += 1;
            if q.failures < self.config.max_attempts {
                records.push(q);
            } else if self.config.persist {
                exhausted.push(q);
            } else {
                self.stats.dropped_retries_exhausted += 1;
            }
        }
        if !records.is_empty() {
            self.stats.retried += 1;
            let delay = match retry_after {
                Some(d) => d,
                None => self.backoff(attempt),
            };
            let until = now.saturating_add(delay);
            if self.paused_until.is_none_or(|t| until >= t) {
                self.server_pause = retry_after.is_some();
            }
            self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
            self.requeue(records);
        }
        // In front of everything, marked by their failure count: the next
        // `poll_transmit` hands them to the store.
        self.requeue(exhausted);
    }

    /// Puts records back at the front of the queue, in their order, to be
    /// sent as soon as sending may resume.
    /// Records that no longer fit a request alone (the overhead grew while
    /// they were in flight) are dropped as too large.
    fn requeue(&mut self, mut records: Vec<Queued>) {
        let before = records.len();
        let (overhead, max) = (self.config.overhead, self.config.max_batch_bytes);
        records.retain(|q| overhead.request_bytes(1, q.record.len()) <= max);
        self.stats.dropped_too_large += (before - records.len()) as u64;
        self.queue_bytes += records.iter().map(|q| q.record.len()).sum::<usize>();
        let n = records.len();
        self.queue.append(&mut records);
        self.queue.rotate_right(n);
        if !self.queue.is_empty() {
            self.draining = true;
            self.schedule_at = None;
        }
    }

    /// The backoff delay after the `attempt`-th failed send of a batch:
    /// `initial * multiplier^(attempt-1)`, jittered, at most `backoff_max_ms`.
    fn backoff(&mut self, attempt: u32) -> u64 {
        let max = self.config.backoff_max_ms as f64;
        let mut delay = (self.config.backoff_initial_ms as f64).min(max);
        for _ in 1..attempt {
            if delay >= max {
                break;
            }
            delay = (delay * self.config.backoff_multiplier).min(max);
        }
        let jitter = self.config.backoff_jitter * (2.0 * self.rng.next_f64() - 1.0);
        // `as` saturates (NaN is 0): no panic path.
        (delay * (1.0 + jitter)).min(max) as u64
    }
}

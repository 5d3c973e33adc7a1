//! Client clock skew: how far this client's clock is from the server's,
//! estimated from traced responses, so that exported client spans sit on the
//! server's time line and enclose their server children (in Jaeger a client
//! span that starts after its server child looks broken).
//!
//! Each traced response gives a [`ClockSample`]: the client's clock when the
//! request left and when the response arrived, and the server's clock while
//! it handled the request: the `tracelink-time` Server-Timing metric that
//! tracelink-backend sends (microseconds, with the time it spent), or the
//! standard `Date` header (seconds). As in NTP, a sample bounds the offset
//! `server clock − client clock`: the server handled the request after it was
//! sent and before the response arrived, so
//!
//! ```text
//! server_start + precision − request_sent  ≥  offset  ≥  server_end − response_arrived
//! ```
//!
//! an interval as wide as the round trip minus the server's own time (plus
//! the clocks' resolution). Every honest sample contains the true offset; a
//! sample that shares no point with the others is an outlier: a proxy's
//! cached `Date`, a server with a wrong clock, a client clock that jumped.
//!
//! [`ClockSkew`] keeps the last [`CAPACITY`] samples within
//! [`MAX_SAMPLE_AGE_NANO`] of the newest and finds the offset most of them
//! agree on (Marzullo's algorithm): the point inside the most intervals,
//! ties going to the group with the newest sample. Only when two or more
//! samples agree is there an estimate; the offset lies in their intersection.
//! [`ClockSkew::offset_nano`] is 0 until then, 0 when that intersection
//! contains 0 (the clocks agree as far as can be measured: nothing is moved),
//! else the intersection's midpoint. Samples coarser than the finest seen are
//! ignored: a `Date` sample adds nothing to microsecond ones, and cached
//! `Date`s cannot outvote them.
//!
//! No IO and no clock: times are arguments, as everywhere in the core.

use super::id::TraceId;
use super::span::{KeyValue, SpanData, SpanLimits};
use super::text;

/// Samples kept.
pub const CAPACITY: usize = 8;
/// Samples older than this (client time) than the newest one are forgotten.
pub const MAX_SAMPLE_AGE_NANO: u64 = 10 * 60 * 1_000_000_000;
/// A sample whose offset interval is wider than this says nothing useful.
pub const MAX_INTERVAL_NANO: u64 = 120 * 1_000_000_000;
/// Slack for the client's own timestamps: browsers coarsen them to 5–100 µs.
pub const CLIENT_RESOLUTION_NANO: u64 = 100_000;
/// How far after a `Date` header's value the server's clock may be when it
/// answered: the header is truncated to whole seconds, and servers that cache
/// it send one up to a second older still (uvicorn refreshes its copy about
/// once a second, on a 100 ms tick), plus half a second for a busy event loop.
pub const DATE_PRECISION_NANO: u64 = 2_500_000_000;
/// The Server-Timing metric carrying the server's clock (tracelink-backend).
pub const SERVER_TIME_METRIC: &str = "tracelink-time";
/// The span attribute recording the offset applied to a span's times.
pub const OFFSET_ATTRIBUTE: &str = "tracelink.clock_offset_ms";

/// One traced round trip and what the server's clock said during it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSample {
    /// Client clock (unix ns) when the request was sent, or earlier.
    pub request_unix_nano: u64,
    /// Client clock (unix ns) when the response arrived, or later.
    pub response_unix_nano: u64,
    /// Server clock (unix ns) when it started handling the request,
    /// truncated to `precision_nano`.
    pub server_unix_nano: u64,
    /// How long the server handled it until the response started (0 when
    /// unknown, as with `Date`).
    pub server_duration_nano: u64,
    /// The server's resolution: its true times are within this after the
    /// values given (1 µs for `tracelink-time` with three decimals,
    /// [`DATE_PRECISION_NANO`] for `Date`).
    pub precision_nano: u64,
}

impl ClockSample {
    /// The sample a traced response gives: from the `tracelink-time` metric in
    /// its `server_timing` header when there is one, else from its `Date`
    /// header, as unix seconds (the host parses it: [`parse_http_date`], or
    /// a page's `Date.parse`); `None` when neither gives a time. Pass `''` /
    /// `None` for a header that is absent or unreadable (cross-origin and not
    /// exposed).
    ///
    /// [`parse_http_date`]: super::export::parse_http_date
    pub fn from_headers(
        request_unix_nano: u64,
        response_unix_nano: u64,
        server_timing: &str,
        date_unix_s: Option<u64>,
    ) -> Option<ClockSample> {
        let (server_unix_nano, server_duration_nano, precision_nano) = parse_server_time(server_timing)
            .or_else(|| Some((date_unix_s?.checked_mul(1_000_000_000)?, 0, DATE_PRECISION_NANO)))?;
        Some(ClockSample {
            request_unix_nano,
            response_unix_nano,
            server_unix_nano,
            server_duration_nano,
            precision_nano,
        })
    }

    /// The offsets (server − client, ns) this sample allows, as `(low, high)`;
    /// `None` for nonsense: a response before its request, a server that
    /// handled the request for longer than the round trip, no server time,
    /// an interval wider than [`MAX_INTERVAL_NANO`].
    pub fn offset_bounds(&self) -> Option<(i64, i64)> {
        let sent = i128::from(self.request_unix_nano);
        let arrived = i128::from(self.response_unix_nano);
        let start = i128::from(self.server_unix_nano);
        if arrived < sent || start == 0 {
            return None;
        }
        let slack = i128::from(CLIENT_RESOLUTION_NANO);
        let low = start + i128::from(self.server_duration_nano) - arrived - slack;
        let high = start + i128::from(self.precision_nano) - sent + slack;
        if low > high || high - low > i128::from(MAX_INTERVAL_NANO) {
            return None;
        }
        Some((i64::try_from(low).ok()?, i64::try_from(high).ok()?))
    }
}

/// The `tracelink-time` metric of a Server-Timing header as
/// `(start unix ns, duration ns, precision ns)`.
fn parse_server_time(header: &str) -> Option<(u64, u64, u64)> {
    text::split(header, b',').find_map(|entry| {
        let mut parts = text::split(entry, b';');
        if !text::trim(parts.next()?).eq_ignore_ascii_case(SERVER_TIME_METRIC) {
            return None;
        }
        let (mut start, mut duration) = (None, Some((0, 1))); // no dur: 0, adds no imprecision
        for param in parts {
            let Some((key, value)) = text::split_once(param, b'=') else { continue };
            let value = text::trim_by(text::trim(value), |c| c == b'"');
            match text::trim(key) {
                k if k.eq_ignore_ascii_case("desc") => start = parse_ms(value),
                k if k.eq_ignore_ascii_case("dur") => duration = parse_ms(value),
                _ => {}
            }
        }
        let ((start, start_precision), (duration, duration_precision)) = (start?, duration?);
        (start > 0).then_some((start, duration, start_precision.max(duration_precision)))
    })
}

/// Decimal milliseconds (`1732990000123.456`, at most 13 whole digits: until
/// 2286) as `(ns, precision ns)`: the precision is the unit of the last digit
/// given (digits past ns are dropped).
fn parse_ms(s: &str) -> Option<(u64, u64)> {
    let (mut nanos, mut unit, mut whole) = (0u64, 0u64, 0u32);
    for b in s.bytes() {
        let digit = u64::from(b.wrapping_sub(b'0'));
        match b {
            b'0'..=b'9' if unit == 0 && whole < 13 => {
                nanos = nanos * 10 + digit;
                whole += 1;
            }
            b'0'..=b'9' if unit > 1 => {
                unit /= 10;
                nanos += digit * unit;
            }
            b'0'..=b'9' if unit == 1 => {} // past nanoseconds
            b'.' if unit == 0 && whole > 0 => {
                nanos *= 1_000_000;
                unit = 1_000_000;
            }
            _ => return None,
        }
    }
    match unit {
        0 if whole > 0 => Some((nanos * 1_000_000, 1_000_000)),
        0 | 1_000_000 => None, // nothing, or a point without decimals
        _ => Some((nanos, unit)),
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    low: i64,
    high: i64,
    precision: u64,
    at: u64,
    seq: u64,
}

/// What the estimator did with the samples it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockSkewStats {
    /// Samples kept.
    pub accepted: u64,
    /// Nonsense samples refused (see [`ClockSample::offset_bounds`]).
    pub rejected: u64,
    /// Samples coarser than the finest seen, ignored.
    pub ignored: u64,
}

/// The clock-offset estimator; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ClockSkew {
    entries: [Option<Entry>; CAPACITY],
    /// Where the next sample goes: always the oldest slot (a ring).
    next: usize,
    seq: u64,
    finest: Option<u64>,
    offset: i64,
    confident: bool,
    stats: ClockSkewStats,
}

impl ClockSkew {
    /// An estimator without samples (offset 0).
    pub fn new() -> ClockSkew {
        ClockSkew::default()
    }

    /// The offset (ns) to add to this client's times to put them on the
    /// server's clock: 0 until two samples agree.
    pub fn offset_nano(&self) -> i64 {
        self.offset
    }

    /// Whether two or more samples have agreed on an offset.
    pub fn is_confident(&self) -> bool {
        self.confident
    }

    /// What happened to the samples so far.
    pub fn stats(&self) -> ClockSkewStats {
        self.stats
    }

    /// Takes a sample; true when it was kept (false: nonsense, or coarser
    /// than the samples already kept). Never panics.
    pub fn add_sample(&mut self, sample: ClockSample) -> bool {
        let Some((low, high)) = sample.offset_bounds() else {
            self.stats.rejected += 1;
            return false;
        };
        let precision = sample.precision_nano;
        if self.finest.is_some_and(|finest| precision > finest) {
            self.stats.ignored += 1;
            return false;
        }
        self.finest = Some(precision);
        let at = sample.response_unix_nano;
        for slot in &mut self.entries {
            // Coarser samples, and samples far from this one in time (old, or
            // from before a jump of the client clock), no longer count.
            if slot.is_some_and(|e| e.precision > precision || e.at.abs_diff(at) > MAX_SAMPLE_AGE_NANO) {
                *slot = None;
            }
        }
        self.seq += 1;
        let entry = Entry { low, high, precision, at, seq: self.seq };
        self.entries[self.next] = Some(entry);
        self.next = (self.next + 1) % CAPACITY;
        self.stats.accepted += 1;
        self.estimate();
        true
    }

    /// Marzullo: the point inside the most intervals (ties: the group with the
    /// newest sample), and the intersection of the intervals containing it.
    fn estimate(&mut self) {
        let kept = || self.entries.iter().flatten();
        let mut best: Option<(usize, u64, i64, i64)> = None; // (count, newest seq, low, high)
        for candidate in kept() {
            let point = candidate.low;
            let (mut count, mut newest, mut high) = (0usize, 0u64, i64::MAX);
            for e in kept().filter(|e| e.low <= point && point <= e.high) {
                count += 1;
                newest = newest.max(e.seq);
                high = high.min(e.high);
            }
            if best.is_none_or(|(c, n, ..)| (count, newest) > (c, n)) {
                best = Some((count, newest, point, high));
            }
        }
        if let Some((count, _, low, high)) = best {
            if count >= 2 {
                self.confident = true;
                self.offset = if low <= 0 && 0 <= high { 0 } else { low + (high - low) / 2 };
            }
        }
    }
}

/// Moves a finished span's times (start, end, events) by `offset_nano` and
/// records the offset, in whole milliseconds, as [`OFFSET_ATTRIBUTE`].
/// Nothing happens for an offset of 0.
pub fn apply_offset(span: &mut SpanData, offset_nano: i64, limits: &SpanLimits) {
    if offset_nano == 0 {
        return;
    }
    span.start_time_unix_nano = shift(span.start_time_unix_nano, offset_nano);
    span.end_time_unix_nano = shift(span.end_time_unix_nano, offset_nano);
    for event in &mut span.events {
        event.time_unix_nano = shift(event.time_unix_nano, offset_nano);
    }
    span.set_attribute(KeyValue::new(OFFSET_ATTRIBUTE, offset_ms(offset_nano)), limits);
}

/// An offset in whole milliseconds, rounded half away from zero (the value of [`OFFSET_ATTRIBUTE`]).
pub fn offset_ms(offset_nano: i64) -> i64 {
    let half = if offset_nano < 0 { -500_000 } else { 500_000 };
    offset_nano.saturating_add(half) / 1_000_000
}

/// `time` moved by `offset` nanoseconds, saturating.
pub(crate) fn shift(time: u64, offset: i64) -> u64 {
    if offset < 0 {
        time.saturating_sub(offset.unsigned_abs())
    } else {
        time.saturating_add(offset.unsigned_abs())
    }
}

/// How many traces remember the offset their first span was exported with.
pub const PINNED_TRACES: usize = 16;

/// One offset per trace: the first span of a trace to be exported fixes the
/// offset for that trace's later spans, so the spans of one trace never move
/// against each other when the estimate changes mid-trace (the parent of a
/// fetch ends after the fetch's own response moved the estimate). The last
/// [`PINNED_TRACES`] traces are remembered.
#[derive(Clone, Debug)]
pub struct TraceOffsets {
    pinned: [(TraceId, i64); PINNED_TRACES],
    next: usize,
}

impl Default for TraceOffsets {
    fn default() -> TraceOffsets {
        TraceOffsets { pinned: [(TraceId::INVALID, 0); PINNED_TRACES], next: 0 }
    }
}

impl TraceOffsets {
    /// The offset for a span of `trace`: the pinned one, else `current` (now pinned).
    pub fn offset_for(&mut self, trace: TraceId, current: i64) -> i64 {
        // Ids compared as one 128-bit number each (every span ends here).
        let key = u128::from_le_bytes(trace.0);
        if key != 0 {
            if let Some(&(_, offset)) = self.pinned.iter().find(|(t, _)| u128::from_le_bytes(t.0) == key) {
                return offset;
            }
        }
        self.pinned[self.next] = (trace, current);
        self.next = (self.next + 1) % PINNED_TRACES;
        current
    }
}

#[cfg(test)]
mod tests;
